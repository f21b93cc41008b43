import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { DEMO_PROJECT, errorLines, REPO_ROOT, removeTempFolders, runCli, s3Store, startCli, tempFolder, walkFiles, WATCHDOG_MS } from './helpers/cli.js';
import type { CliResult } from './helpers/cli.js';
import { bigPayloadProject } from './helpers/projects.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { faultProxyForTests } from './faults/proxy.js';
import type { FaultAction } from './faults/proxy.js';
import { writeKind } from './faults/write-kinds.mjs';
import type { WriteKind } from './faults/write-kinds.mjs';

/**
 * Every kind of write failing, in turn, at its first, middle and last occurrence, on a local folder and on S3:
 * the run must end (the watchdog SIGKILLs a child still running after 60 s and fails the case) with exactly
 * one error line naming the file, the documented exit code, no manifest or COMPLETED job record, and no temp
 * files. Local faults come from test/faults/faulty-local.mjs, loaded into the real CLI in place of the local
 * destination: it throws a real errno error mapped as a failing write(2) is. S3 faults come from the fault
 * proxy (test/faults/proxy.ts) in front of s3rver. One real-kernel case: a tiny tmpfs that fills up.
 */

const REGISTER = path.join(REPO_ROOT, 'test', 'faults', 'faulty-register.mjs');
const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
// The S3 cases run concurrently, each with rules and requests of its own prefix.
const proxy = faultProxyForTests(endpoint, { clearAfterEach: false });

type Errno = 'ENOSPC' | 'EIO' | 'EACCES';
interface LocalFault {
  kind: WriteKind;
  n: number;
  errno: Errno;
  at?: 'write' | 'finish';
  after?: { kind: WriteKind; n: number };
}

/** The exit code a failing write(2) with this errno gives (src/stores/local/fs-errors.ts mapFsError). */
const EXIT_OF: Record<Errno, number> = { ENOSPC: ERROR_CODES.FAILED, EIO: ERROR_CODES.FAILED, EACCES: ERROR_CODES.AUTH };

/** Run the CLI with the faulty local destination; `log` collects one `<kind>\t<key>` line per object written. */
function runFaulty(args: readonly string[], fault: LocalFault | undefined, log: string): Promise<CliResult> {
  return runCli(args, {
    nodeArgs: ['--import', REGISTER],
    env: { TAKEOUT_TEST_WRITE_LOG: log, ...(fault ? { TAKEOUT_TEST_FAULT: JSON.stringify(fault) } : {}) },
    timeoutMs: WATCHDOG_MS,
  });
}

async function writeLog(file: string): Promise<{ kind: string; key: string }[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind = '', key = ''] = line.split('\t');
      return { kind, key };
    });
}

