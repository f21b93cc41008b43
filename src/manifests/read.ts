import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { keyProblem } from '../destinations/keys.js';
import { TAKEOUT_MANIFEST_VERSION, type TakeoutManifest } from './takeout.js';

/**
 * Reads slice manifests in the forms takeout meets, into one plan: the Redshift / Storage API form
 * `{"entries":[{"url":"s3://bucket/key","mandatory":true,"meta":{"content_length":N}}]}`, and a
 * takeout's own `takeout-manifest.json` (with a table id). Only ever throws TakeoutError.
 */

/**
 * Manifests are small JSON files; anything larger is refused before it is parsed, wherever it is read
 * from (S3, a local file, a takeout folder). 64 MiB holds ~450,000 Redshift entries of 150 bytes.
 */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

export interface SliceEntry {
  /** Where the slice is: an S3 bucket and key, or a key relative to the manifest's base folder. */
  location: { kind: 's3'; bucket: string; key: string } | { kind: 'relative'; key: string };
  /** As written in the manifest, for messages. */
  label: string;
  mandatory: boolean;
  bytes?: number;
  rawBytes?: number;
  rows?: number;
  sha256?: string;
}

export interface MergePlan {
  entries: SliceEntry[];
  /** Column names, when the manifest knows them (takeout manifests, Redshift VERBOSE schema). */
  columns?: string[];
  /** `takeout`: the takeout manifest (or a slice manifest beside one); `redshift`: a plain entries list. */
  form: 'takeout' | 'redshift';
}

function integrity(origin: string, message: string): TakeoutError {
  return new TakeoutError('INTEGRITY', `${origin}: ${message}`);
}

/** A manifest's text from a stream, refusing anything larger than a manifest can be. */
export async function readManifestText(stream: Readable, origin: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_MANIFEST_BYTES) {
        stream.destroy();
        throw tooLarge(origin);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    throw toTakeoutError(error, origin);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A local manifest's text, or undefined when the file does not exist. Its size is checked on the open
 * handle before a byte is read (and again while reading, for a file that grows), with the same cap as S3.
 */
export async function readManifestFile(file: string, origin: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw toTakeoutError(error, origin);
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw new TakeoutError('USAGE', `${origin} is a folder, not a manifest`);
    if (info.size > MAX_MANIFEST_BYTES) throw tooLarge(origin);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw toTakeoutError(error, origin);
  }
  return readManifestText(createReadStream('', { fd: handle, autoClose: true }), origin);
}

function tooLarge(origin: string): TakeoutError {
  return new TakeoutError('INTEGRITY', `${origin}: larger than ${MAX_MANIFEST_BYTES} bytes, not a manifest`, {
    hint: 'a manifest lists slices; split a larger export into several',
  });
}

/**
 * The entries listed more than once (same url or key), each with how many times: Redshift COPY loads a
 * repeated entry once per listing, and so does a merge, so the data would appear twice.
 */
export function duplicateEntries(entries: readonly SliceEntry[]): { label: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const entry of entries) counts.set(entry.label, (counts.get(entry.label) ?? 0) + 1);
  const out: { label: string; count: number }[] = [];
  for (const [label, count] of counts) if (count > 1) out.push({ label, count });
  return out;
}

