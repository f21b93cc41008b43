import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createGzip, createGunzip, gzipSync } from 'node:zlib';
import type { ObjectWriter } from '../stores/store.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { encodeHeader } from '../formats/csv/encode.js';
import { coalesce, mapLimitOrFail } from './chunks.js';
import type { MergePlan, SliceEntry } from '../manifests/read.js';
import { ChunkQueue } from './merge/chunk-queue.js';
import { ColumnCheck, FirstRecordProbe, probed } from './merge/first-record.js';
import { GUNZIP_CHUNK_BYTES, inflatedAside, isGzip, through } from './merge/gzip-streams.js';
import { plural } from '../units.js';

/**
 * Merges slices into one output in manifest order, in constant memory: up to `concurrency` slices
 * are fetched and gunzipped at once (on the thread pool, so both cores work), each into a bounded
 * queue, while the writer drains the queues strictly in order.
 */


/** Deflate cannot exceed ~1032:1; legitimate CSV stays far below 200:1. Above it, a slice is treated as a gzip bomb. */
export const DEFAULT_MAX_RATIO = 200;
/** Slack on top of the ratio cap, so tiny slices of repeated values are not mistaken for bombs. */
const RATIO_SLACK_BYTES = 1024 * 1024;

export interface MergeOptions {
  plan: MergePlan;
  /** Opens a slice; throws TakeoutError NOT_FOUND when it does not exist. */
  open: (entry: SliceEntry) => Promise<Readable>;
  output: ObjectWriter;
  /** Concatenate the gzip members as they are instead of writing plain CSV. */
  gzipOutput: boolean;
  /** Write one header row with these column names first. */
  header?: readonly string[];
  /**
   * Fields every slice's first record must have (the table's column count); defaults to the header's.
   * Unknown: the first slice, in manifest order, that has a record sets it.
   */
  columns?: number;
  /** With gzipOutput: inflate slices that have no size or sha256 to check, to prove each gzip whole (default true). */
  verifyGzip?: boolean;
  concurrency: number;
  maxRatio?: number;
  /** `--keep-slices`: also store each slice's bytes as fetched. */
  keep?: (entry: SliceEntry, index: number) => Promise<ObjectWriter>;
  signal?: AbortSignal;
  onProgress?: (progress: MergeProgress) => void;
  onWarning?: (message: string) => void;
}

export interface MergeProgress {
  slices: number;
  slicesDone: number;
  bytes: number;
  outputBytes: number;
}

export interface MergeResult {
  slices: number;
  skipped: string[];
  /** Bytes fetched (as stored). */
  bytes: number;
  /** Bytes written to the output. */
  outputBytes: number;
}

/** A run of digits in a slice name: `orders.part_10.csv.gz`, Redshift's `0001_part_00`. */
const DIGITS = /\d+/g;

/**
 * The order to merge local slices named on the command line in. A shell glob sorts names as text, so
 * `part_10` comes before `part_2` and rows would be merged out of order. Names that are one numbered sequence
 * (every name the same apart from its numbers, as `part_0 … part_12` or Redshift's `0000_part_00 …`) are put
 * in the order of their numbers, compared as numbers from left to right; any other set of names keeps the
 * order given. Returns the names in merge order and, when that differs from the order given, the first
 * two names that swapped places (`first` now before `second`).
 */
export function numberedOrder(names: readonly string[]): { names: string[]; moved?: { first: string; second: string } } {
  const shape = (name: string): string => name.replace(DIGITS, '#');
  const numbers = (name: string): bigint[] => (name.match(DIGITS) ?? []).map((d) => BigInt(d));
  const first = names[0];
  if (names.length < 2 || first === undefined || !/\d/.test(first) || names.some((n) => shape(n) !== shape(first))) return { names: [...names] };
  const keyed = names.map((name, index) => ({ name, index, key: numbers(name) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < a.key.length; i++) {
      const x = a.key[i]!;
      const y = b.key[i]!;
      if (x !== y) return x < y ? -1 : 1;
    }
    return a.index - b.index;
  });
  const sorted = keyed.map((k) => k.name);
  const at = sorted.findIndex((name, i) => name !== names[i]);
  return at < 0 ? { names: sorted } : { names: sorted, moved: { first: sorted[at]!, second: names[at]! } };
}

/** One merge's state, shared by its steps: the options, the column check and the counters reported. */
interface Merge {
  options: MergeOptions;
  entries: readonly SliceEntry[];
  maxRatio: number;
  columns: ColumnCheck;
  skipped: string[];
  /** Bytes fetched (as stored). */
  bytes: number;
  /** Bytes written to the output. */
  outputBytes: number;
  slicesDone: number;
}

/** Where a slice's plain (or, with gzipOutput, gzip) chunks go; `at` is the chunk's offset in the slice's output. */
type Sink = (chunk: Buffer, at: number) => Promise<void>;

/** What one slice has given so far: bytes fetched (as stored) and bytes of output. */
interface SliceCounts {
  fetched: number;
  raw: number;
}

