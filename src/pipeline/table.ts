import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createGunzip } from 'node:zlib';
import type { Store } from '../stores/store.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { DEFAULT_BLOCK_BYTES, type Block } from '../formats/csv/blocks.js';
import { CsvRowEncoder } from '../formats/csv/encode.js';
import { CsvPassThrough } from '../formats/csv/pass-through.js';
import { readCounter } from '../formats/record-batches.js';
import { RecordCounter } from '../formats/csv/record-counter.js';
import { CsvScanner } from '../formats/csv/scanner.js';
import type { GzipSlicesBody, TableBody, TableDescriptor } from '../model.js';
import type { ProgressDelta } from './events.js';
import { NO_COMPRESSION, OrderedCompressor } from './compress.js';
import { Slicer } from './slicer.js';
import type { LandedSlice, SliceRecord } from '../model.js';
import { coalesce, mapLimitOrFail } from './chunks.js';
import { plural } from '../units.js';

/** Smallest block worth compressing on its own: below this gzip's per-member overhead and ratio suffer. */
const MIN_BLOCK_BYTES = 16 * 1024;
/** gunzip output chunk for counting rows of copied slices (1 MiB doubles gunzip speed over the default). */
export const GUNZIP_CHUNK_BYTES = 1 << 20;

/** What the slicer needs of a destination; a single output file implements just this. */
export type SliceSink = Pick<Store, 'writer' | 'delete'>;

export interface TableWriteOptions {
  destination: SliceSink;
  keyFor: (index: number) => string;
  sliceBytes: number;
  sliceRows?: number;
  /** gzip level 0–9, or NO_COMPRESSION for plain CSV (a merged export). */
  compressionLevel: number;
  lineEnding: '\n' | '\r\n';
  /** Rewrite CSV input with every value quoted and `lineEnding` row ends, instead of passing its bytes through. */
  requote?: boolean;
  /** Also compute each slice's base64 MD5 (DynamoDB-style manifests need it). */
  md5?: boolean;
  signal?: AbortSignal;
  onSlice?: (slice: SliceRecord) => void;
  onProgress?: (delta: ProgressDelta) => void;
  /** Resume: the slice an interrupted run landed at this index, kept when this run gives the same bytes. */
  landed?: (index: number) => LandedSlice | undefined;
  /** Create only: a slice key that already exists fails with EXISTS instead of being replaced. */
  ifNoneMatch?: boolean;
  /** On failure keep the slices that landed (a journal records them for --resume) instead of removing them. */
  keepLanded?: boolean;
}

export interface TableWriteResult {
  slices: SliceRecord[];
  rows: number;
  rawBytes: number;
  bytes: number;
}

/**
 * Writes one table's body as gzipped CSV slices. Encoded bodies go scan/encode → parallel gzip →
 * slicer; already-gzipped slices are copied as they are. On failure every slice this call wrote is
 * removed, so nothing half-written is left looking complete.
 */
export async function writeTableSlices(
  table: TableDescriptor,
  body: TableBody,
  options: TableWriteOptions,
): Promise<TableWriteResult> {
  const written: string[] = [];
  const onSlice = (slice: SliceRecord): void => {
    written.push(slice.key);
    options.onSlice?.(slice);
  };
  try {
    const slices =
      body.kind === 'gzip-slices'
        ? await copySlices(body, { ...options, onSlice })
        : await encodeSlices(table, body, { ...options, onSlice });
    return {
      slices,
      rows: slices.reduce((n, s) => n + s.rows, 0),
      rawBytes: slices.reduce((n, s) => n + s.rawBytes, 0),
      bytes: slices.reduce((n, s) => n + s.bytes, 0),
    };
  } catch (error) {
    if (!options.keepLanded) await options.destination.delete(written).catch(() => undefined);
    throw options.signal?.aborted ? new TakeoutError('INTERRUPTED', 'interrupted') : toTakeoutError(error, `table ${table.id}`);
  }
}

async function encodeSlices(
  table: TableDescriptor,
  body: Exclude<TableBody, GzipSlicesBody>,
  options: TableWriteOptions,
): Promise<SliceRecord[]> {
  const slicer = new Slicer({
    destination: options.destination,
    keyFor: options.keyFor,
    sliceBytes: options.sliceBytes,
    ...(options.sliceRows !== undefined ? { sliceRows: options.sliceRows } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onSlice ? { onSlice: options.onSlice } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.landed ? { landed: options.landed } : {}),
    ...(options.ifNoneMatch ? { ifNoneMatch: true } : {}),
    md5: options.md5 === true,
    plain: options.compressionLevel === NO_COMPRESSION,
  });
  const compressor = new OrderedCompressor(options.compressionLevel, (block) => slicer.write(block));
  // Blocks no larger than a slice keep slices close to --slice-size even when it is small.
  const blockOptions = {
    blockBytes: Math.max(MIN_BLOCK_BYTES, Math.min(DEFAULT_BLOCK_BYTES, options.sliceBytes)),
    ...(options.sliceRows !== undefined ? { blockRows: options.sliceRows } : {}),
    lineEnding: options.lineEnding,
  };
  const feed = async (blocks: Block[]): Promise<void> => {
    for (const block of blocks) await compressor.push(block);
  };
  try {
    if (body.kind === 'csv') {
      const scanOptions = { ...blockOptions, columns: table.columns.length, hasHeader: body.hasHeader, origin: body.origin };
      const scanner = options.requote ? new CsvScanner(scanOptions) : new CsvPassThrough(scanOptions);
      try {
        const read = readCounter(body);
        for await (const chunk of body.stream as AsyncIterable<Buffer>) {
          options.signal?.throwIfAborted();
          options.onProgress?.({ readBytes: read(chunk), rawBytes: 0, bytes: 0, rows: 0 });
          await feed(scanner.push(chunk));
        }
      } finally {
        body.stream.destroy();
      }
      await feed(scanner.end());
    } else {
      const encoder = new CsvRowEncoder({ ...blockOptions, columns: table.columns.length, origin: table.id });
      for await (const row of body.rows) {
        const blocks = encoder.push(row);
        if (blocks.length > 0) {
          options.signal?.throwIfAborted();
          await feed(blocks);
        }
      }
      await feed(encoder.end());
    }
    await compressor.flush();
    return await slicer.finish();
  } catch (error) {
    await slicer.abort();
    throw error;
  }
}

