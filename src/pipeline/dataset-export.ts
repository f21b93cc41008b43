import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Store } from '../stores/store.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { DEFAULT_BLOCK_BYTES } from '../formats/csv/blocks.js';
import { recordColumns, type RecordColumn } from '../formats/typed-records.js';
import type { BlockFiles, DataFile, DatasetLayout, LayoutContext, LayoutFile, LineFiles } from '../layouts/dataset-layout.js';
import { readJournal } from '../manifests/journal.js';
import { jobJournalKey, jobKey, listJobs, newExportId, readJob, readToken, tokenKey, type JobRecord, type JobStatus } from '../manifests/jobs.js';
import type { Source } from '../sources/source.js';
import type { Row, TableDescriptor, TableQuery } from '../model.js';
import { NO_COMPRESSION, OrderedCompressor, type CompressedBlock } from './compress.js';
import { tableStart, type Emit } from './events.js';
import type { JournalWriter } from './journal.js';
import { checkOverlap } from './preflight.js';
import { recordBatches } from './record-batches.js';
import { acquireLease, describeHolder, liveLeases, type Lease } from './lease.js';
import { startJournal } from './resume.js';
import { landedSlice, SliceChanged, Slicer } from './slicer.js';
import type { LandedSlice } from '../model.js';
import { plural } from './units.js';

/** Encoded records gathered before they are compressed: the same 2 MiB the CSV pipeline compresses at once. */
const BLOCK_BYTES = DEFAULT_BLOCK_BYTES;
/** Smallest block worth compressing on its own (per-member gzip overhead); blocks shrink to this for small files. */
const MIN_BLOCK_BYTES = 16 * 1024;
/**
 * Series (CleverTap: event names) written at once. Each holds a block being filled and its own upload, so
 * memory grows with them; past this many the export fails instead of exhausting memory.
 */
export const MAX_OPEN_SERIES = 256;

export interface DatasetExportOptions {
  source: Source;
  destination: Store;
  table: TableDescriptor;
  /** Columns and filters (the table export options); the export window is added to it. */
  query?: TableQuery;
  /** The layout's name and every layout option that changes its files (for the definition and the client token). */
  layoutName: string;
  layoutOptions: Record<string, unknown>;
  buildLayout(ctx: LayoutContext): DatasetLayout;
  /** FULL_EXPORT takes every row (up to exportTime, with a change column); INCREMENTAL_EXPORT a window. */
  exportType: 'FULL_EXPORT' | 'INCREMENTAL_EXPORT';
  /** The column the window is on (a row's change time, or an event's time). */
  windowColumn?: string;
  /**
   * false: the source is not asked to filter on the window column (it cannot, or cannot read the column's
   * values as times); the layout gets the window in its context and keeps the rows in it itself.
   */
  windowInSource?: boolean;
  exportTime?: Date;
  exportFromTime?: Date;
  exportToTime?: Date;
  /** Each run takes what changed since the last completed run of the same definition. */
  recurring: boolean;
  clientToken?: string;
  /**
   * Replace files an earlier export left at the same keys (a key template without {export_id}). Without it a
   * fresh export writes create-only: its manifest key taken is refused before anything is written (EXISTS),
   * and a data file or manifest that appears meanwhile at commit. A resumed export replaces its own files.
   */
  overwrite?: boolean;
  maxFileBytes: number;
  compressionLevel: number;
  /** For the manifests' bucket and keys: null and '' for a local folder. */
  bucket: string | null;
  prefix: string;
  exportArn(exportId: string): string;
  toolVersion: string;
  /** Recorded in the job record as given (already free of secrets). */
  recordedOptions: Record<string, unknown>;
  signal?: AbortSignal;
  emit: Emit;
}

/**
 * One dataset export job: a record at the destination (IN_PROGRESS first, COMPLETED last, FAILED or
 * STOPPED on the way out), the layout's start files, data files through the one pipeline (encode →
 * gzip → slicer → destination) with a journal so a re-run with the same --client-token goes on with it,
 * and the layout's manifests last.
 */
export async function runDatasetExport(options: DatasetExportOptions): Promise<JobRecord> {
  try {
    return await exportJob(options);
  } catch (error) {
    throw managedError(toTakeoutError(error));
  }
}

