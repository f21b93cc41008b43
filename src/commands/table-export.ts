import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { createGunzip, gzipSync, type Gunzip } from 'node:zlib';
import type { ObjectWriter, Store, WrittenObject } from '../stores/store.js';
import { openStore } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import { encodeHeader } from '../formats/csv/encode.js';
import { RecordCounter } from '../formats/csv/record-counter.js';
import { DEFAULT_COMPRESSION_LEVEL, NO_COMPRESSION } from '../pipeline/compress.js';
import { tableStart, type RunPlan, type RunSummary } from '../pipeline/events.js';
import { mergeSlices } from '../pipeline/merge.js';
import { runTakeout } from '../pipeline/run.js';
import { writeTableSlices } from '../pipeline/table.js';
import { openSource } from '../sources/registry.js';
import type { Source } from '../sources/source.js';
import type { ProjectDescriptor, TableBody, TableDescriptor, TableQuery } from '../model.js';
import type { CommandContext } from './context.js';
import { COMMON_OPTIONS, GROUP, STORE_FORMS, destinationOptions, DYNAMODB_OPTIONS, pickSpecs, S3_OPTIONS, sourceOptions, unthrottled, type OptionSpec, type OptionValues } from './options.js';
import { checkOutputPath, openOutput } from './output.js';
import { assertResumeOrOverwrite, destinationWithPath, normalisePrefix, RUN_OPTIONS } from './run.js';
import { buildQuery, findTable, TABLE_QUERY_OPTIONS } from './table-query.js';

const TABLE_OPTIONS = [
  // run's --dest defaults to a new folder; here there is no default: slices go to --dest, one file to -o.
  ...pickSpecs(RUN_OPTIONS, ['source', 'token', 'dest', 'path', 'sliceSize', 'sliceRows', 'compressionLevel', 'overwrite', 'resume', 'quoteAll', 'lineEnding']).map((spec) =>
    spec.key === 'dest' ? { ...spec, description: `slices with a manifest into ${STORE_FORMS} (or -o for one file)` } : spec,
  ),
  { key: 'output', flags: '-o, --output <file>', description: "merge into one CSV file instead of slices ('-' for stdout)", type: 'string', group: GROUP.destination },
  ...TABLE_QUERY_OPTIONS,
  { key: 'header', flags: '--header', description: 'with -o: write one header row (default)', negatedDescription: 'with -o: write no header row', type: 'boolean', negatable: true, group: GROUP.format },
  { key: 'gzip', flags: '--gzip', description: 'with -o: gzip the merged file', type: 'boolean', default: false, group: GROUP.format },
] as const satisfies readonly OptionSpec[];

export const TABLE_EXPORT_SPECS = [...TABLE_OPTIONS, ...S3_OPTIONS, ...DYNAMODB_OPTIONS, ...COMMON_OPTIONS] as const;

export type TableExportOptions = OptionValues<typeof TABLE_EXPORT_SPECS>;

/** What `table export` wrote: the takeout layout for one table (--dest), or one file (-o). */
export type TableExportResult = { kind: 'slices'; summary: RunSummary | RunPlan } | { kind: 'file'; output: string };

/** The table as found, and the reason `takeout run` leaves it out, when it does. */
interface FoundTable {
  project: ProjectDescriptor;
  found: TableDescriptor;
  leftOut: NonNullable<ProjectDescriptor['skipped']>[number] | undefined;
}

