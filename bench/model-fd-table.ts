/**
 * The model's fd allocation (lib/model/fd-table.ts, alloc_fd's lowest free fd) must cost O(log n)
 * per call, not a scan: opening and closing 40k fds (half of them closed and reopened, so the
 * lowest free fd is always below the high-water mark) against the same loop at 10k, in one run.
 * Linear total time is a ratio of 4; a lowest-free scan (quadratic) is 16. Each figure is the best
 * of three rounds, so a busy spell on the shared machine does not count. Prints, does not assert.
 *
 *   npm run build && node dist/bench/model-fd-table.js
 */
import { createModelKernel } from '../lib/model';

function round(n: number): number {
  const k = createModelKernel('linux-7.3-noiommu');
  k.openFilesLimit = 1 << 20;
  const start = process.hrtime.bigint();
  const fds: number[] = [];
  for (let i = 0; i < n; i++) fds.push(k.eventfd(0, 0));
  for (let i = 0; i < n; i += 2) k.close(fds[i]!);
  for (let i = 0; i < n; i += 2) fds[i] = k.eventfd(0, 0);
  for (const fd of fds) k.close(fd);
  return Number(process.hrtime.bigint() - start);
}

round(10_000); // warm up the JIT
const small = Math.min(round(10_000), round(10_000), round(10_000));
const large = Math.min(round(40_000), round(40_000), round(40_000));
console.log(`fd table: 10k fds ${(small / 1e6).toFixed(1)} ms, 40k fds ${(large / 1e6).toFixed(1)} ms`);
console.log(`ratio 40k/10k: ${(large / small).toFixed(2)} (linear 4, quadratic 16)`);
