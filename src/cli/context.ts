import type { CommandContext } from '../commands/context.js';
import type { COMMON_OPTIONS, OptionValues } from '../commands/options.js';

/** The options every command has: how it reports (--json, --quiet, --debug…), read before the command runs. */
export type CommonValues = OptionValues<typeof COMMON_OPTIONS>;

/** What the CLI's wiring adds to a command's context: setting up the output from the options, and the exit code. */
export interface CliContext extends CommandContext {
  /** Sets up the reporter, the debug log and the network options from the resolved output options. */
  configure(options: CommonValues): Promise<void>;
  setExitCode(code: number): void;
}
