/**
 * Server-side copies within S3: CopyObject up to 5 GiB, a multipart upload of UploadPartCopy ranges above it
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html, API_UploadPartCopy.html). The
 * bytes move inside S3; this machine sends only the requests.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { TakeoutError } from '../../errors.js';
import type { ObjectInfo } from '../store.js';

const MiB = 1024 * 1024;
/** CopyObject copies objects up to 5 GiB in one request; larger ones need UploadPartCopy. */
export const MAX_COPY_OBJECT_BYTES = 5 * 1024 * MiB;
/** 512 MiB parts: few requests, and 10,000 of them reach 5 TiB, S3's largest object. */
export const COPY_PART_BYTES = 512 * MiB;
/** S3 takes at most 10,000 parts per upload. */
const MAX_PARTS = 10_000;

export interface S3CopyContext {
  client: S3Client;
  /** Parts copied at once. */
  concurrency: number;
  /** Objects larger than this are copied in parts (default MAX_COPY_OBJECT_BYTES; tests lower it). */
  multipartAbove: number;
  /** Part size for multipart copies (default COPY_PART_BYTES; tests lower it). */
  partBytes: number;
  map(error: unknown, operation: string, fullKey?: string): TakeoutError;
}

export interface S3CopyRequest {
  sourceBucket: string;
  sourceKey: string;
  source: ObjectInfo;
  /** The destination's write parameters: bucket, key, SSE, owner and (create-only) IfNoneMatch. */
  params: PutObjectCommandInput;
  signal?: AbortSignal | undefined;
}

/** `bucket/key` with each path segment percent-encoded, as x-amz-copy-source takes it. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

export async function copyS3Object(context: S3CopyContext, request: S3CopyRequest): Promise<void> {
  const fullKey = String(request.params.Key);
  const abort = request.signal ? { abortSignal: request.signal } : {};
  const from = copySource(request.sourceBucket, request.sourceKey);
  // The source is copied only as it was when looked up: one replaced meanwhile fails (412) instead of mixing.
  const ifMatch = request.source.etag === undefined ? {} : { CopySourceIfMatch: `"${request.source.etag}"` };
  if (request.source.size <= context.multipartAbove) {
    try {
      await context.client.send(new CopyObjectCommand({ ...request.params, CopySource: from, ...ifMatch }), abort);
    } catch (error) {
      throw context.map(error, 'CopyObject', fullKey);
    }
    return;
  }
  await copyInParts(context, request, from, ifMatch);
}

async function copyInParts(context: S3CopyContext, request: S3CopyRequest, from: string, ifMatch: { CopySourceIfMatch?: string }): Promise<void> {
  const { IfNoneMatch, ...params } = request.params;
  const fullKey = String(params.Key);
  const abort = request.signal ? { abortSignal: request.signal } : {};
  const size = request.source.size;
  const partBytes = Math.max(context.partBytes, Math.ceil(size / MAX_PARTS));
  const owner = params.ExpectedBucketOwner === undefined ? {} : { ExpectedBucketOwner: params.ExpectedBucketOwner };
  let uploadId: string | undefined;
  try {
    uploadId = (await context.client.send(new CreateMultipartUploadCommand(params), abort)).UploadId;
  } catch (error) {
    throw context.map(error, 'CreateMultipartUpload', fullKey);
  }
  if (uploadId === undefined) throw new TakeoutError('FAILED', `CreateMultipartUpload s3://${params.Bucket}/${fullKey} returned no upload id`);
  const id = uploadId;
  const count = Math.ceil(size / partBytes);
  const parts: CompletedPart[] = new Array<CompletedPart>(count);
  let next = 0;
  let operation = 'UploadPartCopy';
  try {
    const worker = async (): Promise<void> => {
      for (let i = next++; i < count; i = next++) {
        const start = i * partBytes;
        const end = Math.min(size, start + partBytes) - 1;
        const answer = await context.client.send(
          new UploadPartCopyCommand({ Bucket: params.Bucket, Key: fullKey, UploadId: id, PartNumber: i + 1, CopySource: from, CopySourceRange: `bytes=${start}-${end}`, ...ifMatch, ...owner }),
          abort,
        );
        const etag = answer.CopyPartResult?.ETag;
        if (etag === undefined) throw new TakeoutError('FAILED', `UploadPartCopy s3://${params.Bucket}/${fullKey} part ${i + 1} returned no ETag`);
        parts[i] = { PartNumber: i + 1, ETag: etag };
      }
    };
    await Promise.all(Array.from({ length: Math.min(context.concurrency, count) }, worker));
    operation = 'CompleteMultipartUpload';
    await context.client.send(
      new CompleteMultipartUploadCommand({ Bucket: params.Bucket, Key: fullKey, UploadId: id, MultipartUpload: { Parts: parts }, ...(IfNoneMatch === undefined ? {} : { IfNoneMatch }), ...owner }),
      abort,
    );
  } catch (error) {
    // Parts already copied are billed storage until aborted; a failed abort is left to `takeout cleanup`.
    await context.client.send(new AbortMultipartUploadCommand({ Bucket: params.Bucket, Key: fullKey, UploadId: id, ...owner })).catch(() => undefined);
    throw context.map(error, operation, fullKey);
  }
}
