import { createHash, type Hash } from 'node:crypto';
import type { Store, ObjectWriter } from '../stores/store.js';
import type { LandedSlice, SliceRecord } from '../model.js';
import { TakeoutError } from '../errors.js';
import type { CompressedBlock } from './compress.js';

/** The journal's record of a slice that just landed. */
export function landedSlice(s: SliceRecord): LandedSlice {
  return { key: s.key, index: s.index, bytes: s.bytes, rawBytes: s.rawBytes, rows: s.rows, sha256: s.sha256, ...(s.etag ? { etag: s.etag } : {}) };
}

/**
 * A resumed table's data no longer gives the slice the interrupted run landed (the source changed):
 * the slices already landed cannot be kept, the table must be written again from its start.
 */
export class SliceChanged extends TakeoutError {
  constructor(readonly key: string) {
    super('INTEGRITY', `${key} differs from the slice the interrupted run wrote: the source changed`);
  }
}

export interface SlicerOptions {
  destination: Pick<Store, 'writer'>;
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
  /**
   * Resume: the slice an interrupted run landed at this index. Its blocks are hashed, not written;
   * when they come out identical the landed slice is kept, otherwise SliceChanged is thrown.
   */
  landed?: (index: number) => LandedSlice | undefined;
  /** Create only: a slice key that already exists fails with EXISTS instead of being replaced. */
  ifNoneMatch?: boolean;
  /** Bytes that start every slice (a header), already compressed like the blocks; not rows. */
  prologue?: CompressedBlock;
  /** Bytes that end every slice (a closing element); counted in the cut, so a slice stays within sliceBytes. */
  epilogue?: CompressedBlock;
}

interface OpenSlice {
  index: number;
  key: string;
  /** Undefined while checking a slice that already landed. */
  writer: ObjectWriter | undefined;
  landed: LandedSlice | undefined;
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
    const tail = this.options.epilogue?.data.length ?? 0;
    if (
      cur &&
      cur.rows > 0 &&
      (cur.bytes + block.data.length + tail > sliceBytes || (sliceRows !== undefined && cur.rows + block.rows > sliceRows))
    ) {
      await this.closeCurrent();
    }
    let slice = this.current;
    if (!slice) {
      slice = await this.open();
      if (this.options.prologue) await this.append(slice, this.options.prologue);
    }
    this.options.signal?.throwIfAborted();
    await this.append(slice, block);
    this.options.onProgress?.({ rawBytes: block.rawBytes, bytes: block.data.length, rows: block.rows });
  }

  private async append(slice: OpenSlice, block: CompressedBlock): Promise<void> {
    await slice.writer?.write(block.data);
    slice.sha256.update(block.data);
    slice.md5?.update(block.data);
    slice.bytes += block.data.length;
    slice.rawBytes += block.rawBytes;
    slice.rows += block.rows;
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
    if (cur) await cur.writer?.abort();
  }

  private async open(): Promise<OpenSlice> {
    const index = this.next++;
    const key = this.options.keyFor(index);
    const landed = this.options.landed?.(index);
    const writer = landed
      ? undefined
      : await this.options.destination.writer(key, {
          contentType: this.options.plain ? 'text/csv' : 'application/gzip',
          ...(this.options.ifNoneMatch ? { ifNoneMatch: true } : {}),
          ...(this.options.signal ? { signal: this.options.signal } : {}),
        });
    this.current = {
      index,
      key,
      writer,
      landed,
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
    if (this.options.epilogue) await this.append(cur, this.options.epilogue);
    const sha256 = cur.sha256.digest('hex');
    const landed = cur.landed;
    if (landed && (landed.sha256 !== sha256 || landed.bytes !== cur.bytes || landed.rows !== cur.rows || landed.key !== cur.key)) {
      this.current = undefined;
      throw new SliceChanged(cur.key);
    }
    const written = cur.writer ? await cur.writer.finish() : undefined;
    this.current = undefined;
    const etag = written ? written.etag : landed?.etag;
    const record: SliceRecord = {
      key: cur.key,
      index: cur.index,
      bytes: cur.bytes,
      rawBytes: cur.rawBytes,
      rows: cur.rows,
      sha256,
      ...(cur.md5 ? { md5: cur.md5.digest('base64') } : {}),
      ...(etag ? { etag } : {}),
      ...(landed ? { reused: true } : {}),
    };
    this.slices.push(record);
    this.options.onSlice?.(record);
  }
}
