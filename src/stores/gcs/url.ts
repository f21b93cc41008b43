/** `gs://bucket/prefix` URLs: the bucket, and a prefix that is safe as a key prefix; credentials refused. */
import { TakeoutError } from '../../errors.js';
import { redact, registerSecret } from '../../secrets.js';
import { keyProblem } from '../keys.js';

export interface GcsLocation {
  bucket: string;
  /** '' or a '/'-terminated prefix without leading or doubled slashes. */
  prefix: string;
}

/**
 * Bucket names (https://cloud.google.com/storage/docs/buckets#naming): lower-case letters, digits, '-', '_'
 * and '.', starting and ending with a letter or digit, 3-63 characters (up to 222 with dots, each dot-separated
 * part at most 63), never an IP address, never starting with "goog" or containing "google".
 */
const BUCKET_CHARS = /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;
const MIN_BUCKET = 3;
const MAX_BUCKET = 63;
const MAX_DOTTED_BUCKET = 222;

/** Why `bucket` is not a valid bucket name, or undefined when it is. */
export function bucketProblem(bucket: string): string | undefined {
  if (!BUCKET_CHARS.test(bucket)) return 'use lower-case letters, digits, -, _ and ., starting and ending with a letter or digit';
  const max = bucket.includes('.') ? MAX_DOTTED_BUCKET : MAX_BUCKET;
  if (bucket.length < MIN_BUCKET || bucket.length > max) return `a bucket name has ${MIN_BUCKET} to ${max} characters`;
  if (bucket.split('.').some((part) => part.length > MAX_BUCKET || part === '')) return 'each dot-separated part has 1 to 63 characters';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return 'a bucket name is not an IP address';
  if (bucket.startsWith('goog') || bucket.includes('google')) return 'a bucket name neither starts with "goog" nor contains "google"';
  return undefined;
}

/** `gs://b`, `gs://b/`, `gs://b//a/b` → `{bucket: 'b', prefix: '' | 'a/b/'}`. */
export function parseGcsUrl(url: string): GcsLocation {
  if (!/^gs:\/\//i.test(url)) {
    throw new TakeoutError('USAGE', `not a gs:// URL: ${redact(url)}`);
  }
  const rest = url.slice('gs://'.length);
  const userInfo = /^([^/@]*)@/.exec(rest);
  if (userInfo) {
    // Registered before anything names the URL, then refused: a URL is printed, logged and kept in manifests.
    registerSecret(userInfo[1]);
    throw new TakeoutError('USAGE', `gs://***@${rest.slice(userInfo[0].length).split('/')[0] ?? ''}/: credentials do not belong in a gs:// URL`, {
      hint: 'use Google application default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login) or GOOGLE_OAUTH_ACCESS_TOKEN',
    });
  }
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const problem = bucketProblem(bucket);
  if (problem !== undefined) {
    throw new TakeoutError('USAGE', `invalid bucket name ${JSON.stringify(redact(bucket))} in ${redact(url)}`, {
      hint: `${problem}: gs://bucket/prefix`,
    });
  }
  const segments = (slash === -1 ? '' : rest.slice(slash + 1)).split('/').filter((segment) => segment !== '');
  const prefix = segments.length === 0 ? '' : `${segments.join('/')}/`;
  if (prefix !== '') {
    const keyIssue = keyProblem(prefix.slice(0, -1));
    if (keyIssue !== undefined) {
      throw new TakeoutError('USAGE', `unsafe prefix in ${redact(url)}: ${keyIssue}`);
    }
  }
  return { bucket, prefix };
}
