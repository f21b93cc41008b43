import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ERROR_CODES, TakeoutError, toTakeoutError } from '../errors.js';
import { registerSecret, terminalText } from '../reporting/redact.js';
import { progressInterval } from '../reporting/progress.js';
import { createReporter, JsonReporter, PlainReporter, type Reporter, type ReporterKind } from '../reporting/reporter.js';
import type { CommandContext } from './context.js';
import type { Resolved } from './options.js';
import { cleanupCommand } from './cleanup.js';
import { filesCommand } from './files.js';
import { runCommand } from './run.js';
import { tableCommand } from './table.js';
import { datasetCommand } from './dataset.js';
import { knownEnvNames, unknownEnvWarnings } from './env.js';
import { verifyCommand } from './verify.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Environment variables that hold secrets: their values are redacted wherever they would appear. */
const SECRET_ENV = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID', 'KBC_STORAGE_TOKEN', 'PGPASSWORD', 'TAKEOUT_SECRET_ACCESS_KEY', 'TAKEOUT_SESSION_TOKEN', 'TAKEOUT_TOKEN'];

export interface MainIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

function reporterKind(o: Resolved, io: MainIo): ReporterKind {
  if (o.json === true) return 'json';
  const ci = io.env.CI !== undefined && io.env.CI !== '' && io.env.CI !== 'false' && io.env.CI !== '0';
  if (io.stderr.isTTY && !ci && o.progress !== false) return 'tty';
  return 'plain';
}

/** --json asked for on the command line or in the environment, before the options could be read in full. */
function wantsJson(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const value = env.TAKEOUT_JSON?.toLowerCase();
  return argv.includes('--json') || value === '1' || value === 'true';
}

/** Runs one command line; returns the exit code. Never exits the process itself. */
export async function main(argv: readonly string[], io: MainIo, signal: AbortSignal): Promise<number> {
  for (const name of SECRET_ENV) registerSecret(io.env[name]);
  let exitCode = 0;
  let debug = false;
  const closers: (() => Promise<void>)[] = [];
  let reporter: Reporter = new PlainReporter(io.stderr, false);
  let configured = false;
  // Unknown TAKEOUT_* variables, said once the reporter is set up (a warning event in --json), or at the end.
  let envWarnings: string[] = [];
  const flushEnvWarnings = (): void => {
    for (const message of envWarnings.splice(0)) reporter.emit({ type: 'warning', message });
  };

  const context: CommandContext = {
    version: VERSION,
    io: { stdoutIsTTY: io.stdout.isTTY === true, stdout: io.stdout },
    signal,
    get reporter() {
      return reporter;
    },
    async configure(o) {
      debug = o.debug === true;
      const intervalMs = progressInterval(io.env, 0);
      configured = true;
      reporter = await createReporter({ kind: reporterKind(o, io), quiet: o.quiet === true, stdout: io.stdout, stderr: io.stderr, ...(intervalMs > 0 ? { progressIntervalMs: intervalMs } : {}) });
      flushEnvWarnings();
    },
    onClose(task) {
      closers.push(task);
    },
    setExitCode(code) {
      exitCode = code;
    },
  };

  const program = new Command('takeout')
    .version(VERSION, '-V, --version')
    .description('Take data out of data platforms and databases into S3, S3-compatible stores or a local folder, and back into one file.')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(terminalText(s)),
    })
    .exitOverride()
    .addHelpText(
      'after',
      '\nExit codes: 0 ok · 1 failed · 2 usage · 3 partial (some tables failed) · 4 auth/permission · 5 not found\n' +
        '            6 integrity · 7 invalid input data · 8 network/timeout · 9 destination exists or in use · 130 interrupted\n' +
        'Options also come from TAKEOUT_<OPTION> environment variables and --config FILE (YAML); flags win.',
    );
  program.addCommand(runCommand(context).exitOverride());
  // Every level of a command group throws instead of exiting: runCli is the only process.exit.
  const exitOverrideAll = (command: Command): void => {
    command.exitOverride();
    for (const sub of command.commands) exitOverrideAll(sub);
  };
  for (const group of [filesCommand(context), tableCommand(context), datasetCommand(context)]) {
    exitOverrideAll(group);
    program.addCommand(group);
  }
  program.addCommand(verifyCommand(context, io.stderr).exitOverride());
  program.addCommand(cleanupCommand(context, io.stderr).exitOverride());
  envWarnings = unknownEnvWarnings(io.env, knownEnvNames(program));

  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    flushEnvWarnings();
    if (error instanceof CommanderError) {
      // Help and version are successes; every other commander error is a usage error it already printed.
      exitCode = error.exitCode === 0 || error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : ERROR_CODES.USAGE;
      if (error.code === 'commander.help') exitCode = 0;
    } else {
      const own = toTakeoutError(error);
      // An interruption the command explained (e.g. how to resume) keeps its words; any other failure after Ctrl-C is the interruption.
      const failure = !signal.aborted || own.code === 'INTERRUPTED' && own.hint ? own : new TakeoutError('INTERRUPTED', 'interrupted: open uploads were aborted and temp files removed');
      // An option refused before the reporter was set up (a bad --slice-size): --json still gets its error line.
      if (!configured && wantsJson(argv, io.env)) reporter = new JsonReporter(io.stdout, io.stderr);
      if (failure.details.alreadyReported !== true) reporter.error(failure);
      if (debug && error instanceof Error && error.stack) io.stderr.write(`${terminalText(error.stack)}\n`);
      exitCode = failure.exitCode;
    }
  } finally {
    flushEnvWarnings();
    for (const close of closers) await close().catch(() => undefined);
    await reporter.close();
  }
  return exitCode;
}

