/** S3 failures as TakeoutErrors, and the few SDK answers the store and its client act on rather than report. */
import { AUTH_CODES, sanitizedCause, shapeOf, TIMEOUT_NAMES } from '../../aws/errors.js';
import type { SdkErrorShape } from '../../aws/errors.js';
import { errnoOf, isNetworkErrno, oneLine, TakeoutError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import { redact } from '../../secrets.js';

export interface S3ErrorContext {
  bucket: string;
  /** The full object key (prefix included), when the operation is about one object. */
  key?: string;
  /** SDK operation name, e.g. HeadBucket, PutObject. */
  operation: string;
  /** Where the bucket lives, for messages: `http://127.0.0.1:4568` or `region eu-west-1`. */
  where: string;
}

/**
 * The one place S3 failures become TakeoutErrors: one line, naming the bucket/key/endpoint,
 * with every piece of SDK text passed through `redact`.
 */
export function mapS3Error(error: unknown, context: S3ErrorContext): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const shape = shapeOf(error);
  const name = typeof shape.name === 'string' ? shape.name : '';
  const awsCode = typeof shape.Code === 'string' ? shape.Code : name;
  const status = shape.$metadata?.httpStatusCode;
  const errno = errnoOf(shape);
  const rawMessage = typeof shape.message === 'string' ? shape.message : String(error);
  const target = context.key === undefined ? `bucket ${context.bucket}` : `s3://${context.bucket}/${context.key}`;
  const details: Record<string, unknown> = {
    bucket: context.bucket,
    operation: context.operation,
    ...(context.key === undefined ? {} : { key: context.key }),
    ...(status === undefined ? {} : { status }),
    ...(awsCode ? { awsCode } : {}),
    ...(errno === undefined ? {} : { errno }),
    ...(shape.$metadata?.requestId ? { requestId: shape.$metadata.requestId } : {}),
  };
  const cause = sanitizedCause(error, shape, name, errno);
  const make = (code: ErrorCode, message: string, hint?: string): TakeoutError =>
    new TakeoutError(code, redact(oneLine(message)), { cause, details, ...(hint === undefined ? {} : { hint }) });

  if (name === 'AbortError') return make('INTERRUPTED', `${context.operation} ${target} was aborted`);
  // The SDK's response checksum check (GetObject with ChecksumMode) fails at the end of the body stream.
  const mismatch = CHECKSUM_MISMATCH.exec(rawMessage);
  if (mismatch) {
    return make('INTEGRITY', `${target}: the bytes received do not match the ${mismatch[1] ?? 'checksum'} header the server sent`, 'fetch it again; if it fails again, the stored object is corrupt');
  }
  if (TIMEOUT_NAMES.has(name) || TIMEOUT_NAMES.has(awsCode) || errno === 'ETIMEDOUT') {
    return make('NETWORK', `no answer from ${context.where} in time (${context.operation} ${target})`);
  }
  if (isNetworkErrno(errno)) {
    return make('NETWORK', `cannot reach ${context.where} (${errno}) for ${target}`);
  }
  if (name === 'CredentialsProviderError') {
    return make(
      'AUTH',
      `no usable AWS credentials for ${target}: ${rawMessage}`,
      'set --profile, --access-key-id/--secret-access-key, or the standard AWS environment',
    );
  }
  if (awsCode === 'NoSuchBucket' || (status === 404 && context.operation === 'HeadBucket')) {
    return make('NOT_FOUND', `bucket ${context.bucket} does not exist (${context.where})`);
  }
  if (awsCode === 'NoSuchKey' || awsCode === 'NotFound' || status === 404) {
    return make('NOT_FOUND', `${target} does not exist`);
  }
  if (awsCode === 'ExpiredToken' || awsCode === 'TokenRefreshRequired') {
    return make('AUTH', `the AWS credentials have expired (${awsCode}) for bucket ${context.bucket}`, 'refresh the session credentials and run again');
  }
  if (awsCode === 'InvalidAccessKeyId' || awsCode === 'InvalidClientTokenId') {
    return make('AUTH', `the AWS access key id is not valid (${awsCode}) for bucket ${context.bucket}`);
  }
  if (awsCode === 'SignatureDoesNotMatch') {
    return make('AUTH', `the AWS secret access key does not match the access key id (SignatureDoesNotMatch) for bucket ${context.bucket}`);
  }
  if (isBareHead400(context.operation, awsCode, status)) {
    return make('AUTH', `${context.operation} ${target} answered 400 with no error code: the AWS credentials or session token have probably expired (bucket ${context.bucket})`, 'refresh the session credentials and run again; a wrong --region can also cause this');
  }
  if (AUTH_CODES.has(awsCode) || status === 401 || status === 403) {
    const absentOrDenied =
      context.operation === 'HeadObject' ? ' (without s3:ListBucket a missing object also answers 403)' : '';
    return make(
      'AUTH',
      `access denied (${awsCode && awsCode !== 'Unknown' ? awsCode : status}) for ${context.operation} ${target}${absentOrDenied}`,
      'check the credentials, the bucket policy and --expected-bucket-owner',
    );
  }
  if (awsCode === 'InvalidRange' || status === 416) {
    return make('USAGE', `the requested byte range is outside ${target}`);
  }
  if (awsCode === 'PreconditionFailed' || status === 412) {
    return make('EXISTS', `${target} already exists at the destination`);
  }
  // Another conditional write (or a delete) of the same key raced this one. AWS says to redo the upload,
  // but a create-only write racing another writer is two runs aiming at one destination: refused as EXISTS.
  if (awsCode === 'ConditionalRequestConflict') {
    return make('EXISTS', `${target} was being written by another client at the same time (ConditionalRequestConflict)`, 'make sure only one run writes to this destination, then run again');
  }
  if (awsCode === 'NotImplemented' || status === 501) {
    return make('FAILED', `${context.where} does not implement ${context.operation} (needed for ${target})`);
  }
  const what = awsCode && awsCode !== 'Error' ? `${awsCode}: ${rawMessage}` : rawMessage;
  return make('FAILED', `${context.operation} ${target} failed${status ? ` (HTTP ${status})` : ''}: ${what}`);
}

/** `Checksum mismatch: expected "…" but received "…" in response header "x-amz-checksum-crc32".` */
const CHECKSUM_MISMATCH = /^Checksum mismatch\b.*?(?:in response header "([^"]+)")?\.?$/s;

/** 403 codes that already say why; a bodiless HEAD 403 carries none of them (the SDK names it Forbidden, 403 or Unknown). */
export const INFORMATIVE_403 = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled']);

/** A HEAD answer has no body, so an S3 error code cannot reach the SDK: S3 answers an expired session token with a bare 400. */
export function isBareHead400(operation: string, awsCode: string, status: number | undefined): boolean {
  return (operation === 'HeadBucket' || operation === 'HeadObject') && (!awsCode || awsCode === 'Unknown') && status === 400;
}

export function isNotImplemented(error: unknown): boolean {
  const shape = (error ?? {}) as SdkErrorShape;
  return shape.name === 'NotImplemented' || shape.Code === 'NotImplemented' || shape.$metadata?.httpStatusCode === 501;
}

export function isNotFound(error: unknown): boolean {
  const shape = (error ?? {}) as SdkErrorShape;
  return (
    shape.name === 'NotFound' ||
    shape.name === 'NoSuchKey' ||
    shape.Code === 'NoSuchKey' ||
    shape.$metadata?.httpStatusCode === 404
  );
}
