/**
 * Runs the out-of-tree device-model example (examples/dma-copy) in the project's test run: its
 * mocha suite registers when loaded, importing node-vfio the way an installed package is imported.
 */
import '../../examples/dma-copy/copy-engine.test';
