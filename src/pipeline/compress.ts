import { gzip } from 'node:zlib';
import { availableParallelism } from 'node:os';
import { Semaphore } from './limit.js';
import type { Block } from '../formats/csv.js';

/**
 * Blocks are compressed independently on the libuv thread pool, each into its own gzip member
 * (as pigz does): a single createGzip stream fed by a busy main thread stalls at ~13 MB/s here,
 * while independent members keep both cores busy and concatenate into one valid gzip stream.
 */

/** Compressions in flight across all tables: 2 per core keeps the thread pool busy while the main thread scans. */
export const COMPRESS_IN_FLIGHT = Math.max(4, availableParallelism() * 2);
export const DEFAULT_COMPRESSION_LEVEL = 6;

const pool = new Semaphore(COMPRESS_IN_FLIGHT);

export interface CompressedBlock {
  data: Buffer;
  rawBytes: number;
  rows: number;
}

function gzipAsync(data: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gzip(data, { level }, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/**
 * Keeps up to `inFlight` blocks compressing and hands them to `sink` strictly in input order.
 * `level` 0 means no compression: blocks pass through as they are.
 */
export class OrderedCompressor {
  private readonly queue: Promise<CompressedBlock>[] = [];

  constructor(
    private readonly level: number,
    private readonly sink: (block: CompressedBlock) => Promise<void>,
    private readonly inFlight = COMPRESS_IN_FLIGHT,
  ) {}

  async push(block: Block): Promise<void> {
    const job =
      this.level === 0
        ? Promise.resolve({ data: block.data, rawBytes: block.data.length, rows: block.rows })
        : pool.use(() => gzipAsync(block.data, this.level)).then((data) => ({
            data,
            rawBytes: block.data.length,
            rows: block.rows,
          }));
    // A rejection is observed when the job reaches the head; keep Node from reporting it early.
    job.catch(() => undefined);
    this.queue.push(job);
    while (this.queue.length >= this.inFlight) await this.drainOne();
  }

  async flush(): Promise<void> {
    while (this.queue.length > 0) await this.drainOne();
  }

  private async drainOne(): Promise<void> {
    const head = this.queue.shift();
    if (head) await this.sink(await head);
  }
}
