import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ERROR_CODES, TakeoutError, toTakeoutError } from '../errors.js';
import { colorEnabled } from '../reporting/color.js';
import { progressInterval } from '../reporting/progress.js';
import { registerSecret } from '../secrets.js';
import { terminalLine, terminalText } from '../reporting/redact.js';
import { createReporter, type ReporterKind } from '../reporting/create.js';
import { JsonReporter, PlainReporter, type Reporter } from '../reporting/reporter.js';
import { errorLine } from '../reporting/lines.js';
import type { CliContext, CommonValues } from './context.js';
import { resolutionNotes } from './options.js';
import { cleanupCommand } from './cleanup.js';
import { copyCommand } from './copy.js';
import { restoreCommand } from './restore.js';
import { filesCommand } from './files.js';
import { runCommand } from './run.js';
import { tableCommand } from './table.js';
import { datasetCommand } from './dataset.js';
import { knownEnvNames, unknownEnvWarnings } from './env.js';
import { verifyCommand } from './verify.js';
import { addExamples, commanderUsageError, expandHelpCommand, helpWidth, MIN_DESCRIPTION_WIDTH } from './help.js';
import { openDebugLog, requestLine, type DebugLog } from './debuglog.js';
import { parseBandwidth, Throttle, type NetworkOptions } from '../stores/network.js';
import { COMPLETE_COMMAND, completeOutput, completionCommand } from './completion.js';
import { noteDestination, noteRestore, ReaderGone, readerGone, SHUTDOWN_DEADLINE_ENV, undoing, undone } from './interrupt.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Environment variables that hold secrets: their values are redacted wherever they would appear. */
const SECRET_ENV = [
  'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID', 'KBC_STORAGE_TOKEN', 'PGPASSWORD',
  'AZURE_STORAGE_CONNECTION_STRING', 'AZURE_STORAGE_KEY', 'AZURE_STORAGE_SAS_TOKEN', 'AZURE_CLIENT_SECRET', 'GOOGLE_OAUTH_ACCESS_TOKEN',
  'TAKEOUT_SECRET_ACCESS_KEY', 'TAKEOUT_SESSION_TOKEN', 'TAKEOUT_TOKEN',
];

export interface MainIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

function reporterKind(o: CommonValues, io: MainIo): ReporterKind {
  if (o.json === true) return 'json';
  const ci = io.env.CI !== undefined && io.env.CI !== '' && io.env.CI !== 'false' && io.env.CI !== '0';
  // Request lines on stderr would tear the bars apart (a line wider than the terminal wraps under them):
  // --debug without --log-file prints plain lines, as --no-progress does.
  const debugOnStderr = o.debug && typeof o.logFile !== 'string';
  // TERM=dumb (Emacs shell buffers, some CI runners) cannot move the cursor: plain lines, as in a pipe.
  if (io.stderr.isTTY && !ci && o.progress !== false && !debugOnStderr && io.env.TERM !== 'dumb') return 'tty';
  return 'plain';
}

/** --json asked for on the command line or in the environment, before the options could be read in full. */
function wantsJson(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const value = env.TAKEOUT_JSON?.toLowerCase();
  return argv.includes('--json') || value === '1' || value === 'true';
}

/** What one command line sets up as it goes, and takes down at the end. */
interface Session {
  exitCode: number;
  debug: boolean;
  configured: boolean;
  /** Never colour in --json, not even an error found before the options are resolved. */
  color: boolean;
  reporter: Reporter;
  network: NetworkOptions;
  debugLog: DebugLog | undefined;
  closers: (() => Promise<void>)[];
  /** Unknown TAKEOUT_* variables, said once the reporter is set up (a warning event in --json), or at the end. */
  envWarnings: string[];
}

function flushEnvWarnings(session: Session): void {
  for (const message of session.envWarnings.splice(0)) session.reporter.emit({ type: 'warning', message });
}

