import { TakeoutError } from '../errors.js';

/** Where a writer is in its life; see `GuardedWriter`. */
export type WriterState = 'open' | 'finishing' | 'finished' | 'aborted' | 'failed';

/**
 * The life of one object writer, the same for every store: `open` → `finishing` (finish() called) →
 * `finished`; abort() from any state but `finished` → `aborted`; a failed write or commit → `failed`, with
 * everything written so far discarded. An aborted `signal` aborts the writer. A store's writer says where
 * the object goes (for messages), what an interruption looks like, and how to discard what it wrote.
 */
export abstract class GuardedWriter {
  private state: WriterState = 'open';
  private readonly onAbortSignal = (): void => {
    void this.abort();
  };

  protected constructor(private readonly signal: AbortSignal | undefined) {
    signal?.addEventListener('abort', this.onAbortSignal, { once: true });
  }

  /** The object, for messages: `s3://bucket/key` or a path. */
  protected abstract where(): string;
  /** The error of a writer used after it was aborted. */
  protected abstract interrupted(): TakeoutError;
  /** Remove what was written (temp file, multipart upload). Called more than once; failures are swallowed. */
  protected abstract discard(): Promise<void>;

  /** Discard everything written so far. Safe to call more than once and after failures. */
  async abort(): Promise<void> {
    if (this.state === 'finished') return;
    if (this.state !== 'failed') this.state = 'aborted';
    this.detach();
    await this.discard();
  }

  protected isAborted(): boolean {
    return this.state === 'aborted';
  }

  protected assertOpen(): void {
    if (this.state === 'open') return;
    if (this.state === 'aborted') throw this.interrupted();
    if (this.state === 'failed') throw new TakeoutError('FAILED', `writer for ${this.where()} failed earlier and cannot be used`);
    throw new TakeoutError('FAILED', `writer for ${this.where()} is already finished`);
  }

  /**
   * finish() starts: no more writes. When the caller announced a size (`contentLength`) and another number of
   * bytes was written, the writer fails (nothing is committed) with the INTEGRITY error of the object:
   * `<where>: expected N bytes but M were written`, with `details` naming the object.
   */
  protected async beginFinish(written: number, expected: number | undefined, details: Record<string, unknown>): Promise<void> {
    this.assertOpen();
    this.state = 'finishing';
    if (expected === undefined || expected === written) return;
    await this.failWith();
    throw new TakeoutError('INTEGRITY', `${this.where()}: expected ${expected} bytes but ${written} were written`, {
      details: { ...details, expected, written },
    });
  }

  /** The object is committed. */
  protected committed(): void {
    this.state = 'finished';
    this.detach();
  }

  /** A write or the commit failed: nothing is left behind, and the writer cannot be used again. */
  protected async failWith(): Promise<void> {
    this.state = 'failed';
    this.detach();
    await this.discard();
  }

  private detach(): void {
    this.signal?.removeEventListener('abort', this.onAbortSignal);
  }
}