function countsOf(log: readonly { kind: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { kind } of log) if (kind !== 'HIT') counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

const ERRNOS: readonly Errno[] = ['ENOSPC', 'EIO', 'EACCES'];
const OCCURRENCES = ['first', 'middle', 'last'] as const;

function nth(occurrence: (typeof OCCURRENCES)[number], total: number): number {
  return occurrence === 'first' ? 1 : occurrence === 'middle' ? Math.ceil(total / 2) : total;
}

/** What every failed case must show: one error line naming a file of the failing kind, and the exit code. */
function expectOneError(result: CliResult, kind: WriteKind | 'part', exit: readonly number[]): string {
  const lines = errorLines(result.stderr);
  expect(lines, result.stderr).toHaveLength(1);
  expect(exit, result.stderr).toContain(result.code);
  return lines[0]!;
}

const RUN_ARGS = ['run', '--source', DEMO_PROJECT, '--slice-rows', '10000'];
const DATASET_ARGS = ['dataset', 'export', 'in.c-main.orders', '--source', DEMO_PROJECT, '--layout', 'plain', '--max-file-size', '64KB'];

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

describe('a failing write on a local folder ends the run (faulty destination in the real CLI)', () => {
  const totals = { run: new Map<string, number>(), dataset: new Map<string, number>() };

  beforeAll(async () => {
    const root = await tempFolder('write-faults-count');
    const [run, dataset] = await Promise.all([
      runFaulty([...RUN_ARGS, '--dest', path.join(root, 'run')], undefined, path.join(root, 'run.log')),
      runFaulty([...DATASET_ARGS, '--dest', path.join(root, 'dataset')], undefined, path.join(root, 'dataset.log')),
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(dataset.code, dataset.stderr).toBe(0);
    totals.run = countsOf(await writeLog(path.join(root, 'run.log')));
    totals.dataset = countsOf(await writeLog(path.join(root, 'dataset.log')));
  });

  it('classifies every write of a run and of a dataset export (a new kind of write needs a row here)', () => {
    expect([...totals.run.keys()].sort()).toEqual(['journal', 'layout', 'lock', 'manifest', 'slice']);
    expect([...totals.dataset.keys()].sort()).toEqual(['dataset-file', 'dataset-layout', 'job', 'journal', 'lock']);
    for (const count of [...totals.run.values(), ...totals.dataset.values()]) expect(count).toBeGreaterThan(0);
  });

  /**
   * The journal's rewrites coalesce, so how many there are varies from run to run: its last write is
   * pinned instead as the first one after the last layout file (run) or the last data file (dataset).
   */
  const lastJournal = (command: 'run' | 'dataset', totalsOf: Map<string, number>): LocalFault['after'] =>
    command === 'run' ? { kind: 'layout', n: totalsOf.get('layout') ?? 0 } : { kind: 'dataset-file', n: totalsOf.get('dataset-file') ?? 0 };

  const ROWS: { command: 'run' | 'dataset'; kind: WriteKind }[] = [
    { command: 'run', kind: 'slice' },
    { command: 'run', kind: 'journal' },
    { command: 'run', kind: 'layout' },
    { command: 'run', kind: 'manifest' },
    { command: 'run', kind: 'lock' },
    { command: 'dataset', kind: 'job' },
    { command: 'dataset', kind: 'journal' },
    { command: 'dataset', kind: 'dataset-file' },
    { command: 'dataset', kind: 'dataset-layout' },
    { command: 'dataset', kind: 'lock' },
  ];
  const cases = ROWS.flatMap((row, r) => OCCURRENCES.map((occurrence, o) => ({ ...row, occurrence, errno: ERRNOS[(r + o) % ERRNOS.length]! })));

  it.concurrent.each(cases)('$command: the $occurrence $kind write fails with $errno', async ({ command, kind, occurrence, errno }) => {
    const root = await tempFolder(`write-faults-${command}-${kind}-${occurrence}`);
    const dest = path.join(root, 'dest');
    const log = path.join(root, 'log');
    const totalsOf = totals[command];
    const total = totalsOf.get(kind) ?? 0;
    expect(total, `no ${kind} write in a ${command}`).toBeGreaterThan(0);
    const fault: LocalFault =
      kind === 'journal' && occurrence === 'last'
        ? { kind, n: 1, errno, after: lastJournal(command, totalsOf) }
        : { kind, n: nth(occurrence, total), errno, at: occurrence === 'middle' ? 'finish' : 'write' };
    const result = await runFaulty([...(command === 'run' ? RUN_ARGS : DATASET_ARGS), '--dest', dest], fault, log);

    const hits = (await writeLog(log)).filter((w) => w.kind === 'HIT');
    expect(hits.length, `the ${kind} fault was not reached`).toBeGreaterThan(0);
    expect(writeKind(hits[0]!.key)).toBe(kind);
    const files = await walkFiles(dest);
    expect(files.filter((f) => f.endsWith('.takeout-tmp')), 'temp files left').toEqual([]);

    // A failed slice fails its table: the others finish and the manifest says partial (exit 3), unless it
    // was every table, or an access error, which stops the others too.
    const partialOk = command === 'run' && kind === 'slice';
    const line = expectOneError(result, kind, partialOk ? [EXIT_OF[errno], ERROR_CODES.PARTIAL] : [EXIT_OF[errno]]);
    // The line names the file: `cannot write <dest>/<key>`.
    const named = /cannot write (\S+?):? /.exec(line)?.[1];
    expect(named, line).toBeDefined();
    expect(writeKind(path.relative(dest, named!).split(path.sep).join('/')), line).toBe(kind);

    if (command === 'run') {
      if (result.code === ERROR_CODES.PARTIAL) {
        const manifest = JSON.parse(await readFile(path.join(dest, 'takeout-manifest.json'), 'utf8')) as { status: string; tables: { status: string }[] };
        expect(manifest.status).toBe('partial');
        expect(manifest.tables.some((t) => t.status === 'failed')).toBe(true);
      } else {
        // No commit record, and none of the layout's files that would make the folder look taken out.
        expect(files).not.toContain('takeout-manifest.json');
        expect(files.filter((f) => writeKind(f) === 'layout')).toEqual([]);
      }
    } else {
      const records = files.filter((f) => writeKind(f) === 'job' && !f.includes('/tokens/'));
      for (const record of records) {
        const job = JSON.parse(await readFile(path.join(dest, record), 'utf8')) as { status: string };
        expect(job.status).not.toBe('COMPLETED');
      }
      expect(files.filter((f) => writeKind(f) === 'dataset-layout')).toEqual([]);
    }
  });
});

describe('a real full disk (tmpfs)', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)('a run onto a 64 KiB tmpfs ends with one "disk is full" error, exit 1, no manifest and no temp files', async () => {
    const mount = await tempFolder('write-faults-tmpfs');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount]);
    } catch (error) {
      // Root without CAP_SYS_ADMIN (an unprivileged container) cannot mount: nothing to test here.
      console.warn(`skipped: cannot mount a tmpfs (${(error as Error).message.split('\n')[0]})`);
      return;
    }
    try {
      const dest = path.join(mount, 'dest');
      const result = await runCli(['run', '--source', DEMO_PROJECT, '--dest', dest], { timeoutMs: WATCHDOG_MS });
      // A table whose slice did not fit is reported on its own line; the run's end is one line with the exit code.
      const lines = errorLines(result.stderr);
      expect(lines.filter((l) => /exit \d+\]$/.test(l) && !l.startsWith('takeout: error: table ')), result.stderr).toHaveLength(result.code === ERROR_CODES.PARTIAL ? 0 : 1);
      for (const line of lines) expect(line).toMatch(/disk is full: cannot write \//);
      expect([ERROR_CODES.FAILED, ERROR_CODES.PARTIAL]).toContain(result.code);
      const files = await walkFiles(dest);
      expect(files.filter((f) => f.endsWith('.takeout-tmp'))).toEqual([]);
      if (result.code === ERROR_CODES.FAILED) expect(files).not.toContain('takeout-manifest.json');
    } finally {
      execFileSync('umount', ['-l', mount]);
    }
  });
});