const BAD_CREDENTIALS = new Set(['InvalidAccessKeyId', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken', 'TokenRefreshRequired']);

/**
 * Store errors in the words the managed exports use (DynamoDB, CleverTap), so that runbooks written
 * for them still match: 404 "The specified S3 bucket does not exist", 403 "Invalid AWS credentials",
 * 403 "All access to this object has been disabled". The code and exit code stay takeout's.
 */
export function managedError(error: TakeoutError): TakeoutError {
  if (/^40[34] /.test(error.message)) return error;
  const awsCode = typeof error.details.awsCode === 'string' ? error.details.awsCode : undefined;
  let lead: string | undefined;
  if (error.code === 'NOT_FOUND' && (awsCode === 'NoSuchBucket' || error.details.operation === 'HeadBucket')) lead = '404 The specified S3 bucket does not exist';
  else if (error.code === 'AUTH' && ((awsCode !== undefined && BAD_CREDENTIALS.has(awsCode)) || /credentials/i.test(error.message))) lead = '403 Invalid AWS credentials';
  else if (error.code === 'AUTH') lead = '403 All access to this object has been disabled';
  if (!lead) return error;
  return new TakeoutError(error.code, `${lead}: ${error.message}`, { ...(error.hint ? { hint: error.hint } : {}), details: error.details, cause: error });
}

async function exportJob(options: DatasetExportOptions): Promise<JobRecord> {
  const { destination, emit } = options;
  await checkOverlap(options.source, destination);
  await destination.preflight?.();
  const parameters = parametersOf(options);
  const definitionId = createHash('sha256').update(JSON.stringify(definitionOf(options))).digest('hex').slice(0, 16);

  // --client-token: the same token and parameters is the same export (done already, or to go on with).
  let previous: JobRecord | undefined;
  if (options.clientToken !== undefined) {
    const token = await readToken(destination, options.clientToken);
    if (token) {
      if (token.parameters !== parameters) {
        throw new TakeoutError('EXISTS', `--client-token was used for export ${token.exportId} with other parameters`, {
          hint: 'use a new client token for a different export, or repeat the first one exactly',
        });
      }
      previous = await readJob(destination, token.exportId);
      if (previous?.status === 'COMPLETED') {
        emit({ type: 'warning', message: `export ${previous.exportId} with this client token is already complete` });
        emit({ type: 'dataset:done', job: previous });
        return previous;
      }
    }
  }

  const started = new Date();
  const exportId = previous?.exportId ?? newExportId(started, randomBytes(4).toString('hex'));
  const window = previous ? windowOf(previous, options) : await exportWindow(options, definitionId, started);
  const columns = recordColumns(options.table, window.query?.columns ?? options.table.columns);
  const layout = options.buildLayout({
    exportId,
    table: options.table,
    columns,
    source: options.source.description,
    bucket: options.bucket,
    prefix: options.prefix,
    startTime: previous ? new Date(previous.startTime) : started,
    window: windowRange(window.fields, options),
  });
  const job: JobRecord = {
    formatVersion: 1,
    kind: 'takeout-dataset-export',
    exportId,
    exportArn: options.exportArn(exportId),
    status: 'IN_PROGRESS',
    layout: layout.name,
    exportFormat: layout.exportFormat,
    exportType: options.exportType,
    table: options.table.id,
    source: options.source.description,
    destination: destination.description,
    outputPrefix: layout.outputPrefix,
    startTime: previous?.startTime ?? started.toISOString(),
    ...window.fields,
    itemCount: 0,
    billedSizeBytes: 0,
    files: 0,
    ...(options.clientToken !== undefined ? { clientToken: options.clientToken } : {}),
    definitionId,
    ...(options.recurring ? { recurring: true } : {}),
    attempts: (previous?.attempts ?? 0) + 1,
    options: options.recordedOptions,
    tool: { name: 'takeout', version: options.toolVersion },
  };
  // This export's own lease: other exports to the prefix may run beside it, the same export twice may not.
  const lease = await acquireLease(destination, {
    runId: exportId,
    command: 'dataset export',
    toolVersion: options.toolVersion,
    scope: { kind: 'export', exportId },
    takeOver: previous !== undefined,
    takeOverWith: options.clientToken !== undefined ? `the same --client-token ${options.clientToken}` : 'a re-run with its --client-token',
    emit,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // A lost lease stops the export like Ctrl-C does, and is then the error reported.
  const signal = options.signal ? AbortSignal.any([options.signal, lease.signal]) : lease.signal;
  try {
    return await leasedJob({ ...options, signal }, { job, layout, columns, window, previous, parameters, lease });
  } catch (error) {
    throw lease.failure ? managedError(lease.failure) : error;
  } finally {
    await lease.release(emit);
  }
}

/** The export once it holds its lease: every write to the destination happens in here. */
async function leasedJob(
  options: DatasetExportOptions,
  held: {
    job: JobRecord;
    layout: DatasetLayout;
    columns: readonly RecordColumn[];
    window: Awaited<ReturnType<typeof exportWindow>>;
    previous: JobRecord | undefined;
    parameters: string;
    lease: Lease;
  },
): Promise<JobRecord> {
  const { destination, emit } = options;
  const { job, layout, columns, window, previous, parameters } = held;
  const exportId = job.exportId;
  const createOnly = previous === undefined && options.overwrite !== true;
  if (createOnly && (await destination.head(layout.manifestKey)) !== undefined) {
    throw new TakeoutError('EXISTS', `${destination.description}${layout.manifestKey} already exists: an earlier export wrote there`, {
      hint: 'put {export_id} in --key-template, choose another destination, or pass --overwrite to replace its files',
      details: { key: layout.manifestKey },
    });
  }
  const write = createOnly ? { ifNoneMatch: true } : {};
  const saveJob = async (): Promise<void> => {
    await destination.put(jobKey(exportId), `${JSON.stringify(job, null, 2)}\n`, { contentType: 'application/json' });
  };
  await saveJob();
  if (options.clientToken !== undefined && !previous) {
    await destination.put(tokenKey(options.clientToken), `${JSON.stringify({ exportId, parameters })}\n`, { contentType: 'application/json' });
  }
  emit({ type: 'dataset:start', exportId, layout: layout.name, table: options.table.id, destination: destination.description, resumed: previous !== undefined });

  const journalKey = jobJournalKey(exportId);
  const landedBefore = previous ? await readJournal(destination, journalKey) : undefined;
  const journal = await startJournal(destination, landedBefore, {
    runId: exportId,
    fingerprint: { parameters },
    emit,
    key: journalKey,
    ...(options.signal ? { signal: options.signal } : {}),
    // Another export writing to this prefix now: its multipart uploads look just like the dead run's.
    removeLeftovers: async () => {
      const [other] = await liveLeases(destination, held.lease.key);
      return other ? `${describeHolder(other)} is writing to ${destination.description}` : undefined;
    },
  });
  /** The layout's finishing files (its manifests) written so far. */
  const finished: string[] = [];
  let committed = false;
  try {
    const layoutFiles: NonNullable<JobRecord['layoutFiles']> = [];
    const putLayoutFile = async (file: LayoutFile): Promise<void> => {
      await destination.put(file.key, file.body, { ...(file.contentType ? { contentType: file.contentType } : {}), ...write });
      const body = typeof file.body === 'string' ? Buffer.from(file.body) : file.body;
      layoutFiles.push({ key: file.key, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    };
    for (const file of layout.startFiles?.() ?? []) await putLayoutFile(file);
    // A journal that can no longer be written stops the data too: files it does not record could not be resumed.
    const dataSignal = options.signal ? AbortSignal.any([options.signal, journal.failed]) : journal.failed;
    const files = await writeData({ ...options, signal: dataSignal }, layout, columns, window.query, journal, createOnly);
    // Every journal write ended well before the layout's manifests claim the export done.
    await journal.drain();
    job.itemCount = files.reduce((n, f) => n + f.rows, 0);
    job.billedSizeBytes = files.reduce((n, f) => n + f.bytes, 0);
    job.files = files.length;
    job.endTime = new Date().toISOString();
    for (const file of layout.finishFiles(files, job)) {
      await putLayoutFile(file);
      finished.push(file.key);
    }
    job.dataFiles = files.map((f) => ({ key: f.key, bytes: f.bytes, rows: f.rows, sha256: f.sha256, ...(f.md5 ? { md5: f.md5 } : {}) }));
    job.layoutFiles = layoutFiles;
    job.manifest = layout.manifestKey;
    job.status = 'COMPLETED';
    await saveJob();
    committed = true;
    // The COMPLETED record is the commit: a journal that cannot be removed after it is a leftover to mention.
    await journal.remove().catch((error: unknown) => {
      emit({ type: 'warning', message: `export ${exportId} is complete, but its journal could not be removed: ${toTakeoutError(error).message}` });
    });
    emit({ type: 'dataset:done', job });
    return job;
  } catch (error) {
    if (committed) throw error;
    const cause = journal.failed.aborted ? (journal.failed.reason as unknown) : error;
    // A lost lease aborts the signal too, but the record says why: the lease, not an interruption.
    const failure =
      held.lease.failure ?? (options.signal?.aborted ? new TakeoutError('INTERRUPTED', 'interrupted') : managedError(toTakeoutError(cause, `export ${exportId}`)));
    // The layout's manifests (written last, as its commit) must not stand beside a record that is not COMPLETED.
    if (finished.length > 0) await destination.delete(finished).catch(() => undefined);
    await journal.settle();
    job.status = (failure.code === 'INTERRUPTED' ? 'STOPPED' : 'FAILED') satisfies JobStatus;
    job.endTime = new Date().toISOString();
    job.failureCode = failure.code;
    job.failureMessage = failure.message;
    // The record says how it ended even when the destination is what failed, if it still takes writes.
    await saveJob().catch(() => undefined);
    throw new TakeoutError(failure.code, failure.message, {
      hint: options.clientToken !== undefined ? `run it again with --client-token ${options.clientToken} to go on with export ${exportId}` : `export ${exportId} is ${job.status}; give a --client-token to make re-runs go on with an export`,
      details: { ...failure.details, exportId },
    });
  }
}

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
async function writeData(
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

interface ExportWindow {
  fields: Pick<JobRecord, 'exportTime' | 'exportFromTime' | 'exportToTime'>;
  query: TableQuery | undefined;
}

function windowQuery(options: DatasetExportOptions, since: Date | undefined, until: Date | undefined): TableQuery | undefined {
  if (!options.windowColumn || options.windowInSource === false) return options.query;
  return { ...options.query, changedColumn: options.windowColumn, ...(since ? { changedSince: since } : {}), ...(until ? { changedUntil: until } : {}) };
}

/**
 * The rows an export takes. Full: everything (or, with a window column, what changed before the export
 * time). Incremental: what changed in [from, to); --recurring starts where the last completed run of the
 * same definition ended, so consecutive runs leave no gap and take nothing twice.
 */
async function exportWindow(options: DatasetExportOptions, definitionId: string, started: Date): Promise<ExportWindow> {
  if (options.exportType === 'FULL_EXPORT') {
    const at = options.exportTime ?? started;
    return { fields: { exportTime: at.toISOString() }, query: windowQuery(options, undefined, options.windowColumn ? at : undefined) };
  }
  if (!options.windowColumn) throw new TakeoutError('USAGE', 'incremental exports need --changed-column (the column with each row\'s last change time)');
  let from = options.exportFromTime;
  if (options.recurring) {
    const last = (await listJobs(options.destination)).find((j) => j.definitionId === definitionId && j.status === 'COMPLETED' && j.exportToTime);
    from = last?.exportToTime ? new Date(last.exportToTime) : (from ?? new Date(0));
  }
  if (!from) throw new TakeoutError('USAGE', 'incremental exports need --export-from-time (or --recurring)');
  const to = options.recurring ? started : (options.exportToTime ?? started);
  if (to.getTime() <= from.getTime()) throw new TakeoutError('USAGE', `--export-to-time ${to.toISOString()} is not after --export-from-time ${from.toISOString()}`);
  return { fields: { exportFromTime: from.toISOString(), exportToTime: to.toISOString() }, query: windowQuery(options, from, to) };
}

/** The window as times, for the layout: [from, to), or up to the export time when a full export has a window column. */
function windowRange(fields: ExportWindow['fields'], options: DatasetExportOptions): { from?: Date; to?: Date } {
  if (fields.exportFromTime && fields.exportToTime) return { from: new Date(fields.exportFromTime), to: new Date(fields.exportToTime) };
  return options.windowColumn && fields.exportTime ? { to: new Date(fields.exportTime) } : {};
}

/** A resumed export takes the window it was started with, so it writes the same rows again. */
function windowOf(job: JobRecord, options: DatasetExportOptions): ExportWindow {
  if (job.exportFromTime && job.exportToTime) {
    return { fields: { exportFromTime: job.exportFromTime, exportToTime: job.exportToTime }, query: windowQuery(options, new Date(job.exportFromTime), new Date(job.exportToTime)) };
  }
  const at = new Date(job.exportTime ?? job.startTime);
  return { fields: { exportTime: at.toISOString() }, query: windowQuery(options, undefined, options.windowColumn ? at : undefined) };
}

/** What makes two runs the same export definition (recurring runs share it). */
function definitionOf(o: DatasetExportOptions): Record<string, unknown> {
  return {
    layout: o.layoutName,
    layoutOptions: o.layoutOptions,
    table: o.table.id,
    source: o.source.description,
    destination: o.destination.description,
    type: o.exportType,
    windowColumn: o.windowColumn ?? null,
    query: o.query ?? null,
  };
}

/** Everything a client token must agree on: the definition plus this run's window and file settings. */
function parametersOf(o: DatasetExportOptions): string {
  const value = {
    ...definitionOf(o),
    exportTime: o.exportTime?.toISOString() ?? null,
    from: o.exportFromTime?.toISOString() ?? null,
    to: o.exportToTime?.toISOString() ?? null,
    recurring: o.recurring,
    maxFileBytes: o.maxFileBytes,
    compressionLevel: o.compressionLevel,
  };
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}