/**
 * How long the graceful shutdown after the first Ctrl-C/SIGTERM may take. Aborting uploads and removing temp
 * files takes a few round trips; 15 s leaves room for a slow AbortMultipartUpload yet stays well inside the
 * 30 s grace period orchestrators give before SIGKILL (Kubernetes terminationGracePeriodSeconds, docker stop's -t).
 */
export const SHUTDOWN_DEADLINE_MS = 15_000;

/** The process entry: wires signals, runs, flushes output, exits. The only place that exits the process. */
export async function runCli(argv: readonly string[] = process.argv): Promise<void> {
  const controller = new AbortController();
  let interrupts = 0;
  // TAKEOUT_SHUTDOWN_DEADLINE_MS is for tests that prove the deadline holds without waiting 15 s.
  const deadlineMs = shutdownDeadline(process.env.TAKEOUT_SHUTDOWN_DEADLINE_MS);
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(ERROR_CODES.INTERRUPTED);
    process.stderr.write('\ntakeout: interrupting: aborting uploads and removing temp files (press Ctrl-C again to quit at once)\n');
    controller.abort();
    // Cleanup that is itself stuck (a hung socket, a file system that stopped answering) must not keep
    // the process alive: after the deadline it exits anyway. unref: a shutdown that finishes is not delayed.
    setTimeout(() => {
      process.stderr.write(`takeout: shutdown did not finish within ${deadlineMs / 1000} s: quitting; temp files or open uploads may be left (takeout cleanup removes them)\n`);
      process.exit(ERROR_CODES.INTERRUPTED);
    }, deadlineMs).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The reader of stdout went away (`takeout run --json | head -1`): stop as on Ctrl-C, cleaning up.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') controller.abort();
  });
  const code = await main(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env }, controller.signal);
  if (!process.stdout.destroyed && process.stdout.writable) await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(controller.signal.aborted && code !== 0 ? ERROR_CODES.INTERRUPTED : code);
}

function shutdownDeadline(text: string | undefined): number {
  const value = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : SHUTDOWN_DEADLINE_MS;
}
