/** The lab's 'sriov' machine lives with the fuzzer's other lab machines; the model tests take it from there. */
export { labSriovProfile, LAB_SRIOV_MAX_VFS } from '../../../tools/fuzz/lab-sriov-machine';
