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
  if (driver !== 'vfio-pci')
    t.fail(`VF ${vf} is bound to ${driver ?? 'no driver'}, not vfio-pci (the PF's bus notifier sets its driver_override)`);
  t.note(`created 1 VF (${vf}) under the PF ${pf}`);
  return { pf, vf };
}

/** Skips unless the kernel offers `path` for the device under test. */
function requirePath(t: CaseContext, path: Path): void {
  if (path === 'group' && !t.kernel.exists('/dev/vfio/vfio')) t.skip('no /dev/vfio/vfio: this kernel has no group interface');
  if (path === 'cdev' && (PciDevice.get(t.env.device!.bdf, { kernel: t.kernel }).cdevPath() === null || !t.kernel.exists('/dev/iommu'))) {
    t.skip('no device cdev with /dev/iommu for the device under test');
  }
}

function open(t: CaseContext, bdf: string, path: Path, vfToken: string | undefined): VfioDevice {
  return openDevice(bdf, { kernel: t.kernel, prefer: path, ...(vfToken === undefined ? {} : { vfToken }) });
}

function run(t: CaseContext, path: Path, variant: Variant, test: Test): void {
  requirePath(t, path);
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
    if (!(e instanceof VfioError) || e.code !== 'EACCES')
      t.fail(`opening VF ${vf} with ${token ?? 'no token'} (PF token ${pfToken}): expected EACCES, got ${(e as Error).message}`);
    t.note(`VF refused with EACCES as expected (token ${token ?? 'none'}, PF's ${pfToken})`);
    return;
  }
  vfDevice.close();
  if (!shouldOpen) t.fail(`VF ${vf} opened with ${token ?? 'no token'} although the PF's token is ${pfToken}`);
  t.note(`VF opened with the PF's token ${pfToken}`);
}

/** The PF under test and its SR-IOV sysfs, or a skip. */
function sriovPf(t: CaseContext): { pf: string; sriov: PciSriov } {
  const pf = t.env.device!.bdf;
  const sriov = PciDevice.get(pf, { kernel: t.kernel }).sriov;
  if (!sriov || sriov.totalVfs <= 0) t.skip(`${pf} has no SR-IOV capability (sriov_totalvfs): the lab's sriov machine has one`);
  if (sriov.numVfs !== 0) t.skip(`SR-IOV is already configured for ${pf} (sriov_numvfs ${sriov.numVfs})`);
  return { pf, sriov };
}

/** Sets vfio-pci's enable_sriov for the case, restoring what it was at teardown. */
function setEnableSriov(t: CaseContext, on: boolean): void {
  const before = PciSriov.vfioPciAllowed({ kernel: t.kernel });
  if (before === on) return;
  t.ok(`vfio-pci enable_sriov=${on ? 'Y' : 'N'}`, () => PciSriov.allowVfioPci(on, { kernel: t.kernel }));
  t.defer(`vfio-pci enable_sriov back to ${before ? 'Y' : 'N'}`, () => PciSriov.allowVfioPci(before, { kernel: t.kernel }));
}

/** A raw write to sriov_numvfs (the typed API checks its arguments before the kernel could). */
function writeNumVfs(t: CaseContext, pf: string, text: string): void {
  t.kernel.writeFile(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, text);
}

/** Reads a sysfs attribute of a function, trimmed. */
function attribute(t: CaseContext, bdf: string, name: string): string {
  return t.kernel.readFile(`/sys/bus/pci/devices/${bdf}/${name}`).toString('utf8').trim();
}

/** "0000:00:04.0" → its routing ID (bus << 8 | devfn). */
function routingId(bdf: string): number {
  const [, bus, dev, fn] = /^[0-9a-f]{4}:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(bdf)!;
  return (parseInt(bus!, 16) << 8) | (parseInt(dev!, 16) << 3) | parseInt(fn!, 16);
}

