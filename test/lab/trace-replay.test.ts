/**
 * The edu example traced on the real kernel of the lab's edu machine replays on the model of that
 * machine (see trace-replay-suite.ts). Run with
 *   npx tsc -p tsconfig.json && bash scripts/lab/run.sh <noiommu|iommu> -- node scripts/test.mjs dist/test/lab/trace-replay.test.js
 * Elsewhere (and on the other lab machines) it skips.
 */
import { traceReplaySuite } from './trace-replay-suite';

traceReplaySuite('edu');
