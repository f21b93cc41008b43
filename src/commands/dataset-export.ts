import { openStore } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import type { JobRecord } from '../manifests/jobs.js';
import { openSource } from '../sources/registry.js';
import type { Source } from '../sources/source.js';
import type { ProjectDescriptor, TableDescriptor } from '../model.js';
import type { CommandContext } from './context.js';
import { destinationOptions, sourceOptions, unthrottled } from './options.js';
import { destinationWithPath, normalisePrefix } from './run.js';
import { buildQuery, findTable, parseTime } from './table-query.js';
import { DEFAULT_MAX_FILE_BYTES, LAYOUTS, type DatasetExportOptions } from './dataset-layouts.js';

export { DATASET_EXPORT_SPECS, type DatasetExportOptions } from './dataset-layouts.js';

/** The column a bulk/put union adds: the record's origin, read by the personalize layout and not exported. */
const INGESTION_ORIGIN_COLUMN = 'takeout_ingestion_origin';

/**
 * A project folder keeps Personalize records by origin in `bulk/` and `put/` (buckets in.c-bulk and in.c-put):
 * a bare table name with tables there names both. Empty when the name is a table id, or neither exists.
 */
function bulkAndPut(project: ProjectDescriptor, tableId: string): { label: string; table: TableDescriptor }[] {
  if (tableId.includes('.')) return [];
  const parts: { label: string; table: TableDescriptor }[] = [];
  for (const label of ['bulk', 'put']) {
    const table = project.tables.find((t) => t.bucketId === `in.c-${label}` && (t.name === tableId || t.displayName === tableId));
    if (table) parts.push({ label, table });
  }
  return parts;
}

/** --dest (required) with --path inside it. */
export function destWithPath(o: { dest: string | undefined; path: string | undefined }): string {
  const dest = o.dest;
  if (!dest) throw new TakeoutError('USAGE', 'give --dest s3://bucket/prefix or a folder');
  return destinationWithPath(dest, normalisePrefix(o.path));
}

/**
 * `s3://bucket/a/b/` → bucket and prefix `a/b` as DynamoDB's manifests name them; a folder has neither.
 * Called once the destination is open: for S3 its module (and the SDK) is loaded already.
 */
async function bucketAndPrefix(dest: string): Promise<{ bucket: string | null; prefix: string }> {
  if (!dest.startsWith('s3://')) return { bucket: null, prefix: '' };
  const { parseS3Url } = await import('../stores/s3/url.js');
  const { bucket, prefix } = parseS3Url(dest);
  return { bucket, prefix: prefix.replace(/\/$/, '') };
}

/** The dataset options speak DynamoDB's names; the destination speaks S3's. Called before anything is set up. */
export function withS3Aliases(o: DatasetExportOptions): DatasetExportOptions {
  const out: DatasetExportOptions = { ...o };
  if (o.s3SseAlgorithm !== undefined) {
    if (o.sse !== undefined) throw new TakeoutError('USAGE', 'give --s3-sse-algorithm or --sse, not both');
    out.sse = o.s3SseAlgorithm === 'KMS' ? 'aws:kms' : 'AES256';
  }
  if (o.s3SseKmsKeyId !== undefined) out.sseKmsKeyId = o.s3SseKmsKeyId;
  if (o.s3BucketOwner !== undefined) out.expectedBucketOwner = o.s3BucketOwner;
  return out;
}

/**
 * `takeout dataset export`: one table as a job in a managed export's layout, with its job record at the
 * destination. `o` has had withS3Aliases applied. Returns the job record as it ended.
 */