const sysfsCases: readonly ConformanceCase[] = [
  defineCase({
    id: 'sriov.sysfs.numvfs-store',
    title:
      "sriov_numvfs: EINVAL for text, ERANGE above TotalVFs, ENOENT while vfio-pci's enable_sriov is off, EBUSY for another count while VFs exist, the same count accepted (iov.c sriov_numvfs_store)",
    needs: ['device'],
    run: (t) => {
      const { pf, sriov } = sriovPf(t);
      const total = sriov.totalVfs;
      t.defer(`disable the VFs of ${pf}`, () => {
        if (sriov.numVfs) sriov.disable();
      });
      t.expectErrno('sriov_numvfs "abc"', () => writeNumVfs(t, pf, 'abc'), 'EINVAL');
      t.expectErrno('sriov_numvfs 65536 (not a u16)', () => writeNumVfs(t, pf, '65536'), 'EINVAL');
      t.expectErrno(`sriov_numvfs ${total + 1} (TotalVFs + 1)`, () => writeNumVfs(t, pf, String(total + 1)), 'ERANGE');
      setEnableSriov(t, false);
      t.expectErrno('sriov_numvfs 1 with enable_sriov=N', () => writeNumVfs(t, pf, '1'), 'ENOENT');
      t.expect('sriov_numvfs 0 with none enabled (nothing to do)', () => writeNumVfs(t, pf, '0'), 'ok');
      setEnableSriov(t, true);
      t.expect('sriov_numvfs 1', () => writeNumVfs(t, pf, '1'), 'ok');
      t.check(sriov.numVfs === 1, `sriov_numvfs reads ${sriov.numVfs} after writing 1`);
      t.expect('sriov_numvfs 1 again (the same count)', () => writeNumVfs(t, pf, '1\n'), 'ok');
      if (total >= 2) t.expectErrno('sriov_numvfs 2 while 1 is enabled', () => writeNumVfs(t, pf, '2'), 'EBUSY');
      t.expect('sriov_numvfs 0', () => writeNumVfs(t, pf, '0'), 'ok');
      t.check(sriov.numVfs === 0 && sriov.virtualFunctions().length === 0, 'VFs left after sriov_numvfs 0');
    },
  }),
  defineCase({
    id: 'sriov.sysfs.vf-placement',
    title:
      "Each VF sits at the PF's routing ID + First VF Offset + n × VF Stride, with the PF's vendor, sriov_vf_device as its device, physfn and virtfnN links, bound to vfio-pci (iov.c pci_iov_add_virtfn; vfio-pci's bus notifier)",
    needs: ['device'],
    run: (t) => {
      const { pf, sriov } = sriovPf(t);
      setEnableSriov(t, true);
      const count = Math.min(sriov.totalVfs, 2);
      const vfs = t.ok(`enable ${count} VFs`, () => sriov.enable(count));
      t.defer(`disable the VFs of ${pf}`, () => sriov.disable());
      t.check(vfs.length === count, `${vfs.length} virtfn links after enabling ${count} VFs`);
      const vfDevice = attribute(t, pf, 'sriov_vf_device');
      vfs.forEach((vf, n) => {
        const want = routingId(pf) + sriov.offset + n * sriov.stride;
        t.check(routingId(vf) === want, `VF ${n} is ${vf}, expected routing ID 0x${want.toString(16)}`);
        const v = PciDevice.get(vf, { kernel: t.kernel });
        t.check(v.physicalFunction === pf, `VF ${vf}'s physfn is ${v.physicalFunction ?? 'missing'}, not ${pf}`);
        t.check(
          attribute(t, vf, 'vendor') === attribute(t, pf, 'vendor'),
          `VF ${vf} vendor ${attribute(t, vf, 'vendor')} differs from the PF's`,
        );
        // sriov_vf_device is "%x", the VF's device attribute "0x%04x".
        t.check(
          attribute(t, vf, 'device') === `0x${vfDevice.padStart(4, '0')}`,
          `VF ${vf} device ${attribute(t, vf, 'device')}, sriov_vf_device ${vfDevice}`,
        );
        t.check(v.driver === 'vfio-pci', `VF ${vf} is bound to ${v.driver ?? 'nothing'}, not vfio-pci`);
        t.check(v.sriov === null, `VF ${vf} has SR-IOV attributes of its own`);
        t.note(
          `VF ${n}: ${vf} ${attribute(t, vf, 'vendor')}:${attribute(t, vf, 'device')} group ${v.iommuGroup ?? 'none'} ${v.hasIommu ? 'IOMMU' : 'noiommu'}`,
        );
      });
    },
  }),
];

