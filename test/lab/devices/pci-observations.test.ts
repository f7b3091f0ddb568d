/**
 * On the nvme and multi lab machines: the device-agnostic observation list (MSI-X, region
 * capabilities, config space, resets) of every bound function, run on the real kernel, must still
 * give the lines kept in test/model/devices/fixtures — the lines the model's parity tests hold the
 * model to. A difference here means the fixture no longer describes the real kernel: re-record it
 * (record-pci-observations.ts), never edit it by hand.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { nativeKernel } from '../../../lib/sys/native-kernel';
import { observePciFunction } from '../../model/devices/pci-observations';
import { requireLab, type LabEnvironment } from '../lab-environment';

const FIXTURES = path.resolve(__dirname, '../../../../test/model/devices/fixtures');

describe('lab: PCI functions as the real kernel shows them', function () {
  this.timeout(120_000);
  let lab: LabEnvironment;
  before(function () {
    lab = requireLab(this);
  });

  it("every bound function gives the fixture's observation lines", function () {
    const fixture = path.join(FIXTURES, `${lab.machine}-lab-7.3-${lab.mode}.txt`);
    if (!fs.existsSync(fixture)) {
      console.log(`      skipped: no recorded observations for machine ${lab.machine} in ${lab.mode} mode (${fixture})`);
      this.skip();
    }
    const expected = fs
      .readFileSync(fixture, 'utf8')
      .split('\n')
      .filter((l) => l.includes(' = '));
    const kernel = nativeKernel();
    const seen: string[] = [];
    for (const bdf of lab.bdfs) {
      const cdev = kernel.readdir(`/sys/bus/pci/devices/${bdf}/vfio-dev`)[0];
      assert.ok(cdev, `${bdf} has a VFIO cdev`);
      for (const line of observePciFunction(kernel, { bdf, cdev })) seen.push(`${bdf} ${line}`);
    }
    assert.deepEqual(seen, expected);
  });
});
