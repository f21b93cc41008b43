import path from 'node:path';
import { TakeoutError } from '../errors.js';

/**
 * Object keys come from layouts, manifests and (on download) from remote listings, so they are
 * untrusted. A key is safe when it can be used both as an S3 key and as a relative path on any
 * platform without leaving the destination root: see `assertSafeKey` for the rules.
 */

/** S3 caps keys at 1024 bytes (UTF-8). */
const MAX_KEY_BYTES = 1024;
/** NAME_MAX on every common file system. */
const MAX_SEGMENT_BYTES = 255;
/** Windows device names, reserved with or without an extension (`con`, `aux.csv`, `nul.tar.gz`). */
const WINDOWS_RESERVED = /^(?:con|prn|aux|nul|com[1-9]|lpt[1-9])(?:\..*)?$/i;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const DRIVE_LETTER = /^[a-z]:/i;

/** A key as it can safely be printed: quoted, control characters escaped, long keys shortened. */
export function printableKey(key: string): string {
  const shown = key.length > 200 ? `${key.slice(0, 200)}…` : key;
  return JSON.stringify(shown);
}

function reject(key: string, reason: string): never {
  throw new TakeoutError('USAGE', `unsafe key ${printableKey(key)}: ${reason}`, {
    details: { key },
    hint: 'keys must be relative, /-separated paths with no "..", "." or empty parts',
  });
}

/** Why `key` is unsafe, or undefined when it is safe. */
export function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'it is empty';
  if (CONTROL_CHARS.test(key)) return 'it contains a NUL or control character';
  if (key.includes('\\')) return 'it contains a backslash';
  if (key.startsWith('/') || path.posix.isAbsolute(key) || path.win32.isAbsolute(key)) return 'it is an absolute path';
  if (DRIVE_LETTER.test(key)) return 'it starts with a drive letter';
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return `it is longer than ${MAX_KEY_BYTES} bytes`;
  for (const segment of key.split('/')) {
    if (segment === '') return 'it has an empty path segment';
    if (segment === '.' || segment === '..') return `it has a "${segment}" path segment`;
    if (WINDOWS_RESERVED.test(segment)) return `"${segment}" is a reserved device name on Windows`;
    if (segment.endsWith('.') || segment.endsWith(' ')) return `segment "${segment}" ends with a dot or a space`;
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) return `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  return undefined;
}

/**
 * Throws TakeoutError('USAGE') naming the key unless it is a relative, '/'-separated path with no
 * absolute/drive/UNC form, no backslash, no `..`/`.`/empty segment, no NUL or control character,
 * no Windows reserved device name, no segment ending in a dot or space and no segment over 255 bytes.
 */
export function assertSafeKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined) reject(key, problem);
}

/**
 * A listing prefix is a key, a key followed by '/', or a key with an unfinished last segment
 * (`tables/orders.`): everything up to the last '/' must be safe; the rest only needs to be printable.
 */
export function assertSafePrefix(prefix: string): void {
  if (prefix === '') return;
  if (CONTROL_CHARS.test(prefix)) reject(prefix, 'it contains a NUL or control character');
  if (prefix.includes('\\')) reject(prefix, 'it contains a backslash');
  const slash = prefix.lastIndexOf('/');
  if (slash === -1) return;
  const folder = prefix.slice(0, slash);
  if (folder === '') reject(prefix, 'it is an absolute path');
  assertSafeKey(folder);
}

/**
 * Resolve `key` under `root` and prove the result stays inside it (path.relative, not string
 * prefixes, so `/data-evil` is not mistaken for a child of `/data`). Returns the absolute path.
 */
export function joinInside(root: string, key: string): string {
  assertSafeKey(key);
  const base = path.resolve(root);
  const target = path.resolve(base, ...key.split('/'));
  const relative = path.relative(base, target);
  if (
    relative === '' ||
    relative === '..' ||
    relative.startsWith(`..${path.sep}`) ||
    path.isAbsolute(relative)
  ) {
    reject(key, `it resolves outside ${base}`);
  }
  return target;
}

/**
 * The first two keys that name the same file on a case-insensitive file system (macOS and Windows
 * by default), compared after NFC normalisation because macOS also treats composed and decomposed
 * accents as one name. Equal keys are a collision too. Returns them in the order they came, or
 * undefined when every key is distinct. Only for keys takeout did not choose itself (manifest
 * entries, table ids): written to one local folder, the second would silently replace the first.
 */
export function findCaseCollision(keys: Iterable<string>): [string, string] | undefined {
  const seen = new Map<string, string>();
  for (const key of keys) {
    const folded = key.normalize('NFC').toLowerCase();
    const earlier = seen.get(folded);
    if (earlier !== undefined) return [earlier, key];
    seen.set(folded, key);
  }
  return undefined;
}
