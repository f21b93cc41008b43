import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { createGzip, createGunzip, gzipSync } from 'node:zlib';
import type { ObjectWriter } from '../stores/store.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { encodeHeader } from '../formats/csv/encode.js';
import { parseHeader } from '../formats/csv/header.js';
import { coalesce, mapLimitOrFail } from './chunks.js';
import type { MergePlan, SliceEntry } from '../manifests/read.js';
import { plural } from './units.js';

/**
 * Merges slices into one output in manifest order, in constant memory: up to `concurrency` slices
 * are fetched and gunzipped at once (on the thread pool, so both cores work), each into a bounded
 * queue, while the writer drains the queues strictly in order.
 */

/** Bytes one slice may run ahead of the writer before its download pauses (2 MiB: 8 MiB cost ~20 MB RSS per slice for no speed). */
export const READ_AHEAD_BYTES = 2 * 1024 * 1024;
/** gunzip output chunk: 1 MiB runs about twice as fast as the 16 KiB default. */
const GUNZIP_CHUNK_BYTES = 1 << 20;
/** Deflate cannot exceed ~1032:1; legitimate CSV stays far below 200:1. Above it, a slice is treated as a gzip bomb. */
export const DEFAULT_MAX_RATIO = 200;
/** Slack on top of the ratio cap, so tiny slices of repeated values are not mistaken for bombs. */
const RATIO_SLACK_BYTES = 1024 * 1024;
/** How far into a slice (decompressed) its first record is looked for; a longer first record leaves the slice unchecked. */
export const FIRST_RECORD_MAX_BYTES = 1024 * 1024;
/** Compressed bytes inflated at a time when only the first record is wanted (~200 KiB of CSV). */
const SIDE_INFLATE_STEP_BYTES = 64 * 1024;
/** The first record is usually short: parse this much first, so a 1 MiB chunk is not decoded for a 100-byte row. */
const FIRST_RECORD_QUICK_BYTES = 64 * 1024;

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

/** A bounded hand-over of chunks from one producer to the in-order writer. */
class ChunkQueue {
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

/**
 * Slices must agree on their number of fields. Only the first record of each slice is parsed (quote-aware),
 * which catches a slice of another table or with a column more or less without parsing the data. A slice's
 * count is compared as soon as the count it must match is known; with no column count given, that is the
 * first slice in manifest order with a record, so the slice named in the error is the odd one out
 * whatever order the slices arrive in.
 */
class ColumnCheck {
  /** Per slice: fields in its first record; null when it has none (empty, skipped, record too long); undefined until known. */
  private readonly counts: (number | null | undefined)[];
  /** Slices before this index have all been compared. */
  private compared = 0;
  private reference: { count: number; from: string } | undefined;
  /** The count was given: each slice is compared as soon as it reports. */
  private readonly given: boolean;

  constructor(
    private readonly entries: readonly SliceEntry[],
    expected: number | undefined,
  ) {
    this.counts = entries.map(() => undefined);
    this.given = expected !== undefined;
    if (expected !== undefined) this.reference = { count: expected, from: 'the column names' };
  }

  /** Records slice `index`'s count; returns the error this reveals, if any (about this slice or a later one). */
  report(index: number, count: number | null): TakeoutError | undefined {
    this.counts[index] = count;
    if (this.given) return this.compare(index);
    for (; this.compared < this.counts.length; this.compared++) {
      const current = this.counts[this.compared];
      if (current === undefined) return undefined;
      if (current === null) continue;
      if (this.reference === undefined) {
        this.reference = { count: current, from: `slice ${this.entries[this.compared]!.label}` };
        continue;
      }
      const error = this.compare(this.compared);
      if (error) return error;
    }
    return undefined;
  }

