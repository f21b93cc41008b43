/** The data files of a dataset export: rows → layout encoder → blocks → parallel gzip → slicer, one series of files per event name (or one). */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { TakeoutError } from '../../errors.js';
import { DEFAULT_BLOCK_BYTES } from '../../formats/csv/blocks.js';
import type { RecordColumn } from '../../formats/typed-records.js';
import type { BlockFiles, DataFile, DatasetLayout, LineFiles } from '../../layouts/dataset-layout.js';
import type { LandedSlice, Row, TableQuery } from '../../model.js';
import { NO_COMPRESSION, OrderedCompressor, type CompressedBlock } from '../compress.js';
import { tableStart } from '../events.js';
import type { JournalWriter } from '../journal.js';
import { recordBatches } from '../../formats/record-batches.js';
import { landedSlice, SliceChanged, Slicer } from '../slicer.js';
import { plural } from '../../units.js';
import type { DatasetExportOptions } from './options.js';

/** Encoded records gathered before they are compressed: the same 2 MiB the CSV pipeline compresses at once. */
const BLOCK_BYTES = DEFAULT_BLOCK_BYTES;
/** Smallest block worth compressing on its own (per-member gzip overhead); blocks shrink to this for small files. */
const MIN_BLOCK_BYTES = 16 * 1024;
/**
 * Series (CleverTap: event names) written at once. Each holds a block being filled and its own upload, so
 * memory grows with them; past this many the export fails instead of exhausting memory.
 */
export const MAX_OPEN_SERIES = 256;

/** A series' files in the journal: one journal "table" per series. */
const journalName = (series: string): string => `series:${series}`;

/** One series of files being written: the block being filled, its compressor and slicer. */
interface LineSeries {
  /**
   * Encoded records are written straight into a block buffer: appending millions of small strings to one
   * string and converting it costs 2–3× the time in V8's young-generation collections (measured 16 s → 6 s
   * for 1 M rows).
   */
  block: Buffer;
  length: number;
  rows: number;
  compressor: OrderedCompressor;
  slicer: Slicer;
}

/** The data files: rows → encoder → blocks → parallel gzip → slicer per series (cut at --max-file-size). */
export async function writeData(
  options: DatasetExportOptions,
  layout: DatasetLayout,
  columns: readonly RecordColumn[],
  query: TableQuery | undefined,
  journal: JournalWriter,
  createOnly: boolean,
): Promise<DataFile[]> {
  const { table, emit } = options;
  const open = async (): Promise<AsyncIterable<Row[]>> =>
    recordBatches(await options.source.openTable(table, { ...(options.signal ? { signal: options.signal } : {}), ...(query ? { query } : {}) }), columns.length, options.signal, onRead);
  // Progress is source-side (bytes read, rows taken), as the table's size is: the layout's encoded bytes can be
  // twice the source's (DynamoDB JSON), so they are never measured against it.
  // The observing first read (below) is not progress: it is counted from table:start on.
  let started = false;
  const onRead = (bytes: number): void => {
    if (started) emit({ type: 'table:progress', table: table.id, readBytes: bytes, rawBytes: 0, bytes: 0, rows: 0 });
  };
  const filter = layout.filter;
  if (filter?.observe) {
    // A first read for filters that decide on the whole export (newest record per id).
    for await (const batch of await open()) for (const row of batch) filter.observe(row);
  }
  emit(tableStart(table));
  started = true;
  const attempt = async (resuming: boolean): Promise<DataFile[]> => {
    filter?.rewind?.();
    const landed = (series: string): Map<number, LandedSlice> =>
      new Map((resuming ? (journal.table(journalName(series))?.slices ?? []) : []).map((s) => [s.index, s]));
    const record = (series: string, slice: DataFile): void => {
      if (!slice.reused) journal.slice(journalName(series), landedSlice(slice));
      emit({ type: 'table:slice', table: table.id, slice: { key: slice.key, bytes: slice.bytes, rows: slice.rows, sha256: slice.sha256 } });
    };
    return layout.data.kind === 'lines'
      ? writeLines(options, layout.data, { batches: await open(), keep: filter?.keep.bind(filter), landed, record, createOnly })
      : writeBlocks(options, layout.data, { batches: await open(), keep: filter?.keep.bind(filter), landed, record, createOnly });
  };
  try {
    return await attempt(true);
  } catch (error) {
    if (!(error instanceof SliceChanged)) throw error;
    emit({ type: 'warning', message: `${table.id} changed since the interrupted run; exporting it again from its first file` });
    for (const name of journal.tableNames()) journal.setTable(name, undefined);
    return attempt(false);
  }
}

