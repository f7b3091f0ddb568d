/**
 * Path walking as link_path_walk does it: every component after the first is looked up in a
 * directory, so `.`, `..` or a trailing slash after a file is ENOTDIR, and `..` after a symlink
 * goes to the parent of the directory it points to.
 */
import assert from 'node:assert/strict';
import { createModelKernel } from '../../lib/model';
import { O_RDONLY } from '../../lib/sys/constants';
import { expectErrno } from './harness';

const DEVICE = '/sys/bus/pci/devices/0000:00:03.0';

describe('model path walk (ENOTDIR, `.` and `..`)', () => {
  it('`..`, `.`, a trailing slash or a name after an attribute is ENOTDIR', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    assert.ok(k.exists(`${DEVICE}/vendor`));
    for (const path of [
      `${DEVICE}/vendor/..`,
      `${DEVICE}/vendor/.`,
      `${DEVICE}/vendor/`,
      `${DEVICE}/vendor/x`,
      `${DEVICE}/vendor/../vendor`,
    ]) {
      expectErrno('ENOTDIR', () => k.open(path, O_RDONLY));
      expectErrno('ENOTDIR', () => k.readFile(path));
      assert.equal(k.exists(path), false, path);
    }
    expectErrno('ENOTDIR', () => k.readdir(`${DEVICE}/vendor/..`));
    expectErrno('ENOTDIR', () => k.open('/dev/iommu/..', O_RDONLY));
  });

  it('`..` of a missing name is ENOENT; `.` and `..` of directories still resolve', () => {
    const k = createModelKernel('linux-7.3-noiommu');
    expectErrno('ENOENT', () => k.open(`${DEVICE}/nothing/../vendor`, O_RDONLY));
    assert.deepEqual(k.readFile(`${DEVICE}/./vendor`), k.readFile(`${DEVICE}/vendor`));
    assert.deepEqual(
      k.readFile(`${DEVICE}/../0000:00:03.0/vendor`),
      k.readFile(`${DEVICE}/vendor`),
      "`..` after the symlink is its target's parent",
    );
    assert.ok(k.readdir(`${DEVICE}/`).includes('vendor'));
  });
});
