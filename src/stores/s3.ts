/**
 * An S3 (or S3-compatible) prefix as a destination.
 *
 * It imports `@aws-sdk/*` (as the DynamoDB source does); both are loaded by their registries with a
 * dynamic import, so the CLI pays for the SDK only when an s3:// destination or a dynamodb: source is used.
 */
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { PutObjectCommandInput, S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { buildAwsClient } from '../aws/client.js';
import { configuredEndpoint, displayEndpoint } from '../aws/endpoints.js';
import { AUTH_CODES, sanitizedCause, shapeOf, TIMEOUT_NAMES } from '../aws/errors.js';
import type { SdkErrorShape } from '../aws/errors.js';
import { errnoOf, isNetworkErrno, oneLine, TakeoutError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { redact, registerSecret } from '../secrets.js';
import type {
  ByteRange,
  Store,
  StoreOptions,
  Leftover,
  ObjectInfo,
  ObjectWriter,
  S3Options,
  WriteOptions,
  WrittenObject,
} from './store.js';
import { assertSafeKey, assertSafePrefix, keyProblem } from './keys.js';
import { logSdkRequests } from './network.js';
import { throttledStore } from './throttled.js';

/**
 * 120 s: from the first byte sent to the response headers, including the body of one part
 * (8 MiB in 120 s is ~70 KB/s, slower than any link we support). Without it a silent server hangs forever.
 */
export const REQUEST_TIMEOUT_MS = 120_000;
/** 60 s: a socket idle this long in either direction (e.g. mid-download) means the server went silent. */
export const SOCKET_TIMEOUT_MS = 60_000;

const MiB = 1024 * 1024;
/** 8 MiB parts: 10,000 parts × 8 MiB = 78 GiB per object, plenty for slices. */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** S3 rejects non-final parts under 5 MiB. */
export const MIN_PART_SIZE = 5 * MiB;
/** S3 rejects parts over 5 GiB. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
export const DEFAULT_PART_CONCURRENCY = 4;
/** DeleteObjects takes at most 1000 keys per call. */
const DELETE_BATCH = 1000;
/** ListObjectsV2 returns at most 1000 keys per page. */
const MAX_LIST_PAGE = 1000;
/** Buffered in the writer's pipe before write() waits for the uploader (on top of the parts in flight). */
const WRITE_BUFFER_BYTES = 1 * MiB;

export interface S3StoreOptions extends StoreOptions {
  /** Keys per ListObjectsV2 page (default and maximum 1000); tests set it low to exercise paging. */
  listPageSize?: number;
}

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

function stripQuotes(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^"|"$/g, '');
}

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

/** A HEAD answer has no body, so an S3 error code cannot reach the SDK: S3 answers an expired session token with a bare 400. */
/** 403 codes that already say why; a bodiless HEAD 403 carries none of them (the SDK names it Forbidden, 403 or Unknown). */
const INFORMATIVE_403 = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled']);

function isBareHead400(operation: string, awsCode: string, status: number | undefined): boolean {
  return (operation === 'HeadBucket' || operation === 'HeadObject') && (!awsCode || awsCode === 'Unknown') && status === 400;
}

function isNotImplemented(error: unknown): boolean {
  const shape = (error ?? {}) as SdkErrorShape;
  return shape.name === 'NotImplemented' || shape.Code === 'NotImplemented' || shape.$metadata?.httpStatusCode === 501;
}

function isNotFound(error: unknown): boolean {
  const shape = (error ?? {}) as SdkErrorShape;
  return (
    shape.name === 'NotFound' ||
    shape.name === 'NoSuchKey' ||
    shape.Code === 'NoSuchKey' ||
    shape.$metadata?.httpStatusCode === 404
  );
}

function checkRange(range: ByteRange, what: string): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new TakeoutError('USAGE', `invalid byte range ${start}-${end} for ${what}`, { details: { range } });
  }
}

/** Re-emit a stream's errors as TakeoutErrors; destroying the result releases the socket. */
function withMappedErrors(source: Readable, map: (error: unknown) => TakeoutError): Readable {
  const out = new PassThrough();
  source.on('error', (error) => out.destroy(map(error)));
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(out);
  return out;
}

function parseContentRange(header: string | undefined): { start: number; total: number | undefined } | undefined {
  const match = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}

