/**
 * The in-memory side of the GCS test server: buckets of objects with one live generation each, the hashes GCS
 * computes on write, preconditions, listing, and the `multipart/related` body of a multipart upload.
 *
 * Object resource fields follow https://cloud.google.com/storage/docs/json_api/v1/objects: int64 fields
 * (`generation`, `metageneration`, `size`) are strings, `md5Hash` and `crc32c` are base64 (crc32c big-endian).
 */
import { createHash } from 'node:crypto';

// ---------------------------------------------------------------- errors

/** An error answered in Google's JSON shape (https://cloud.google.com/storage/docs/json_api/v1/status-codes). */
export class GcsError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export const errorBody = (status: number, reason: string, message: string): unknown => ({
  error: { code: status, message, errors: [{ domain: 'global', reason, message }] },
});

// ---------------------------------------------------------------- hashes

const CRC32C_POLYNOMIAL = 0x82f63b78; // Castagnoli, reflected (RFC 3720 appendix B.4), as GCS uses
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLYNOMIAL : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32C of `data` as GCS reports it: the 4 bytes big-endian, base64. */
export function crc32c(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

export const md5 = (data: Buffer): string => createHash('md5').update(data).digest('base64');

// ---------------------------------------------------------------- objects

export interface StoredObject {
  bucket: string;
  name: string;
  data: Buffer;
  generation: number;
  metageneration: number;
  contentType: string;
  md5Hash?: string;
  crc32c: string;
  componentCount?: number;
  metadata?: Record<string, string>;
  timeCreated: string;
  updated: string;
}

/** Writable metadata a client may send with an object (insert body, multipart part, compose destination). */
export interface ObjectMetadata {
  contentType?: string;
  metadata?: Record<string, string>;
  md5Hash?: string;
  crc32c?: string;
}

export interface Preconditions {
  ifGenerationMatch?: number;
  ifGenerationNotMatch?: number;
  ifMetagenerationMatch?: number;
  ifMetagenerationNotMatch?: number;
}

const PRECONDITION_NAMES = ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'] as const;

/** Reads the preconditions from query parameters, optionally with a prefix (`ifSource…` for rewrite). */
export function readPreconditions(query: URLSearchParams, source = false): Preconditions {
  const out: Preconditions = {};
  for (const name of PRECONDITION_NAMES) {
    const key = source ? `ifSource${name.slice(2)}` : name;
    const value = query.get(key);
    if (value === null) continue;
    if (!/^-?[0-9]+$/.test(value)) throw new GcsError(400, 'invalid', `Invalid value for ${key}: ${value}`);
    out[name] = Number(value);
  }
  return out;
}

/**
 * Request preconditions (https://cloud.google.com/storage/docs/request-preconditions): `ifGenerationMatch: 0`
 * means the object must not exist; a failed condition is 412 `conditionNotMet`.
 */
export function checkPreconditions(current: StoredObject | undefined, conditions: Preconditions, what: string): void {
  const failed = (detail: string): never => {
    throw new GcsError(412, 'conditionNotMet', `At least one of the pre-conditions you specified did not hold (${what}: ${detail}).`);
  };
  const generation = current?.generation ?? 0;
  if (conditions.ifGenerationMatch !== undefined && conditions.ifGenerationMatch !== generation) {
    failed(`ifGenerationMatch ${conditions.ifGenerationMatch}, live generation ${generation}`);
  }
  if (conditions.ifGenerationNotMatch !== undefined && conditions.ifGenerationNotMatch === generation) {
    failed(`ifGenerationNotMatch ${conditions.ifGenerationNotMatch}`);
  }
  if (conditions.ifMetagenerationMatch !== undefined) {
    if (current === undefined) failed('ifMetagenerationMatch on a missing object');
    else if (current.metageneration !== conditions.ifMetagenerationMatch) failed(`ifMetagenerationMatch ${conditions.ifMetagenerationMatch}`);
  }
  if (conditions.ifMetagenerationNotMatch !== undefined && current?.metageneration === conditions.ifMetagenerationNotMatch) {
    failed(`ifMetagenerationNotMatch ${conditions.ifMetagenerationNotMatch}`);
  }
}

/** Checks hashes a client declared (metadata or `X-Goog-Hash`) against the bytes received; GCS answers 400. */
export function checkDeclaredHashes(data: Buffer, declared: { md5Hash?: string; crc32c?: string }): void {
  if (declared.crc32c !== undefined && declared.crc32c !== crc32c(data)) {
    throw new GcsError(400, 'invalid', `Provided CRC32C "${declared.crc32c}" doesn't match calculated CRC32C "${crc32c(data)}".`);
  }
  if (declared.md5Hash !== undefined && declared.md5Hash !== md5(data)) {
    throw new GcsError(400, 'invalid', `Provided MD5 hash "${declared.md5Hash}" doesn't match calculated MD5 hash "${md5(data)}".`);
  }
}

/** Parses `X-Goog-Hash: crc32c=…,md5=…` (https://cloud.google.com/storage/docs/xml-api/reference-headers#xgooghash). */
export function parseGoogHash(header: string | string[] | undefined): { md5Hash?: string; crc32c?: string } {
  const out: { md5Hash?: string; crc32c?: string } = {};
  for (const part of [header ?? []].flat().join(',').split(',')) {
    const at = part.indexOf('=');
    if (at === -1) continue;
    const key = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (key === 'md5') out.md5Hash = value;
    if (key === 'crc32c') out.crc32c = value;
  }
  return out;
}

export function objectResource(object: StoredObject, baseUrl: string): Record<string, unknown> {
  const path = `b/${encodeURIComponent(object.bucket)}/o/${encodeURIComponent(object.name)}`;
  return {
    kind: 'storage#object',
    id: `${object.bucket}/${object.name}/${object.generation}`,
    selfLink: `${baseUrl}/storage/v1/${path}`,
    mediaLink: `${baseUrl}/download/storage/v1/${path}?generation=${object.generation}&alt=media`,
    name: object.name,
    bucket: object.bucket,
    generation: String(object.generation),
    metageneration: String(object.metageneration),
    contentType: object.contentType,
    storageClass: 'STANDARD',
    size: String(object.data.length),
    ...(object.md5Hash === undefined ? {} : { md5Hash: object.md5Hash }),
    crc32c: object.crc32c,
    ...(object.componentCount === undefined ? {} : { componentCount: object.componentCount }),
    ...(object.metadata === undefined ? {} : { metadata: object.metadata }),
    etag: Buffer.from(`${object.generation}/${object.metageneration}`).toString('base64'),
    timeCreated: object.timeCreated,
    updated: object.updated,
  };
}

export const compareNames = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export interface ListQuery {
  prefix: string;
  delimiter?: string;
  startOffset?: string;
  endOffset?: string;
  /** The last entry of the previous page (decoded page token). */
  after?: string;
  maxResults: number;
}

/**
 * objects.list (https://cloud.google.com/storage/docs/json_api/v1/objects/list): names in UTF-8 byte order;
 * with a delimiter, names with the delimiter after the prefix collapse into `prefixes`. Items and prefixes
 * together count toward `maxResults`, and `next` is the last entry answered while more remain.
 */
export function listObjects(objects: Iterable<StoredObject>, query: ListQuery): { items: StoredObject[]; prefixes: string[]; next?: string } {
  const sorted = [...objects]
    .filter((o) => o.name.startsWith(query.prefix))
    .filter((o) => query.startOffset === undefined || compareNames(o.name, query.startOffset) >= 0)
    .filter((o) => query.endOffset === undefined || compareNames(o.name, query.endOffset) < 0)
    .sort((a, b) => compareNames(a.name, b.name));
  const entries: Array<{ key: string; object?: StoredObject }> = [];
  for (const object of sorted) {
    const at = query.delimiter ? object.name.indexOf(query.delimiter, query.prefix.length) : -1;
    if (at === -1) entries.push({ key: object.name, object });
    else {
      const prefix = object.name.slice(0, at + (query.delimiter as string).length);
      if (entries.at(-1)?.key !== prefix) entries.push({ key: prefix });
    }
  }
  const start = query.after === undefined ? 0 : entries.findIndex((e) => compareNames(e.key, query.after as string) > 0);
  const page = start === -1 ? [] : entries.slice(start, start + query.maxResults);
  const more = start !== -1 && start + query.maxResults < entries.length;
  return {
    items: page.flatMap((e) => (e.object ? [e.object] : [])),
    prefixes: page.flatMap((e) => (e.object ? [] : [e.key])),
    ...(more ? { next: page.at(-1)?.key } : {}),
  };
}

// ---------------------------------------------------------------- multipart/related

/** Splits a `multipart/related` upload (https://cloud.google.com/storage/docs/uploading-objects) into metadata and bytes. */
export function parseMultipart(body: Buffer, contentType: string): { metadata: ObjectMetadata & { name?: string }; data: Buffer; dataType?: string } {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new GcsError(400, 'invalid', 'multipart upload without a boundary');
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next === -1) break;
    // Each part is CRLF, headers, CRLF CRLF, content, CRLF before the next delimiter.
    parts.push(body.subarray(start + 2, next - 2));
    at = next;
  }
  if (parts.length !== 2) throw new GcsError(400, 'invalid', `multipart upload with ${parts.length} parts, expected 2 (metadata, media)`);
  const split = (part: Buffer): { headers: string; content: Buffer } => {
    const end = part.indexOf('\r\n\r\n');
    if (end === -1) throw new GcsError(400, 'invalid', 'multipart part without headers');
    return { headers: part.subarray(0, end).toString(), content: part.subarray(end + 4) };
  };
  const meta = split(parts[0] as Buffer);
  const media = split(parts[1] as Buffer);
  const dataType = /content-type:\s*([^\r\n]+)/i.exec(media.headers)?.[1]?.trim();
  let metadata: ObjectMetadata & { name?: string };
  try {
    metadata = JSON.parse(meta.content.toString() || '{}') as ObjectMetadata & { name?: string };
  } catch {
    throw new GcsError(400, 'parseError', 'multipart metadata part is not JSON');
  }
  return { metadata, data: media.content, ...(dataType === undefined ? {} : { dataType }) };
}