  private compare(index: number): TakeoutError | undefined {
    const count = this.counts[index];
    const reference = this.reference;
    if (count === null || count === undefined || reference === undefined || count === reference.count) return undefined;
    const label = this.entries[index]!.label;
    return new TakeoutError(
      'INTEGRITY',
      `slice ${label}: ${plural(count, 'column')}, expected ${reference.count} as in ${reference.from}`,
      { details: { slice: label, columns: count, expected: reference.count } },
    );
  }
}

/** Finds the number of fields of a slice's first record in its plain bytes, fed as they come; never throws. */
class FirstRecordProbe {
  private head: Buffer[] = [];
  private bytes = 0;
  private decided = false;
  private failure: TakeoutError | undefined;

  constructor(
    private readonly check: ColumnCheck,
    private readonly index: number,
  ) {}

  get done(): boolean {
    return this.decided;
  }

  feed(chunk: Buffer): void {
    if (this.decided || chunk.length === 0) return;
    const piece = chunk.subarray(0, FIRST_RECORD_MAX_BYTES - this.bytes);
    this.head.push(piece);
    this.bytes += piece.length;
    const head = this.head.length === 1 ? piece : Buffer.concat(this.head, this.bytes);
    const record = (head.length > FIRST_RECORD_QUICK_BYTES ? parseHeader(head.subarray(0, FIRST_RECORD_QUICK_BYTES)) : undefined) ?? parseHeader(head);
    if (record) this.decide(record.columns.length);
    else if (this.bytes >= FIRST_RECORD_MAX_BYTES) this.decide(null);
  }

  /** The slice ended: a last record without a newline still counts. */
  end(): void {
    if (this.decided) return;
    const record = this.bytes === 0 ? undefined : parseHeader(Buffer.concat([...this.head, Buffer.from('\n')]));
    this.decide(record ? record.columns.length : null);
  }

  /** The slice had nothing to read (an optional slice that does not exist). */
  skip(): void {
    if (!this.decided) this.decide(null);
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private decide(count: number | null): void {
    this.decided = true;
    this.head = [];
    this.failure = this.check.report(this.index, count);
  }
}

/** Passes chunks on after showing them to the probe. */
async function* probed(source: AsyncIterable<Buffer>, probe: FirstRecordProbe): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (!probe.done) {
      probe.feed(chunk);
      probe.throwIfFailed();
    }
    yield chunk;
  }
}

function isGzip(chunk: Buffer): boolean {
  return chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b;
}

/** Feeds `source` through a zlib transform with back-pressure and yields its output. */
async function* through(source: AsyncIterable<Buffer>, first: Buffer, transform: ReturnType<typeof createGunzip>): AsyncGenerator<Buffer> {
  const feeding = (async () => {
    if (!transform.write(first)) await once(transform, 'drain');
    for await (const chunk of source) {
      if (!transform.write(chunk)) await once(transform, 'drain');
    }
    transform.end();
  })();
  feeding.catch((error: unknown) => transform.destroy(error as Error));
  try {
    for await (const chunk of transform as AsyncIterable<Buffer>) yield chunk;
    await feeding;
  } finally {
    transform.destroy();
  }
}

/**
 * Yields gzip bytes as they are while inflating them on the thread pool for the probe. With `whole`, every
 * byte is inflated to prove the gzip whole (a truncated or corrupt gzip throws at the end); without, the
 * inflating stops as soon as the probe has the first record.
 */