export async function datasetExport(tableId: string, o: DatasetExportOptions, context: CommandContext): Promise<JobRecord> {
  const dest = destWithPath(o);
  const query = buildQuery(o);
  const changedColumn = query.changedColumn;
  // The export window comes from the export options; --changed-since/--until would cut it again.
  if (query.changedSince || query.changedUntil) throw new TakeoutError('USAGE', 'use --export-time or --export-from-time/--export-to-time with dataset exports');
  delete query.changedColumn;
  const time = (value: string | undefined, flag: string): Date | undefined => (typeof value === 'string' ? parseTime(value, flag) : undefined);
  const source = await openSource(o.source, { ...sourceOptions(o, unthrottled(context.network)), onWarning: (message) => context.reporter.emit({ type: 'warning', message }) });
  context.onClose(async () => source.close?.());
  const destination = await openStore(dest, destinationOptions(o, context.network));
  context.noteDestination(destination);
  context.onClose(async () => destination.close?.());
  const project = await source.project(context.signal ? { signal: context.signal } : {});
  for (const message of project.warnings ?? []) context.reporter.emit({ type: 'warning', message });
  const { table, exportSource, options } = await exportedTable(o, source, project, tableId);
  // Loaded when used: `takeout --help` stays light.
  const { runDatasetExport } = await import('../pipeline/dataset-export.js');
  const where = await bucketAndPrefix(dest);
  const exportTime = time(o.exportTime, '--export-time');
  const from = time(o.exportFromTime, '--export-from-time');
  const to = time(o.exportToTime, '--export-to-time');
  const layout = LAYOUTS[o.layout];
  if (!layout) throw new TakeoutError('USAGE', `--layout ${String(o.layout)} is not one of ${Object.keys(LAYOUTS).join(', ')}`);
  const plan = await layout.plan(options, {
    table,
    ...(changedColumn ? { changedColumn } : {}),
    region: typeof o.region === 'string' ? o.region : (context.env.AWS_REGION ?? 'us-east-1'),
    accountId: o.accountId,
    sse: o.sse === 'aws:kms' ? 'KMS' : o.sse === 'AES256' ? 'AES256' : null,
    sseKmsKeyId: typeof o.sseKmsKeyId === 'string' ? o.sseKmsKeyId : null,
  });
  // DynamoDB's window options, unless the layout has its own (clevertap: --from/--until).
  if (!plan.window && o.exportType !== 'INCREMENTAL_EXPORT' && (from !== undefined || to !== undefined || o.recurring)) {
    throw new TakeoutError('USAGE', '--export-from-time, --export-to-time and --recurring go with --export-type INCREMENTAL_EXPORT');
  }
  if (!plan.window && exportTime !== undefined && !changedColumn) throw new TakeoutError('USAGE', '--export-time needs --changed-column to know which rows changed after it');
  const window = plan.window ?? { type: o.exportType, ...(from ? { from } : {}), ...(to ? { to } : {}) };
  const maxFileBytes = o.maxFileSize ?? plan.defaultMaxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  return runDatasetExport({
    source: exportSource,
    destination,
    table,
    ...(Object.keys(query).length > 0 ? { query } : {}),
    layoutName: plan.layoutName,
    layoutOptions: plan.layoutOptions,
    buildLayout: plan.buildLayout,
    exportType: window.type,
    ...(plan.windowColumn ? { windowColumn: plan.windowColumn } : {}),
    ...(plan.windowInSource === false ? { windowInSource: false } : {}),
    ...(exportTime ? { exportTime } : {}),
    ...(window.from ? { exportFromTime: window.from } : {}),
    ...(window.to ? { exportToTime: window.to } : {}),
    recurring: o.recurring,
    ...(typeof o.clientToken === 'string' ? { clientToken: o.clientToken } : {}),
    ...(o.overwrite ? { overwrite: true } : {}),
    maxFileBytes,
    compressionLevel: o.compressionLevel,
    bucket: where.bucket,
    prefix: where.prefix,
    exportArn: plan.exportArn,
    toolVersion: context.version,
    recordedOptions: {
      layout: plan.layoutName,
      ...plan.layoutOptions,
      exportType: window.type,
      maxFileSize: maxFileBytes,
      compressionLevel: o.compressionLevel,
      query: { ...query },
      changedColumn: changedColumn ?? null,
      sse: o.sse ?? null,
      expectedBucketOwner: o.expectedBucketOwner ?? null,
    },
    signal: context.signal,
    emit: (event) => context.reporter.emit(event),
  });
}

/**
 * The table to export and the source that reads it: the named table, or Personalize's bulk/ and put/ folders as
 * one table of both, each record labelled with where it came from (and the layout told which column says so).
 */
async function exportedTable(
  o: DatasetExportOptions,
  source: Source,
  project: ProjectDescriptor,
  tableId: string,
): Promise<{ table: TableDescriptor; exportSource: Source; options: DatasetExportOptions }> {
  const parts = o.layout === 'personalize' && o.ingestionColumn === undefined ? bulkAndPut(project, tableId) : [];
  if (parts.length === 0) return { table: findTable(project, tableId), exportSource: source, options: o };
  const { unionSource, unionTable } = await import('../sources/union.js');
  const table = unionTable(parts, INGESTION_ORIGIN_COLUMN);
  return { table, exportSource: unionSource(source, project, table, parts), options: { ...o, ingestionColumn: INGESTION_ORIGIN_COLUMN } };
}
