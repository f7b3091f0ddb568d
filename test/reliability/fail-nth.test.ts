/**
 * fail-Nth on the model: each scenario below is a short driver session through the typed API;
 * the sweep (fail-nth.ts) makes every fault point it passes fail in turn and checks that nothing
 * leaks and every failed step left no trace. Runs on both lab machines (noiommu and IOMMU).
 */
import assert from 'node:assert/strict';
import type { Mapping } from '../../lib/sys/kernel';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../lib/sys/constants';
import { Iommufd } from '../../lib/iommu/iommufd';
import type { Ioas, IoasMapping } from '../../lib/iommu/ioas';
import { VfioDevice } from '../../lib/vfio/device';
import { openDevice } from '../../lib/vfio/open-device';
import { LAB_MODES, labModelKernel, type LabMode } from '../../tools/fuzz/lab-model';
import { FAULT_POINTS } from '../../lib/model/faults';
import { cdevOf } from './soak-cycle';
import { sweep, type Scenario, type ScenarioContext, type SweepResult } from './fail-nth';

const BDF = '0000:00:03.0';
const BUFFER = 64n * 1024n;

function anonymous(t: ScenarioContext, name: string): Mapping {
  return t.step(name, () => t.kernel.mmap(-1, BUFFER, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n));
}

function openIommufd(t: ScenarioContext): Iommufd {
  return t.track(t.step('open /dev/iommu', () => Iommufd.open(t.kernel)));
}

function openAndBind(t: ScenarioContext, iommufd: Iommufd): VfioDevice {
  return t.track(t.step('open and bind the device', () => VfioDevice.open(t.cdev, { iommufd, attach: false })));
}

/** Runs `body` with the iommufd and closes it afterwards (and with it what it owns), however body ends. */
function closingIommufd(iommufd: Iommufd, body: () => void): void {
  try {
    body();
  } finally {
    iommufd.close();
  }
}

interface Session {
  readonly iommufd: Iommufd;
  readonly device: VfioDevice;
}

/**
 * Opens the iommufd and the device (bound, attached to a new IOAS unless `attach` is false)
 * step by step, then runs `body` with them and closes the iommufd.
 */
function inSession(t: ScenarioContext, body: (s: Session) => void, attach = true): void {
  const iommufd = openIommufd(t);
  const device = openAndBind(t, iommufd);
  if (attach) {
    const ioas = t.step('allocate an IOAS', () => iommufd.ioas());
    t.step('attach the device', () => device.attach(ioas));
  }
  closingIommufd(iommufd, () => body({ iommufd, device }));
}

/** Maps a fresh anonymous buffer into `ioas`, runs `body` with the mapping, then unmaps and frees both. */
function withMapping(t: ScenarioContext, ioas: Ioas, body: (mapping: IoasMapping) => void): void {
  const memory = anonymous(t, 'mmap');
  const mapping = t.step('map', () => ioas.map(memory));
  body(mapping);
  t.teardown('unmap', () => mapping.close());
  t.kernel.munmap(memory);
}

