import { Command } from 'commander';
import { openStore } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import { listJobs, readJob, type JobRecord, type JobStatus } from '../manifests/jobs.js';
import { DEFAULT_COMPRESSION_LEVEL } from '../pipeline/compress.js';
import { formatBytes, plural } from '../pipeline/units.js';
import { terminalLine } from '../reporting/redact.js';
import { eventLine } from '../reporting/lines.js';
import { openSource } from '../sources/registry.js';
import type { ProjectDescriptor, TableDescriptor } from '../model.js';
import type { CommandContext } from './context.js';
import { addExamples } from './help.js';
import { noteDestination } from './interrupt.js';
import { addOptions, COMMON_OPTIONS, destinationOptions, DYNAMODB_OPTIONS, GROUP, inGroup, resolveOptions, S3_ACCESS_OPTIONS, S3_OPTIONS, sourceOptions, unthrottled, type OptionSpec, type Resolved } from './options.js';
import { destinationWithPath, normalisePrefix, RUN_OPTIONS } from './run.js';
import { buildQuery, findTable, parseTime, TABLE_QUERY_OPTIONS } from './table.js';
import { LAYOUTS } from './dataset-layouts.js';

/** DynamoDB writes one file per partition and has no size knob; 256 MB keeps files few and each easy to handle. */
const DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024;
/** Below this a file holds too little for a good gzip ratio. */
const MIN_FILE_BYTES = 16 * 1024;
/** S3 copies objects up to 5 GiB in one request. */
const MAX_FILE_BYTES = 5 * 1024 * 1024 * 1024;
/** The account id in ARNs when none is given: a real export's ARN names the table's account. */
const DEFAULT_ACCOUNT_ID = '000000000000';

const JOB_STATUSES: readonly JobStatus[] = ['IN_PROGRESS', 'COMPLETED', 'FAILED', 'STOPPED'];

const pick = (keys: string[]): OptionSpec[] => RUN_OPTIONS.filter((o) => keys.includes(o.key));

const EXPORT_OPTIONS: OptionSpec[] = [
  ...pick(['source', 'token', 'compressionLevel']),
  { key: 'dest', flags: '-d, --dest <dest>', description: 'where the export goes: s3://bucket/prefix or a local folder (required)', type: 'string', group: GROUP.destination },
  { key: 'path', flags: '--path <prefix>', description: 'prefix inside the destination', type: 'string', group: GROUP.destination },
  { key: 'layout', flags: '--layout <layout>', description: `the export layout: ${Object.keys(LAYOUTS).join(', ')}`, type: 'string', default: 'dynamodb', choices: Object.keys(LAYOUTS), group: GROUP.format },
  {
    key: 'exportFormat',
    flags: '--export-format <format>',
    description: 'the file format; each layout takes some (dynamodb: DYNAMODB_JSON or ION)',
    type: 'string',
    group: GROUP.format,
    completions: (given) => LAYOUTS[given('layout') ?? 'dynamodb']?.formats ?? [...new Set(Object.values(LAYOUTS).flatMap((l) => l.formats))],
  },
  { key: 'exportType', flags: '--export-type <type>', description: 'FULL_EXPORT or INCREMENTAL_EXPORT', type: 'string', default: 'FULL_EXPORT', choices: ['FULL_EXPORT', 'INCREMENTAL_EXPORT'], group: GROUP.rows },
  { key: 'exportTime', flags: '--export-time <time>', description: 'full exports: leave out rows changed after this time (needs --changed-column; default: now)', type: 'string', group: GROUP.rows },
  { key: 'exportFromTime', flags: '--export-from-time <time>', description: 'incremental exports: changes at or after this time', type: 'string', group: GROUP.rows },
  { key: 'exportToTime', flags: '--export-to-time <time>', description: 'incremental exports: changes before this time (default: now)', type: 'string', group: GROUP.rows },
  { key: 'recurring', flags: '--recurring', description: 'take what changed since the last completed run of this same export (incremental exports)', type: 'boolean', default: false, group: GROUP.rows },
  { key: 'clientToken', flags: '--client-token <token>', description: 'idempotency key: a re-run with the same token and options returns or goes on with the same export', type: 'string' },
  { key: 'overwrite', flags: '--overwrite', description: 'replace the files an earlier export left at the same keys (a --key-template without {export_id}); without it they are refused', type: 'boolean', default: false, group: GROUP.destination },
  // No default here: a layout may bring its own (clevertap: 100MB).
  { key: 'maxFileSize', flags: '--max-file-size <size>', description: 'cut data files at this many compressed bytes (default: 256MB; clevertap: 100MB)', type: 'size', min: MIN_FILE_BYTES, max: MAX_FILE_BYTES, group: GROUP.format },
  { key: 's3SseAlgorithm', flags: '--s3-sse-algorithm <algorithm>', description: 'AES256 or KMS (DynamoDB\'s names for --sse)', type: 'string', choices: ['AES256', 'KMS'], group: GROUP.cloud },
  { key: 's3SseKmsKeyId', flags: '--s3-sse-kms-key-id <id>', description: 'KMS key for --s3-sse-algorithm KMS', type: 'string', group: GROUP.cloud },
  { key: 's3BucketOwner', flags: '--s3-bucket-owner <account>', description: 'the account that must own the bucket (as --expected-bucket-owner)', type: 'string', group: GROUP.cloud },
  { key: 'accountId', flags: '--account-id <id>', description: 'account id in the export and table ARNs', type: 'string', default: DEFAULT_ACCOUNT_ID },
  ...TABLE_QUERY_OPTIONS,
  // Each layout's options under a heading of its own: `--help` shows which layout takes what.
  ...Object.entries(LAYOUTS).flatMap(([name, l]) => inGroup(`Layout ${name}`, l.options)),
];

