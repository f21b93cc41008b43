import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import type { S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import type { SliceManifest, TakeoutManifest } from '../../src/manifests/takeout.js';

/**
 * End-to-end helpers: run the built CLI (`node bin/takeout.js`, so `npm run build` first) as a real
 * process, and read back what it wrote, from a local folder or through the AWS SDK from S3.
 */

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = path.join(REPO_ROOT, 'bin', 'takeout.js');
export const DEMO_PROJECT = path.join(REPO_ROOT, 'fixtures', 'demo-project');
export const BAD_FIXTURES = path.join(REPO_ROOT, 'fixtures', 'bad');

export interface CliResult {
  /** Exit code; 128 + signal number when killed by a signal. */
  code: number;
  stdout: string;
  /** stdout as bytes, kept only with `bytes: true` (merged output may be gzip); `stdout` is then empty. */
  stdoutBytes?: Buffer;
  stderr: string;
  durationMs: number;
}

export interface CliOptions {
  /** Added to a clean environment (no TAKEOUT_*, AWS_* or KBC_* from the outside; CI=true). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to stdin, then stdin is closed (by default stdin is closed at once). */
  input?: string;
  /** Kill the process (SIGKILL) and fail after this long. Default: WATCHDOG_MS. */
  timeoutMs?: number;
  /** Node options before the script, e.g. `--import` of a test-only module hook. */
  nodeArgs?: readonly string[];
  /** Keep stdout as bytes (`stdoutBytes`) instead of text. */
  bytes?: boolean;
  /**
   * Close our end of the child's stdout once this many bytes have come, as `takeout … | head -c N` does; no
   * stdin then (`/dev/null`), and what came before is not kept.
   */
  closeStdoutAfter?: number;
}

/** No CLI run in a test may take longer than this: the child is SIGKILLed and the test fails. */
export const WATCHDOG_MS = 60_000;

/**
 * Every wait in the helpers is bounded: WATCHDOG_MS unless the caller names a bound itself. A longer one is for
 * the few big-data acceptance runs that ask for it explicitly (test/postgres.acceptance.test.ts: 120 s).
 */
export function watchdogMs(timeoutMs: number | undefined): number {
  return timeoutMs !== undefined && Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : WATCHDOG_MS;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 };

/** An XDG_CONFIG_HOME with nothing in it: no user config file is found under it. */
export const NO_USER_CONFIG = path.join(REPO_ROOT, 'test', 'helpers', 'no-user-config');

/** The test process's environment minus anything that would change takeout's behaviour, plus CI=true. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(TAKEOUT_|AWS_|KBC_)/.test(name) || name === 'CI' || name === 'FORCE_COLOR' || name === 'NO_COLOR') continue;
    env[name] = value;
  }
  env.CI = 'true';
  // The user config (~/.config/takeout/config.yaml) of whoever runs the tests must not change what they see:
  // XDG_CONFIG_HOME points at a folder that does not exist (a test that wants a user config passes its own).
  env.XDG_CONFIG_HOME = NO_USER_CONFIG;
  // Never reach out to an EC2 metadata endpoint looking for credentials.
  env.AWS_EC2_METADATA_DISABLED = 'true';
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** A running CLI process, for tests that interact with it (signals, reading output as it comes). */
export interface RunningCli {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when `predicate` holds for the stdout so far (rejects if the process ends first). */
  waitForStdout(predicate: (stdout: string) => boolean, timeoutMs?: number): Promise<void>;
  done: Promise<CliResult>;
}

export function startCli(args: readonly string[], options: CliOptions = {}): RunningCli {
  const started = Date.now();
  const closeAfter = options.closeStdoutAfter;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: cleanEnv(options.env),
    stdio: [closeAfter === undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  const chunks: Buffer[] = [];
  let received = 0;
  if (!options.bytes && closeAfter === undefined) child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (data: string | Buffer) => {
    if (closeAfter !== undefined) {
      received += data.length;
      if (received >= closeAfter) child.stdout!.destroy();
      return;
    }
    if (typeof data === 'string') stdout += data;
    else chunks.push(data);
    for (const watch of [...watchers]) watch();
  });
  child.stderr!.on('data', (text: string) => {
    stderr += text;
  });
  if (child.stdin) {
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  }

  const timeoutMs = watchdogMs(options.timeoutMs);
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`takeout ${args.join(' ')} did not finish within ${timeoutMs} ms\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      for (const watch of [...watchers]) watch();
      resolve({
        code: code ?? 128 + (SIGNAL_NUMBERS[signal ?? ''] ?? 0),
        stdout,
        ...(options.bytes ? { stdoutBytes: Buffer.concat(chunks) } : {}),
        stderr,
        durationMs: Date.now() - started,
      });
    });
  });
  let exited = false;
  void done.then(
    () => (exited = true),
    () => (exited = true),
  );

  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitForStdout(predicate, waitMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`stdout did not reach the expected state within ${waitMs} ms\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr}`));
        }, waitMs);
        const check = (): void => {
          if (predicate(stdout)) {
            clearTimeout(timer);
            watchers.delete(check);
            resolve();
          } else if (exited || child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            watchers.delete(check);
            reject(new Error(`takeout exited before stdout reached the expected state\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr}`));
          }
        };
        watchers.add(check);
        check();
      });
    },
    done,
  };
}

/** Run `takeout <args>` to completion. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** How each shell is started on a script, and how it defines a function running the built CLI. */
const posixFunction = (name: string): string => `${name}() { ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"; }`;
const SHELLS = {
  bash: { flags: ['-c'], define: posixFunction },
  // -f: no user startup files.
  zsh: { flags: ['-f', '-c'], define: posixFunction },
  fish: { flags: ['--no-config', '-c'], define: (name: string) => `function ${name}; ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} $argv; end` },
} as const;

export interface ShellOptions {
  /** Default bash. */
  shell?: keyof typeof SHELLS;
  /** The name of the function that runs the built CLI; default `takeout`. */
  takeoutAs?: string;
  /** The script's positional parameters ($1…). */
  args?: readonly string[];
  cwd?: string;
  /** Added to the clean environment, as for runCli. */
  env?: Record<string, string | undefined>;
  /** Kill the shell (SIGKILL) and fail after this long. Default: WATCHDOG_MS. */
  timeoutMs?: number;
}

/**
 * Run a shell `script` in which a function (`takeout` unless `takeoutAs` says) runs the built CLI, for what a
 * shell does around it (globs, pipes, the umask, completion scripts). Its stdout; throws when the shell exits
 * non-zero or outlives its timeout.
 */
export function runShell(script: string, options: ShellOptions = {}): string {
  const shell = options.shell ?? 'bash';
  const { flags, define } = SHELLS[shell];
  const positional = options.args ? [shell, ...options.args] : [];
  return execFileSync(shell, [...flags, `${define(options.takeoutAs ?? 'takeout')}\n${script}`, ...positional], {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: cleanEnv(options.env),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: watchdogMs(options.timeoutMs),
    killSignal: 'SIGKILL',
  });
}

/** Every stdout line parsed as JSON (throws, naming the line, when one is not a JSON object). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const value: unknown = JSON.parse(line);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`not a JSON object: ${line}`);
      return value as Record<string, unknown>;
    });
}

/** Lines of stderr that report an error. */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /^takeout: error:/.test(line));
}