const scenarios: readonly Scenario[] = [
  {
    name: 'map',
    run(t) {
      const iommufd = openIommufd(t);
      closingIommufd(iommufd, () => {
        const ioas = t.step('allocate an IOAS', () => iommufd.ioas());
        withMapping(t, ioas, () => {});
      });
    },
  },
  {
    name: 'map with a device attached (pins)',
    run(t) {
      inSession(t, ({ device }) => withMapping(t, device.ioas!, () => {}));
    },
  },
  {
    name: 'copy',
    run(t) {
      inSession(t, ({ iommufd, device }) => {
        const source = device.ioas!;
        const target = t.step('allocate a second IOAS', () => iommufd.ioas());
        withMapping(t, source, (mapping) => {
          const copy = t.step('copy', () => target.copy({ ioas: source, iova: mapping.iova, length: mapping.length }));
          t.teardown('unmap the copy', () => copy.close());
        });
      });
    },
  },
  {
    name: 'unmap',
    run(t) {
      inSession(t, ({ device }) => {
        const ioas = device.ioas!;
        const memory = anonymous(t, 'mmap');
        t.step('map the first half', () => ioas.map({ va: memory.address, length: BUFFER / 2n }));
        t.step('map the second half', () => ioas.map({ va: memory.address + BUFFER / 2n, length: BUFFER / 2n }));
        const unmapped = t.step('unmap everything', () => ioas.unmap());
        assert.equal(unmapped, BUFFER);
        t.kernel.munmap(memory);
      });
    },
  },
  {
    name: 'get-pa',
    run(t) {
      inSession(t, ({ device }) => {
        const ioas = device.ioas!;
        withMapping(t, ioas, (mapping) => {
          if (t.mode === 'noiommu') {
            const runs = t.step('physical segments', () => mapping.segments());
            assert.equal(
              runs.reduce((s, r) => s + r.length, 0n),
              BUFFER,
            );
            t.step('one GET_PA', () => ioas.getPhysicalAddress(mapping.iova, 4096n));
          }
        });
      });
    },
  },
  {
    name: 'bind',
    run(t) {
      const iommufd = openIommufd(t);
      closingIommufd(iommufd, () => {
        const device = openAndBind(t, iommufd);
        t.teardown('close the device', () => device.close());
      });
    },
  },
  {
    name: 'attach, replace, detach, HWPT',
    run(t) {
      inSession(
        t,
        ({ iommufd, device }) => {
          const first = t.step('allocate an IOAS', () => iommufd.ioas());
          const second = t.step('allocate a second IOAS', () => iommufd.ioas());
          t.step('attach', () => device.attach(first));
          t.step('replace', () => device.attach(second));
          t.step('detach', () => device.detach());
          const hwpt = t.step('allocate a HWPT', () => iommufd.hwpt(device, first));
          t.step('attach the HWPT', () => device.attach(hwpt));
          t.step('detach from the HWPT', () => device.detach());
          t.teardown('destroy the HWPT', () => hwpt.close());
        },
        false,
      );
    },
  },
  {
    name: 'irq set-up',
    run(t) {
      inSession(t, ({ device }) => {
        for (const kind of ['msi', 'intx'] as const) {
          const [vector] = t.step(`enable ${kind}`, () => device.irqs.enable(kind));
          t.step(`trigger ${kind}`, () => vector!.trigger());
          assert.equal(t.kernel.eventfdRead(vector!.eventfd), 1n);
          if (kind === 'intx') t.step('unmask intx', () => device.irqs.unmask('intx'));
          t.teardown(`disable ${kind}`, () => device.irqs.disable(kind));
        }
      });
    },
  },
  {
    name: 'DmaBuffer.allocate',
    run(t) {
      inSession(t, ({ device }) => {
        const buffer = t.track(t.step('allocate a DMA buffer', () => device.allocateDma(BUFFER)));
        const address = buffer.dmaAddress(4096);
        assert.equal(buffer.dmaAddress(4097), address + 1n);
        t.teardown('free the DMA buffer', () => buffer.close());
      });
    },
  },
  {
    name: 'openDevice',
    run(t) {
      const device = t.track(t.step('openDevice', () => openDevice(t.bdf, { kernel: t.kernel, prefer: 'cdev' })));
      try {
        const buffer = t.step('allocate a DMA buffer', () => device.allocateDma(BUFFER));
        t.teardown('free the DMA buffer', () => buffer.close());
      } finally {
        device.close();
      }
    },
  },
];

describe('fail-Nth: every fault point of the model, one at a time', function () {
  const results: { mode: LabMode; result: SweepResult }[] = [];

  after(function () {
    const runs = results.reduce((s, r) => s + r.result.runs, 0);
    const problems = results.reduce((s, r) => s + r.result.problems.length, 0);
    console.log(`      fail-Nth: ${results.length} scenario sweeps, ${runs} runs, ${problems} problems`);
    const surfaced = new Map<string, number>();
    for (const { result } of results) for (const [k, v] of result.surfaced) surfaced.set(k, (surfaced.get(k) ?? 0) + v);
    console.log(`      injected → surfaced: ${[...surfaced].map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  });

  for (const mode of LAB_MODES) {
    for (const scenario of scenarios) {
      it(`${scenario.name} (${mode}): no leak, no trace, the site's errno`, function () {
        this.timeout(120_000);
        const probe = labModelKernel(mode);
        const result = sweep(scenario, () => labModelKernel(mode), { bdf: BDF, cdev: cdevOf(probe, BDF), mode });
        results.push({ mode, result });
        assert.ok(result.runs > 1, 'the scenario passes no fault point at all');
        assert.deepEqual(
          result.problems.map((p) => `N=${p.nth} (${p.point ?? 'no fault'}): ${p.what}`),
          [],
        );
      });
    }
  }

  it('the injector fails exactly the Nth site, once, with the site errno, also at sites outside iommufd', function () {
    const k = labModelKernel('noiommu');
    k.faults.failNth(1000);
    const iommufd = Iommufd.open(k);
    iommufd.ioas();
    iommufd.close();
    const seen = new Map(k.faults.seen);
    assert.ok(k.faults.sitesSeen >= 2 && !k.faults.fired, `counting without failing (${k.faults.sitesSeen} sites)`);
    assert.deepEqual([...seen.keys()].sort(), ['iommufd.ctx-alloc', 'iommufd.object-alloc']);
    k.faults.failNth(1);
    assert.throws(
      () => Iommufd.open(k),
      (e: unknown) => e instanceof Error && (e as { code?: string }).code === FAULT_POINTS['iommufd.ctx-alloc'].errno,
    );
    assert.equal(k.faults.firedAt, 'iommufd.ctx-alloc');
    // A site outside iommufd (the address space's mmap), reached through the same kernel's injector.
    k.faults.failNth(1);
    assert.throws(
      () => k.mmap(-1, 4096n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n),
      (e: unknown) => (e as { code?: string }).code === 'ENOMEM',
    );
    assert.equal(k.faults.firedAt, 'mm.mmap');
    k.faults.failNth(0);
    assert.equal(k.openFdCount, 0);
    // Disarmed, nothing fails.
    k.munmap(k.mmap(-1, 4096n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 0n));
    Iommufd.open(k).close();
  });
});
