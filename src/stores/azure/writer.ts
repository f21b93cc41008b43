/**
 * One blob streamed to Azure: a block blob staged in bounded blocks (Put Block) with bounded concurrency, then
 * committed in one Put Block List. Until the commit nothing is visible: staged blocks are uncommitted, and
 * Azure discards uncommitted blocks a week after the last Put Block (learn.microsoft.com "Put Block List",
 * "Understanding block blobs"), so an abort, a failure or a kill -9 leaves nothing a reader can see.
 *
 * Memory bound per writer: blockSize × (concurrency + 1) bytes, the blocks in flight and the one being
 * filled (8 MiB × 5 = 40 MiB by default), as the S3 writer's parts × queue size.
 */
import { randomBytes } from 'node:crypto';
import type { BlobHTTPHeaders, BlockBlobClient } from '@azure/storage-blob';
import { TakeoutError } from '../../errors.js';
import type { ObjectWriter, WriteOptions, WrittenObject } from '../store.js';
import { GuardedWriter } from '../writer-state.js';

export interface AzureWriterContext {
  blob: BlockBlobClient;
  container: string;
  blockSize: number;
  concurrency: number;
  headers(options: WriteOptions): BlobHTTPHeaders;
  map(error: unknown, operation: string, fullKey: string, flags: { createOnly?: boolean; aborted?: boolean }): TakeoutError;
}

/** A write-time condition that fails the commit when the blob exists (If-None-Match: *, RFC 9110 §13.1.2). */
export function createOnly(options: WriteOptions): { conditions?: { ifNoneMatch: string } } {
  return options.ifNoneMatch ? { conditions: { ifNoneMatch: '*' } } : {};
}

export function stripQuotes(etag: string | undefined): string | undefined {
  return etag?.replace(/^"(.*)"$/, '$1');
}

export class AzureWriter extends GuardedWriter implements ObjectWriter {
  private bytes = 0;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private readonly blockIds: string[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  /** Block ids must have one length within a blob: a random run id and a zero-padded index (50,000 blocks at most). */
  private readonly idPrefix = randomBytes(12).toString('hex');
  private readonly stop = new AbortController();

  constructor(
    private readonly context: AzureWriterContext,
    private readonly key: string,
    private readonly fullKey: string,
    private readonly options: WriteOptions,
  ) {
    super(options.signal);
  }

  async write(chunk: Buffer): Promise<void> {
    this.assertOpen();
    await this.throwIfFailed();
    let rest = chunk;
    this.bytes += chunk.length;
    while (rest.length > 0) {
      const piece = rest.subarray(0, this.context.blockSize - this.bufferedBytes);
      this.buffered.push(piece);
      this.bufferedBytes += piece.length;
      rest = rest.subarray(piece.length);
      if (this.bufferedBytes === this.context.blockSize) await this.stageBuffered();
    }
  }

  async finish(): Promise<WrittenObject> {
    await this.beginFinish(this.bytes, this.options.contentLength, { container: this.context.container, blob: this.fullKey });
    let etag: string | undefined;
    const single = this.blockIds.length === 0;
    try {
      const common = { blobHTTPHeaders: this.context.headers(this.options), abortSignal: this.stop.signal, ...createOnly(this.options) };
      if (single) {
        // Everything fits in one block: one Put Blob, with the same create-only condition.
        const data = Buffer.concat(this.buffered, this.bufferedBytes);
        etag = (await this.context.blob.upload(data, data.length, common)).etag;
      } else {
        if (this.bufferedBytes > 0) await this.stageBuffered();
        await Promise.all(this.inFlight);
        if (this.failure) throw this.failure.error;
        etag = (await this.context.blob.commitBlockList(this.blockIds, common)).etag;
      }
    } catch (error) {
      if (this.isAborted()) throw this.interrupted();
      const mapped = this.context.map(error, single ? 'PutBlob' : 'PutBlockList', this.fullKey, { createOnly: this.options.ifNoneMatch === true });
      await this.failWith();
      throw mapped;
    }
    if (this.isAborted()) {
      // Aborted while the commit was in flight and it still succeeded: take back this blob, and only this one.
      await this.context.blob.delete({ conditions: etag === undefined ? {} : { ifMatch: etag } }).catch(() => undefined);
      throw this.interrupted();
    }
    this.committed();
    const written: WrittenObject = { key: this.key, size: this.bytes };
    const tag = stripQuotes(etag);
    if (tag !== undefined) written.etag = tag;
    return written;
  }

  /** Stage the filled block once fewer than `concurrency` are in flight (back-pressure for write()). */
  private async stageBuffered(): Promise<void> {
    const block = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [];
    this.bufferedBytes = 0;
    while (this.inFlight.size >= this.context.concurrency) await Promise.race(this.inFlight);
    await this.throwIfFailed();
    const id = Buffer.from(`${this.idPrefix}-${String(this.blockIds.length).padStart(6, '0')}`).toString('base64');
    this.blockIds.push(id);
    const staged: Promise<void> = this.context.blob
      .stageBlock(id, block, block.length, { abortSignal: this.stop.signal })
      .then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= { error };
        },
      )
      .finally(() => this.inFlight.delete(staged));
    this.inFlight.add(staged);
  }

  private async throwIfFailed(): Promise<void> {
    if (this.isAborted()) throw this.interrupted();
    if (!this.failure) return;
    const mapped = this.context.map(this.failure.error, 'PutBlock', this.fullKey, {});
    await this.failWith();
    throw mapped;
  }

  protected interrupted(): TakeoutError {
    return new TakeoutError('INTERRUPTED', `upload of ${this.where()} was aborted`, {
      details: { container: this.context.container, blob: this.fullKey },
    });
  }

  protected where(): string {
    return `azure://${this.context.container}/${this.fullKey}`;
  }

  /** Stop the requests in flight and drop the buffer; staged blocks stay uncommitted (invisible) until Azure expires them. */
  protected async discard(): Promise<void> {
    this.stop.abort();
    this.buffered = [];
    this.bufferedBytes = 0;
    await Promise.all(this.inFlight);
  }
}