/** The context every command gets: its reporter and network options exist once configure() has read the output options. */
function createContext(session: Session, io: MainIo, signal: AbortSignal): CliContext {
  return {
    version: VERSION,
    io: { stdoutIsTTY: io.stdout.isTTY === true, stdout: io.stdout },
    signal,
    env: io.env,
    get reporter() {
      return session.reporter;
    },
    get network() {
      return session.network;
    },
    async configure(o) {
      const debug = o.debug;
      session.debug = debug;
      const rate = typeof o.bwlimit === 'string' ? parseBandwidth(o.bwlimit) : undefined;
      const intervalMs = progressInterval(io.env, 0);
      session.configured = true;
      session.reporter = await createReporter({
        kind: reporterKind(o, io),
        quiet: o.quiet,
        stdout: io.stdout,
        stderr: io.stderr,
        color: session.color && !o.json,
        ...(intervalMs > 0 ? { progressIntervalMs: intervalMs } : {}),
      });
      // Which config files were read, as `aws --debug` says which config it loaded: to stderr, never in --json's stdout.
      if (debug) for (const note of resolutionNotes(o)) io.stderr.write(`takeout: debug: ${terminalLine(note)}\n`);
      flushEnvWarnings(session);
      // As rclone: --log-file says where the log goes; requests are logged only at --debug (rclone's -vv).
      if (debug || typeof o.logFile === 'string') {
        session.debugLog = openDebugLog(typeof o.logFile === 'string' ? o.logFile : undefined, (text) => io.stderr.write(`${text}\n`));
      }
      const log = session.debugLog;
      session.network = {
        ...(debug && log ? { onRequest: (record) => log.line(requestLine(record)) } : {}),
        ...(rate !== undefined ? { throttle: new Throttle(rate, signal) } : {}),
      };
    },
    onClose(task) {
      session.closers.push(task);
    },
    noteDestination,
    noteRestore,
    setExitCode(code) {
      session.exitCode = code;
    },
  };
}

/** The program: every command, each sharing the output settings, help width and the one exit point. */
function createProgram(context: CliContext, io: MainIo): Command {
  const program = new Command('takeout')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .description('Take data out of data platforms and databases into S3, S3-compatible stores, Azure Blob Storage, Google Cloud Storage or a local folder, and back into one file.');
  addExamples(program, [
    ['take out the bundled demo project into a new folder ./takeout-<time>', 'takeout run'],
    ['a folder of CSV files into S3', 'takeout run ./project s3://backups/kbc/'],
    ['check what landed', 'takeout verify s3://backups/kbc/'],
  ]);
  program.addHelpText(
    'after',
    '\nExit codes:\n' +
      '  0 ok · 1 failed · 2 usage · 3 partial (some tables failed)\n' +
      '  4 auth/permission · 5 not found · 6 integrity · 7 invalid input data\n' +
      '  8 network/timeout · 9 destination exists or in use · 130 interrupted\n' +
      '\nOptions also come from TAKEOUT_<OPTION> environment variables and --config FILE\n' +
      '(YAML); flags win. takeout help COMMAND shows the options and examples of each.\n' +
      '\nSizes and rates are binary: 1 MiB = 1024 KiB (--slice-size 256MB means 256 MiB).\n' +
      'Colour only on a terminal: NO_COLOR=1 turns it off, FORCE_COLOR=1 on; TERM=dumb:\n' +
      'no bars, no colour.',
  );
  program.addCommand(runCommand(context));
  for (const group of [filesCommand(context), tableCommand(context), datasetCommand(context)]) program.addCommand(group);
  program.addCommand(copyCommand(context));
  program.addCommand(restoreCommand(context));
  program.addCommand(verifyCommand(context, io.stderr));
  program.addCommand(cleanupCommand(context, io.stderr));
  program.addCommand(completionCommand(io.stdout));
  // Every command, at every level, shares the settings (commander copies them only to commands it creates).
  const width = (stream: MainIo['stdout']): number => helpWidth(stream as MainIo['stdout'] & { columns?: number }, io.env);
  const prepare = (command: Command): void => {
    command
      .configureOutput({
        writeOut: (s) => io.stdout.write(s),
        writeErr: (s) => io.stderr.write(terminalText(s)),
        // Usage errors are printed in the house format once caught (below), not in commander's words.
        outputError: () => undefined,
        getOutHelpWidth: () => width(io.stdout),
        getErrHelpWidth: () => width(io.stderr),
      })
      .configureHelp({ minWidthToWrap: MIN_DESCRIPTION_WIDTH })
      // Throw instead of exiting: runCli is the only process.exit. The error remembers its command, for the hint.
      .exitOverride((error) => {
        throw Object.assign(error, { command });
      });
    // A command group given without a subcommand (and a bare `takeout`) prints its help on stdout and
    // exits 0, as gh does: it is what was asked for, not an error.
    if (command.commands.length > 0) command.helpCommand('help [command...]', 'show the help of a command');
    if (command.options.length === 0) command.helpOption('-h, --help', 'show this help');
    const help = command.help.bind(command);
    command.help = (() => help()) as Command['help'];
    for (const sub of command.commands) prepare(sub);
  };
  prepare(program);
  return program;
}

