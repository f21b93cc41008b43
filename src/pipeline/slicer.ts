import { createHash, type Hash } from 'node:crypto';
import type { Destination, ObjectWriter } from '../destinations/destination.js';
import type { CompressedBlock } from './compress.js';

/** One finished slice, as it goes into the takeout manifest. */
export interface SliceRecord {
  key: string;
  index: number;
  /** Stored (compressed) bytes. */
  bytes: number;
  /** Bytes before compression. */
  rawBytes: number;
  rows: number;
  sha256: string;
  /** base64 MD5 of the stored bytes, when asked for (DynamoDB-style manifests use it). */
  md5?: string;
  etag?: string;
}

export interface SlicerOptions {
  destination: Pick<Destination, 'writer'>;
  /** Key of slice N. */
  keyFor: (index: number) => string;
  /** Cut before a block would take the slice past this many stored bytes. */
  sliceBytes: number;
  /** Cut before a block would take the slice past this many rows. */
  sliceRows?: number;
  signal?: AbortSignal;
  onSlice?: (slice: SliceRecord) => void;
  onProgress?: (delta: { rawBytes: number; bytes: number; rows: number }) => void;
  /** Compute base64 MD5 as well as sha256. */
  md5?: boolean;
  /** The blocks are plain CSV, not gzip (NO_COMPRESSION). */
  plain?: boolean;
}

interface OpenSlice {
  index: number;
  key: string;
  writer: ObjectWriter;
  sha256: Hash;
  md5: Hash | undefined;
  bytes: number;
  rawBytes: number;
  rows: number;
}

/**
 * Cuts a stream of compressed, row-aligned blocks into slices. The cut is decided before a block
 * is written, from sizes alone, so slice boundaries are deterministic for a given input and settings;
 * a slice exceeds the limit only when one block alone does.
 */
export class Slicer {
  private current: OpenSlice | undefined;
  private next = 0;
  readonly slices: SliceRecord[] = [];

  constructor(private readonly options: SlicerOptions) {}

  async write(block: CompressedBlock): Promise<void> {
    const { sliceBytes, sliceRows } = this.options;
    const cur = this.current;
    if (
      cur &&
      cur.bytes > 0 &&
      (cur.bytes + block.data.length > sliceBytes || (sliceRows !== undefined && cur.rows + block.rows > sliceRows))
    ) {
      await this.closeCurrent();
    }
    const slice = this.current ?? (await this.open());
    this.options.signal?.throwIfAborted();
    await slice.writer.write(block.data);
    slice.sha256.update(block.data);
    slice.md5?.update(block.data);
    slice.bytes += block.data.length;
    slice.rawBytes += block.rawBytes;
    slice.rows += block.rows;
    this.options.onProgress?.({ rawBytes: block.rawBytes, bytes: block.data.length, rows: block.rows });
  }

  /** Commit the last slice. */
  async finish(): Promise<SliceRecord[]> {
    if (this.current) await this.closeCurrent();
    return this.slices;
  }

  /** Abort the slice being written; finished slices are the caller's to remove. */
  async abort(): Promise<void> {
    const cur = this.current;
    this.current = undefined;
    if (cur) await cur.writer.abort();
  }

  private async open(): Promise<OpenSlice> {
    const index = this.next++;
    const key = this.options.keyFor(index);
    const writer = await this.options.destination.writer(key, {
      contentType: this.options.plain ? 'text/csv' : 'application/gzip',
      ...(this.options.signal ? { signal: this.options.signal } : {}),
    });
    this.current = {
      index,
      key,
      writer,
      sha256: createHash('sha256'),
      md5: this.options.md5 ? createHash('md5') : undefined,
      bytes: 0,
      rawBytes: 0,
      rows: 0,
    };
    return this.current;
  }

  private async closeCurrent(): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    const written = await cur.writer.finish();
    this.current = undefined;
    const record: SliceRecord = {
      key: cur.key,
      index: cur.index,
      bytes: cur.bytes,
      rawBytes: cur.rawBytes,
      rows: cur.rows,
      sha256: cur.sha256.digest('hex'),
      ...(cur.md5 ? { md5: cur.md5.digest('base64') } : {}),
      ...(written.etag ? { etag: written.etag } : {}),
    };
    this.slices.push(record);
    this.options.onSlice?.(record);
  }
}