/** What a layout's data files are written from, and what is done as each lands. */
interface SeriesInput {
  batches: AsyncIterable<Row[]>;
  /** The layout's row filter (incremental exports), if any. */
  keep: ((row: Row) => boolean) | undefined;
  /** The files of a series an interrupted run landed, by index. */
  landed: (series: string) => Map<number, LandedSlice>;
  record: (series: string, slice: DataFile) => void;
  createOnly: boolean;
}

async function writeLines(options: DatasetExportOptions, spec: LineFiles, input: SeriesInput): Promise<DataFile[]> {
  const { batches, keep, landed, record, createOnly } = input;
  const level = spec.gzip ? options.compressionLevel : NO_COMPRESSION;
  const framed = (text: string | undefined): CompressedBlock | undefined => {
    if (!text) return undefined;
    const raw = Buffer.from(text);
    return { data: spec.gzip ? gzipSync(raw, { level: options.compressionLevel }) : raw, rawBytes: raw.length, rows: 0 };
  };
  const blockBytes = Math.max(MIN_BLOCK_BYTES, Math.min(BLOCK_BYTES, options.maxFileBytes));
  const series = new Map<string, LineSeries>();
  const files: DataFile[] = [];
  const seriesFor = (name: string): LineSeries => {
    let s = series.get(name);
    if (s) return s;
    if (series.size >= MAX_OPEN_SERIES) throw new TakeoutError('INVALID_INPUT', `${options.table.id}: more than ${MAX_OPEN_SERIES} series (e.g. event names) in one export`);
    const before = landed(name);
    const prologue = framed(spec.prologue?.(name));
    const epilogue = framed(spec.epilogue?.(name));
    const slicer = new Slicer({
      destination: options.destination,
      keyFor: (index) => spec.fileKey(name, index),
      sliceBytes: options.maxFileBytes,
      md5: true,
      ...(createOnly ? { ifNoneMatch: true } : {}),
      plain: !spec.gzip,
      ...(prologue ? { prologue } : {}),
      ...(epilogue ? { epilogue } : {}),
      ...(before.size > 0 ? { landed: (index: number) => before.get(index) } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onSlice: (slice) => {
        const file = { ...slice, series: name };
        files.push(file);
        record(name, file);
      },
      onProgress: (delta) => options.emit({ type: 'table:progress', table: options.table.id, ...delta }),
    });
    s = { block: Buffer.allocUnsafe(blockBytes), length: 0, rows: 0, slicer, compressor: new OrderedCompressor(level, (block) => slicer.write(block)) };
    series.set(name, s);
    return s;
  };
  const flush = async (s: LineSeries, room = blockBytes): Promise<void> => {
    // The compressor keeps the block until it is gzipped: the next one gets a buffer of its own.
    const block = s.rows === 0 ? undefined : { data: s.block.subarray(0, s.length), rows: s.rows };
    s.block = Buffer.allocUnsafe(Math.max(blockBytes, room));
    s.length = 0;
    s.rows = 0;
    if (block) await s.compressor.push(block);
  };
  try {
    for await (const batch of batches) {
      for (const row of batch) {
        if (keep && !keep(row)) continue;
        const s = seriesFor(spec.seriesOf?.(row) ?? '');
        const text = spec.encoder.encode(row);
        // UTF-8 takes at most 3 bytes per UTF-16 unit: check the room without measuring the text.
        if (s.length + text.length * 3 > s.block.length) await flush(s, text.length * 3);
        s.length += s.block.write(text, s.length);
        s.rows++;
        if (s.length >= blockBytes) await flush(s);
      }
    }
    for (const s of series.values()) {
      await flush(s);
      await s.compressor.flush();
      await s.slicer.finish();
    }
  } catch (error) {
    for (const s of series.values()) await s.slicer.abort();
    throw error;
  }
  return files.sort((a, b) => a.series.localeCompare(b.series) || a.index - b.index);
}

async function writeBlocks(options: DatasetExportOptions, spec: BlockFiles, input: SeriesInput): Promise<DataFile[]> {
  const { batches, keep, landed, record, createOnly } = input;
  const open = new Map<string, { builder: ReturnType<BlockFiles['open']>; index: number; rows: number }>();
  const files: DataFile[] = [];
  const close = async (name: string): Promise<void> => {
    const current = open.get(name);
    if (!current || current.rows === 0) return;
    const bytes = Buffer.from(current.builder.finish());
    const index = current.index;
    const key = spec.fileKey(name, index);
    if (bytes.length > options.maxFileBytes) {
      // A row cannot be cut: one larger than the cap is a file of its own, said out loud. More rows over the
      // cap means the size estimate was wrong; refused rather than delivered over the limit.
      if (current.rows > 1) {
        throw new TakeoutError('FAILED', `${key}: ${plural(bytes.length, 'byte')} with ${plural(current.rows, 'row')}, over --max-file-size ${options.maxFileBytes}`, {
          hint: 'raise --max-file-size; please report this with the table\'s shape',
        });
      }
      options.emit({ type: 'warning', message: `${key}: one row of ${bytes.length} bytes, larger than --max-file-size ${options.maxFileBytes}: written as a file of its own` });
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const before = landed(name).get(index);
    let etag: string | undefined;
    if (before && before.sha256 === sha256 && before.key === key) {
      etag = before.etag;
    } else {
      if (before) throw new SliceChanged(key);
      etag = (await options.destination.put(key, bytes, { contentType: 'application/octet-stream', ...(createOnly ? { ifNoneMatch: true } : {}) })).etag;
    }
    const file: DataFile = {
      key,
      index,
      bytes: bytes.length,
      rawBytes: bytes.length,
      rows: current.rows,
      sha256,
      md5: createHash('md5').update(bytes).digest('base64'),
      ...(etag ? { etag } : {}),
      ...(before ? { reused: true } : {}),
      series: name,
    };
    files.push(file);
    record(name, file);
    open.set(name, { builder: spec.open(name), index: index + 1, rows: 0 });
  };
  for await (const batch of batches) {
    options.signal?.throwIfAborted();
    const groups = new Map<string, Row[]>();
    for (const row of batch) {
      if (keep && !keep(row)) continue;
      const name = spec.seriesOf?.(row) ?? '';
      let rows = groups.get(name);
      if (!rows) groups.set(name, (rows = []));
      rows.push(row);
    }
    for (const [name, rows] of groups) {
      if (!open.has(name)) {
        if (open.size >= MAX_OPEN_SERIES) throw new TakeoutError('INVALID_INPUT', `${options.table.id}: more than ${MAX_OPEN_SERIES} series (e.g. event names) in one export`);
        open.set(name, { builder: spec.open(name), index: 0, rows: 0 });
      }
      // One row at a time, and the file closed before a row that could take it past --max-file-size: a whole
      // batch added at once overshot small caps (a 185 KB file at 16 KB). The pending rows are settled into a
      // row group first, so the file is not closed on an estimate of them.
      for (const row of rows) {
        let current = open.get(name)!;
        if (current.rows > 0) {
          const room = options.maxFileBytes - current.builder.rowBytes(row);
          if (current.builder.boundBytes > room) {
            current.builder.settle();
            if (current.builder.boundBytes > room) {
              await close(name);
              current = open.get(name)!;
            }
          }
        }
        current.builder.add([row]);
        current.rows++;
      }
      options.emit({ type: 'table:progress', table: options.table.id, rawBytes: 0, bytes: 0, rows: rows.length });
    }
  }
  for (const name of [...open.keys()]) await close(name);
  return files.sort((a, b) => a.series.localeCompare(b.series) || a.index - b.index);
}