export async function mergeSlices(options: MergeOptions): Promise<MergeResult> {
  const entries = options.plan.entries;
  const merge: Merge = {
    options,
    entries,
    maxRatio: options.maxRatio ?? DEFAULT_MAX_RATIO,
    columns: new ColumnCheck(entries, options.columns ?? options.header?.length),
    skipped: [],
    bytes: 0,
    outputBytes: 0,
    slicesDone: 0,
  };
  if (options.header) {
    const line = Buffer.from(encodeHeader(options.header));
    await writeInOrder(merge, options.gzipOutput ? gzipSync(line) : line);
  }
  const concurrency = Math.max(1, options.concurrency);
  const writeAt = options.output.writeAt?.bind(options.output);
  // With every slice's decompressed size known (a takeout manifest) and a file to write, each slice goes
  // straight to its own offset: all of them decompress in parallel, with nothing buffered in between.
  const positional = writeAt !== undefined && !options.gzipOutput && entries.every((e) => e.rawBytes !== undefined && e.mandatory);
  try {
    if (positional) await positionalMerge(merge, concurrency, writeAt);
    else await sequentialMerge(merge, concurrency);
  } catch (error) {
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', 'interrupted');
    throw toTakeoutError(error);
  }
  return { slices: entries.length, skipped: merge.skipped, bytes: merge.bytes, outputBytes: merge.outputBytes };
}

function report(merge: Merge): void {
  merge.options.onProgress?.({ slices: merge.entries.length, slicesDone: merge.slicesDone, bytes: merge.bytes, outputBytes: merge.outputBytes });
}

async function writeInOrder(merge: Merge, chunk: Buffer): Promise<void> {
  merge.options.signal?.throwIfAborted();
  await merge.options.output.write(chunk);
  merge.outputBytes += chunk.length;
}

/** Slices of unknown size: fetched ahead into bounded queues, written strictly in order. */
async function sequentialMerge(merge: Merge, concurrency: number): Promise<void> {
  const { entries } = merge;
  // Only the slices in flight are held: a written slice's queue and promise are dropped, so memory
  // does not grow with the number of slices (a manifest may list hundreds of thousands).
  const inFlight = new Map<number, { queue: ChunkQueue; producer: Promise<void> }>();
  let launched = 0;
  const launch = (upTo: number): void => {
    while (launched < entries.length && launched < upTo) {
      const index = launched++;
      const queue = new ChunkQueue();
      const producer = fetchSlice(merge, entries[index]!, index, (chunk) => queue.push(chunk), () => queue.end()).catch((error: unknown) => queue.fail(error));
      inFlight.set(index, { queue, producer });
    }
  };
  try {
    for (let i = 0; i < entries.length; i++) {
      launch(i + concurrency);
      for await (const chunk of inFlight.get(i)!.queue.drain()) await writeInOrder(merge, chunk);
      await inFlight.get(i)!.producer;
      inFlight.delete(i);
      merge.slicesDone++;
      report(merge);
    }
  } catch (error) {
    for (const { queue } of inFlight.values()) queue.cancel();
    await Promise.allSettled([...inFlight.values()].map((f) => f.producer));
    throw error;
  }
}

/** Slices of known decompressed size into a file: each written at its own offset, `concurrency` at once. */
async function positionalMerge(merge: Merge, concurrency: number, writeAt: NonNullable<ObjectWriter['writeAt']>): Promise<void> {
  const { entries, options } = merge;
  let offset = merge.outputBytes;
  const starts = entries.map((e) => {
    const start = offset;
    offset += e.rawBytes!;
    return start;
  });
  let stopped = false;
  await mapLimitOrFail(entries, concurrency, async (entry, index) => {
    try {
      await fetchSlice(merge, entry, index, async (chunk, at) => {
        options.signal?.throwIfAborted();
        if (stopped) throw new TakeoutError('INTERRUPTED', 'another slice failed');
        await writeAt(chunk, starts[index]! + at);
        merge.outputBytes += chunk.length;
      }, () => undefined);
    } catch (error) {
      stopped = true;
      throw error;
    }
    merge.slicesDone++;
    report(merge);
  });
}

