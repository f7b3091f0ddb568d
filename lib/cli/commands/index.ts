/** Every `vfio` sub-command, in the order `vfio --help` lists them. */
import type { Command } from '../command';
import { bindCommand, unbindCommand } from './bind';
import { infoCommand } from './info';
import { selftestCommand } from './selftest';
import { serveCommand } from './serve';
import { statusCommand } from './status';
import { recordCommand, replayCommand, traceCommand } from './trace';

export const COMMANDS: readonly Command[] = [
  statusCommand,
  bindCommand,
  unbindCommand,
  infoCommand,
  selftestCommand,
  serveCommand,
  traceCommand,
  recordCommand,
  replayCommand,
];