describe('a destination that can never be created ends at once', () => {
  it('--dest under /proc: one NOT_FOUND error line, exit 5 (Node’s recursive mkdir looped there forever)', async () => {
    const result = await runCli(['run', '--source', 'demo', '--dest', `/proc/takeout-${randomBytes(4).toString('hex')}`], { timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(ERROR_CODES.NOT_FOUND);
    const lines = errorLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/cannot create folder \/proc\/takeout-/);
  });

  it('--dest below a dangling symlink: one NOT_FOUND error line, exit 5', async () => {
    const root = await tempFolder('write-faults-dangling');
    const { symlink } = await import('node:fs/promises');
    await symlink(path.join(root, 'gone'), path.join(root, 'link'));
    const result = await runCli(['run', '--source', 'demo', '--dest', path.join(root, 'link', 'dest')], { timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(ERROR_CODES.NOT_FOUND);
    const lines = errorLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/link: it is a symlink to a folder that does not exist/);
  });
});

describe('a read that fails while a copy waits on back-pressure', () => {
  it('a corrupt gzip slice in a takeout used as the source: one INTEGRITY line, exit 3, no temp files (it waited for a drain that never came, and Node exited 13 without a word)', async () => {
    const root = await tempFolder('write-faults-corrupt');
    const first = await runCli(['run', '--source', DEMO_PROJECT, '--dest', path.join(root, 'a'), '--quiet'], { timeoutMs: WATCHDOG_MS });
    expect(first.code, first.stderr).toBe(0);
    // Garbage early in the deflate data: gunzip fails while its input buffer is still full.
    const slice = path.join(root, 'a', 'in', 'c-main', 'orders.part_0.csv.gz');
    const bytes = await readFile(slice);
    bytes.fill(0xff, 200, 4000);
    await writeFile(slice, bytes);
    const dest = path.join(root, 'b');
    const result = await runCli(['run', '--source', path.join(root, 'a'), '--dest', dest], { timeoutMs: WATCHDOG_MS });
    expect(result.code, result.stderr).toBe(ERROR_CODES.PARTIAL);
    const lines = errorLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/in\/c-main\/orders\.part_0\.csv\.gz: corrupt gzip .*\[INTEGRITY, exit 6\]/);
    expect((await walkFiles(dest)).filter((f) => f.endsWith('.takeout-tmp'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// S3: the real CLI against s3rver through the fault proxy

type S3Op = 'PutObject' | 'UploadPart' | 'CompleteMultipartUpload';

/** The write an S3 request makes, with its key relative to `prefix`; undefined for reads, lists, deletes. */
function s3Write(req: Pick<IncomingMessage, 'method' | 'url' | 'headers'>, prefix: string): { op: S3Op; key: string; id: string } | undefined {
  const url = new URL(req.url ?? '/', 'http://proxy');
  const lead = `/${TEST_BUCKET}/${prefix}`;
  const full = decodeURIComponent(url.pathname);
  if (!full.startsWith(lead)) return undefined;
  const key = full.slice(lead.length);
  // One write is one SDK invocation: its retries share the invocation id, a rewrite of the same key does not.
  const invocation = req.headers['amz-sdk-invocation-id'];
  const id = `${key}#${typeof invocation === 'string' ? invocation : url.search}`;
  if (req.method === 'PUT' && url.searchParams.has('partNumber')) return { op: 'UploadPart', key, id };
  if (req.method === 'PUT' && !url.searchParams.has('uploadId')) return { op: 'PutObject', key, id };
  if (req.method === 'POST' && url.searchParams.has('uploadId')) return { op: 'CompleteMultipartUpload', key, id };
  return undefined;
}

/**
 * Matches every attempt (the SDK retries 500s and timeouts) of the n-th distinct write of this kind and operation,
 * so the write fails for good, as it does against a bucket that refuses it.
 */
function nthWrite(prefix: string, kind: WriteKind | 'part', op: S3Op, n: number, after?: { kind: WriteKind; n: number }): (req: IncomingMessage) => boolean {
  const seen = new Set<string>();
  const afterSeen = new Set<string>();
  let target: string | undefined;
  return (req) => {
    const write = s3Write(req, prefix);
    if (!write) return false;
    if (after && afterSeen.size < after.n) {
      if (write.op === 'PutObject' && writeKind(write.key) === after.kind) afterSeen.add(write.id);
      return false;
    }
    if (write.op !== op || (kind !== 'part' && writeKind(write.key) !== kind)) return false;
    if (target === undefined && !seen.has(write.id)) {
      seen.add(write.id);
      if (seen.size === n) target = write.id;
    }
    return write.id === target;
  };
}

function s3Args(): string[] {
  return s3CliArgs(proxy.url);
}

describe('a failing write on S3 ends the run (fault proxy in front of s3rver)', () => {
  let bigSource: string;
  const totals = new Map<string, number>();
  let parts = 0;

  beforeAll(async () => {
    // ~12 MB stored uncompressed: with --part-size 5MB one slice goes up as a multipart upload of 3 parts.
    bigSource = await bigPayloadProject('write-faults-big');

    const prefix = uniquePrefix('write-faults-count');
    const from = proxy.requests.length;
    const result = await runCli([...RUN_ARGS, '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args()], { timeoutMs: WATCHDOG_MS });
    expect(result.code, result.stderr).toBe(0);
    const ids = new Map<string, Set<string>>();
    for (const req of proxy.requests.slice(from)) {
      const write = s3Write(req, prefix);
      if (write?.op !== 'PutObject') continue;
      const kind = writeKind(write.key);
      ids.set(kind, (ids.get(kind) ?? new Set()).add(write.id));
    }
    for (const [kind, set] of ids) totals.set(kind, set.size);
    parts = 3;
  });

  it('classifies every object a run puts', () => {
    expect([...totals.keys()].sort()).toEqual(['journal', 'layout', 'lock', 'manifest', 'slice']);
  });

  const ACTIONS: { name: string; action: FaultAction; exit: number }[] = [
    { name: '403 AccessDenied', action: { kind: 'status', status: 403, code: 'AccessDenied' }, exit: ERROR_CODES.AUTH },
    { name: '500 InternalError (every retry)', action: { kind: 'status', status: 500, code: 'InternalError' }, exit: ERROR_CODES.FAILED },
  ];
  const ROWS: { kind: WriteKind | 'part'; op: S3Op }[] = [
    { kind: 'slice', op: 'PutObject' },
    { kind: 'journal', op: 'PutObject' },
    { kind: 'layout', op: 'PutObject' },
    { kind: 'manifest', op: 'PutObject' },
    { kind: 'lock', op: 'PutObject' },
    { kind: 'part', op: 'UploadPart' },
    { kind: 'part', op: 'CompleteMultipartUpload' },
  ];
  // One manifest per run, and one multipart upload (the big slice): those have a first occurrence only.
  const once = (row: (typeof ROWS)[number]): boolean => row.kind === 'manifest' || row.kind === 'lock' || row.op === 'CompleteMultipartUpload';
  const cases = ROWS.flatMap((row, r) =>
    OCCURRENCES.filter((o) => !once(row) || o === 'first').map((occurrence, o) => ({ ...row, occurrence, ...ACTIONS[(r + o) % ACTIONS.length]! })),
  );

  it.concurrent.each(cases)('the $occurrence $kind write ($op) answers $name', async ({ kind, op, occurrence, action, exit, name }) => {
    const prefix = uniquePrefix(`write-faults-${kind}-${occurrence}`);
    const big = kind === 'part';
    const total = big ? (op === 'UploadPart' ? parts : 1) : (totals.get(kind) ?? 0);
    expect(total).toBeGreaterThan(0);
    const after = kind === 'journal' && occurrence === 'last' ? { kind: 'layout' as const, n: totals.get('layout') ?? 0 } : undefined;
    const match = nthWrite(prefix, kind, op, after ? 1 : nth(occurrence, total), after);
    proxy.rules.push({ match, action });
    const args = big
      ? ['run', '--source', bigSource, '--compression-level', '0', '--part-size', '5MB']
      : RUN_ARGS;
    const result = await runCli([...args, '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args()], { timeoutMs: WATCHDOG_MS });
    const faulted = proxy.requests.filter((r) => r.fault !== undefined && s3Write(r, prefix) !== undefined);
    expect(faulted.length, `the ${kind} fault was not reached`).toBeGreaterThan(0);

    const partialOk = kind === 'slice';
    const line = expectOneError(result, kind, partialOk ? [exit, ERROR_CODES.PARTIAL] : [exit]);
    expect(line, name).toContain(kind === 'part' ? 'big.part_0.csv.gz' : s3Write(faulted[0]!, prefix)!.key);
    const keys = await s3Store(client, TEST_BUCKET, prefix).list();
    if (result.code === ERROR_CODES.PARTIAL) {
      expect(keys).toContain('takeout-manifest.json');
    } else {
      expect(keys).not.toContain('takeout-manifest.json');
      expect(keys.filter((k) => writeKind(k) === 'layout')).toEqual([]);
    }
  });

  it('a stalled journal write ends with a NETWORK error once the request timeout and its retries are spent', async () => {
    const prefix = uniquePrefix('write-faults-stall');
    proxy.rules.push({ match: nthWrite(prefix, 'journal', 'PutObject', 2), action: { kind: 'stall' } });
    const result = await runCli([...RUN_ARGS, '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--request-timeout', '500', ...s3Args()], { timeoutMs: WATCHDOG_MS });
    const line = expectOneError(result, 'journal', [ERROR_CODES.NETWORK]);
    expect(line).toContain('takeout-journal.json');
    expect(await s3Store(client, TEST_BUCKET, prefix).list()).not.toContain('takeout-manifest.json');
  });

  it('Ctrl-C while the cleanup itself is stuck: one line after the shutdown deadline, exit 130', async () => {
    const prefix = uniquePrefix('write-faults-shutdown');
    // Parts never answer, and neither does the AbortMultipartUpload the cleanup sends.
    const stuck = (req: IncomingMessage): boolean =>
      s3Write(req, prefix)?.op === 'UploadPart' || (req.method === 'DELETE' && (req.url ?? '').includes(prefix.slice(0, -1)) && /[?&]uploadId=/.test(req.url ?? ''));
    proxy.rules.push({ match: stuck, action: { kind: 'stall' } });
    const deadlineMs = 1500;
    const running = startCli(
      ['run', '--source', bigSource, '--compression-level', '0', '--part-size', '5MB', '--request-timeout', '50000', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args()],
      { env: { TAKEOUT_SHUTDOWN_DEADLINE_MS: String(deadlineMs) }, timeoutMs: WATCHDOG_MS },
    );
    const until = Date.now() + 30_000;
    while (!proxy.requests.some((r) => s3Write(r, prefix)?.op === 'UploadPart') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(proxy.requests.some((r) => s3Write(r, prefix)?.op === 'UploadPart'), 'no upload part was sent').toBe(true);
    const interrupted = Date.now();
    running.child.kill('SIGINT');
    const result = await running.done;
    expect(result.code, result.stderr).toBe(ERROR_CODES.INTERRUPTED);
    expect(Date.now() - interrupted).toBeLessThan(deadlineMs + 5_000);
    expect(result.stderr).toMatch(/interrupting/);
    expect(result.stderr).toMatch(/shutdown did not finish within 1\.5 s: quitting/);
  });
});