/** `takeout table export`: one table, whole or filtered, as slices with a manifest (--dest) or as one file (-o). */
export async function tableExport(tableId: string, o: TableExportOptions, context: CommandContext): Promise<TableExportResult> {
  if (o.output !== undefined && o.dest !== undefined) throw new TakeoutError('USAGE', 'give either --dest (slices) or -o (one file), not both');
  if (o.output !== undefined && o.resume) throw new TakeoutError('USAGE', '--resume goes on with sliced exports (--dest); a file given with -o is written whole');
  assertResumeOrOverwrite(o);
  const query = buildQuery(o);
  // Usage errors before the source is reached: a mistyped --dest or -o, no --source (no demo default here).
  const destWithPrefix = o.output === undefined && typeof o.dest === 'string' ? destinationWithPath(o.dest, normalisePrefix(o.path)) : undefined;
  checkOutputPath(o);
  const source = await openSource(o.source, { ...sourceOptions(o, o.output === undefined ? unthrottled(context.network) : context.network), onWarning: (message) => context.reporter.emit({ type: 'warning', message }) });
  context.onClose(async () => source.close?.());
  const project = await source.project(context.signal ? { signal: context.signal } : {});
  const found = findTable(project, tableId);
  const leftOut = project.tables.includes(found) ? undefined : project.skipped?.find((s) => s.id === found.id);
  if (leftOut) context.reporter.emit({ type: 'warning', message: `takeout run leaves ${found.id} out: ${leftOut.reason}; exported here as the source serves it` });

  if (o.output === undefined) {
    if (!destWithPrefix) throw new TakeoutError('USAGE', 'give --dest DIR|s3://… for slices, or -o FILE for one file');
    const destination = await openStore(destWithPrefix, destinationOptions(o, context.network));
    context.noteDestination(destination);
    context.onClose(async () => destination.close?.());
    return { kind: 'slices', summary: await exportSlices(o, context, source, destination, { project, found, leftOut }, query) };
  }
  // One file: header, then the rows, plain or gzip; written beside the target and renamed when complete.
  for (const message of project.warnings ?? []) context.reporter.emit({ type: 'warning', message });
  return { kind: 'file', output: await exportFile(o, context, source, found, query) };
}

