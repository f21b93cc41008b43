import { TakeoutError } from '../../errors.js';

/** Bytes one slice may run ahead of the writer before its download pauses (2 MiB: 8 MiB cost ~20 MB RSS per slice for no speed). */
export const READ_AHEAD_BYTES = 2 * 1024 * 1024;

/** A bounded hand-over of chunks from one producer to the in-order writer. */
export class ChunkQueue {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private finished = false;
  private failure: unknown;
  private cancelled = false;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  async push(chunk: Buffer): Promise<void> {
    if (this.cancelled) throw new TakeoutError('INTERRUPTED', 'merge cancelled');
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake('consumer');
    while (this.size > READ_AHEAD_BYTES && !this.cancelled) await new Promise<void>((resolve) => (this.wakeProducer = resolve));
  }

  end(): void {
    this.finished = true;
    this.wake('consumer');
  }

  fail(error: unknown): void {
    this.failure ??= error;
    this.finished = true;
    this.wake('consumer');
  }

  cancel(): void {
    this.cancelled = true;
    this.wake('producer');
  }

  private wake(who: 'consumer' | 'producer'): void {
    const wake = who === 'consumer' ? this.wakeConsumer : this.wakeProducer;
    if (who === 'consumer') this.wakeConsumer = undefined;
    else this.wakeProducer = undefined;
    wake?.();
  }

  async *drain(): AsyncGenerator<Buffer> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        this.size -= chunk.length;
        this.wake('producer');
        yield chunk;
        continue;
      }
      if (this.failure !== undefined) throw this.failure;
      if (this.finished) return;
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
  }
}
