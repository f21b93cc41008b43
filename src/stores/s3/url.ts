/** `s3://bucket/prefix` URLs: the bucket, and a prefix that is safe as a key prefix; credentials refused. */
import { TakeoutError } from '../../errors.js';
import { redact, registerSecret } from '../../secrets.js';
import { keyProblem } from '../keys.js';

export interface S3Location {
  bucket: string;
  /** '' or a '/'-terminated prefix without leading or doubled slashes. */
  prefix: string;
}

/** Lenient on purpose: legacy us-east-1 buckets may hold capitals and underscores. */
const BUCKET_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}[A-Za-z0-9])?$/;

/** `s3://b`, `s3://b/`, `s3://b//a/b` → `{bucket: 'b', prefix: '' | 'a/b/'}`. */
export function parseS3Url(url: string): S3Location {
  if (!/^s3:\/\//i.test(url)) {
    throw new TakeoutError('USAGE', `not an s3:// URL: ${redact(url)}`);
  }
  const rest = url.slice('s3://'.length);
  // `s3://KEY:SECRET@bucket/`: the user never has a '/', the secret may (AWS secret keys do, unencoded).
  const userInfo = /^([^:/@]*):([^@]*)@/.exec(rest);
  if (userInfo) {
    // Registered before anything names the URL, then refused: a URL is printed, logged and kept in manifests.
    registerSecret(userInfo[2]);
    registerSecret(userInfo[1]);
    throw new TakeoutError('USAGE', `s3://***@${rest.slice(userInfo[0].length).split('/')[0] ?? ''}/: credentials do not belong in an s3:// URL`, {
      hint: 'give them as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, --profile, or --access-key-id and --secret-access-key',
    });
  }
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  if (!BUCKET_NAME.test(bucket)) {
    throw new TakeoutError('USAGE', `invalid bucket name ${JSON.stringify(redact(bucket))} in ${redact(url)}`, {
      hint: 'use s3://bucket/prefix',
    });
  }
  const segments = (slash === -1 ? '' : rest.slice(slash + 1)).split('/').filter((segment) => segment !== '');
  const prefix = segments.length === 0 ? '' : `${segments.join('/')}/`;
  if (prefix !== '') {
    const problem = keyProblem(prefix.slice(0, -1));
    if (problem !== undefined) {
      throw new TakeoutError('USAGE', `unsafe prefix in ${redact(url)}: ${problem}`);
    }
  }
  return { bucket, prefix };
}
