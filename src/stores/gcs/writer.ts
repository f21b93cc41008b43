/** One object streamed to Google Cloud Storage: a resumable upload in bounded chunks, cancelled on any failure. */
import type { Writable } from 'node:stream';
import type { File } from '@google-cloud/storage';
import { TakeoutError } from '../../errors.js';
import type { ObjectWriter, WriteOptions, WrittenObject } from '../store.js';
import { GuardedWriter } from '../writer-state.js';

const KiB = 1024;
/** Resumable chunks other than the last must be multiples of 256 KiB (https://cloud.google.com/storage/docs/performing-resumable-uploads#chunked-upload). */
export const CHUNK_GRANULE = 256 * KiB;
/**
 * 8 MiB chunks: the client keeps one whole chunk in memory so that it can send it again after a dropped
 * connection, so this is the memory bound of one writer (plus the stream's own 16 KiB buffer). Google
 * recommends at least 8 MiB per chunk for throughput.
 */
export const DEFAULT_CHUNK_SIZE = 32 * CHUNK_GRANULE;
/** 30 s for cancelling a session: a cancel that does not arrive leaves no object, only a session that expires in a week. */
const CANCEL_TIMEOUT_MS = 30_000;

type Outcome = { ok: true } | { ok: false; error: unknown };

export interface GcsWriterContext {
  file: File;
  bucket: string;
  chunkSize: number;
  map(error: unknown, operation: string, fullKey?: string): TakeoutError;
}

/**
 * Streams one object. The resumable session starts on the first non-empty write; an object that stays
 * empty is written with one simple upload. Create-only writes carry `ifGenerationMatch: 0`, which the
 * server checks when the session starts and again when it commits, and which also lets the client retry
 * chunks (it retries a resumable upload only when a precondition makes it idempotent).
 */
export class GcsWriter extends GuardedWriter implements ObjectWriter {
  private bytes = 0;
  private stream: Writable | undefined;
  private outcome: Promise<Outcome> | undefined;
  private sessionUri: string | undefined;
  private torndown: Promise<void> | undefined;

  constructor(
    private readonly context: GcsWriterContext,
    private readonly key: string,
    private readonly fullKey: string,
    private readonly options: WriteOptions,
  ) {
    super(options.signal);
  }

  async write(chunk: Buffer): Promise<void> {
    this.assertOpen();
    if (chunk.length === 0) return;
    const { stream, outcome } = this.start();
    this.bytes += chunk.length;
    if (stream.write(chunk)) return;
    const settled = await new Promise<Outcome | undefined>((resolve) => {
      const onDrain = (): void => resolve(undefined);
      stream.once('drain', onDrain);
      void outcome.then((value) => {
        stream.off('drain', onDrain);
        resolve(value);
      });
    });
    if (settled === undefined) return;
    if (this.isAborted()) throw this.interrupted();
    const error = settled.ok
      ? new TakeoutError('FAILED', `upload of ${this.where()} ended before all bytes were written`)
      : this.context.map(settled.error, 'upload', this.fullKey);
    await this.failWith();
    throw error;
  }

  async finish(): Promise<WrittenObject> {
    await this.beginFinish(this.bytes, this.options.contentLength, { bucket: this.context.bucket, key: this.fullKey });
    try {
      if (this.stream === undefined) {
        await this.context.file.save(Buffer.alloc(0), {
          resumable: false,
          ...(this.options.contentType ? { contentType: this.options.contentType } : {}),
          ...this.preconditions(),
        });
      } else {
        this.stream.end();
        const outcome = await (this.outcome as Promise<Outcome>);
        if (!outcome.ok) throw outcome.error;
      }
    } catch (error) {
      if (this.isAborted()) throw this.interrupted();
      const mapped = this.context.map(error, 'upload', this.fullKey);
      await this.failWith();
      throw mapped;
    }
    if (this.isAborted()) {
      // Aborted while the last chunk was in flight and it still committed: take the object back.
      await this.context.file.delete({ ignoreNotFound: true }).catch(() => undefined);
      throw this.interrupted();
    }
    this.committed();
    return { key: this.key, size: this.bytes };
  }

  private preconditions(): { preconditionOpts?: { ifGenerationMatch: number } } {
    return this.options.ifNoneMatch ? { preconditionOpts: { ifGenerationMatch: 0 } } : {};
  }

  private start(): { stream: Writable; outcome: Promise<Outcome> } {
    if (this.stream && this.outcome) return { stream: this.stream, outcome: this.outcome };
    const stream = this.context.file.createWriteStream({
      resumable: true,
      chunkSize: this.context.chunkSize,
      ...(this.options.contentType ? { contentType: this.options.contentType } : {}),
      ...this.preconditions(),
    });
    stream.on('uri', (uri: string) => {
      this.sessionUri = uri;
    });
    const outcome = new Promise<Outcome>((resolve) => {
      stream.once('finish', () => resolve({ ok: true }));
      stream.once('error', (error: unknown) => resolve({ ok: false, error }));
      stream.once('close', () => resolve({ ok: false, error: new TakeoutError('INTERRUPTED', `upload of ${this.where()} was closed`) }));
    });
    this.stream = stream;
    this.outcome = outcome;
    return { stream, outcome };
  }

  protected interrupted(): TakeoutError {
    return new TakeoutError('INTERRUPTED', `upload of ${this.where()} was aborted`, {
      details: { bucket: this.context.bucket, key: this.fullKey },
    });
  }

  protected where(): string {
    return `gs://${this.context.bucket}/${this.fullKey}`;
  }

  /**
   * Stop the upload and cancel its session: a DELETE of the session URI, answered 499
   * (https://cloud.google.com/storage/docs/performing-resumable-uploads#cancel-upload). The session URI is
   * its own credential, so the request carries no other. Failures of the cancel are swallowed.
   */
  protected discard(): Promise<void> {
    this.torndown ??= (async () => {
      const stream = this.stream;
      if (!stream) return;
      stream.destroy();
      await this.outcome;
      if (this.sessionUri === undefined) return;
      await fetch(this.sessionUri, { method: 'DELETE', signal: AbortSignal.timeout(CANCEL_TIMEOUT_MS) })
        .then((response) => response.body?.cancel())
        .catch(() => undefined);
    })();
    return this.torndown;
  }
}
