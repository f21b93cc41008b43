import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Store } from '../stores/store.js';
import { keyProblem } from '../stores/keys.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { TAKEOUT_MANIFEST_FILE } from './takeout.js';
import { RecordCounter } from '../formats/csv/record-counter.js';
import { JOURNAL_FILE, readJournal } from './journal.js';
import { isLeaseKey } from './lease.js';
import type { JobRecord } from './jobs.js';
import type { TakeoutManifest } from './takeout.js';
import { plural } from '../units.js';

/**
 * `takeout verify`: re-reads every file a takeout manifest lists and checks it against the manifest
 * (size, sha256, and for table slices gzip integrity, raw bytes and rows), and lists the files no
 * manifest accounts for. Problems are returned, not thrown; only failures to read at all (network,
 * auth, a malformed manifest, an interrupt) throw, and only TakeoutError.
 */

const MiB = 1024 * 1024;

export type ProblemKind = 'missing' | 'size' | 'sha256' | 'rows' | 'gzip' | 'extra';

export interface VerifyProblem {
  kind: ProblemKind;
  key: string;
  message: string;
}

export interface VerifyReport {
  status: 'ok' | 'problems';
  /** Files checked (slices and the layout's files; the takeout manifest itself is not counted). */
  checked: number;
  /** Bytes read while checking. */
  bytes: number;
  problems: VerifyProblem[];
}

/** What one file is expected to be. Slices also carry what their gzip inflates to. */
export interface ExpectedFile {
  key: string;
  bytes: number;
  sha256?: string;
  slice?: { rawBytes?: number; rows?: number; table: string };
}

export interface VerifyOptions {
  destination: Pick<Store, 'get' | 'head' | 'list'>;
  manifest: TakeoutManifest;
  /** Files checked at once. */
  concurrency: number;
  signal?: AbortSignal;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(message: string): TakeoutError {
  return new TakeoutError('INTEGRITY', `${TAKEOUT_MANIFEST_FILE}: ${message}`);
}

function count(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw malformed(`${what} is not a byte or row count`);
  return value;
}

function safeKey(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw malformed(`${what} has no key`);
  const problem = keyProblem(value);
  if (problem) throw malformed(`${what}: ${JSON.stringify(value)} is not a safe relative key (${problem})`);
  return value;
}

function sha(value: unknown): string | undefined {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

/** Every file the manifest accounts for, in manifest order: table slices first, then the layout's files. Throws INTEGRITY when the manifest does not add up. */
export function expectedFiles(manifest: TakeoutManifest): ExpectedFile[] {
  const out: ExpectedFile[] = [];
  const seen = new Set<string>();
  const add = (file: ExpectedFile): void => {
    if (seen.has(file.key)) throw malformed(`${file.key} is listed twice`);
    seen.add(file.key);
    out.push(file);
  };
  for (const [i, table] of (manifest.tables as unknown[]).entries()) {
    if (!isRecord(table) || typeof table.id !== 'string') throw malformed(`table ${i + 1} has no id`);
    const slices = table.slices ?? [];
    if (!Array.isArray(slices)) throw malformed(`table ${table.id} has no slice list`);
    for (const [j, slice] of (slices as unknown[]).entries()) {
      if (!isRecord(slice)) throw malformed(`slice ${j + 1} of ${table.id} is not an object`);
      const key = safeKey(slice.key, `slice ${j + 1} of ${table.id}`);
      const bytes = count(slice.bytes, `${key} bytes`);
      if (bytes === undefined) throw malformed(`${key} has no size`);
      const rawBytes = count(slice.rawBytes, `${key} rawBytes`);
      const rows = count(slice.rows, `${key} rows`);
      const digest = sha(slice.sha256);
      add({
        key,
        bytes,
        ...(digest ? { sha256: digest } : {}),
        slice: { table: table.id, ...(rawBytes !== undefined ? { rawBytes } : {}), ...(rows !== undefined ? { rows } : {}) },
      });
    }
  }
  const files: unknown = (manifest as { files?: unknown }).files ?? [];
  if (!Array.isArray(files)) throw malformed('"files" is not a list');
  for (const [i, file] of (files as unknown[]).entries()) {
    if (!isRecord(file)) throw malformed(`file ${i + 1} is not an object`);
    const key = safeKey(file.key, `file ${i + 1}`);
    const bytes = count(file.bytes, `${key} bytes`);
    if (bytes === undefined) throw malformed(`${key} has no size`);
    const digest = sha(file.sha256);
    add({ key, bytes, ...(digest ? { sha256: digest } : {}) });
  }
  return out;
}

interface Streamed {
  bytes: number;
  sha256: string;
  /** Only for slices. */
  rawBytes?: number;
  rows?: number;
  gzipError?: string;
}

/** Reads a stream once: sha256 of what is stored and, for slices, the gunzipped bytes and CSV records on the side. */
async function readOnce(stream: Readable, inflate: boolean, rawLimit: number | undefined): Promise<Streamed> {
  const hash = createHash('sha256');
  let bytes = 0;
  if (!inflate) {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    return { bytes, sha256: hash.digest('hex') };
  }
  const gunzip = createGunzip({ chunkSize: MiB });
  const counter = new RecordCounter();
  let rawBytes = 0;
  let gzipError: string | undefined;
  let stopped = false;
  const stop = (message?: string): void => {
    if (message !== undefined) gzipError ??= message;
    stopped = true;
    gunzip.destroy();
  };
  const inflated = (async () => {
    try {
      for await (const chunk of gunzip as AsyncIterable<Buffer>) {
        rawBytes += chunk.length;
        counter.push(chunk);
        // Past what the manifest says it inflates to: it does not match, and inflating further only costs time (a gzip bomb).
        if (rawLimit !== undefined && rawBytes > rawLimit) {
          stop();
          return;
        }
      }
    } catch (error) {
      if (!stopped) gzipError ??= (error as Error).message;
      stopped = true;
    }
  })();
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (stopped || gunzip.destroyed) continue;
      if (!gunzip.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            gunzip.off('drain', done);
            gunzip.off('close', done);
            resolve();
          };
          gunzip.on('drain', done);
          gunzip.on('close', done);
        });
      }
    }
  } catch (error) {
    stop();
    await inflated;
    throw error;
  }
  if (!stopped) gunzip.end();
  await inflated;
  if (!stopped && bytes === 0) gzipError ??= 'empty file, not gzip';
  return { bytes, sha256: hash.digest('hex'), rawBytes, rows: counter.end(), ...(gzipError !== undefined ? { gzipError } : {}) };
}

