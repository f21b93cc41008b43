import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TakeoutError } from '../errors.js';
import { isAzureUrl } from './azure/url.js';
import type { Store, StoreOptions } from './store.js';

/**
 * Which destination a `--dest` value names. `s3://…` is S3; `azure://…` and
 * `https://ACCOUNT.blob.core.windows.net/…` are Azure Blob Storage; `gs://…` is Google Cloud Storage;
 * `file://…` and a plain path are a local folder (resolved to an absolute path). The adapters are loaded
 * only when used, so a local run never loads a cloud SDK.
 */
export type ParsedStore = { kind: 'local'; path: string } | { kind: 's3'; url: string } | { kind: 'azure'; url: string } | { kind: 'gs'; url: string };

/**
 * Stores people reach for that takeout does not write to yet: named, so `wasbs://c/x` is a clear usage
 * error and never a local folder `./wasbs:/c/x`.
 */
const NOT_YET_SUPPORTED: Readonly<Record<string, string>> = {
  az: 'Azure Blob Storage',
  abfs: 'Azure Data Lake Storage',
  abfss: 'Azure Data Lake Storage',
  wasb: 'Azure Blob Storage',
  wasbs: 'Azure Blob Storage',
};

/** A URL scheme (RFC 3986 §3.1: a letter, then letters, digits, + - .), case-insensitive. */
const SCHEME_COLON = /^([a-z][a-z0-9+.-]*):/i;
/** A store scheme whose colon was left out: `s3//bucket/x`. */
const SCHEME_NO_COLON = /^(s3|file|gs|gcs|az|azure|abfss?|wasbs?|https?)\/\/+/i;

/** `scheme:` or `scheme://` followed by user info (`user:password@`), which no message repeats. */
const USER_INFO = /^([a-z][a-z0-9+.-]*:\/*)[^/@]*@/i;

/** A URL-like value fit for messages: its user info masked, quoted so control characters are escaped. */
export function shown(text: string): string {
  return JSON.stringify(text.replace(USER_INFO, '$1***@'));
}

/**
 * Why a value meant as a local path looks like a mistyped URL (`s3:/b/x`, `s3:b`, `s3//b`, `foo:x`) or,
 * on POSIX, a Windows path (`C:\x`), or undefined when it is a plain path. Used for every argument that
 * takes a folder or a store URL, so a typo is refused instead of becoming a folder named `s3:`.
 * A leading `./` or an absolute path is always a plain path: that is how to name a folder `s3:odd`.
 */
export function mistypedUrl(value: string, what: string, platform: NodeJS.Platform = process.platform): TakeoutError | undefined {
  const literal = `write ./${value.replace(USER_INFO, '$1***@')} for a local path of that name`;
  const missing = SCHEME_NO_COLON.exec(value);
  if (missing) {
    const scheme = missing[1]!.toLowerCase();
    return new TakeoutError('USAGE', `${what} ${shown(value)} looks like a URL with its ':' left out`, {
      hint: `did you mean ${shown(`${scheme}://${value.slice(missing[0].length)}`)}? Or ${literal}`,
    });
  }
  const scheme = SCHEME_COLON.exec(value)?.[1];
  if (scheme === undefined) return undefined;
  if (scheme.length === 1) {
    // A drive letter: a path on Windows, a strange relative folder name anywhere else.
    if (platform === 'win32') return undefined;
    return new TakeoutError('USAGE', `${what} ${shown(value)} looks like a Windows path`, { hint: `give a path of this system, or ${literal}` });
  }
  const rest = value.slice(scheme.length + 1);
  if (rest.startsWith('//')) return undefined; // a whole URL: the caller decides whether it takes that scheme
  return new TakeoutError('USAGE', `${what} ${shown(value)} looks like a mistyped URL`, {
    hint: `did you mean ${shown(`${scheme.toLowerCase()}://${rest.replace(/^\/+/, '')}`)}? Or ${literal}`,
  });
}

/** The usage error for a `scheme://` takeout does not write to. */
function unsupported(dest: string, scheme: string, what: string): TakeoutError {
  if (scheme.toLowerCase() === 'gcs') {
    return new TakeoutError('USAGE', `${what} ${shown(dest)}: Google Cloud Storage is written gs://`, {
      hint: `did you mean ${shown(`gs://${dest.slice('gcs://'.length)}`)}?`,
    });
  }
  const store = NOT_YET_SUPPORTED[scheme.toLowerCase()];
  if (store !== undefined) {
    return new TakeoutError('USAGE', `${what} ${shown(dest)}: ${store} (${scheme.toLowerCase()}://) is not supported yet`, {
      hint: 'use s3://bucket/prefix (any S3-compatible store through --endpoint-url), azure://container/prefix or a local folder',
    });
  }
  return new TakeoutError('USAGE', `${what} ${shown(dest)}: unsupported destination`, {
    hint: 'use a folder path, file://PATH, s3://bucket/prefix or azure://container/prefix',
  });
}

export function parseStore(dest: string, what = 'destination'): ParsedStore {
  if (typeof dest !== 'string' || dest.trim() === '') {
    throw new TakeoutError('USAGE', `the ${what} is empty`, { hint: 'give a folder path or s3://bucket/prefix' });
  }
  // Schemes are case-insensitive (RFC 3986 §3.1): S3://b/x is s3://b/x.
  if (/^s3:\/\//i.test(dest)) return { kind: 's3', url: `s3://${dest.slice('s3://'.length)}` };
  if (/^gs:\/\//i.test(dest)) return { kind: 'gs', url: `gs://${dest.slice('gs://'.length)}` };
  if (/^azure:\/\//i.test(dest)) return { kind: 'azure', url: `azure://${dest.slice('azure://'.length)}` };
  if (isAzureUrl(dest)) return { kind: 'azure', url: dest };
  if (/^file:/i.test(dest)) {
    let local: string;
    try {
      local = fileURLToPath(dest);
    } catch (error) {
      throw new TakeoutError('USAGE', `invalid file URL ${shown(dest)}`, { cause: error, hint: 'use file:///absolute/path or a plain path' });
    }
    return { kind: 'local', path: path.resolve(local) };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(dest)?.[1];
  if (scheme !== undefined) throw unsupported(dest, scheme, what);
  const mistyped = mistypedUrl(dest, what);
  if (mistyped) throw mistyped;
  return { kind: 'local', path: path.resolve(dest) };
}

/**
 * A destination as the commands pass it on: checked (mistyped URLs are usage errors before anything
 * is opened), with a lower-case `s3://`, `gs://` or `azure://` so every `startsWith('s3://')` after it holds.
 */
export function checkedStore(dest: string, what = '--dest'): string {
  const parsed = parseStore(dest, what);
  return parsed.kind === 'local' ? dest : parsed.url;
}

export async function openStore(dest: string, options: StoreOptions = {}): Promise<Store> {
  const parsed = parseStore(dest);
  if (parsed.kind === 's3') {
    const { createS3Store } = await import('./s3/store.js');
    return createS3Store(parsed.url, options);
  }
  if (parsed.kind === 'gs') {
    const { createGcsStore } = await import('./gcs/store.js');
    return createGcsStore(parsed.url, options);
  }
  if (parsed.kind === 'azure') {
    const { createAzureStore } = await import('./azure/store.js');
    return createAzureStore(parsed.url, options);
  }
  const { createLocalStore } = await import('./local/store.js');
  return createLocalStore(parsed.path, options);
}