/** Drop the first `skip` bytes, pass `length` bytes, then end and release the source. */
function sliceStream(source: Readable, skip: number, length: number): Readable {
  let toSkip = skip;
  let remaining = length;
  const out = new PassThrough();
  source.on('data', (chunk: Buffer) => {
    let piece = chunk;
    if (toSkip > 0) {
      const dropped = Math.min(toSkip, piece.length);
      toSkip -= dropped;
      piece = piece.subarray(dropped);
    }
    if (piece.length > 0 && remaining > 0) {
      const kept = piece.subarray(0, remaining);
      remaining -= kept.length;
      if (!out.write(kept)) source.pause();
    }
    if (remaining === 0) {
      out.end();
      source.destroy();
    }
  });
  out.on('drain', () => source.resume());
  source.on('end', () => out.end());
  source.on('error', (error) => out.destroy(error));
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  if (remaining === 0) {
    out.end();
    source.destroy();
  }
  return out;
}

function buildS3Client(s3: S3Options, region: string, endpoint: string | undefined): S3Client {
  const requestTimeoutMs = s3.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const extra: Partial<S3ClientConfig> = {};
  if (endpoint !== undefined) {
    extra.forcePathStyle = true;
    // The default (WHEN_SUPPORTED) streams aws-chunked bodies with trailing checksums; servers that do
    // not speak it (s3rver, some versions of others) store the chunk framing as object bytes.
    extra.requestChecksumCalculation = 'WHEN_REQUIRED';
    extra.responseChecksumValidation = 'WHEN_REQUIRED';
  } else {
    if (s3.forcePathStyle) extra.forcePathStyle = true;
    // A bucket in another region answers 301; let the SDK follow it instead of failing. This never
    // follows a Location: the SDK re-signs for the region in x-amz-bucket-region and builds the AWS
    // endpoint of that region itself (@aws-sdk/middleware-sdk-s3, region-redirect-middleware).
    // Any other 3xx is an error: node-http-handler uses http.request, which does not follow redirects.
    extra.followRegionRedirects = true;
  }
  return buildAwsClient(
    S3Client,
    {
      ...s3,
      region,
      ...(endpoint === undefined ? {} : { endpoint }),
      requestTimeoutMs,
      // An idle socket never outlives a shorter request timeout.
      socketTimeoutMs: Math.min(SOCKET_TIMEOUT_MS, requestTimeoutMs),
      credentialChain: 'takeout',
    },
    extra,
  );
}

/** S3 error codes for credentials that were good when the client took them and are not any more. */
const EXPIRED_CREDENTIAL_CODES = new Set(['ExpiredToken', 'RequestExpired', 'TokenRefreshRequired']);

function isExpiredCredentials(error: unknown, commandName: string | undefined): boolean {
  const shape = (error ?? {}) as SdkErrorShape;
  const name = typeof shape.name === 'string' ? shape.name : '';
  const awsCode = typeof shape.Code === 'string' ? shape.Code : name;
  if (EXPIRED_CREDENTIAL_CODES.has(awsCode)) return true;
  return isBareHead400((commandName ?? '').replace(/Command$/, ''), awsCode, shape.$metadata?.httpStatusCode);
}

/** A body that can be sent again as it is: none, bytes or text. A stream is used up by the first attempt. */
function isResendable(body: unknown): boolean {
  return body === undefined || typeof body === 'string' || body instanceof Uint8Array;
}

/** What one destination's client has learnt about resending; shared by all its requests. */
interface ResendPolicy {
  /** Cleared for good when the store answers 501 to `If-None-Match`: later writes go without it. */
  conditionalWrites: boolean;
  /** False for static keys given as flags: there is nothing to refresh them from. */
  refreshable: boolean;
}

/**
 * Sends a failed request once more in two cases the SDK's retries leave alone, and only when its body can
 * be sent again (our puts and lib-storage's parts are Buffers):
 * - Expired credentials that can be refreshed (profile, SSO, role, credential_process): the SDK renews them
 *   only within 5 minutes of the expiration it was given, so a token that dies earlier keeps failing.
 *   One forced refresh is shared by every request that failed on the old token. Static keys (no expiration)
 *   and a refresh that brings back the same keys are not retried: the expiry message tells the user what to do.
 * - A store that answers 501 NotImplemented to `If-None-Match`: remembered, and the request sent again
 *   without it, with no message. The create-only guard then rests on the HEAD made before a run.
 */