/** Slices copied at once: copies wait on two networks, so a few in flight keep both cores busy (each holds an upload's parts). */
export const COPY_CONCURRENCY = 3;

/** Copies gzipped slices byte for byte, hashing them and counting rows on the way (which also proves the gzip is whole). */
async function copySlices(body: GzipSlicesBody, options: TableWriteOptions): Promise<SliceRecord[]> {
  const records: SliceRecord[] = [];
  const done = new Map<number, SliceRecord>();
  let reported = 0;
  // Slices finish in any order; they are reported (and recorded) in slice order.
  const report = (): void => {
    for (let next = done.get(reported); next; next = done.get(reported)) {
      records.push(next);
      options.onProgress?.({ rawBytes: next.rawBytes, bytes: 0, rows: next.rows });
      options.onSlice?.(next);
      done.delete(reported++);
    }
  };
  try {
    await mapLimitOrFail(body.slices, COPY_CONCURRENCY, async (slice, index) => {
      done.set(index, await copySlice(slice, index, options));
      report();
    });
  } catch (error) {
    // Slices that landed after a gap were never reported: the caller cannot know about them.
    if (options.keepLanded) for (const record of done.values()) options.onSlice?.(record);
    else await options.destination.delete([...done.values()].map((r) => r.key)).catch(() => undefined);
    throw error;
  }
  return records;
}

async function copySlice(slice: GzipSlicesBody['slices'][number], index: number, options: TableWriteOptions): Promise<SliceRecord> {
  options.signal?.throwIfAborted();
  const key = options.keyFor(index);
  // A copied slice is known by its source's sha256 (a takeout as the source): the same bytes landed already.
  const landed = options.landed?.(index);
  if (landed && landed.key === key && slice.sha256 !== undefined && slice.sha256 === landed.sha256 && slice.bytes === landed.bytes && !options.md5) {
    return { ...landed, reused: true };
  }
  const writer = await options.destination.writer(key, { contentType: 'application/gzip', ...(options.ifNoneMatch ? { ifNoneMatch: true } : {}) });
  const sha256 = createHash('sha256');
  const md5 = options.md5 ? createHash('md5') : undefined;
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  const counter = new RecordCounter();
  let rawBytes = 0;
  const counted = (async () => {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      rawBytes += chunk.length;
      counter.push(chunk);
    }
  })();
  counted.catch(() => undefined);
  let bytes = 0;
  try {
    const stream = await slice.open();
    for await (const chunk of coalesce(stream as AsyncIterable<Buffer>)) {
      options.signal?.throwIfAborted();
      sha256.update(chunk);
      md5?.update(chunk);
      bytes += chunk.length;
      // once() rejects on 'error': a corrupt gzip member never drains, and waiting for 'drain' alone would hang.
      if (!gunzip.write(chunk)) {
        await once(gunzip, 'drain').catch((error: unknown) => {
          throw new TakeoutError('INTEGRITY', `${slice.origin}: corrupt gzip (${(error as Error).message})`);
        });
      }
      await writer.write(chunk);
      options.onProgress?.({ readBytes: chunk.length, rawBytes: 0, bytes: chunk.length, rows: 0 });
    }
    gunzip.end();
    try {
      await counted;
    } catch (error) {
      throw new TakeoutError('INTEGRITY', `${slice.origin}: corrupt gzip (${(error as Error).message})`);
    }
    const digest = sha256.digest('hex');
    if (slice.bytes !== undefined && slice.bytes !== bytes) {
      throw new TakeoutError('INTEGRITY', `${slice.origin}: ${plural(bytes, 'byte')}, the manifest says ${slice.bytes}`);
    }
    if (slice.sha256 !== undefined && slice.sha256 !== digest) {
      throw new TakeoutError('INTEGRITY', `${slice.origin}: sha256 ${digest} does not match the manifest`);
    }
    const rows = counter.end();
    if (slice.rows !== undefined && slice.rows !== rows) {
      throw new TakeoutError('INTEGRITY', `${slice.origin}: ${plural(rows, 'row')}, the manifest says ${slice.rows}`);
    }
    const finished = await writer.finish();
    return {
      key,
      index,
      bytes,
      rawBytes,
      rows,
      sha256: digest,
      ...(md5 ? { md5: md5.digest('base64') } : {}),
      ...(finished.etag ? { etag: finished.etag } : {}),
    };
  } catch (error) {
    gunzip.destroy();
    await writer.abort();
    throw error;
  }
}

