import type { NetworkOptions } from '../stores/network.js';
import type { Reporter } from '../reporting/reporter.js';
import type { Resolved } from './options.js';

/** What every command gets from the program: the reporter, the interrupt signal, the exit code. */
export interface CommandContext {
  readonly version: string;
  readonly io: { stdoutIsTTY: boolean; stdout: NodeJS.WritableStream };
  readonly signal: AbortSignal;
  /** Set up by configure() from the resolved output options. */
  readonly reporter: Reporter;
  /** Set up by configure(): the request log (--debug) and bandwidth limit (--bwlimit) for sources and destinations. */
  readonly network: NetworkOptions;
  configure(options: Resolved): Promise<void>;
  onClose(task: () => Promise<void>): void;
  setExitCode(code: number): void;
}