function installResendOnce(client: S3Client, policy: ResendPolicy): void {
  let generation = 0;
  let refreshed: Promise<boolean> = Promise.resolve(false);
  const refresh = (seen: number): Promise<boolean> => {
    // Refreshed since this request was signed: the new credentials are already there.
    if (seen !== generation) return refreshed;
    generation += 1;
    refreshed = (async () => {
      const before = await client.config.credentials();
      if (before.expiration === undefined) return false;
      const after = await client.config.credentials({ forceRefresh: true });
      return after.accessKeyId !== before.accessKeyId || after.sessionToken !== before.sessionToken;
    })().catch(() => false);
    return refreshed;
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const seen = generation;
      try {
        return await next(args);
      } catch (error) {
        const input = args.input as Record<string, unknown>;
        if (!isResendable(input.Body)) throw error;
        if (input.IfNoneMatch !== undefined && isNotImplemented(error)) {
          policy.conditionalWrites = false;
          const without = { ...input };
          delete without.IfNoneMatch;
          return next({ ...args, input: without as typeof args.input });
        }
        if (policy.refreshable && isExpiredCredentials(error, context.commandName) && (await refresh(seen))) {
          return next(args);
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'takeoutResendOnce', override: true },
  );
}

type WriterState = 'open' | 'finishing' | 'finished' | 'aborted' | 'failed';
type Outcome = { ok: true; etag: string | undefined } | { ok: false; error: unknown };

interface S3WriterContext {
  client: S3Client;
  bucket: string;
  partSize: number;
  queueSize: number;
  owner: { ExpectedBucketOwner?: string };
  params(fullKey: string, options: WriteOptions): PutObjectCommandInput;
  map(error: unknown, operation: string, fullKey?: string): TakeoutError;
}

/**
 * Streams one object to S3. The multipart Upload starts lazily on the first non-empty write:
 * an object that stays empty is written with a plain PutObject of an empty Buffer, because
 * lib-storage's done() can hang on an empty stream (aws-sdk-js-v3 #6118).
 */
class S3Writer implements ObjectWriter {
  private state: WriterState = 'open';
  private bytes = 0;
  private body: PassThrough | undefined;
  private upload: Upload | undefined;
  private outcome: Promise<Outcome> | undefined;
  private torndown: Promise<void> | undefined;
  private readonly onAbortSignal = (): void => {
    void this.abort();
  };

  constructor(
    private readonly context: S3WriterContext,
    private readonly key: string,
    private readonly fullKey: string,
    private readonly options: WriteOptions,
  ) {
    options.signal?.addEventListener('abort', this.onAbortSignal, { once: true });
  }

  async write(chunk: Buffer): Promise<void> {
    this.assertOpen();
    if (chunk.length === 0) return;
    const { body, outcome } = this.start();
    this.bytes += chunk.length;
    if (body.write(chunk)) return;
    const settled = await waitForDrain(body, outcome);
    if (settled === undefined) return;
    if (this.isAborted()) throw this.interrupted();
    // The upload ended while we still had bytes to give: it failed.
    const error = settled.ok
      ? new TakeoutError('FAILED', `upload of s3://${this.context.bucket}/${this.fullKey} ended before all bytes were written`)
      : this.context.map(settled.error, 'UploadPart', this.fullKey);
    await this.failWith();
    throw error;
  }

  async finish(): Promise<WrittenObject> {
    this.assertOpen();
    this.state = 'finishing';
    const expected = this.options.contentLength;
    if (expected !== undefined && expected !== this.bytes) {
      await this.failWith();
      throw new TakeoutError(
        'INTEGRITY',
        `s3://${this.context.bucket}/${this.fullKey}: expected ${expected} bytes but ${this.bytes} were written`,
        { details: { bucket: this.context.bucket, key: this.fullKey, expected, written: this.bytes } },
      );
    }
    let etag: string | undefined;
    try {
      if (this.upload === undefined) {
        const result = await this.context.client.send(
          new PutObjectCommand({
            ...this.context.params(this.fullKey, this.options),
            Body: Buffer.alloc(0),
            ContentLength: 0,
          }),
          this.options.signal ? { abortSignal: this.options.signal } : {},
        );
        etag = result.ETag;
      } else {
        this.body?.end();
        const outcome = await (this.outcome as Promise<Outcome>);
        if (!outcome.ok) throw outcome.error;
        etag = outcome.etag;
      }
    } catch (error) {
      if (this.isAborted()) throw this.interrupted();
      const mapped = this.context.map(error, this.upload ? 'Upload' : 'PutObject', this.fullKey);
      await this.failWith();
      throw mapped;
    }
    if (this.isAborted()) {
      // Aborted while the last request was in flight and it still succeeded: take the object back.
      await this.context.client
        .send(new DeleteObjectCommand({ Bucket: this.context.bucket, Key: this.fullKey, ...this.context.owner }))
        .catch(() => undefined);
      throw this.interrupted();
    }
    this.state = 'finished';
    this.detach();
    const written: WrittenObject = { key: this.key, size: this.bytes };
    const tag = stripQuotes(etag);
    if (tag !== undefined) written.etag = tag;
    return written;
  }

  async abort(): Promise<void> {
    if (this.state === 'finished') return;
    if (this.state !== 'failed') this.state = 'aborted';
    this.detach();
    await this.teardown();
  }

  private start(): { body: PassThrough; outcome: Promise<Outcome> } {
    if (this.body && this.outcome) return { body: this.body, outcome: this.outcome };
    const body = new PassThrough({ highWaterMark: WRITE_BUFFER_BYTES });
    // We only ever destroy it without an error; the uploader reports its own failures through done().
    body.on('error', () => undefined);
    const upload = new Upload({
      client: this.context.client,
      params: { ...this.context.params(this.fullKey, this.options), Body: body },
      partSize: this.context.partSize,
      queueSize: this.context.queueSize,
      // lib-storage would abort the multipart upload itself, and when that abort fails its error replaces the
      // part's (the user sees "405 MethodNotAllowed" instead of the 500 that broke the upload). teardown()
      // aborts the upload and ignores the abort's own failure, so the real error is the one reported.
      leavePartsOnError: true,
    });
    const outcome = upload.done().then(
      (result): Outcome => ({ ok: true, etag: result.ETag }),
      (error: unknown): Outcome => ({ ok: false, error }),
    );
    this.body = body;
    this.upload = upload;
    this.outcome = outcome;
    return { body, outcome };
  }

  private isAborted(): boolean {
    return (this.state as WriterState) === 'aborted';
  }

  private interrupted(): TakeoutError {
    return new TakeoutError('INTERRUPTED', `upload of s3://${this.context.bucket}/${this.fullKey} was aborted`, {
      details: { bucket: this.context.bucket, key: this.fullKey },
    });
  }

  private assertOpen(): void {
    if (this.state === 'open') return;
    if (this.state === 'aborted') throw this.interrupted();
    const where = `s3://${this.context.bucket}/${this.fullKey}`;
    if (this.state === 'failed') throw new TakeoutError('FAILED', `writer for ${where} failed earlier and cannot be used`);
    throw new TakeoutError('FAILED', `writer for ${where} is already finished`);
  }

  private async failWith(): Promise<void> {
    this.state = 'failed';
    this.detach();
    await this.teardown();
  }

  private detach(): void {
    this.options.signal?.removeEventListener('abort', this.onAbortSignal);
  }

  /**
   * Stop the upload and make sure no multipart upload is left behind. lib-storage aborts the
   * multipart upload itself once its part uploaders stop; we also send AbortMultipartUpload
   * right away (S3 documents that an abort racing in-flight parts may need repeating).
   * Failures of the abort itself are swallowed: the caller already has the real error.
   */
  private teardown(): Promise<void> {
    this.torndown ??= (async () => {
      const upload = this.upload;
      if (!upload) return;
      await upload.abort().catch(() => undefined);
      this.body?.destroy();
      await this.outcome;
      const uploadId = upload.uploadId;
      if (uploadId) {
        await this.context.client
          .send(
            new AbortMultipartUploadCommand({
              Bucket: this.context.bucket,
              Key: this.fullKey,
              UploadId: uploadId,
              ...this.context.owner,
            }),
          )
          .catch(() => undefined);
      }
    })();
    return this.torndown;
  }
}

/** Resolves undefined on 'drain', or with the upload's outcome if it settles first. */
function waitForDrain(body: PassThrough, outcome: Promise<Outcome>): Promise<Outcome | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (value: Outcome | undefined): void => {
      if (done) return;
      done = true;
      body.off('drain', onDrain);
      body.off('close', onClose);
      resolve(value);
    };
    const onDrain = (): void => finish(undefined);
    const onClose = (): void => {
      void outcome.then(finish);
    };
    body.on('drain', onDrain);
    body.on('close', onClose);
    void outcome.then(finish);
  });
}