function short(digest: string): string {
  return `${digest.slice(0, 12)}…`;
}

/** Checks one file; undefined when it matches. At most one problem per file: the most basic one. */
export async function checkFile(destination: Pick<Store, 'get' | 'head'>, file: ExpectedFile): Promise<{ problem?: VerifyProblem; bytes: number }> {
  const info = await destination.head(file.key);
  if (!info) return { problem: { kind: 'missing', key: file.key, message: 'not found' }, bytes: 0 };
  if (info.size !== file.bytes) {
    return { problem: { kind: 'size', key: file.key, message: `${plural(info.size, 'byte')}, the manifest says ${file.bytes.toLocaleString('en-US')}` }, bytes: 0 };
  }
  let stream: Readable;
  try {
    stream = await destination.get(file.key);
  } catch (error) {
    const failure = toTakeoutError(error, file.key);
    if (failure.code === 'NOT_FOUND') return { problem: { kind: 'missing', key: file.key, message: 'not found' }, bytes: 0 };
    throw failure;
  }
  let got: Streamed;
  try {
    got = await readOnce(stream, file.slice !== undefined, file.slice?.rawBytes);
  } catch (error) {
    stream.destroy();
    throw toTakeoutError(error, `reading ${file.key}`);
  }
  const problem = ((): VerifyProblem | undefined => {
    if (got.bytes !== file.bytes) return { kind: 'size', key: file.key, message: `read ${plural(got.bytes, 'byte')}, the manifest says ${file.bytes.toLocaleString('en-US')}` };
    const gzipNote = got.gzipError !== undefined ? ` (gzip: ${got.gzipError})` : '';
    if (file.sha256 !== undefined && got.sha256 !== file.sha256) {
      return { kind: 'sha256', key: file.key, message: `sha256 ${short(got.sha256)} does not match the manifest's ${short(file.sha256)}${gzipNote}` };
    }
    if (got.gzipError !== undefined) return { kind: 'gzip', key: file.key, message: `not a whole gzip file: ${got.gzipError}` };
    const slice = file.slice;
    if (slice?.rawBytes !== undefined && got.rawBytes !== slice.rawBytes) {
      const inflated = got.rawBytes !== undefined && got.rawBytes > slice.rawBytes ? `more than ${plural(slice.rawBytes, 'byte')}` : got.rawBytes === undefined ? 'an unknown size' : plural(got.rawBytes, 'byte');
      return { kind: 'size', key: file.key, message: `inflates to ${inflated}, the manifest says ${slice.rawBytes.toLocaleString('en-US')}` };
    }
    if (slice?.rows !== undefined && got.rows !== slice.rows) {
      return { kind: 'rows', key: file.key, message: `${got.rows === undefined ? 'no count of rows' : plural(got.rows, 'row')}, the manifest says ${slice.rows.toLocaleString('en-US')}` };
    }
    return undefined;
  })();
  return { ...(problem ? { problem } : {}), bytes: got.bytes };
}