export function parseManifestJson(text: string, origin: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw integrity(origin, `not valid JSON (${(error as Error).message})`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalCount(value: unknown, what: string, origin: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw integrity(origin, `${what} is not a byte or row count`);
  return value;
}

/** `s3://bucket/key` or a relative key; http(s), file and anything else are refused. */
export function parseEntryUrl(url: string, origin: string): SliceEntry['location'] {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const match = /^s3:\/\/([^/]+)\/(.+)$/i.exec(url);
    if (!match) throw integrity(origin, `entry ${JSON.stringify(url)} is not s3://bucket/key`);
    const key = match[2]!;
    if (key.split('/').some((s) => s === '..' || s === '.')) throw integrity(origin, `entry ${JSON.stringify(url)} has a '..' or '.' segment`);
    return { kind: 's3', bucket: match[1]!, key };
  }
  if (scheme !== undefined && !/^[a-z]:[\\/]/i.test(url)) {
    throw integrity(origin, `entry ${JSON.stringify(url)}: only s3:// URLs and relative keys are accepted, not ${scheme}:`);
  }
  const problem = keyProblem(url);
  if (problem) throw integrity(origin, `entry ${JSON.stringify(url)} is not a safe relative key (${problem})`);
  return { kind: 'relative', key: url };
}

/** The Redshift COPY manifest form (also the Storage API's sliced-file manifest). */
export function readRedshiftManifest(value: unknown, origin: string): MergePlan {
  if (!isRecord(value) || !Array.isArray(value.entries)) throw integrity(origin, 'expected an object with an "entries" array');
  const entries = value.entries.map((entry: unknown, i): SliceEntry => {
    if (!isRecord(entry) || typeof entry.url !== 'string' || entry.url === '') throw integrity(origin, `entry ${i + 1} has no "url"`);
    if (entry.mandatory !== undefined && typeof entry.mandatory !== 'boolean') throw integrity(origin, `entry ${i + 1}: "mandatory" is not true or false`);
    const meta = isRecord(entry.meta) ? entry.meta : {};
    const bytes = optionalCount(meta.content_length, `entry ${i + 1} content_length`, origin);
    const rows = optionalCount(meta.record_count, `entry ${i + 1} record_count`, origin);
    return {
      location: parseEntryUrl(entry.url, origin),
      label: entry.url,
      // Redshift's default is false; the Storage API always writes true.
      mandatory: entry.mandatory === true,
      ...(bytes !== undefined ? { bytes } : {}),
      ...(rows !== undefined ? { rows } : {}),
    };
  });
  const schema = isRecord(value.schema) && Array.isArray(value.schema.elements) ? value.schema.elements : undefined;
  const columns = schema?.map((e: unknown) => (isRecord(e) && typeof e.name === 'string' ? e.name : undefined));
  return {
    entries,
    form: 'redshift',
    ...(columns && columns.every((c): c is string => c !== undefined) ? { columns } : {}),
  };
}

/** Checks a takeout manifest's version and returns it typed. */
export function readTakeoutManifest(value: unknown, origin: string): TakeoutManifest {
  if (!isRecord(value) || value.kind !== 'takeout') throw integrity(origin, 'not a takeout manifest');
  if (value.formatVersion !== TAKEOUT_MANIFEST_VERSION) {
    throw integrity(origin, `manifest format version ${JSON.stringify(value.formatVersion)} is not one this takeout reads (${TAKEOUT_MANIFEST_VERSION})`);
  }
  if (!Array.isArray(value.tables)) throw integrity(origin, 'manifest has no "tables" list');
  if (!value.tables.every((t) => isRecord(t) && typeof t.id === 'string')) throw integrity(origin, 'every entry of "tables" must be an object with an id');
  return value as unknown as TakeoutManifest;
}

/** The slices of one table of a takeout, with the sizes, raw sizes, rows and sha256 the manifest records. */
export function takeoutTablePlan(manifest: TakeoutManifest, tableId: string, origin: string): MergePlan {
  const table = manifest.tables.find((t) => t.id === tableId);
  if (!table) {
    const known = manifest.tables.map((t) => t.id).slice(0, 10).join(', ');
    throw new TakeoutError('NOT_FOUND', `${origin}: no table ${tableId} in this takeout`, { hint: `tables: ${known}` });
  }
  if (table.status !== 'complete') {
    throw integrity(origin, `table ${tableId} is ${table.status} in this takeout${table.error ? ` (${table.error.message})` : ''}`);
  }
  if (!Array.isArray(table.slices)) throw integrity(origin, `table ${tableId} has no slice list`);
  const entries = table.slices.map((s, i): SliceEntry => {
    if (!isRecord(s) || typeof s.key !== 'string') throw integrity(origin, `slice ${i + 1} of ${tableId} has no key`);
    return {
      location: parseEntryUrl(s.key, origin),
      label: s.key,
      mandatory: true,
      ...(optionalCount(s.bytes, 'slice bytes', origin) !== undefined ? { bytes: s.bytes } : {}),
      ...(optionalCount(s.rawBytes, 'slice raw bytes', origin) !== undefined ? { rawBytes: s.rawBytes } : {}),
      ...(optionalCount(s.rows, 'slice rows', origin) !== undefined ? { rows: s.rows } : {}),
      ...(typeof s.sha256 === 'string' && /^[0-9a-f]{64}$/.test(s.sha256) ? { sha256: s.sha256 } : {}),
    };
  });
  return { entries, form: 'takeout', columns: table.columns };
}
