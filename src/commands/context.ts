import type { NetworkOptions } from '../stores/network.js';
import type { Store } from '../stores/store.js';
import type { Reporter } from '../reporting/reporter.js';

/**
 * What a command gets from the program that runs it: the reporter for its events, the interrupt signal, the
 * network options, and where data written to `-o -` goes. A command never exits and never writes to the
 * process's streams itself: it returns a typed result, and the CLI maps it (and any error) to output and an exit code.
 */
export interface CommandContext {
  readonly version: string;
  /** Data for `-o -`: the program's stdout, and whether it is a terminal (data is not printed there unasked). */
  readonly io: { stdoutIsTTY: boolean; stdout: NodeJS.WritableStream };
  readonly signal: AbortSignal;
  readonly reporter: Reporter;
  /** The request log (--debug) and bandwidth limit (--bwlimit) for sources and stores. */
  readonly network: NetworkOptions;
  /** The environment the program was started with (AWS_REGION for the ARNs of dataset exports). */
  readonly env: NodeJS.ProcessEnv;
  /** Run when the command is over, however it ends: closes what it opened. */
  onClose(task: () => Promise<void>): void;
  /** A store opened to write to: what an interruption undoes is said in its words (uploads to abort or not). */
  noteDestination(destination: Store): void;
  /** A restore runs: an interruption rolls back the table being loaded (said so, not "temp files removed"). */
  noteRestore(): void;
}