class S3Store implements Store {
  readonly description: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly where: string;
  private readonly s3: S3Options;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly listPageSize: number;
  private readonly policy: ResendPolicy;

  constructor(url: string, options: S3StoreOptions) {
    const { bucket, prefix } = parseS3Url(url);
    this.bucket = bucket;
    this.prefix = prefix;
    this.s3 = options.s3 ?? {};
    const region = this.s3.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    // An endpoint from AWS_ENDPOINT_URL(_S3) or the profile is a custom endpoint as --endpoint-url is.
    const configured = this.s3.endpointUrl || this.s3.configuredEndpoint === false ? undefined : configuredEndpoint('s3', this.s3.profile);
    const endpointUrl = this.s3.endpointUrl || configured?.url;
    const endpoint = endpointUrl ? displayEndpoint(endpointUrl, configured ? `endpoint_url from ${configured.origin}` : '--endpoint-url', 'http://127.0.0.1:9000') : undefined;
    this.where = endpoint ?? `S3 in region ${region}`;
    this.description = `s3://${bucket}/${prefix}${endpoint ? ` at ${endpoint}` : ''}`;

    this.partSize = this.s3.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE || this.partSize > MAX_PART_SIZE) {
      throw new TakeoutError('USAGE', `part size ${this.s3.partSize} is outside S3's limits (5 MiB to 5 GiB)`);
    }
    this.queueSize = this.s3.partConcurrency ?? DEFAULT_PART_CONCURRENCY;
    if (!Number.isSafeInteger(this.queueSize) || this.queueSize < 1) {
      throw new TakeoutError('USAGE', `part concurrency must be a positive integer, got ${this.s3.partConcurrency}`);
    }
    this.listPageSize = options.listPageSize ?? MAX_LIST_PAGE;
    if (!Number.isSafeInteger(this.listPageSize) || this.listPageSize < 1 || this.listPageSize > MAX_LIST_PAGE) {
      throw new TakeoutError('USAGE', `list page size must be between 1 and ${MAX_LIST_PAGE}`);
    }
    if (this.s3.sseKmsKeyId && this.s3.sse === 'AES256') {
      throw new TakeoutError('USAGE', 'a KMS key id needs --sse aws:kms, not AES256');
    }
    this.client = buildS3Client(this.s3, region, endpointUrl || undefined);
    logSdkRequests(this.client, options.onRequest);
    this.policy = { conditionalWrites: true, refreshable: this.s3.accessKeyId === undefined && this.s3.secretAccessKey === undefined };
    installResendOnce(this.client, this.policy);
  }

  urlFor(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${key}`;
  }

  async preflight(): Promise<void> {
    try {
      await this.send('HeadBucket', undefined, () =>
        this.client.send(new HeadBucketCommand({ Bucket: this.bucket, ...this.ownerParam() })),
      );
    } catch (error) {
      // A HEAD answer has no body, so a 403 does not say why: a GET of the listing does (a bad key, a
      // wrong secret, a policy), and that reason is what the user needs to read.
      if (!(error instanceof TakeoutError) || error.code !== 'AUTH' || error.details.status !== 403 || INFORMATIVE_403.has(String(error.details.awsCode))) throw error;
      await this.send('ListObjectsV2', this.prefix || undefined, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix || undefined, MaxKeys: 1, ...this.ownerParam() })),
      );
      throw error;
    }
  }

  async writer(key: string, options: WriteOptions = {}): Promise<ObjectWriter> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    if (options.signal?.aborted) {
      throw new TakeoutError('INTERRUPTED', `upload of s3://${this.bucket}/${fullKey} was aborted`);
    }
    return new S3Writer(
      {
        client: this.client,
        bucket: this.bucket,
        partSize: this.partSize,
        queueSize: this.queueSize,
        owner: this.ownerParam(),
        params: (k, o) => this.writeParams(k, o),
        map: (error, operation, k) => this.map(error, operation, k),
      },
      key,
      fullKey,
      options,
    );
  }

  async put(key: string, body: Buffer | string, options: WriteOptions = {}): Promise<WrittenObject> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (options.contentLength !== undefined && options.contentLength !== data.length) {
      throw new TakeoutError('INTEGRITY', `s3://${this.bucket}/${fullKey}: expected ${options.contentLength} bytes but got ${data.length}`);
    }
    const result = await this.send('PutObject', fullKey, () =>
      this.client.send(
        new PutObjectCommand({ ...this.writeParams(fullKey, options), Body: data, ContentLength: data.length }),
        options.signal ? { abortSignal: options.signal } : {},
      ),
    );
    const written: WrittenObject = { key, size: data.length };
    const etag = stripQuotes(result.ETag);
    if (etag !== undefined) written.etag = etag;
    return written;
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    if (range) checkRange(range, `s3://${this.bucket}/${fullKey}`);
    const result = await this.send('GetObject', fullKey, () =>
      this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: fullKey,
          // A whole object is checked against the x-amz-checksum-* header the store sends, if any (under
          // WHEN_REQUIRED the SDK checks only when asked). Not checked: ranges, and composite `-N` multipart
          // checksums, which the SDK skips; the manifest's sha256 covers those.
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : { ChecksumMode: 'ENABLED' as const }),
          ...this.ownerParam(),
        }),
      ),
    );
    const body = result.Body;
    if (!(body instanceof Readable)) {
      throw new TakeoutError('FAILED', `GetObject s3://${this.bucket}/${fullKey} returned no readable body`);
    }
    const mapped = withMappedErrors(body, (error) => this.map(error, 'GetObject', fullKey));
    if (!range) return mapped;
    // Some compatible servers ignore or widen a Range (s3rver 3.7.1 answers `bytes=0-0` with the
    // whole object): check what came back against what was asked and cut it to size ourselves.
    const returned = parseContentRange(result.ContentRange) ?? { start: 0, total: result.ContentLength };
    if (returned.start > range.start) {
      mapped.destroy();
      throw new TakeoutError('INTEGRITY', `GetObject s3://${this.bucket}/${fullKey} returned bytes from ${returned.start}, not ${range.start}`);
    }
    const lastByte = returned.total === undefined ? range.end : Math.min(range.end, returned.total - 1);
    const wanted = Math.max(0, lastByte - range.start + 1);
    const skip = range.start - returned.start;
    if (skip === 0 && result.ContentLength === wanted) return mapped;
    return sliceStream(mapped, skip, wanted);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    try {
      const result = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: fullKey, ...this.ownerParam() }),
      );
      const info: ObjectInfo = { key, size: result.ContentLength ?? 0 };
      const etag = stripQuotes(result.ETag);
      if (etag !== undefined) info.etag = etag;
      if (result.LastModified) info.lastModified = result.LastModified;
      return info;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.map(error, 'HeadObject', fullKey);
    }
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    assertSafePrefix(prefix);
    const fullPrefix = this.prefix + prefix;
    let token: string | undefined;
    do {
      const page = await this.send('ListObjectsV2', fullPrefix || undefined, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: fullPrefix,
            MaxKeys: this.listPageSize,
            ...(token === undefined ? {} : { ContinuationToken: token }),
            ...this.ownerParam(),
          }),
        ),
      );
      for (const entry of page.Contents ?? []) {
        if (entry.Key === undefined || !entry.Key.startsWith(this.prefix)) continue;
        const key = entry.Key.slice(this.prefix.length);
        // Keys we could never write (and could not safely mirror to a folder) are not ours.
        if (keyProblem(key) !== undefined) continue;
        const info: ObjectInfo = { key, size: entry.Size ?? 0 };
        const etag = stripQuotes(entry.ETag);
        if (etag !== undefined) info.etag = etag;
        if (entry.LastModified) info.lastModified = entry.LastModified;
        yield info;
      }
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new TakeoutError('FAILED', `listing s3://${this.bucket}/${fullPrefix} was truncated without a continuation token`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertSafeKey(key);
    const fullKeys = [...new Set(keys.map((key) => this.prefix + key))];
    let batchDeletes = true;
    for (let i = 0; i < fullKeys.length; i += DELETE_BATCH) {
      const batch = fullKeys.slice(i, i + DELETE_BATCH);
      if (batchDeletes) {
        try {
          await this.deleteBatch(batch);
          continue;
        } catch (error) {
          if (!isNotImplemented(error)) throw this.map(error, 'DeleteObjects', batch[0]);
          batchDeletes = false;
        }
      }
      for (const fullKey of batch) {
        await this.send('DeleteObject', fullKey, () =>
          this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey, ...this.ownerParam() })),
        ).catch((error: unknown) => {
          if (error instanceof TakeoutError && error.code === 'NOT_FOUND') return;
          throw error;
        });
      }
    }
  }

  /** Incomplete multipart uploads under the prefix (ListMultipartUploads, every page), initiated before the cutoff. */
  async *leftovers(olderThanMs: number): AsyncIterable<Leftover> {
    const cutoff = Date.now() - olderThanMs;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.send('ListMultipartUploads', this.prefix || undefined, () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(this.prefix === '' ? {} : { Prefix: this.prefix }),
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(uploadIdMarker === undefined ? {} : { UploadIdMarker: uploadIdMarker }),
            ...this.ownerParam(),
          }),
        ),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined || !upload.Key.startsWith(this.prefix)) continue;
        const key = upload.Key.slice(this.prefix.length);
        if (key === '') continue;
        const started = upload.Initiated;
        // An upload with no start time cannot be shown to be old: only `--older-than 0` takes it.
        if (olderThanMs > 0 && (started === undefined || started.getTime() >= cutoff)) continue;
        yield { key, kind: 'multipart-upload', id: upload.UploadId, ...(started === undefined ? {} : { started }) };
      }
      if (!page.IsTruncated) return;
      if (page.NextKeyMarker === undefined || (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker)) {
        throw new TakeoutError('FAILED', `listing multipart uploads in s3://${this.bucket}/${this.prefix} was truncated without a new marker`);
      }
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async removeLeftover(item: Leftover): Promise<void> {
    if (item.kind !== 'multipart-upload' || item.id === undefined || item.key === '') {
      throw new TakeoutError('USAGE', `${item.key} is not a multipart upload of ${this.description}`, { details: { key: item.key } });
    }
    const fullKey = this.prefix + item.key;
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey, UploadId: item.id, ...this.ownerParam() }),
      );
    } catch (error) {
      // Completed or aborted since it was listed: nothing left to clean.
      if ((error as SdkErrorShape | undefined)?.name === 'NoSuchUpload' || (error as SdkErrorShape | undefined)?.Code === 'NoSuchUpload') return;
      throw this.map(error, 'AbortMultipartUpload', fullKey);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async deleteBatch(batch: string[]): Promise<void> {
    const result = await this.client.send(
      new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        ...this.ownerParam(),
      }),
    );
    const failure = (result.Errors ?? []).find((entry) => entry.Code !== 'NoSuchKey');
    if (failure) {
      throw this.map(
        { name: failure.Code ?? 'Error', Code: failure.Code, message: failure.Message ?? 'delete failed' },
        'DeleteObjects',
        failure.Key,
      );
    }
  }

  private ownerParam(): { ExpectedBucketOwner?: string } {
    return this.s3.expectedBucketOwner ? { ExpectedBucketOwner: this.s3.expectedBucketOwner } : {};
  }

  private writeParams(fullKey: string, options: WriteOptions): PutObjectCommandInput {
    const params: PutObjectCommandInput = { Bucket: this.bucket, Key: fullKey, ...this.ownerParam() };
    if (options.contentType) params.ContentType = options.contentType;
    const sse = this.s3.sse ?? (this.s3.sseKmsKeyId ? 'aws:kms' : undefined);
    if (sse) params.ServerSideEncryption = sse;
    if (this.s3.sseKmsKeyId) params.SSEKMSKeyId = this.s3.sseKmsKeyId;
    // lib-storage spreads these into CompleteMultipartUpload too, so a multipart upload is create-only as well.
    if (options.ifNoneMatch && this.policy.conditionalWrites) params.IfNoneMatch = '*';
    return params;
  }

  private map(error: unknown, operation: string, fullKey?: string): TakeoutError {
    return mapS3Error(error, {
      bucket: this.bucket,
      operation,
      where: this.where,
      ...(fullKey === undefined ? {} : { key: fullKey }),
    });
  }

  private async send<T>(operation: string, fullKey: string | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.map(error, operation, fullKey);
    }
  }
}

/** A destination under `s3://bucket/prefix`; `options.s3` configures region, endpoint, credentials, SSE, parts. */
export function createS3Store(url: string, options: S3StoreOptions = {}): Store {
  const destination = new S3Store(url, options);
  return options.throttle ? throttledStore(destination, options.throttle) : destination;
}