const EXPORT_ALL = [...EXPORT_OPTIONS, ...S3_OPTIONS, ...DYNAMODB_OPTIONS, ...COMMON_OPTIONS];
const LIST_OPTIONS: OptionSpec[] = [
  { key: 'dest', flags: '-d, --dest <dest>', description: 'the destination exports were written to (required)', type: 'string', group: GROUP.destination },
  { key: 'path', flags: '--path <prefix>', description: 'prefix inside the destination', type: 'string', group: GROUP.destination },
  { key: 'table', flags: '--table <id>', description: 'only exports of this table', type: 'string' },
  {
    key: 'status',
    flags: '--status <status>',
    description: "only exports in this status: IN_PROGRESS, COMPLETED, FAILED or STOPPED, or a layout's own name for one (clevertap RUNNING, DONE; personalize ACTIVE, CREATE FAILED…), any case",
    type: 'string',
    // The layouts' names with spaces written with _ (CREATE_FAILED), which --status reads as the same name.
    completions: () => [...JOB_STATUSES, ...Object.values(LAYOUTS).flatMap((l) => Object.values(l.statusNames ?? {}).flat().map((n) => n.replace(/\s+/g, '_')))],
  },
];
const LIST_ALL = [...LIST_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS];

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

function destWithPath(o: Resolved): string {
  const dest = o.dest as string | undefined;
  if (!dest) throw new TakeoutError('USAGE', 'give --dest s3://bucket/prefix or a folder');
  return destinationWithPath(dest, normalisePrefix(o.path as string | undefined));
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

/** The dataset options speak DynamoDB's names; the destination speaks S3's. */
function withS3Aliases(o: Resolved): Resolved {
  const out: Resolved = { ...o };
  if (o.s3SseAlgorithm !== undefined) {
    if (o.sse !== undefined) throw new TakeoutError('USAGE', 'give --s3-sse-algorithm or --sse, not both');
    out.sse = o.s3SseAlgorithm === 'KMS' ? 'aws:kms' : 'AES256';
  }
  if (o.s3SseKmsKeyId !== undefined) out.sseKmsKeyId = o.s3SseKmsKeyId;
  if (o.s3BucketOwner !== undefined) out.expectedBucketOwner = o.s3BucketOwner;
  return out;
}

/** The status in the managed service's words when the layout has its own (clevertap: DONE for COMPLETED). */
function layoutStatus(job: JobRecord): string | undefined {
  return LAYOUTS[job.layout]?.statusName?.(job.status);
}

/** `create in-progress`, `Create_In_Progress` and `CREATE IN_PROGRESS` are one name. */
function statusKey(text: string): string {
  return text.trim().toUpperCase().replace(/[\s_-]+/g, '_');
}

/**
 * `--status`: takeout's own status names, or any layout's name for one (CleverTap's RUNNING is IN_PROGRESS,
 * Personalize's ACTIVE is COMPLETED), in any case. An unknown name is refused with the list, never matched
 * to nothing (an empty list would read as "no exports in that status").
 */
export function parseStatus(text: string): JobStatus {
  const key = statusKey(text);
  const own = JOB_STATUSES.find((s) => s === key);
  if (own) return own;
  for (const layout of Object.values(LAYOUTS)) {
    for (const [status, names] of Object.entries(layout.statusNames ?? {})) {
      if (names.some((name) => statusKey(name) === key)) return status as JobStatus;
    }
  }
  const layoutNames = Object.entries(LAYOUTS)
    .filter(([, l]) => l.statusNames)
    .map(([name, l]) => `${name}: ${Object.values(l.statusNames!).flat().join(', ')}`);
  throw new TakeoutError('USAGE', `--status ${JSON.stringify(text)} is not an export status`, {
    hint: `give ${JOB_STATUSES.join(', ')}, or a layout's own name (${layoutNames.join('; ')}); any case`,
  });
}

/** Rows under a header, each column as wide as its widest cell (numbers aligned right), as `gh run list` prints them. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<number> = new Set()): string {
  const cells = [header, ...rows].map((row) => row.map((cell) => terminalLine(cell)));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => [...(row[i] ?? '')].length)));
  return cells
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

function describeLines(job: JobRecord): string[] {
  const shown = layoutStatus(job);
  const lines = [
    `export ${job.exportId}: ${job.status}${shown !== undefined ? ` (${job.layout}: ${shown})` : ''}`,
    `  table        ${job.table} (${job.source})`,
    `  layout       ${job.layout}, ${job.exportFormat}, ${job.exportType}${job.exportViewType ? `, ${job.exportViewType}` : ''}`,
    `  destination  ${job.destination.replace(/\/?$/, '/')}${job.outputPrefix}`,
    `  started      ${job.startTime}${job.endTime ? `, ended ${job.endTime}` : ''}`,
  ];
  if (job.exportTime) lines.push(`  export time  ${job.exportTime}`);
  if (job.exportFromTime) lines.push(`  window       ${job.exportFromTime} … ${job.exportToTime ?? ''}`);
  lines.push(`  items        ${job.itemCount.toLocaleString('en-US')} in ${plural(job.files, 'file')}, ${formatBytes(job.billedSizeBytes)}`);
  if (job.manifest) lines.push(`  manifest     ${job.manifest}`);
  if (job.clientToken) lines.push(`  client token ${job.clientToken}`);
  if (job.failureCode) lines.push(`  failure      ${job.failureCode}: ${job.failureMessage ?? ''}`);
  return lines;
}

/** DescribeExport's shape, for --json. */
function exportDescription(job: JobRecord): Record<string, unknown> {
  return {
    ExportArn: job.exportArn,
    ExportStatus: job.status,
    ...(layoutStatus(job) !== undefined ? { [`${job.layout.charAt(0).toUpperCase()}${job.layout.slice(1)}Status`]: layoutStatus(job) } : {}),
    StartTime: job.startTime,
    ...(job.endTime ? { EndTime: job.endTime } : {}),
    ...(job.manifest ? { ExportManifest: job.manifest } : {}),
    ...(job.exportTime ? { ExportTime: job.exportTime } : {}),
    ...(job.clientToken ? { ClientToken: job.clientToken } : {}),
    ...(job.failureCode ? { FailureCode: job.failureCode, FailureMessage: job.failureMessage } : {}),
    ExportFormat: job.exportFormat,
    ExportType: job.exportType,
    ...(job.exportFromTime ? { IncrementalExportSpecification: { ExportFromTime: job.exportFromTime, ExportToTime: job.exportToTime, ExportViewType: job.exportViewType } } : {}),
    BilledSizeBytes: job.billedSizeBytes,
    ItemCount: job.itemCount,
    Takeout: job,
  };
}

export function datasetCommand(context: CommandContext): Command {
  const dataset = new Command('dataset')
    .summary('export jobs in the layouts of managed exports (DynamoDB export to S3, …)')
    .description("Export a table as a job in a managed export's layout (DynamoDB export to S3, Amazon Personalize, CleverTap, plain files), and list and describe the jobs recorded at a destination.");
  addExamples(dataset, [
    ["a table in DynamoDB's export layout", 'takeout dataset export in.c-main.orders -s ./project -d s3://exports/ddb/'],
    ['the exports recorded there', 'takeout dataset exports list -d s3://exports/ddb/'],
  ]);

  const exportCommand = new Command('export')
    .argument('<table-id>', 'the table: in.c-bucket.table, or schema.table for a database source')
    .summary('export one table as a job in a managed export\'s layout, with a job record at the destination')
    .description(
      "Export one table as a job in a managed export's layout: --layout dynamodb (DynamoDB's export to S3, " +
        'DYNAMODB_JSON or ION, full or incremental), personalize (Amazon Personalize CSV with its ' +
        'deduplication), clevertap (CleverTap event files per event name: JSON, CSV, XML, Parquet) or plain (a ' +
        'key template, CSV, JSON lines or Parquet, Hive partitions).\n\n' +
        'Each export has a record, takeout-exports/<exportId>.json: IN_PROGRESS, COMPLETED, FAILED or ' +
        'STOPPED; takeout dataset exports list and describe read it.',
    );
  addOptions(exportCommand, EXPORT_ALL);
  addExamples(exportCommand, [
    ['a full export in DynamoDB\'s layout, idempotent by its client token', 'takeout dataset export in.c-main.orders -s ./project -d s3://exports/ddb/ \\\n      --client-token nightly-2026-11-23'],
    ['what changed since the last run of the same export', 'takeout dataset export public.orders -s postgres://reader@db/shop \\\n      -d s3://exports/ddb/ --export-type INCREMENTAL_EXPORT \\\n      --changed-column updated_at --recurring'],
    ['Parquet files in Hive partitions', 'takeout dataset export in.c-main.events -s ./project -d ./lake \\\n      --layout plain --export-format PARQUET --partition-by country'],
  ]);
  exportCommand.action(async (tableId: string) => {
    const o = withS3Aliases(resolveOptions(exportCommand, EXPORT_ALL));
    await context.configure(o);
    const dest = destWithPath(o);
    const query = buildQuery(o);
    const changedColumn = query.changedColumn;
    // The export window comes from the export options; --changed-since/--until would cut it again.
    if (query.changedSince || query.changedUntil) throw new TakeoutError('USAGE', 'use --export-time or --export-from-time/--export-to-time with dataset exports');
    delete query.changedColumn;
    const time = (key: string, flag: string): Date | undefined => (typeof o[key] === 'string' ? parseTime(o[key] as string, flag) : undefined);
    const source = await openSource(o.source as string | undefined, { ...sourceOptions(o, unthrottled(context.network)), onWarning: (message) => context.reporter.emit({ type: 'warning', message }) });
    context.onClose(async () => source.close?.());
    const destination = await openStore(dest, destinationOptions(o, context.network));
    noteDestination(destination);
    context.onClose(async () => destination.close?.());
    const project = await source.project(context.signal ? { signal: context.signal } : {});
    for (const message of project.warnings ?? []) context.reporter.emit({ type: 'warning', message });
    const parts = o.layout === 'personalize' && o.ingestionColumn === undefined ? bulkAndPut(project, tableId) : [];
    let table: TableDescriptor;
    let exportSource = source;
    if (parts.length > 0) {
      // Personalize's bulk/ and put/ folders: one table of both, each record labelled with where it came from.
      const { unionSource, unionTable } = await import('../sources/union.js');
      table = unionTable(parts, INGESTION_ORIGIN_COLUMN);
      exportSource = unionSource(source, project, table, parts);
      o.ingestionColumn = INGESTION_ORIGIN_COLUMN;
    } else {
      table = findTable(project, tableId);
    }
    // Loaded when used: `takeout --help` stays light.
    const { runDatasetExport } = await import('../pipeline/dataset-export.js');
    const where = await bucketAndPrefix(dest);
    const exportTime = time('exportTime', '--export-time');
    const from = time('exportFromTime', '--export-from-time');
    const to = time('exportToTime', '--export-to-time');
    const layout = LAYOUTS[o.layout as string];
    if (!layout) throw new TakeoutError('USAGE', `--layout ${String(o.layout)} is not one of ${Object.keys(LAYOUTS).join(', ')}`);
    const plan = await layout.plan(o, {
      table,
      ...(changedColumn ? { changedColumn } : {}),
      region: typeof o.region === 'string' ? o.region : (process.env.AWS_REGION ?? 'us-east-1'),
      accountId: o.accountId as string,
      sse: o.sse === 'aws:kms' ? 'KMS' : o.sse === 'AES256' ? 'AES256' : null,
      sseKmsKeyId: typeof o.sseKmsKeyId === 'string' ? o.sseKmsKeyId : null,
    });
    // DynamoDB's window options, unless the layout has its own (clevertap: --from/--until).
    if (!plan.window && o.exportType !== 'INCREMENTAL_EXPORT' && (from !== undefined || to !== undefined || o.recurring === true)) {
      throw new TakeoutError('USAGE', '--export-from-time, --export-to-time and --recurring go with --export-type INCREMENTAL_EXPORT');
    }
    if (!plan.window && exportTime !== undefined && !changedColumn) throw new TakeoutError('USAGE', '--export-time needs --changed-column to know which rows changed after it');
    const window = plan.window ?? { type: o.exportType as 'FULL_EXPORT' | 'INCREMENTAL_EXPORT', ...(from ? { from } : {}), ...(to ? { to } : {}) };
    const maxFileBytes = (o.maxFileSize as number | undefined) ?? plan.defaultMaxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    await runDatasetExport({
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
      recurring: o.recurring === true,
      ...(typeof o.clientToken === 'string' ? { clientToken: o.clientToken } : {}),
      ...(o.overwrite === true ? { overwrite: true } : {}),
      maxFileBytes,
      compressionLevel: (o.compressionLevel as number | undefined) ?? DEFAULT_COMPRESSION_LEVEL,
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
  });
  dataset.addCommand(exportCommand);

  const exportsGroup = new Command('exports')
    .summary('list and describe the export jobs recorded at a destination')
    .description('List and describe the export jobs recorded at a destination (takeout-exports/<exportId>.json).');
  addExamples(exportsGroup, [
    ['every export there, newest first', 'takeout dataset exports list -d s3://exports/ddb/'],
    ["one export's record", 'takeout dataset exports describe 01768385930622-efd1a093 -d s3://exports/ddb/'],
  ]);
  const list = new Command('list')
    .summary('every export recorded at the destination, newest first')
    .description('Every export recorded at the destination, newest first; --table and --status narrow the list.');
  addOptions(list, LIST_ALL);
  addExamples(list, [
    ['every export there', 'takeout dataset exports list -d s3://exports/ddb/'],
    ['the failed exports of one table, as JSON', 'takeout dataset exports list -d ./exports --table in.c-main.orders \\\n      --status FAILED --json'],
  ]);
  list.action(async () => {
    const o = resolveOptions(list, LIST_ALL);
    await context.configure(o);
    const destination = await openStore(destWithPath(o), destinationOptions(o, context.network));
    context.onClose(async () => destination.close?.());
    const status = typeof o.status === 'string' ? parseStatus(o.status) : undefined;
    const jobs = (await listJobs(destination)).filter((j) => (o.table === undefined || j.table === o.table) && (status === undefined || j.status === status));
    if (o.json === true) {
      context.io.stdout.write(`${eventLine({ type: 'dataset:exports', ExportSummaries: jobs.map((j) => ({ ExportArn: j.exportArn, ExportStatus: j.status, ExportType: j.exportType, Takeout: j })) })}\n`);
      return;
    }
    if (jobs.length === 0) {
      context.io.stdout.write('no exports recorded here\n');
      return;
    }
    const rows = jobs.map((j) => [j.exportId, j.status, j.exportType, `${j.layout}/${j.exportFormat}`, j.table, j.itemCount.toLocaleString('en-US'), j.startTime]);
    context.io.stdout.write(`${table(['EXPORT ID', 'STATUS', 'TYPE', 'LAYOUT', 'TABLE', 'ITEMS', 'STARTED'], rows, new Set([5]))}\n`);
  });
  const describe = new Command('describe')
    .argument('<export-id>', 'the export id (like 01768385930622-efd1a093)')
    .summary("one export's record")
    .description("One export's record: its status, table, layout, destination, times, items and files; with --json in DescribeExport's shape.");
  addOptions(describe, LIST_ALL.filter((s) => s.key !== 'table' && s.key !== 'status'));
  addExamples(describe, [
    ['one export', 'takeout dataset exports describe 01768385930622-efd1a093 -d s3://exports/ddb/'],
    ["as JSON, in DescribeExport's shape", 'takeout dataset exports describe 01768385930622-efd1a093 \\\n      -d s3://exports/ddb/ --json'],
  ]);
  describe.action(async (exportId: string) => {
    const o = resolveOptions(describe, LIST_ALL);
    await context.configure(o);
    const destination = await openStore(destWithPath(o), destinationOptions(o, context.network));
    context.onClose(async () => destination.close?.());
    const job = await readJob(destination, exportId);
    if (!job) throw new TakeoutError('NOT_FOUND', `export ${exportId} is not recorded at ${destination.description}`, { hint: 'takeout dataset exports list --dest … shows the exports there' });
    if (o.json === true) context.io.stdout.write(`${eventLine({ type: 'dataset:export', ExportDescription: exportDescription(job) })}\n`);
    else context.io.stdout.write(`${describeLines(job).map(terminalLine).join('\n')}\n`);
  });
  exportsGroup.addCommand(list);
  exportsGroup.addCommand(describe);
  dataset.addCommand(exportsGroup);
  return dataset;
}
