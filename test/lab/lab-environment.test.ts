/**
 * The lab glue's own rules, checked anywhere (host and guest): how the guest's variables are read,
 * and how a capability set is read from /proc/<pid>/status.
 */
import assert from 'node:assert/strict';
import { labEnvironment } from './lab-environment';
import { CAP_SYS_RAWIO, effectiveCapabilities, hasCapability } from './unprivileged';

describe('lab glue', () => {
  const guest = {
    NODE_VFIO_LAB_MODE: 'noiommu',
    NODE_VFIO_LAB_KERNEL: 'nullgroup',
    NODE_VFIO_BDF: '0000:00:03.0',
    NODE_VFIO_LAB_RESULTS: '/work/x/.lab-results/r1',
    NODE_VFIO_LAB_COMMAND_START: '3.25',
  };

  it('reads the environment the guest sets', () => {
    assert.deepEqual(labEnvironment(guest), {
      mode: 'noiommu',
      kernel: 'nullgroup',
      machine: 'edu',
      bdf: '0000:00:03.0',
      bdfs: ['0000:00:03.0'],
      sysfsDevice: '/sys/bus/pci/devices/0000:00:03.0',
      resultsDir: '/work/x/.lab-results/r1',
      commandStartUptime: 3.25,
    });
  });

  it('reads the machine and every bound device of a machine with several', () => {
    const lab = labEnvironment({
      ...guest,
      NODE_VFIO_LAB_MACHINE: 'multi',
      NODE_VFIO_BDFS: '0000:00:05.0 0000:00:05.1 0000:01:00.0',
      NODE_VFIO_BDF: '0000:00:05.0',
    });
    assert.ok(!('notInLab' in lab));
    assert.equal(lab.machine, 'multi');
    assert.deepEqual(lab.bdfs, ['0000:00:05.0', '0000:00:05.1', '0000:01:00.0']);
    assert.match((labEnvironment({ ...guest, NODE_VFIO_LAB_MACHINE: 'gpu' }) as { notInLab: string }).notInLab, /none of edu, nvme, multi/);
    assert.match(
      (labEnvironment({ ...guest, NODE_VFIO_BDFS: '0000:00:05.0 5.1' }) as { notInLab: string }).notInLab,
      /'5.1', not a PCI address/,
    );
  });

  it('says why a process is not in the lab', () => {
    assert.match((labEnvironment({}) as { notInLab: string }).notInLab, /NODE_VFIO_LAB_MODE is unset/);
    assert.match((labEnvironment({ ...guest, NODE_VFIO_LAB_MODE: 'vfio' }) as { notInLab: string }).notInLab, /neither noiommu nor iommu/);
    assert.match(
      (labEnvironment({ ...guest, NODE_VFIO_LAB_KERNEL: 'legacy' }) as { notInLab: string }).notInLab,
      /neither group nor nullgroup/,
    );
    assert.match((labEnvironment({ ...guest, NODE_VFIO_BDF: '00:03.0' }) as { notInLab: string }).notInLab, /not a PCI address/);
  });

  it('reads the effective capability set and tests single capabilities', () => {
    const status = 'Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t000001fffffdffff\nCapEff:\t000001fffffdffff\n';
    const caps = effectiveCapabilities(status);
    assert.equal(caps, 0x1fffffdffffn);
    assert.equal(hasCapability(caps, CAP_SYS_RAWIO), false);
    assert.equal(hasCapability(caps, CAP_SYS_RAWIO - 1), true);
    assert.throws(() => effectiveCapabilities('Name:\tnode\n'), /no CapEff/);
  });
});
