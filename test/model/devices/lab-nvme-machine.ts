/** The lab's 'nvme' machine lives with the fuzzer, which runs on it too; the model tests take it from there. */
export { labNvmeProfile } from '../../../tools/fuzz/lab-nvme-machine';
