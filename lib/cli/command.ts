/** What every `vfio` sub-command provides, and what it is given to run. */
import type { Kernel } from '../sys/kernel';
import type { OptionSpec, ParsedArgs } from './args';

export interface CommandContext {
  /** The kernel the command talks to: the real one, or the model with --model[=profile]. */
  readonly kernel: Kernel;
  readonly args: ParsedArgs;
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
}

export interface Command {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  readonly options: Record<string, OptionSpec>;
  /** Returns the process exit status. */
  run(ctx: CommandContext): Promise<number> | number;
}