/** Runs one command line; returns the exit code. Never exits the process itself. */
export async function main(argv: readonly string[], io: MainIo, signal: AbortSignal): Promise<number> {
  for (const name of SECRET_ENV) registerSecret(io.env[name]);
  const color = colorEnabled(io.env, io.stderr.isTTY === true) && !argv.includes('--json');
  const session: Session = {
    exitCode: 0,
    debug: false,
    configured: false,
    color,
    reporter: new PlainReporter(io.stderr, false, { color }),
    network: {},
    debugLog: undefined,
    closers: [],
    envWarnings: [],
  };
  // Ctrl-C or a closed pipe: a live display is taken down before anything says so (the notice, the error).
  signal.addEventListener('abort', () => session.reporter.interrupted?.(), { once: true });
  const program = createProgram(createContext(session, io, signal), io);
  // The completion scripts' entry point: read before commander, which would act on a -V or --help among the words.
  if (argv[2] === COMPLETE_COMMAND) {
    io.stdout.write(await completeOutput(program, argv.slice(3)));
    return 0;
  }
  session.envWarnings = unknownEnvWarnings(io.env, knownEnvNames(program));

  try {
    await program.parseAsync([...argv.slice(0, 2), ...expandHelpCommand(program, argv.slice(2))]);
  } catch (error) {
    flushEnvWarnings(session);
    if (error instanceof CommanderError) await commanderFailure(session, error, program, argv, io);
    else if (readerGone(signal)) return 0;
    else failure(session, error, argv, io, signal);
  } finally {
    flushEnvWarnings(session);
    for (const close of session.closers) await close().catch(() => undefined);
    await session.reporter.close();
    session.debugLog?.close();
  }
  return session.exitCode;
}

/** Help and version are successes; every other commander error is a usage error, said as takeout says them. */
async function commanderFailure(session: Session, error: CommanderError, program: Command, argv: readonly string[], io: MainIo): Promise<void> {
  if (error.code === 'commander.help' || error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
    session.exitCode = 0;
    return;
  }
  const usage = commanderUsageError(error, (error as CommanderError & { command?: Command }).command ?? program);
  // `--json` asked for errors as JSON too, even when the command line could not be parsed.
  const options = argv.slice(2, argv.includes('--') ? argv.indexOf('--') : undefined);
  if (options.includes('--json')) session.reporter = await createReporter({ kind: 'json', quiet: false, stdout: io.stdout, stderr: io.stderr });
  session.reporter.error(usage);
  session.exitCode = usage.exitCode;
}

/** A command failed: the error said once (and logged), its exit code kept. The reader of stdout gone is handled before. */
function failure(session: Session, error: unknown, argv: readonly string[], io: MainIo, signal: AbortSignal): void {
  const own = toTakeoutError(error);
  // An interruption the command explained (e.g. how to resume) keeps its words; any other failure after Ctrl-C is the interruption.
  const failure = !signal.aborted || own.code === 'INTERRUPTED' && own.hint ? own : new TakeoutError('INTERRUPTED', `interrupted: ${undone()}`);
  // An option refused before the reporter was set up (a bad --slice-size): --json still gets its error line.
  if (!session.configured && wantsJson(argv, io.env)) session.reporter = new JsonReporter(io.stdout, io.stderr);
  if (failure.details.alreadyReported !== true) session.reporter.error(failure);
  // The log file keeps the error too (rclone writes its errors there), on top of stderr.
  const debugLog = session.debugLog;
  if (debugLog?.toFile) debugLog.line(errorLine(failure));
  if (session.debug && error instanceof Error && error.stack) {
    io.stderr.write(`${terminalText(error.stack)}\n`);
    if (debugLog?.toFile) for (const line of error.stack.split('\n')) debugLog.line(line);
  }
  session.exitCode = failure.exitCode;
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
  const deadlineMs = shutdownDeadline(process.env[SHUTDOWN_DEADLINE_ENV]);
  const onSignal = (): void => {
    interrupts++;
    if (interrupts > 1) process.exit(ERROR_CODES.INTERRUPTED);
    // Abort first: the progress bars are taken down before the notice is printed where they were.
    controller.abort();
    // On a terminal the notice overwrites the `^C` it echoed; elsewhere it starts a line of its own.
    process.stderr.write(`${process.stderr.isTTY ? '\r' : '\n'}takeout: interrupting: ${undoing()} (press Ctrl-C again to quit at once)\n`);
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
    if (error.code === 'EPIPE' && !controller.signal.aborted) controller.abort(new ReaderGone());
  });
  const code = await main(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env }, controller.signal);
  if (!process.stdout.destroyed && process.stdout.writable) await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(readerGone(controller.signal) ? 0 : controller.signal.aborted && code !== 0 ? ERROR_CODES.INTERRUPTED : code);
}

function shutdownDeadline(text: string | undefined): number {
  const value = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : SHUTDOWN_DEADLINE_MS;
}