const tokenRuleCases: readonly ConformanceCase[] = (['cdev', 'group'] as const).flatMap((path) => [
  defineCase({
    id: `sriov.${path}.pf-while-vf-open`,
    title: `Through the ${path}: while a VF is open the PF opens only with the token (none or another: EACCES); the VF has no token feature (ENOTTY)`,
    needs: ['device'],
    run: (t) => {
      requirePath(t, path);
      const { pf, vf } = pfWithOneVf(t);
      const first = t.ok(`open the PF with ${UUID_1}`, () => open(t, pf, path, UUID_1));
      first.close();
      const vfDevice = t.ok(`open the VF with ${UUID_1}`, () => open(t, vf, path, UUID_1));
      t.defer(`close the VF ${vf}`, () => vfDevice.close());
      t.expectErrno('VFIO_DEVICE_FEATURE(SET, PCI_VF_TOKEN) on the VF', () => vfDevice.setVfToken(UUID_2), 'ENOTTY');
      t.expectErrno('open the PF without a token while the VF is open', () => open(t, pf, path, undefined).close(), 'EACCES');
      t.expectErrno(`open the PF with ${UUID_2} while the VF is open`, () => open(t, pf, path, UUID_2).close(), 'EACCES');
      t.expect(`open the PF with ${UUID_1} while the VF is open`, () => open(t, pf, path, UUID_1).close(), 'ok');
    },
  }),
  defineCase({
    id: `sriov.${path}.token-on-plain-function`,
    title: `Through the ${path}: a function that is neither PF nor VF refuses a VF token (EINVAL) and has no token feature (ENOTTY)`,
    needs: ['device'],
    run: (t) => {
      requirePath(t, path);
      const bdf = t.env.device!.bdf;
      const pci = PciDevice.get(bdf, { kernel: t.kernel });
      if (pci.sriov !== null || pci.physicalFunction !== null) t.skip(`${bdf} is an SR-IOV function: the rule is for the others`);
      t.expectErrno(`open ${bdf} with a VF token`, () => open(t, bdf, path, UUID_1).close(), 'EINVAL');
      const device = t.ok(`open ${bdf} without one`, () => open(t, bdf, path, undefined));
      t.defer(`close ${bdf}`, () => device.close());
      t.expectErrno('VFIO_DEVICE_FEATURE(SET, PCI_VF_TOKEN)', () => device.setVfToken(UUID_1), 'ENOTTY');
    },
  }),
]);

const uapiTestCases: readonly ConformanceCase[] = (['cdev', 'group'] as const).flatMap((path) =>
  (['same-uuid', 'diff-uuid', 'null-uuid'] as const).flatMap((variant) =>
    (['init-token-match', 'pf-early-close', 'override-token'] as const).map((test) =>
      defineCase({
        id: `sriov.${path}.${variant}.${test}`,
        title: `VF token ${test.replace(/-/g, ' ')} through the ${path} with ${variant.replace('-', ' ')} (vfio_pci_sriov_uapi_test ${test.replace(/-/g, '_')})`,
        needs: ['device'],
        run: (t) => run(t, path, variant, test),
      }),
    ),
  ),
);

export const sriovCases: readonly ConformanceCase[] = [...sysfsCases, ...tokenRuleCases, ...uapiTestCases];
