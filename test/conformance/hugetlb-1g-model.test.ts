/**
 * The kernel selftests' dma_map_unmap of a whole 1 GiB huge page, on model machines that have
 * one: the presets, like most lab machines, have no 1 GiB page (those cases skip there with the
 * reason), so these machines add one at boot, as the lab's edu machine does (hugepagesz=1G hugepages=1).
 */
import assert from 'node:assert/strict';
import { createModelKernel, profiles, type Profile } from '../../lib/model';
import { allCases } from '../../lib/selftest/cases';
import { discoverEnvironment } from '../../lib/selftest/environment';
import { runCase } from '../../lib/selftest/runner';
import { settle } from './mocha-adapter';

const GiB = 1n << 30n;
const ONE_GIB_CASES = allCases.filter((c) => c.id.includes('hugetlb-1gb'));

function withOneGigPage(base: Profile): Profile {
  return {
    ...base,
    name: `${base.name} + 1 GiB huge page`,
    memory: { ...base.memory, size: 4n * GiB, hugepages: { ...base.memory.hugepages, '1G': 1 } },
  };
}

describe('conformance on the model: a whole 1 GiB huge page mapped for DMA', function () {
  it('the suite has the 1 GiB cases, one per IOMMU mode', () => {
    assert.ok(ONE_GIB_CASES.length >= 5, `found ${ONE_GIB_CASES.map((c) => c.id).join(', ')}`);
  });
  for (const base of ['linux-7.3-noiommu', 'linux-7.3-iommu'] as const) {
    describe(withOneGigPage(profiles[base]).name, () => {
      for (const c of ONE_GIB_CASES) {
        it(`${c.id}: ${c.title}`, async function () {
          const outcome = await runCase(discoverEnvironment(createModelKernel(withOneGigPage(profiles[base]))), c);
          settle(this, outcome);
        });
      }
    });
  }
});