async function* inflatedAside(source: AsyncIterable<Buffer>, first: Buffer, probe: FirstRecordProbe, whole: boolean): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  const done = new Promise<void>((resolve, reject) => {
    gunzip.on('error', reject);
    gunzip.on('end', resolve);
  });
  done.catch(() => undefined);
  gunzip.on('data', (chunk: Buffer) => probe.feed(chunk));
  let inflating = true;
  const feed = async (chunk: Buffer): Promise<void> => {
    // For the probe alone, a small step at a time, so inflating stops soon after the first record.
    const step = whole ? chunk.length : SIDE_INFLATE_STEP_BYTES;
    for (let at = 0; at < chunk.length && inflating; at += step) {
      if (!whole && probe.done) {
        inflating = false;
        gunzip.destroy();
        return;
      }
      try {
        if (!gunzip.write(chunk.subarray(at, at + step))) await Promise.race([once(gunzip, 'drain'), done]);
      } catch (error) {
        if (whole) throw error;
        inflating = false;
        probe.skip();
      }
    }
  };
  try {
    await feed(first);
    probe.throwIfFailed();
    yield first;
    for await (const chunk of source) {
      await feed(chunk);
      probe.throwIfFailed();
      yield chunk;
    }
    if (inflating) {
      gunzip.end();
      // Not asked to prove the gzip whole (its size or sha256 is checked, or --no-verify): only the probe needed
      // it, and a gzip that does not inflate leaves the first record unknown rather than cut short.
      await (whole ? done : done.catch(() => probe.skip()));
    }
  } finally {
    gunzip.destroy();
  }
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