/** The takeout layout for one table: the run, over the project as listed once already. */
async function exportSlices(o: TableExportOptions, context: CommandContext, source: Source, destination: Store, table: FoundTable, query: TableQuery): Promise<RunSummary | RunPlan> {
  const { project, found, leftOut } = table;
  // The project is listed once already; hand the same listing to the run.
  // A table that run leaves out is, for this export, a table like any other, and its bucket (linked,
  // external) is written to buckets.json as the API describes it in the table (include=buckets).
  const rawBucket = found.raw?.bucket;
  const buckets =
    leftOut && isRecord(rawBucket) && !project.buckets.some((b) => b.id === found.bucketId)
      ? [...project.buckets, { id: found.bucketId, stage: String(rawBucket.stage), name: String(rawBucket.name), raw: rawBucket }]
      : project.buckets;
  const listed: Source = {
    ...source,
    project: async () =>
      leftOut ? { ...project, buckets, tables: [...project.tables, found], skipped: (project.skipped ?? []).filter((s) => s !== leftOut) } : project,
  };
  return runTakeout({
    source: listed,
    destination,
    structureOnly: false,
    include: [found.id],
    exclude: [],
    sliceBytes: o.sliceSize,
    ...(typeof o.sliceRows === 'number' ? { sliceRows: o.sliceRows } : {}),
    compressionLevel: o.compressionLevel,
    lineEnding: o.lineEnding === 'crlf' ? '\r\n' : '\n',
    requote: o.quoteAll,
    concurrency: 1,
    overwrite: o.overwrite,
    resume: o.resume,
    dryRun: false,
    failFast: true,
    partBytes: 0,
    partConcurrency: 0,
    toolVersion: context.version,
    recordedOptions: { table: found.id, query: { ...query, changedSince: query.changedSince?.toISOString(), changedUntil: query.changedUntil?.toISOString() } },
    query,
    configurations: false,
    command: 'table export',
    signal: context.signal,
    emit: (event) => context.reporter.emit(event),
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** One file (or stdout): the header row, then the rows; the writer is aborted on failure. Returns where it went. */
async function exportFile(o: TableExportOptions, context: CommandContext, source: Source, found: TableDescriptor, query: TableQuery): Promise<string> {
  const narrowed: TableDescriptor = query.columns ? { ...found, columns: query.columns } : found;
  const { writer, label } = await openOutput(o, context.io);
  const t0 = Date.now();
  try {
    const body = await source.openTable(found, { signal: context.signal, query });
    if (body.kind === 'gzip-slices') await mergeGzipSlices(o, context, body, narrowed, writer, t0);
    else await writeRows(o, context, body, narrowed, writer, label, t0);
    return label;
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/**
 * What the merge writes, passed on and its CSV records counted (a gzip output inflated on the side to count it),
 * so that the done line says the rows written; without it, it said 0.
 */
class CountingWriter implements ObjectWriter {
  private readonly counter = new RecordCounter();
  private readonly inflate: Gunzip | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly inner: ObjectWriter,
    gzip: boolean,
  ) {
    if (!gzip) return;
    this.inflate = createGunzip();
    this.inflate.on('data', (chunk: Buffer) => this.counter.push(chunk));
    this.inflate.on('error', (error) => (this.failure = error));
  }

  async write(chunk: Buffer): Promise<void> {
    await this.inner.write(chunk);
    if (!this.inflate) this.counter.push(chunk);
    else if (!this.failure && !this.inflate.write(chunk)) await once(this.inflate, 'drain');
  }

  finish(): Promise<WrittenObject> {
    return this.inner.finish();
  }

  async abort(): Promise<void> {
    this.inflate?.destroy();
    await this.inner.abort();
  }

  /** The records written, once the merge is done. */
  async records(): Promise<number> {
    if (this.inflate && !this.failure) {
      this.inflate.end();
      await finished(this.inflate).catch((error: Error) => (this.failure = error));
    }
    if (this.failure) throw new TakeoutError('FAILED', `counting the rows written: ${this.failure.message}`, { cause: this.failure });
    return this.counter.end();
  }
}

/**
 * Already gzipped slices (Storage API exports): the sliced-download merge, members kept as they are with --gzip.
 * Its progress is the slices' stored bytes fetched, against their listed sizes when every one has one.
 */
async function mergeGzipSlices(
  o: TableExportOptions,
  context: CommandContext,
  body: Extract<TableBody, { kind: 'gzip-slices' }>,
  narrowed: TableDescriptor,
  writer: ObjectWriter,
  t0: number,
): Promise<void> {
  const sizes = body.slices.map((slice) => slice.bytes);
  const listed = sizes.every((n) => n !== undefined) ? sizes.reduce<number>((a, n) => a + (n ?? 0), 0) : undefined;
  context.reporter.emit({ type: 'table:start', table: narrowed.id, ...(listed !== undefined ? { estimatedBytes: listed, measure: 'bytes' } : {}) });
  let fetched = 0;
  let written = 0;
  const byLabel = new Map(body.slices.map((slice) => [slice.origin, slice]));
  const counted = new CountingWriter(writer, o.gzip);
  const merged = await mergeSlices({
    plan: { form: 'redshift', entries: body.slices.map((slice) => ({ location: { kind: 'relative', key: slice.origin }, label: slice.origin, mandatory: true })) },
    open: (entry) => byLabel.get(entry.label)!.open(),
    output: counted,
    gzipOutput: o.gzip,
    ...(o.header !== false ? { header: narrowed.columns } : {}),
    concurrency: 2,
    signal: context.signal,
    onProgress: (p) => {
      context.reporter.emit({ type: 'table:progress', table: narrowed.id, readBytes: p.bytes - fetched, rawBytes: 0, bytes: p.outputBytes - written, rows: 0 });
      fetched = p.bytes;
      written = p.outputBytes;
    },
  });
  const records = await counted.records();
  await writer.finish();
  const rows = Math.max(0, records - (o.header !== false ? 1 : 0));
  context.reporter.emit({ type: 'table:done', table: narrowed.id, rows, rawBytes: merged.outputBytes, bytes: merged.bytes, slices: 1, durationMs: Date.now() - t0 });
}

/** Rows the source reads: encoded as run encodes them, into the one writer (one slice that is never cut). */
async function writeRows(
  o: TableExportOptions,
  context: CommandContext,
  body: Exclude<TableBody, { kind: 'gzip-slices' }>,
  narrowed: TableDescriptor,
  writer: ObjectWriter,
  label: string,
  t0: number,
): Promise<void> {
  const gzip = o.gzip;
  context.reporter.emit(tableStart(narrowed));
  if (o.header !== false) {
    const line = Buffer.from(encodeHeader(narrowed.columns));
    await writer.write(gzip ? gzipSync(line) : line);
  }
  let opened = false;
  const single = {
    writer: async (): Promise<ObjectWriter> => {
      opened = true;
      return writer;
    },
    delete: async () => undefined,
  };
  const result = await writeTableSlices(narrowed, body, {
    destination: single,
    keyFor: () => label,
    sliceBytes: Number.MAX_SAFE_INTEGER,
    compressionLevel: gzip ? DEFAULT_COMPRESSION_LEVEL : NO_COMPRESSION,
    lineEnding: o.lineEnding === 'crlf' ? '\r\n' : '\n',
    requote: o.quoteAll,
    signal: context.signal,
    onProgress: (delta) => context.reporter.emit({ type: 'table:progress', table: narrowed.id, ...delta }),
  });
  if (!opened) await writer.finish();
  context.reporter.emit({ type: 'table:done', table: narrowed.id, rows: result.rows, rawBytes: result.rawBytes, bytes: result.bytes, slices: 1, durationMs: Date.now() - t0 });
}