// ---------------------------------------------------------------------------------------------
// Temp folders and ports

export { removeTempFolders, tempFolder } from './temp.js';

/** A port on 127.0.0.1 with nothing listening on it. */
export { freePort as closedPort } from './ports.js';

// ---------------------------------------------------------------------------------------------
// Reading a takeout back

/** Where a takeout lives: a local folder or an S3 prefix, read without any of src/. */
export interface Store {
  /** Every key (relative to the takeout root), sorted; local listing includes hidden files. */
  list(): Promise<string[]>;
  get(key: string): Promise<Buffer>;
  /** The URL prefix slice manifests use for keys (`s3://bucket/prefix/`), or '' for local takeouts. */
  readonly urlPrefix: string;
}

export async function walkFiles(root: string, prefix = ''): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const out: string[] = [];
  for (const entry of entries) {
    const name = `${prefix}${entry.name}`;
    if (entry.isDirectory()) out.push(...(await walkFiles(path.join(root, entry.name), `${name}/`)));
    else out.push(name);
  }
  return out.sort();
}

export function localStore(root: string): Store {
  return {
    urlPrefix: '',
    list: () => walkFiles(root),
    get: (key) => readFile(path.join(root, ...key.split('/'))),
  };
}

export function s3Store(client: S3Client, bucket: string, prefix: string): Store {
  const base = prefix === '' ? '' : prefix.replace(/\/*$/, '/');
  return {
    urlPrefix: `s3://${bucket}/${base}`,
    async list() {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, ...(token ? { ContinuationToken: token } : {}) }));
        for (const entry of page.Contents ?? []) if (entry.Key) keys.push(entry.Key.slice(base.length));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async get(key) {
      const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${base}${key}` }));
      return Buffer.from(await result.Body!.transformToByteArray());
    },
  };
}

export interface KeboolaTable {
  id: string;
  name: string;
  columns: string[];
  primaryKey: string[];
  rowsCount: number;
  bucket: { id: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Takeout {
  store: Store;
  manifest: TakeoutManifest;
  buckets: Record<string, unknown>[];
  tables: KeboolaTable[];
  configurations: Record<string, unknown>[];
  /** Every key present. */
  keys: string[];
  json<T = unknown>(key: string): Promise<T>;
  sliceManifest(tableId: string): Promise<SliceManifest>;
  /** The table's parts (as listed in takeout-manifest.json), each gunzipped, concatenated in order. */
  tableData(tableId: string): Promise<Buffer>;
}

/** Read a takeout's manifest and JSON files; a string is a local folder. */
export async function readTakeout(where: string | Store): Promise<Takeout> {
  const store = typeof where === 'string' ? localStore(where) : where;
  const json = async <T>(key: string): Promise<T> => JSON.parse((await store.get(key)).toString('utf8')) as T;
  const manifest = await json<TakeoutManifest>('takeout-manifest.json');
  const takeout: Takeout = {
    store,
    manifest,
    buckets: await json('buckets.json'),
    tables: await json('tables.json'),
    configurations: await json('configurations.json'),
    keys: await store.list(),
    json,
    sliceManifest: (tableId) => json(`manifests/${tableId}.manifest`),
    async tableData(tableId) {
      const table = manifest.tables.find((t) => t.id === tableId);
      if (!table) throw new Error(`table ${tableId} is not in the manifest`);
      const parts: Buffer[] = [];
      for (const slice of table.slices) parts.push(gunzipSync(await store.get(slice.key)));
      return Buffer.concat(parts);
    },
  };
  return takeout;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// CSV

/**
 * How both sides are parsed: a BOM is dropped, and rows may end in CRLF or LF (the demo's contacts.csv
 * has CRLF rows, passed through as they are, after a header takeout writes with LF).
 */
export const CSV_OPTIONS = { bom: true, record_delimiter: ['\r\n', '\n'] };

export function parseCsv(data: Buffer | string): string[][] {
  return parse(data, CSV_OPTIONS) as string[][];
}

/** A header line as Keboola's TableExporter writes it: every name quoted, LF. */
export function headerLine(columns: readonly string[]): string {
  return `${columns.map((c) => `"${c.replace(/"/g, '""')}"`).join(',')}\n`;
}

