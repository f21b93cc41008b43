import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { keyProblem } from '../stores/keys.js';
import { whereIs, type Store } from '../stores/store.js';
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

/**
 * A slice's place. Keboola's sliced files list `s3://BUCKET/KEY`, `azure://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`
 * or `gs://BUCKET/KEY` entries by the stack's cloud (keboola/storage-api-php-client, Client::uploadSlicedFile*).
 */
export type EntryLocation =
  | { kind: 's3'; bucket: string; key: string }
  | { kind: 'azure'; account: string; container: string; key: string }
  | { kind: 'gs'; bucket: string; key: string }
  | { kind: 'relative'; key: string };

export interface SliceEntry {
  /** Where the slice is: an object in a bucket or container of a cloud store, or a key relative to the manifest's base folder. */
  location: EntryLocation;
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

/** The cloud entry forms: each pattern's groups, and what a malformed entry is told it should be. */
const CLOUD_ENTRIES = {
  s3: { pattern: /^s3:\/\/([^/]+)\/(.+)$/i, form: 's3://bucket/key' },
  gs: { pattern: /^gs:\/\/([^/]+)\/(.+)$/i, form: 'gs://bucket/key' },
  // The account's blob host, as Keboola writes it (keboola/storage-api-php-client, Downloader/AbsUrlParser).
  azure: { pattern: /^azure:\/\/([a-z0-9]+)\.blob\.core\.windows\.net\/([^/]+)\/(.+)$/i, form: 'azure://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB' },
} as const;

/** `s3://`, `gs://` or `azure://` objects, or a relative key; http(s), file and anything else are refused. */
export function parseEntryUrl(url: string, origin: string): EntryLocation {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 's3' || scheme === 'gs' || scheme === 'azure') {
    const { pattern, form } = CLOUD_ENTRIES[scheme];
    const match = pattern.exec(url);
    if (!match) throw integrity(origin, `entry ${JSON.stringify(url)} is not ${form}`);
    const key = match[match.length - 1]!;
    if (key.split('/').some((s) => s === '..' || s === '.')) throw integrity(origin, `entry ${JSON.stringify(url)} has a '..' or '.' segment`);
    if (scheme === 'azure') return { kind: 'azure', account: match[1]!.toLowerCase(), container: match[2]!, key };
    return { kind: scheme, bucket: match[1]!, key };
  }
  if (scheme !== undefined && !/^[a-z]:[\\/]/i.test(url)) {
    throw integrity(origin, `entry ${JSON.stringify(url)}: only s3://, gs:// and azure:// URLs and relative keys are accepted, not ${scheme}:`);
  }
  const problem = keyProblem(url);
  if (problem) throw integrity(origin, `entry ${JSON.stringify(url)} is not a safe relative key (${problem})`);
  return { kind: 'relative', key: url };
}

function redshiftEntry(entry: unknown, i: number, origin: string): SliceEntry {
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
}

function redshiftPlanOf(value: Record<string, unknown>, entries: SliceEntry[]): MergePlan {
  const schema = isRecord(value.schema) && Array.isArray(value.schema.elements) ? value.schema.elements : undefined;
  const columns = schema?.map((e: unknown) => (isRecord(e) && typeof e.name === 'string' ? e.name : undefined));
  return {
    entries,
    form: 'redshift',
    ...(columns && columns.every((c): c is string => c !== undefined) ? { columns } : {}),
  };
}

/** The Redshift COPY manifest form (also the Storage API's sliced-file manifest). */
export function readRedshiftManifest(value: unknown, origin: string): MergePlan {
  if (!isRecord(value) || !Array.isArray(value.entries)) throw integrity(origin, 'expected an object with an "entries" array');
  return redshiftPlanOf(value, value.entries.map((entry: unknown, i) => redshiftEntry(entry, i, origin)));
}

/** A manifest's JSON, with the Redshift form's entries already read (see `readManifestDocument`). */
export interface ManifestDocument {
  /** The document; for an object with an "entries" array, everything but the entries (an empty array in their place). */
  value: unknown;
  /** The Redshift form: the "entries" array read as slice entries, with the schema's column names. */
  redshift?: MergePlan;
}

/** The Redshift plan of a document, or INTEGRITY when it has no "entries" array. */
export function redshiftPlan(document: ManifestDocument, origin: string): MergePlan {
  if (document.redshift) return document.redshift;
  return readRedshiftManifest(document.value, origin);
}

/**
 * Parses a manifest without building the JSON tree of all its entries at once. JSON.parse of a manifest of
 * 200,000 entries holds ~400 objects and strings per 1,000 entries alongside the slice entries made from
 * them; here each element of the top-level "entries" array is parsed alone and turned into its slice entry at
 * once, so the peak is the text plus the entries. Every member and element still goes through JSON.parse,
 * and the object's structure (keys, colons, commas, nothing after the end) is checked here, so the same
 * documents are accepted as by JSON.parse. A repeated top-level key keeps its last value, as JSON.parse does.
 */