/** Fetches one slice into `sink`, checking size, sha256 and the decompression cap on the way. */
async function fetchSlice(merge: Merge, entry: SliceEntry, index: number, sink: Sink, done: () => void): Promise<void> {
  const { options } = merge;
  const probe = new FirstRecordProbe(merge.columns, index);
  const stream = await openSlice(merge, entry, probe);
  if (!stream) {
    done();
    return;
  }
  const keep = options.keep ? await options.keep(entry, index) : undefined;
  const sha256 = entry.sha256 ? createHash('sha256') : undefined;
  const counts: SliceCounts = { fetched: 0, raw: 0 };
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      options.signal?.throwIfAborted();
      counts.fetched += chunk.length;
      merge.bytes += chunk.length;
      if (entry.bytes !== undefined && counts.fetched > entry.bytes) {
        throw new TakeoutError('INTEGRITY', `slice ${entry.label} is larger than the manifest's ${entry.bytes} bytes`);
      }
      sha256?.update(chunk);
      if (keep) await keep.write(chunk);
      yield chunk;
    }
  };
  try {
    const source = coalesce(counted());
    const head = await source.next();
    if (!head.done) await pump(merge, entry, sliceBody(options, entry, source, head.value, probe), probe, counts, sink);
    probe.end();
    probe.throwIfFailed();
    checkSlice(options, entry, counts, sha256?.digest('hex'));
    if (keep) await keep.finish();
    done();
  } catch (error) {
    stream.destroy();
    if (keep) await keep.abort();
    throw error;
  }
}

/** Opens a slice; an optional slice that does not exist is skipped (undefined), a mandatory one is an error. */
async function openSlice(merge: Merge, entry: SliceEntry, probe: FirstRecordProbe): Promise<Readable | undefined> {
  try {
    return await merge.options.open(entry);
  } catch (error) {
    const failure = toTakeoutError(error, entry.label);
    if (failure.code === 'NOT_FOUND' && !entry.mandatory) {
      merge.skipped.push(entry.label);
      merge.options.onWarning?.(`skipped optional slice ${entry.label}: it does not exist`);
      probe.skip();
      probe.throwIfFailed();
      return undefined;
    }
    if (failure.code === 'NOT_FOUND') throw new TakeoutError('NOT_FOUND', `mandatory slice ${entry.label} does not exist`, { cause: error });
    throw failure;
  }
}

/** The slice's output from its bytes as stored (`first`, then `source`): gunzipped, gzipped, or as it is. */
function sliceBody(options: MergeOptions, entry: SliceEntry, source: AsyncGenerator<Buffer>, first: Buffer, probe: FirstRecordProbe): AsyncIterable<Buffer> {
  const gz = isGzip(first);
  if (options.gzipOutput) {
    // Copied as they are, inflated on the side for the first record; with neither a size nor a sha256 to
    // check, inflated whole to prove each gzip whole. Plain slices are probed before they are compressed.
    const whole = gz && options.verifyGzip !== false && entry.bytes === undefined && entry.sha256 === undefined;
    if (gz) return inflatedAside(source, first, probe, whole);
    probe.feed(first);
    probe.throwIfFailed();
    return through(probed(source, probe), first, createGzip());
  }
  return gz ? through(source, first, createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES })) : (async function* () { yield first; yield* source; })();
}

/** Moves a slice's output into the sink, probing its first record and holding it to the decompression cap. */
async function pump(merge: Merge, entry: SliceEntry, body: AsyncIterable<Buffer>, probe: FirstRecordProbe, counts: SliceCounts, sink: Sink): Promise<void> {
  const { options, maxRatio } = merge;
  try {
    for await (const chunk of body) {
      if (!options.gzipOutput && !probe.done) {
        probe.feed(chunk);
        probe.throwIfFailed();
      }
      const at = counts.raw;
      counts.raw += chunk.length;
      const cap = entry.rawBytes ?? counts.fetched * maxRatio + RATIO_SLACK_BYTES;
      if (!options.gzipOutput && counts.raw > cap) {
        throw new TakeoutError(
          'INTEGRITY',
          entry.rawBytes !== undefined
            ? `slice ${entry.label} decompresses to more than the manifest's ${entry.rawBytes} bytes`
            : `slice ${entry.label} decompresses to more than ${maxRatio}× its size: a gzip bomb? (raise --max-ratio if it is real)`,
        );
      }
      await sink(chunk, at);
    }
  } catch (error) {
    if (error instanceof TakeoutError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new TakeoutError('INTEGRITY', `slice ${entry.label} is not a whole gzip file (${(error as Error).message})`);
    }
    throw toTakeoutError(error, `slice ${entry.label}`);
  }
}

/** A fetched slice against its manifest entry: size as stored, sha256, decompressed size. */
function checkSlice(options: MergeOptions, entry: SliceEntry, counts: SliceCounts, digest: string | undefined): void {
  if (entry.bytes !== undefined && counts.fetched !== entry.bytes) {
    throw new TakeoutError('INTEGRITY', `slice ${entry.label} has ${plural(counts.fetched, 'byte')}, the manifest says ${entry.bytes}`);
  }
  if (digest !== undefined && entry.sha256) {
    if (digest !== entry.sha256) throw new TakeoutError('INTEGRITY', `slice ${entry.label} sha256 ${digest.slice(0, 12)}… does not match the manifest`);
  }
  if (!options.gzipOutput && entry.rawBytes !== undefined && counts.raw !== entry.rawBytes) {
    throw new TakeoutError('INTEGRITY', `slice ${entry.label} decompresses to ${plural(counts.raw, 'byte')}, the manifest says ${entry.rawBytes}`);
  }
}