/** Runs `task` over `items`, at most `limit` at once; stops starting new ones after the first failure or an abort. */
async function pool<T>(items: readonly T[], limit: number, signal: AbortSignal | undefined, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      if (signal?.aborted) throw new TakeoutError('INTERRUPTED', 'interrupted');
      const index = next++;
      try {
        await task(items[index]!, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw toTakeoutError(rejected.reason);
}

/** Checks every file of a takeout against its manifest and lists extra files. */
export async function verifyTakeout(options: VerifyOptions): Promise<VerifyReport> {
  const { destination, manifest, signal } = options;
  const expected = expectedFiles(manifest);
  const found: (VerifyProblem | undefined)[] = new Array<VerifyProblem | undefined>(expected.length);
  let bytes = 0;
  await pool(expected, options.concurrency, signal, async (file, index) => {
    const result = await checkFile(destination, file);
    bytes += result.bytes;
    found[index] = result.problem;
  });
  const problems = found.filter((p): p is VerifyProblem => p !== undefined);

  const known = new Set(expected.map((f) => f.key));
  known.add(TAKEOUT_MANIFEST_FILE);
  const extra: string[] = [];
  try {
    for await (const object of destination.list('')) {
      if (signal?.aborted) throw new TakeoutError('INTERRUPTED', 'interrupted');
      // The lease of a run writing here (or one that died) is not part of any takeout.
      if (!known.has(object.key) && !isLeaseKey(object.key)) extra.push(object.key);
    }
  } catch (error) {
    throw toTakeoutError(error, 'listing the takeout');
  }
  // A partial takeout keeps its journal and the slices it lists for a --resume: those are not strays.
  if (extra.includes(JOURNAL_FILE)) {
    const journal = await readJournal(destination);
    const kept = new Set([JOURNAL_FILE, ...Object.values(journal?.tables ?? {}).flatMap((t) => t.slices.map((slice) => slice.key))]);
    for (const key of extra) if (!kept.has(key)) problems.push({ kind: 'extra', key, message: 'not in the manifest' });
  } else {
    for (const key of extra) problems.push({ kind: 'extra', key, message: 'not in the manifest' });
  }
  return { status: problems.length === 0 ? 'ok' : 'problems', checked: expected.length, bytes, problems };
}

/** One plain line per problem: `missing: key`, `extra: key`, `corrupt: key: message`. */
export function problemLine(problem: VerifyProblem): string {
  if (problem.kind === 'missing' || problem.kind === 'extra') return `${problem.kind}: ${problem.key}`;
  return `corrupt: ${problem.key}: ${problem.message}`;
}

/** Checks every file of the completed dataset exports against their job records (size and sha256). */
export async function verifyExports(options: { destination: Pick<Store, 'get' | 'head'>; jobs: readonly JobRecord[]; concurrency: number; signal?: AbortSignal }): Promise<VerifyReport> {
  const expected: ExpectedFile[] = [];
  for (const job of options.jobs) {
    if (job.status !== 'COMPLETED') continue;
    for (const f of [...(job.dataFiles ?? []), ...(job.layoutFiles ?? [])]) {
      const problem = keyProblem(f.key);
      if (problem) throw new TakeoutError('INTEGRITY', `export ${job.exportId}: ${JSON.stringify(f.key)} is not a safe relative key (${problem})`);
      expected.push({ key: f.key, bytes: f.bytes, sha256: f.sha256 });
    }
  }
  const found: (VerifyProblem | undefined)[] = new Array<VerifyProblem | undefined>(expected.length);
  let bytes = 0;
  await pool(expected, options.concurrency, options.signal, async (file, index) => {
    const result = await checkFile(options.destination, file);
    bytes += result.bytes;
    found[index] = result.problem;
  });
  const problems = found.filter((p): p is VerifyProblem => p !== undefined);
  return { status: problems.length === 0 ? 'ok' : 'problems', checked: expected.length, bytes, problems };
}