/** A source table's records (header first), from a `.csv` or `.csv.gz` file. */
export async function sourceRecords(file: string): Promise<string[][]> {
  let data = await readFile(file);
  // By its magic bytes, not its name: a source may be named `t.csv.GZ`.
  if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
  return parseCsv(data);
}

/**
 * True when every field of every record is quoted (`"…"`, with `""` escapes), records end in LF or
 * CRLF; the first offending position otherwise, for the failure message.
 */
export function everyValueQuoted(data: Buffer): true | string {
  const text = data.toString('utf8');
  let i = 0;
  const n = text.length;
  while (i < n) {
    // At the start of a field.
    if (text[i] !== '"') return `unquoted field at ${i}: ${JSON.stringify(text.slice(i, i + 40))}`;
    i++;
    for (;;) {
      const q = text.indexOf('"', i);
      if (q === -1) return `unterminated quote from ${i}`;
      if (text[q + 1] === '"') {
        i = q + 2;
        continue;
      }
      i = q + 1;
      break;
    }
    if (i === n) break;
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] === '\n') i++;
    else if (text[i] === '\r' && text[i + 1] === '\n') i += 2;
    else return `text after a closing quote at ${i}: ${JSON.stringify(text.slice(i, i + 40))}`;
  }
  return true;
}

/** Where each demo table's source file is, and what it holds. */
export const DEMO_TABLES: Record<string, string> = {
  'in.c-main.customers': 'in.c-main/customers.csv',
  'in.c-main.orders': 'in.c-main/orders.csv',
  'in.c-crm.contacts': 'crm/contacts.csv',
  'in.c-crm.products': 'crm/products.csv',
  'in.c-crm.empty_table': 'crm/empty_table.csv',
  'out.c-reports.daily_revenue': 'out.c-reports/daily_revenue.csv.gz',
  'sys.c-keboola.component_runs': 'sys.c-keboola/component_runs.csv',
};

/** Files and their sha256 + mtime, to prove a failed run changed nothing. */
export async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await walkFiles(root)) {
    const file = path.join(root, ...key.split('/'));
    const info = await stat(file);
    out[key] = `${sha256(await readFile(file))} ${info.mtimeMs}`;
  }
  return out;
}

/** The export id of a `dataset export --json` run, from its dataset:done event. */
export function exportIdOf(stdout: string): string {
  const done = jsonLines(stdout).find((e) => e.type === 'dataset:done');
  expect(done, stdout).toBeDefined();
  return (done!.job as { exportId: string }).exportId;
}