export function readManifestDocument(text: string, origin: string): ManifestDocument {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== 0x7b /* { */) return { value: parseManifestJson(text, origin) };
  const members: Record<string, unknown> = {};
  let entries: SliceEntry[] | undefined;
  const fail = (what: string, at: number): never => {
    throw integrity(origin, `not valid JSON (${what} at position ${at})`);
  };
  const parse = (start: number, end: number): unknown => {
    try {
      return JSON.parse(text.slice(start, end)) as unknown;
    } catch (error) {
      return fail((error as Error).message.replace(/ in JSON at position \d+.*$/, ''), start);
    }
  };
  i = skipSpace(text, i + 1);
  if (text.charCodeAt(i) === 0x7d /* } */) i++;
  else {
    for (;;) {
      if (text.charCodeAt(i) !== 0x22 /* " */) fail('expected a member name', i);
      const keyEnd = stringEnd(text, i);
      const key = parse(i, keyEnd) as string;
      i = skipSpace(text, keyEnd);
      if (text.charCodeAt(i) !== 0x3a /* : */) fail("expected ':'", i);
      i = skipSpace(text, i + 1);
      if (key === 'entries' && text.charCodeAt(i) === 0x5b /* [ */) {
        entries = [];
        members.entries = [];
        i = skipSpace(text, i + 1);
        if (text.charCodeAt(i) === 0x5d /* ] */) i++;
        else {
          for (;;) {
            const end = valueEnd(text, i);
            if (end === i) fail('expected an entry', i);
            entries.push(redshiftEntry(parse(i, end), entries.length, origin));
            i = skipSpace(text, end);
            const c = text.charCodeAt(i);
            if (c === 0x5d /* ] */) {
              i++;
              break;
            }
            if (c !== 0x2c /* , */) fail("expected ',' or ']'", i);
            i = skipSpace(text, i + 1);
          }
        }
      } else {
        const end = valueEnd(text, i);
        if (end === i) fail('expected a value', i);
        if (key === 'entries') entries = undefined;
        // Own property even for "__proto__", as JSON.parse makes it.
        Object.defineProperty(members, key, { value: parse(i, end), enumerable: true, writable: true, configurable: true });
        i = end;
      }
      i = skipSpace(text, i);
      const c = text.charCodeAt(i);
      if (c === 0x7d /* } */) {
        i++;
        break;
      }
      if (c !== 0x2c /* , */) fail("expected ',' or '}'", i);
      i = skipSpace(text, i + 1);
    }
  }
  if (skipSpace(text, i) !== text.length) fail('unexpected text after the end', skipSpace(text, i));
  return entries ? { value: members, redshift: redshiftPlanOf(members, entries) } : { value: members };
}

function skipSpace(text: string, i: number): number {
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
  }
  return i;
}

/** Index just past the string starting at `i` (a quote); the text's end when it is not closed. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x5c /* \ */) j++;
    else if (c === 0x22) return j + 1;
  }
  return text.length;
}

/**
 * Index just past the JSON value starting at `i`, found by matching brackets outside strings; what lies
 * between is left to JSON.parse to judge (a wrong bracket makes a slice it refuses).
 */
function valueEnd(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === 0x22) return stringEnd(text, i);
  if (first === 0x7b || first === 0x5b) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x22) j = stringEnd(text, j) - 1;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if ((c === 0x7d || c === 0x5d) && --depth === 0) return j + 1;
    }
    return text.length;
  }
  let j = i;
  for (; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x2c || c === 0x7d || c === 0x5d || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) break;
  }
  return j;
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

/**
 * A layout file or slice manifest of a takeout, read whole (it is bounded like a manifest) and checked against the
 * size and sha256 takeout-manifest.json lists for it, so nothing read from a takeout is trusted unchecked.
 */
export async function readListedText(store: Store, listed: { key: string; bytes: number; sha256?: string }): Promise<string> {
  const where = whereIs(store, listed.key);
  let text: string;
  try {
    text = await readManifestText(await store.get(listed.key), where);
  } catch (error) {
    throw toTakeoutError(error, where);
  }
  const raw = Buffer.from(text, 'utf8');
  if (raw.length !== listed.bytes || (listed.sha256 !== undefined && createHash('sha256').update(raw).digest('hex') !== listed.sha256)) {
    throw new TakeoutError('INTEGRITY', `${where} does not match the size and sha256 takeout-manifest.json lists`, { hint: 'check the takeout with takeout verify' });
  }
  return text;
}
