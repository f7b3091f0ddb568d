/**
 * SR-IOV VF tokens, ported from Linux 7.3's tools/testing/selftests/vfio/vfio_pci_sriov_uapi_test.c:
 * the PF is opened with token UUID_1 (which, with no VF open, sets the PF's token), one VF is
 * created through sriov_numvfs, and the VF is opened with UUID_1 (same), UUID_2 (diff) or none
 * (null): only the same token opens it. Three tests per variant: init_token_match, pf_early_close
 * (the PF's fd closed before the VF is opened: the token outlives it) and override_token (the PF
 * user sets UUID_2 through VFIO_DEVICE_FEATURE_PCI_VF_TOKEN first: then UUID_2 is the one). Each
 * runs on the device cdev (VFIO_DEVICE_BIND_IOMMUFD with VFIO_DEVICE_BIND_FLAG_TOKEN) and, where
 * the kernel has groups, on the group path (VFIO_GROUP_GET_DEVICE_FD "<bdf> vf_token=<uuid>").
 * A refused VF is EACCES (vfio_pci_core_match_token_uuid). Sources: drivers/vfio/pci/vfio_pci_core.c
 * (vfio_pci_core_match_token_uuid, vfio_pci_core_feature_token, vfio_pci_core_sriov_configure),
 * drivers/vfio/device_cdev.c (vfio_df_check_token), drivers/pci/iov.c (sriov_numvfs_store).
 */
import type { ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import { defineCase } from '../case';
import { PciDevice } from '../../pci/pci-device';
import { PciSriov } from '../../pci/sriov';
import { openDevice } from '../../vfio/open-device';
import type { VfioDevice } from '../../vfio/device';
import { VfioError } from '../../sys/errors';

const UUID_1 = '52ac9bff-3a88-4fbd-901a-0d767c3b6c97';
const UUID_2 = '88594674-90a0-47a9-aea8-9d9b352ac08a';

type Path = 'cdev' | 'group';
type Variant = 'same-uuid' | 'diff-uuid' | 'null-uuid';
type Test = 'init-token-match' | 'pf-early-close' | 'override-token';

const VARIANT_TOKEN: Record<Variant, string | undefined> = { 'same-uuid': UUID_1, 'diff-uuid': UUID_2, 'null-uuid': undefined };

/** The PF under test with one fresh VF bound to vfio-pci; the VF goes again when the case ends. */
function pfWithOneVf(t: CaseContext): { pf: string; vf: string } {
  const pf = t.env.device!.bdf;
  const sriov = PciDevice.get(pf, { kernel: t.kernel }).sriov;
  if (!sriov || sriov.totalVfs <= 0) t.skip(`${pf} has no SR-IOV capability (sriov_totalvfs): the lab's sriov machine has one`);
  if (sriov.numVfs !== 0) t.skip(`SR-IOV is already configured for ${pf} (sriov_numvfs ${sriov.numVfs})`);
  if (!PciSriov.vfioPciAllowed({ kernel: t.kernel })) {
    try {
      PciSriov.allowVfioPci(true, { kernel: t.kernel });
    } catch (e) {
      t.skip(`vfio-pci's enable_sriov is off and cannot be set here: ${(e as Error).message}`);
    }
    t.defer('vfio-pci enable_sriov back to N', () => PciSriov.allowVfioPci(false, { kernel: t.kernel }));
  }
  const [vf] = sriov.enable(1);
  t.defer(`disable the VFs of ${pf}`, () => sriov.disable());
  if (!vf) t.fail(`sriov_numvfs=1 left ${pf} without a virtfn0 link`);
  const driver = PciDevice.get(vf, { kernel: t.kernel }).driver;
  if (driver !== 'vfio-pci') t.fail(`VF ${vf} is bound to ${driver ?? 'no driver'}, not vfio-pci (the PF's bus notifier sets its driver_override)`);
  t.note(`created 1 VF (${vf}) under the PF ${pf}`);
  return { pf, vf };
}

function open(t: CaseContext, bdf: string, path: Path, vfToken: string | undefined): VfioDevice {
  return openDevice(bdf, { kernel: t.kernel, prefer: path, ...(vfToken === undefined ? {} : { vfToken }) });
}

function run(t: CaseContext, path: Path, variant: Variant, test: Test): void {
  if (path === 'group' && !t.kernel.exists('/dev/vfio/vfio')) t.skip('no /dev/vfio/vfio: this kernel has no group interface');
  const { pf, vf } = pfWithOneVf(t);
  let pfToken = UUID_1;
  let pfDevice: VfioDevice | undefined = open(t, pf, path, pfToken);
  t.defer(`close the PF ${pf}`, () => pfDevice?.close());
  if (test === 'pf-early-close') {
    pfDevice.close();
    pfDevice = undefined;
  } else if (test === 'override-token') {
    pfToken = UUID_2;
    pfDevice.setVfToken(pfToken);
  }
  const token = VARIANT_TOKEN[variant];
  const shouldOpen = token === pfToken;
  let vfDevice: VfioDevice | undefined;
  try {
    vfDevice = open(t, vf, path, token);
  } catch (e) {
    if (shouldOpen) throw e;
    if (!(e instanceof VfioError) || e.code !== 'EACCES') t.fail(`opening VF ${vf} with ${token ?? 'no token'} (PF token ${pfToken}): expected EACCES, got ${(e as Error).message}`);
    t.note(`VF refused with EACCES as expected (token ${token ?? 'none'}, PF's ${pfToken})`);
    return;
  }
  vfDevice.close();
  if (!shouldOpen) t.fail(`VF ${vf} opened with ${token ?? 'no token'} although the PF's token is ${pfToken}`);
  t.note(`VF opened with the PF's token ${pfToken}`);
}

export const sriovCases: readonly ConformanceCase[] = (['cdev', 'group'] as const).flatMap((path) =>
  (['same-uuid', 'diff-uuid', 'null-uuid'] as const).flatMap((variant) =>
    (['init-token-match', 'pf-early-close', 'override-token'] as const).map((test) => defineCase({
      id: `sriov.${path}.${variant}.${test}`,
      title: `VF token ${test.replace(/-/g, ' ')} through the ${path} with ${variant.replace('-', ' ')} (vfio_pci_sriov_uapi_test ${test.replace(/-/g, '_')})`,
      needs: ['device'],
      run: (t) => run(t, path, variant, test),
    }))));