export async function mergeSlices(options: MergeOptions): Promise<MergeResult> {
  const { plan, output } = options;
  const entries = plan.entries;
  const maxRatio = options.maxRatio ?? DEFAULT_MAX_RATIO;
  const columns = new ColumnCheck(entries, options.columns ?? options.header?.length);
  const skipped: string[] = [];
  let bytes = 0;
  let outputBytes = 0;
  let slicesDone = 0;
  const report = (): void => options.onProgress?.({ slices: entries.length, slicesDone, bytes, outputBytes });

  const write = async (chunk: Buffer): Promise<void> => {
    options.signal?.throwIfAborted();
    await output.write(chunk);
    outputBytes += chunk.length;
  };

  if (options.header) {
    const line = Buffer.from(encodeHeader(options.header));
    await write(options.gzipOutput ? gzipSync(line) : line);
  }

  /** Fetches one slice into `sink`, checking size, sha256 and the decompression cap on the way. */
  const produce = async (entry: SliceEntry, index: number, sink: (chunk: Buffer, at: number) => Promise<void>, done: () => void): Promise<void> => {
    const probe = new FirstRecordProbe(columns, index);
    let stream: Readable;
    try {
      stream = await options.open(entry);
    } catch (error) {
      const failure = toTakeoutError(error, entry.label);
      if (failure.code === 'NOT_FOUND' && !entry.mandatory) {
        skipped.push(entry.label);
        options.onWarning?.(`skipped optional slice ${entry.label}: it does not exist`);
        probe.skip();
        probe.throwIfFailed();
        done();
        return;
      }
      if (failure.code === 'NOT_FOUND') throw new TakeoutError('NOT_FOUND', `mandatory slice ${entry.label} does not exist`, { cause: error });
      throw failure;
    }
    const keep = options.keep ? await options.keep(entry, index) : undefined;
    const sha256 = entry.sha256 ? createHash('sha256') : undefined;
    let fetched = 0;
    let raw = 0;
    const counted = async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        options.signal?.throwIfAborted();
        fetched += chunk.length;
        bytes += chunk.length;
        if (entry.bytes !== undefined && fetched > entry.bytes) {
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
      if (!head.done) {
        const first = head.value;
        const gz = isGzip(first);
        let body: AsyncIterable<Buffer>;
        if (options.gzipOutput) {
          // Copied as they are, inflated on the side for the first record; with neither a size nor a sha256 to
          // check, inflated whole to prove each gzip whole. Plain slices are probed before they are compressed.
          const whole = gz && options.verifyGzip !== false && entry.bytes === undefined && entry.sha256 === undefined;
          if (gz) {
            body = inflatedAside(source, first, probe, whole);
          } else {
            probe.feed(first);
            probe.throwIfFailed();
            body = through(probed(source, probe), first, createGzip());
          }
        } else {
          body = gz ? through(source, first, createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES })) : (async function* () { yield first; yield* source; })();
        }
        try {
          for await (const chunk of body) {
            if (!options.gzipOutput && !probe.done) {
              probe.feed(chunk);
              probe.throwIfFailed();
            }
            const at = raw;
            raw += chunk.length;
            const cap = entry.rawBytes ?? fetched * maxRatio + RATIO_SLACK_BYTES;
            if (!options.gzipOutput && raw > cap) {
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
      probe.end();
      probe.throwIfFailed();
      if (entry.bytes !== undefined && fetched !== entry.bytes) {
        throw new TakeoutError('INTEGRITY', `slice ${entry.label} has ${plural(fetched, 'byte')}, the manifest says ${entry.bytes}`);
      }
      if (sha256 && entry.sha256) {
        const digest = sha256.digest('hex');
        if (digest !== entry.sha256) throw new TakeoutError('INTEGRITY', `slice ${entry.label} sha256 ${digest.slice(0, 12)}… does not match the manifest`);
      }
      if (!options.gzipOutput && entry.rawBytes !== undefined && raw !== entry.rawBytes) {
        throw new TakeoutError('INTEGRITY', `slice ${entry.label} decompresses to ${plural(raw, 'byte')}, the manifest says ${entry.rawBytes}`);
      }
      if (keep) await keep.finish();
      done();
    } catch (error) {
      stream.destroy();
      if (keep) await keep.abort();
      throw error;
    }
  };

  /** Slices of unknown size: fetched ahead into bounded queues, written strictly in order. */
  async function sequentialMerge(concurrency: number): Promise<void> {
    // Only the slices in flight are held: a written slice's queue and promise are dropped, so memory
    // does not grow with the number of slices (a manifest may list hundreds of thousands).
    const inFlight = new Map<number, { queue: ChunkQueue; producer: Promise<void> }>();
    let launched = 0;
    const launch = (upTo: number): void => {
      while (launched < entries.length && launched < upTo) {
        const index = launched++;
        const queue = new ChunkQueue();
        const producer = produce(entries[index]!, index, (chunk) => queue.push(chunk), () => queue.end()).catch((error: unknown) => queue.fail(error));
        inFlight.set(index, { queue, producer });
      }
    };
    try {
      for (let i = 0; i < entries.length; i++) {
        launch(i + concurrency);
        for await (const chunk of inFlight.get(i)!.queue.drain()) await write(chunk);
        await inFlight.get(i)!.producer;
        inFlight.delete(i);
        slicesDone++;
        report();
      }
    } catch (error) {
      for (const { queue } of inFlight.values()) queue.cancel();
      await Promise.allSettled([...inFlight.values()].map((f) => f.producer));
      throw error;
    }
  }

  const concurrency = Math.max(1, options.concurrency);
  const writeAt = output.writeAt?.bind(output);
  // With every slice's decompressed size known (a takeout manifest) and a file to write, each slice goes
  // straight to its own offset: all of them decompress in parallel, with nothing buffered in between.
  const positional = writeAt !== undefined && !options.gzipOutput && entries.every((e) => e.rawBytes !== undefined && e.mandatory);
  try {
    if (positional) {
      let offset = outputBytes;
      const starts = entries.map((e) => {
        const start = offset;
        offset += e.rawBytes!;
        return start;
      });
      let stopped = false;
      await mapLimitOrFail(entries, concurrency, async (entry, index) => {
        try {
          await produce(entry, index, async (chunk, at) => {
            options.signal?.throwIfAborted();
            if (stopped) throw new TakeoutError('INTERRUPTED', 'another slice failed');
            await writeAt(chunk, starts[index]! + at);
            outputBytes += chunk.length;
          }, () => undefined);
        } catch (error) {
          stopped = true;
          throw error;
        }
        slicesDone++;
        report();
      });
    } else {
      await sequentialMerge(concurrency);
    }
  } catch (error) {
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', 'interrupted');
    throw toTakeoutError(error);
  }
  return { slices: entries.length, skipped, bytes, outputBytes };
}
