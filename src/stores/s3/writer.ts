/** One object streamed to S3: a lazy multipart upload (lib-storage), aborted on any failure. */
import { PassThrough } from 'node:stream';
import { AbortMultipartUploadCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { TakeoutError } from '../../errors.js';
import type { ObjectWriter, WriteOptions, WrittenObject } from '../store.js';
import { GuardedWriter } from '../writer-state.js';
import { stripQuotes } from './headers.js';

const MiB = 1024 * 1024;
/** Buffered in the writer's pipe before write() waits for the uploader (on top of the parts in flight). */
const WRITE_BUFFER_BYTES = 1 * MiB;

type Outcome = { ok: true; etag: string | undefined } | { ok: false; error: unknown };

export interface S3WriterContext {
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
export class S3Writer extends GuardedWriter implements ObjectWriter {
  private bytes = 0;
  private body: PassThrough | undefined;
  private upload: Upload | undefined;
  private outcome: Promise<Outcome> | undefined;
  private torndown: Promise<void> | undefined;

  constructor(
    private readonly context: S3WriterContext,
    private readonly key: string,
    private readonly fullKey: string,
    private readonly options: WriteOptions,
  ) {
    super(options.signal);
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
    await this.beginFinish(this.bytes, this.options.contentLength, { bucket: this.context.bucket, key: this.fullKey });
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
    this.committed();
    const written: WrittenObject = { key: this.key, size: this.bytes };
    const tag = stripQuotes(etag);
    if (tag !== undefined) written.etag = tag;
    return written;
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
      // part's (the user sees "405 MethodNotAllowed" instead of the 500 that broke the upload). discard()
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

  protected interrupted(): TakeoutError {
    return new TakeoutError('INTERRUPTED', `upload of s3://${this.context.bucket}/${this.fullKey} was aborted`, {
      details: { bucket: this.context.bucket, key: this.fullKey },
    });
  }

  protected where(): string {
    return `s3://${this.context.bucket}/${this.fullKey}`;
  }

  /**
   * Stop the upload and make sure no multipart upload is left behind. lib-storage aborts the
   * multipart upload itself once its part uploaders stop; we also send AbortMultipartUpload
   * right away (S3 documents that an abort racing in-flight parts may need repeating).
   * Failures of the abort itself are swallowed: the caller already has the real error.
   */
  protected discard(): Promise<void> {
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
