/**
 * docs/kernel-selftests.md maps every case-instance of the kernel's VFIO selftests to ours. This
 * keeps it true: the table's first column is exactly the checked-in list extracted from the 7.3
 * source (no case missing, none twice, none invented), every case id it names exists in the
 * suite, and a row that claims coverage names at least one case.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { allCases } from '../../lib/selftest/cases';
import { DRIVER_CASE_NAMES } from '../../lib/selftest/cases/driver-cases';

const ROOT = path.resolve(__dirname, '../../..');
const STATUSES = new Set(['covered', 'partly', 'not yet', 'cannot run here']);

interface Row {
  readonly kernelCase: string;
  readonly ours: string[];
  readonly status: string;
  readonly note: string;
}

function tableRows(): Row[] {
  const text = fs.readFileSync(path.join(ROOT, 'docs/kernel-selftests.md'), 'utf8');
  return text
    .split('\n')
    .filter((l) => /^\| vfio_/.test(l))
    .map((line) => {
      const [kernelCase, ours, status, note] = line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim());
      return {
        kernelCase: kernelCase!,
        ours: [...(ours ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
        status: status!,
        note: note ?? '',
      };
    });
}

function kernelCases(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'test/conformance/kernel-vfio-selftest-cases.txt'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => l.split(/\s+/)[1]!);
}

describe('the kernel selftest mapping table (docs/kernel-selftests.md)', () => {
  const rows = tableRows();

  it("has one row per kernel case-instance, in the list's order", () => {
    const list = kernelCases();
    assert.equal(list.length, 141, 'the 7.3 selftests have 141 case-instances');
    assert.deepEqual(
      rows.map((r) => r.kernelCase),
      list,
    );
  });

  it('names only cases the suite has', () => {
    const ids = new Set(allCases.map((c) => c.id));
    const unknown = rows.flatMap((r) => r.ours.filter((id) => !ids.has(id)).map((id) => `${r.kernelCase}: ${id}`));
    assert.deepEqual(unknown, []);
  });

  it('gives every row a known status; covered rows name a case, the others say why', () => {
    for (const r of rows) {
      assert.ok(STATUSES.has(r.status), `${r.kernelCase}: status '${r.status}'`);
      if (r.status === 'covered') assert.ok(r.ours.length > 0, `${r.kernelCase} is covered by no case`);
      else assert.ok(r.note.length > 0, `${r.kernelCase} is ${r.status} without a reason`);
    }
  });

  it('maps each driver-test and init-perf case to our case of the same mode: driver.<mode>.<case>, parallel-init.<mode>', () => {
    const wrong: string[] = [];
    for (const r of rows) {
      const driver = /^vfio_pci_driver_test\.([a-z0-9_]+)\.([a-z_]+)$/.exec(r.kernelCase);
      const perf = /^vfio_pci_device_init_perf_test\.([a-z0-9_]+)\.init$/.exec(r.kernelCase);
      let want: string | undefined;
      if (driver) {
        const ours = DRIVER_CASE_NAMES[driver[2]!];
        assert.ok(ours, `no driver case for the kernel's ${driver[2]}`);
        want = `driver.${driver[1]!.replace(/_/g, '-')}.${ours}`;
      } else if (perf) {
        want = `parallel-init.${perf[1]!.replace(/_/g, '-')}`;
      }
      if (want && (r.status !== 'covered' || !r.ours.includes(want)))
        wrong.push(`${r.kernelCase}: ${r.status}, ${r.ours.join(' ') || 'none'} (want ${want})`);
    }
    assert.deepEqual(wrong, []);
    assert.equal(rows.filter((r) => r.kernelCase.startsWith('vfio_pci_driver_test.')).length, 35, "the driver test's 7 cases in 5 modes");
  });
});
