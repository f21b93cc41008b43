/**
 * An S3 (or S3-compatible) prefix as a store.
 *
 * It imports `@aws-sdk/*` (as the DynamoDB source does); both are loaded by their registries with a
 * dynamic import, so the CLI pays for the SDK only when an s3:// store or a dynamodb: source is used.
 */
import { Readable } from 'node:stream';
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
} from '@aws-sdk/client-s3';
import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { configuredEndpoint, displayEndpoint } from '../../aws/endpoints.js';
import type { SdkErrorShape } from '../../aws/errors.js';
import { TakeoutError } from '../../errors.js';
import type {
  ByteRange,
  CleanableLeftovers,
  CopyOptions,
  Preflight,
  ServerSideCopy,
  Store,
  StoreOptions,
  Leftover,
  ObjectInfo,
  ObjectWriter,
  S3Options,
  WriteOptions,
  WrittenObject,
} from '../store.js';
import { assertSafeKey, assertSafePrefix, keyProblem } from '../keys.js';
import { logSdkRequests } from '../network.js';
import { assertCopiedSize, copyRefused, sourceObject } from '../copy.js';
import { checkRange, cutToRange, parseContentRange, putBytes, withMappedErrors } from '../streams.js';
import { throttledStore } from '../throttled.js';
import { buildS3Client, installResendOnce } from './client.js';
import type { ResendPolicy } from './client.js';
import { COPY_PART_BYTES, copyS3Object, MAX_COPY_OBJECT_BYTES } from './copy.js';
import { INFORMATIVE_403, isNotFound, isNotImplemented, mapS3Error } from './errors.js';
import { stripQuotes } from './headers.js';
import { parseS3Url } from './url.js';
import { S3Writer } from './writer.js';

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

export interface S3StoreOptions extends StoreOptions {
  /** Keys per ListObjectsV2 page (default and maximum 1000); tests set it low to exercise paging. */
  listPageSize?: number;
  /** Server-side copies of larger objects go in parts (default 5 GiB, CopyObject's limit); tests lower it. */
  copyMultipartAbove?: number;
  /** Part size of those copies (default 512 MiB); tests lower it. */
  copyPartBytes?: number;
}

/** What an S3 prefix can do besides read, write, list and delete. */
export type S3PrefixStore = Store & Preflight & CleanableLeftovers & ServerSideCopy;

class S3Store implements S3PrefixStore {
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
  /** Who sends the requests, to where: two stores with the same one can copy between them server-side. */
  private readonly principal: string;
  private readonly copyMultipartAbove: number;
  private readonly copyPartBytes: number;

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
    this.copyMultipartAbove = options.copyMultipartAbove ?? MAX_COPY_OBJECT_BYTES;
    this.copyPartBytes = options.copyPartBytes ?? COPY_PART_BYTES;
    // Any region of AWS's own S3 takes a CopyObject from any other; a custom endpoint only from itself.
    this.principal = JSON.stringify([endpointUrl || 'aws', this.s3.profile ?? null, this.s3.accessKeyId ?? null, this.s3.sessionToken ?? null]);
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

  /** Another S3 prefix reached through the same endpoint with the same credentials (profile or keys). */
  canCopyFrom(source: Store): boolean {
    return source instanceof S3Store && source.principal === this.principal;
  }

  async copyFrom(source: Store, fromKey: string, toKey: string, options: CopyOptions = {}): Promise<WrittenObject> {
    if (!(source instanceof S3Store) || !this.canCopyFrom(source)) throw copyRefused(this, source);
    assertSafeKey(fromKey);
    assertSafeKey(toKey);
    const fullKey = this.prefix + toKey;
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `copy to s3://${this.bucket}/${fullKey} was aborted`);
    const info = await sourceObject(source, fromKey, options.size);
    await copyS3Object(
      {
        client: this.client,
        concurrency: this.queueSize,
        multipartAbove: this.copyMultipartAbove,
        partBytes: this.copyPartBytes,
        map: (error, operation, k) => this.map(error, operation, k),
      },
      { sourceBucket: source.bucket, sourceKey: source.prefix + fromKey, source: info, params: this.writeParams(fullKey, { ifNoneMatch: options.ifNoneMatch === true }), signal: options.signal },
    );
    const copied = await this.head(toKey);
    assertCopiedSize(copied, info.size, `s3://${this.bucket}/${fullKey}`);
    return { key: toKey, size: info.size, ...(copied?.etag === undefined ? {} : { etag: copied.etag }) };
  }

  async put(key: string, body: Buffer | string, options: WriteOptions = {}): Promise<WrittenObject> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    const data = putBytes(body, options, `s3://${this.bucket}/${fullKey}`);
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
    return cutToRange(mapped, returned, range, result.ContentLength, `GetObject s3://${this.bucket}/${fullKey}`);
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
export function createS3Store(url: string, options: S3StoreOptions = {}): S3PrefixStore {
  const destination = new S3Store(url, options);
  return options.throttle ? throttledStore(destination, options.throttle) : destination;
}

