/**
 * vfio_pci_device_init_perf_test's `init` in every IOMMU mode: every function bound to vfio-pci
 * initialised at once against one shared container (the group rows) or one shared IOAS (the cdev
 * rows), in worker threads on a real kernel and as concurrent async tasks on the model
 * (parallel-init.ts says why). Every unit must come up; of the racing VFIO_SET_IOMMU calls on a
 * legacy container exactly one succeeds and the others are EINVAL (vfio_ioctl_set_iommu: the
 * container already has an IOMMU driver), while an iommufd standing in for a container accepts
 * every one (iommufd_vfio_set_iommu only selects the compat IOAS). The wall time and the
 * per-unit init times are noted, as the kernel's test prints them.
 */
import { defineCase, type ConformanceCase } from '../case';
import type { CaseContext } from '../context';
import type { DeviceUnderTest } from '../environment';
import { IOMMU_MODES, modeId, TYPE1_TYPE, type IommuModeRow } from '../iommu-modes';
import { describeUnit, initConcurrently, initInWorkers, type InitResult, type InitUnit, type SharedIommu } from '../parallel-init';
import { ioasAlloc } from '../steps';
import * as V from '../../uapi/vfio';

/** The device under test first, then the other vfio-pci functions in bus order. */
function functions(t: CaseContext): DeviceUnderTest[] {
  const under = t.env.device!;
  return [under, ...t.env.devices.filter((d) => d.bdf !== under.bdf)];
}

/** One unit per IOMMU group (its functions in bus order) on the group path; one per cdev otherwise. */
function unitsFor(t: CaseContext, row: IommuModeRow): InitUnit[] {
  const all = functions(t);
  if (row.dma === 'ioas') return all.map((d) => ({ kind: 'cdev', cdevPath: d.cdevPath, bdf: d.bdf }));
  const groups = new Map<string, string[]>();
  for (const d of all) {
    if (!d.groupPath) t.skip(`${d.bdf} has no group node`);
    groups.set(d.groupPath, [...(groups.get(d.groupPath) ?? []), d.bdf]);
  }
  return [...groups].map(([groupPath, bdfs]) => ({ kind: 'group', groupPath, bdfs }));
}

function sharedFor(t: CaseContext, row: IommuModeRow): SharedIommu {
  if (row.dma === 'ioas') {
    const iommufd = t.openIommufd();
    return { kind: 'cdev', iommufd, ioasId: ioasAlloc(t, iommufd) };
  }
  const containerFd = row.name.startsWith('iommufd_compat') ? t.openIommufd() : t.open('/dev/vfio/vfio');
  return { kind: 'group', containerFd, iommuType: TYPE1_TYPE[row.name]! };
}

function ms(n: number): string {
  return `${n.toFixed(3)} ms`;
}

function initCase(row: IommuModeRow): ConformanceCase {
  return defineCase({
    id: `parallel-init.${modeId(row)}`,
    title:
      `${row.name}: every vfio-pci function initialised at once, sharing one ${row.dma === 'ioas' ? 'IOAS' : 'container'}; ` +
      (row.dma === 'ioas'
        ? 'each binds and attaches'
        : 'of the racing SET_IOMMU calls one wins on a legacy container, every one on an iommufd') +
      ' (vfio_pci_device_init_perf_test init)',
    needs: row.needs,
    async run(t) {
      if (t.mode !== row.environment) {
        t.skip(row.environment === 'iommu' ? `${row.name} needs a device behind an IOMMU` : `${row.name} is for a noiommu device`);
      }
      const units = unitsFor(t, row);
      const shared = sharedFor(t, row);
      const threads = t.kernel.kind === 'native';
      t.note(
        `${units.length} unit(s) ${threads ? 'in worker threads' : 'as concurrent tasks (a model kernel cannot be shared with a worker)'}`,
      );
      const results: InitResult[] = threads ? await initInWorkers(units, shared) : await initConcurrently(t.kernel, units, shared);
      for (const r of results) {
        t.note(`${r.unit}: ${r.error ?? 'up'}${r.setIommu ? `, SET_IOMMU ${r.setIommu}` : ''}, ${ms(r.endMs - r.startMs)}`);
      }
      const failed = results.find((r) => r.error);
      if (failed) t.fail(`${failed.unit} was not set up: ${failed.error}`);
      const bdfs = results.flatMap((r) => r.devices.map((d) => d.bdf));
      t.equal(bdfs.length, functions(t).length, 'functions set up');
      for (const r of results)
        for (const d of r.devices) t.check((d.flags & V.VFIO_DEVICE_FLAGS_PCI) !== 0, `${d.bdf}: GET_INFO reports a PCI device`);
      if (shared.kind === 'group') {
        const outcomes = results.map((r) => r.setIommu ?? 'none');
        const legacy = !row.name.startsWith('iommufd_compat');
        const winners = outcomes.filter((o) => o === 'ok').length;
        if (legacy) {
          t.equal(winners, 1, `SET_IOMMU calls that succeeded (${outcomes.join(', ')})`);
          for (const [i, o] of outcomes.entries()) {
            if (o !== 'ok') t.equal(o, 'EINVAL', `SET_IOMMU of ${describeUnit(units[i]!)} after another set the type`);
          }
        } else {
          t.equal(winners, outcomes.length, `SET_IOMMU calls on the iommufd that succeeded (${outcomes.join(', ')})`);
        }
      }
      const times = results.map((r) => r.endMs - r.startMs);
      const wall = Math.max(...results.map((r) => r.endMs)) - Math.min(...results.map((r) => r.startMs));
      t.note(
        `wall time ${ms(wall)}; per unit min ${ms(Math.min(...times))}, max ${ms(Math.max(...times))}, avg ${ms(times.reduce((a, b) => a + b, 0) / times.length)}`,
      );
    },
  });
}

export const parallelInitCases: ConformanceCase[] = IOMMU_MODES.map(initCase);
