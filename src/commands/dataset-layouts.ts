import { TakeoutError } from '../errors.js';
import type { DatasetLayout, LayoutContext } from '../layouts/dataset-layout.js';
import type { TableDescriptor } from '../model.js';
import type { JobStatus } from '../manifests/jobs.js';
import { COMMON_OPTIONS, DYNAMODB_OPTIONS, GROUP, STORE_FORMS, inGroup, pickSpecs, S3_OPTIONS, type OptionSpec, type OptionValues } from './options.js';
import { RUN_OPTIONS } from './run.js';
import { TABLE_QUERY_OPTIONS } from './table-query.js';
import type * as ClevertapModule from '../layouts/clevertap.js';

/**
 * The layouts `takeout dataset export --layout` knows: each brings its own options and turns the
 * resolved options into a plan for the runner. Layout modules load only when used.
 */
export interface LayoutCli {
  /** Options only this layout takes; their descriptions start with the layout's name. */
  options: readonly OptionSpec[];
  plan(o: DatasetExportOptions, context: PlanContext): Promise<LayoutPlan>;
  /** The status as the managed service names it, for `dataset exports describe` (CleverTap: DONE for COMPLETED). */
  statusName?(status: JobStatus): string;
  /** The --export-format values it writes, the default first. */
  formats: readonly string[];
  /** The managed service's own names for each status, first the one shown; `exports list --status` takes them too. */
  statusNames?: Partial<Record<JobStatus, readonly string[]>>;
}

export interface PlanContext {
  table: TableDescriptor;
  /** --changed-column, when given. */
  changedColumn?: string;
  region: string;
  accountId: string;
  sse: 'AES256' | 'KMS' | null;
  sseKmsKeyId: string | null;
}

export interface LayoutPlan {
  layoutName: string;
  /** Every option that changes the files, for the export definition and the client token. */
  layoutOptions: Record<string, unknown>;
  buildLayout(ctx: LayoutContext): DatasetLayout;
  /** The column the export window is on (default: --changed-column). */
  windowColumn?: string;
  /** false: the layout applies the window to the rows itself (the source cannot filter on the column). */
  windowInSource?: boolean;
  /**
   * The window from the layout's own time options (clevertap's --from/--until), instead of --export-type,
   * --export-time and --export-from-time/--export-to-time, which such a layout refuses. --recurring still applies.
   */
  window?: { type: 'FULL_EXPORT' | 'INCREMENTAL_EXPORT'; from?: Date; to?: Date };
  /** --max-file-size when none is given (CleverTap: 100 MB). */
  defaultMaxFileBytes?: number;
  exportArn(exportId: string): string;
}

/** --export-format for a layout: one of `allowed`, or the layout's default. */
export function formatFor<F extends string>(o: { exportFormat?: string | undefined }, layout: string, allowed: readonly F[]): F {
  const format = typeof o.exportFormat === 'string' ? o.exportFormat.toUpperCase() : allowed[0]!;
  const known = allowed.find((f) => f === format);
  if (known === undefined) throw new TakeoutError('USAGE', `--export-format ${String(o.exportFormat)}: the ${layout} layout writes ${allowed.join(' or ')}`);
  return known;
}

const DYNAMODB_FORMATS = ['DYNAMODB_JSON', 'ION'] as const;

const DYNAMODB_LAYOUT_OPTIONS = [
  { key: 'exportViewType', flags: '--export-view-type <view>', description: 'dynamodb incremental exports: NEW_IMAGE or NEW_AND_OLD_IMAGES', type: 'string', default: 'NEW_AND_OLD_IMAGES', choices: ['NEW_IMAGE', 'NEW_AND_OLD_IMAGES'] },
  { key: 'deletedColumn', flags: '--deleted-column <column>', description: 'dynamodb incremental exports: a soft-delete column; rows where it is set are deletes', type: 'string' },
] as const satisfies readonly OptionSpec[];

const dynamodb: LayoutCli = {
  formats: DYNAMODB_FORMATS,
  options: DYNAMODB_LAYOUT_OPTIONS,
  async plan(o, context) {
    const { dynamodbLayout, exportArn } = await import('../layouts/dynamodb.js');
    const options = {
      format: formatFor(o, 'dynamodb', DYNAMODB_FORMATS),
      type: o.exportType,
      view: o.exportViewType,
      ...(context.changedColumn ? { changedColumn: context.changedColumn } : {}),
      ...(typeof o.deletedColumn === 'string' ? { deletedColumn: o.deletedColumn } : {}),
      sse: context.sse,
      sseKmsKeyId: context.sseKmsKeyId,
      region: context.region,
      accountId: context.accountId,
    };
    return {
      layoutName: 'dynamodb',
      layoutOptions: { exportFormat: options.format, exportViewType: options.type === 'INCREMENTAL_EXPORT' ? options.view : null, deletedColumn: options.deletedColumn ?? null },
      buildLayout: (ctx) => dynamodbLayout(ctx, options),
      ...(context.changedColumn ? { windowColumn: context.changedColumn } : {}),
      exportArn: (exportId) => exportArn(context.table, options, exportId),
    };
  },
};

/**
 * Amazon Personalize's dataset export job statuses: CREATE PENDING > CREATE IN_PROGRESS > ACTIVE or CREATE FAILED
 * (DescribeDatasetExportJob, https://docs.aws.amazon.com/personalize/latest/dg/API_DatasetExportJob.html).
 */
const PERSONALIZE_STATUS: Partial<Record<JobStatus, readonly string[]>> = { IN_PROGRESS: ['CREATE IN_PROGRESS', 'CREATE PENDING'], COMPLETED: ['ACTIVE'], FAILED: ['CREATE FAILED'] };

const PERSONALIZE_LAYOUT_OPTIONS = [
    { key: 'datasetType', flags: '--dataset-type <type>', description: 'personalize: interactions, items or users (required)', type: 'string', choices: ['interactions', 'items', 'users'] },
    { key: 'ingestionMode', flags: '--ingestion-mode <mode>', description: 'personalize: the records to export: BULK (imports), PUT (PutEvents/PutItems/PutUsers) or ALL', type: 'string', default: 'PUT', choices: ['BULK', 'PUT', 'ALL'] },
    { key: 'ingestionColumn', flags: '--ingestion-column <column>', description: 'personalize: the column saying bulk or put for each record (not exported)', type: 'string' },
    { key: 'idColumn', flags: '--id-column <[field=]column>', description: 'personalize: the column of an id field when its name differs (items/users: COLUMN; interactions: USER_ID=COLUMN, ITEM_ID=COLUMN, TIMESTAMP=COLUMN)', type: 'list' },
    { key: 'timestampColumn', flags: '--timestamp-column <column>', description: 'personalize ALL items/users: the column that says which record of an id is newest (items: CREATION_TIMESTAMP when present)', type: 'string' },
    { key: 'jobName', flags: '--job-name <name>', description: 'personalize: the job name: a folder above the export\'s and the ARN\'s last part', type: 'string' },
    { key: 'gzip', flags: '--gzip', description: 'personalize: gzip the CSV files (.csv.gz; Personalize writes them plain)', type: 'boolean', default: false },
] as const satisfies readonly OptionSpec[];

const personalize: LayoutCli = {
  formats: ['CSV'],
  statusName: (status) => PERSONALIZE_STATUS[status]?.[0] ?? status,
  statusNames: PERSONALIZE_STATUS,
  options: PERSONALIZE_LAYOUT_OPTIONS,
  async plan(o, context) {
    const { checkPersonalizeOptions, personalizeArn, personalizeLayout } = await import('../layouts/personalize.js');
    formatFor(o, 'personalize', personalize.formats);
    if (typeof o.datasetType !== 'string') throw new TakeoutError('USAGE', 'the personalize layout needs --dataset-type interactions, items or users');
    if (o.exportType === 'INCREMENTAL_EXPORT') throw new TakeoutError('USAGE', '--export-type INCREMENTAL_EXPORT: Personalize dataset exports are full exports');
    const options = {
      datasetType: o.datasetType,
      ingestionMode: o.ingestionMode,
      ...(typeof o.ingestionColumn === 'string' ? { ingestionColumn: o.ingestionColumn } : {}),
      idColumns: o.idColumn ?? [],
      ...(typeof o.timestampColumn === 'string' ? { timestampColumn: o.timestampColumn } : {}),
      ...(typeof o.jobName === 'string' ? { jobName: o.jobName } : {}),
      gzip: o.gzip === true,
      region: context.region,
      accountId: context.accountId,
    };
    checkPersonalizeOptions(options);
    return {
      layoutName: 'personalize',
      layoutOptions: {
        exportFormat: 'CSV',
        datasetType: options.datasetType,
        ingestionMode: options.ingestionMode,
        ingestionColumn: options.ingestionColumn ?? null,
        idColumns: options.idColumns,
        timestampColumn: options.timestampColumn ?? null,
        jobName: options.jobName ?? null,
        gzip: options.gzip,
      },
      buildLayout: (ctx) => personalizeLayout(ctx, options),
      ...(context.changedColumn ? { windowColumn: context.changedColumn } : {}),
      exportArn: (exportId) => personalizeArn(options, exportId),
    };
  },
};

/** The plain layout's keys unless --key-template says otherwise: one folder per export. */
const PLAIN_KEY_TEMPLATE = '{table}/{export_id}/part-{part:05}';

const PLAIN_FORMATS = ['CSV', 'JSONL', 'PARQUET'] as const;

const PLAIN_LAYOUT_OPTIONS = [
    { key: 'keyTemplate', flags: '--key-template <template>', description: 'plain: data file keys from {table}, {export_id}, {date}, {part} or {part:05}, {partitions}; the extension is added', type: 'string', default: PLAIN_KEY_TEMPLATE },
    { key: 'partitionBy', flags: '--partition-by <column>', description: 'plain: Hive folders COLUMN=value/ per value of this column (NULL: __HIVE_DEFAULT_PARTITION__)', type: 'list' },
    { key: 'includePartitionColumns', flags: '--include-partition-columns', description: 'plain: keep --partition-by columns in the files too', type: 'boolean', default: false },
    { key: 'compression', flags: '--compression <codec>', description: 'plain: CSV and JSONL: gzip (default) or none; PARQUET: snappy (default), gzip or none', type: 'string', choices: ['gzip', 'none', 'snappy'] },
    { key: 'header', flags: '--header', description: 'plain CSV: a header row in each file (default)', negatedDescription: 'plain CSV: no header row', type: 'boolean', negatable: true },
] as const satisfies readonly OptionSpec[];

const plain: LayoutCli = {
  formats: PLAIN_FORMATS,
  options: PLAIN_LAYOUT_OPTIONS,
  async plan(o, context) {
    const { checkPlainOptions, plainArn, plainLayout } = await import('../layouts/plain.js');
    const format = formatFor(o, 'plain', PLAIN_FORMATS);
    if (typeof o.header === 'boolean' && format !== 'CSV') throw new TakeoutError('USAGE', `--${o.header ? '' : 'no-'}header is for CSV files, not ${format}`);
    const options = {
      keyTemplate: o.keyTemplate,
      format,
      compression: o.compression ?? (format === 'PARQUET' ? 'snappy' : 'gzip'),
      header: o.header !== false,
      partitionBy: o.partitionBy ?? [],
      includePartitionColumns: o.includePartitionColumns === true,
      region: context.region,
      accountId: context.accountId,
    };
    checkPlainOptions(options);
    return {
      layoutName: 'plain',
      layoutOptions: {
        exportFormat: format,
        keyTemplate: options.keyTemplate,
        compression: options.compression,
        header: format === 'CSV' ? options.header : null,
        partitionBy: options.partitionBy,
        includePartitionColumns: options.includePartitionColumns,
      },
      buildLayout: (ctx) => plainLayout(ctx, options),
      ...(context.changedColumn ? { windowColumn: context.changedColumn } : {}),
      exportArn: (exportId) => plainArn(context.table, options, exportId),
    };
  },
};

/** CleverTap's identity fields in its order of preference. */
const CLEVERTAP_IDENTITY_PRIORITY = ['identity', 'email', 'phone'];

/** CleverTap's status names: RUNNING, DONE, STOPPED (it has no FAILED; PENDING is a recurring export between runs). */
const CLEVERTAP_STATUS: Partial<Record<JobStatus, readonly string[]>> = { IN_PROGRESS: ['RUNNING'], COMPLETED: ['DONE'] };

/** The layout module's own list, checked by type without loading the module at start-up. */
const CLEVERTAP_FORMATS = ['JSON', 'CSV', 'XML', 'PARQUET'] as const satisfies typeof ClevertapModule.CLEVERTAP_FORMATS;

const CLEVERTAP_LAYOUT_OPTIONS = [
    { key: 'eventColumn', flags: '--event-column <column>', description: 'clevertap: the column with the event name (any case)', type: 'string', default: 'eventName' },
    { key: 'tsColumn', flags: '--ts-column <column>', description: 'clevertap: the event time column (any case): a timestamp, or epoch seconds or milliseconds', type: 'string', default: 'ts' },
    { key: 'identityPriority', flags: '--identity-priority <a,b,c>', description: 'clevertap: profile.identity is the first non-empty of these columns (those the table has)', type: 'list', commaSeparated: true, default: CLEVERTAP_IDENTITY_PRIORITY },
    { key: 'profileColumns', flags: '--profile-columns <a,b>', description: 'clevertap: more columns under profile{} (the --identity-priority ones are there already)', type: 'list', commaSeparated: true },
    { key: 'deviceColumns', flags: '--device-columns <a,b>', description: 'clevertap: columns under deviceInfo{}', type: 'list', commaSeparated: true },
    { key: 'from', flags: '--from <date>', description: 'clevertap: events from 00:00 UTC of this day (YYYY-MM-DD), at most 60 days back (default: 60 days back)', type: 'string' },
    { key: 'until', flags: '--until <date>', description: 'clevertap: events up to the end of this day, UTC (YYYY-MM-DD; default: now)', type: 'string' },
    // Commander puts --no-limit on `limit` (--limit <n> is a table option): --no-limit reads as limit === false.
    { key: 'noLimit', flags: '--no-limit', description: 'clevertap: any --from, not only the last 60 days (without --from: every event)', type: 'boolean' },
    { key: 'databaseId', flags: '--database-id <id>', description: 'clevertap: the <database-id> in file names (default: a hash of the source)', type: 'string' },
] as const satisfies readonly OptionSpec[];

/** Commander puts --no-limit on `limit` (--limit <n> is a table option): there it reads as false, which its type (a count) does not say. */
function limitNegated(o: { limit?: unknown }): boolean {
  return o.limit === false;
}

const clevertap: LayoutCli = {
  formats: CLEVERTAP_FORMATS,
  options: CLEVERTAP_LAYOUT_OPTIONS,
  async plan(o, context) {
    const ct = await import('../layouts/clevertap.js');
    const format = formatFor(o, 'clevertap', CLEVERTAP_FORMATS);
    const dynamoWindow = [
      [o.exportTime, '--export-time'],
      [o.exportFromTime, '--export-from-time'],
      [o.exportToTime, '--export-to-time'],
    ] as const;
    for (const [value, flag] of dynamoWindow) if (value !== undefined) throw new TakeoutError('USAGE', `${flag}: the clevertap layout takes --from and --until (dates)`);
    if (o.exportType === 'INCREMENTAL_EXPORT') throw new TakeoutError('USAGE', '--export-type: clevertap exports take --from/--until (one-time) or --recurring');
    if (context.changedColumn) throw new TakeoutError('USAGE', '--changed-column: the clevertap layout\'s window is on --ts-column');
    const { table } = context;
    const column = (name: string, flag: string): string => {
      const found = ct.resolveColumn(table.columns, name, flag);
      if (found === undefined) throw new TakeoutError('USAGE', `${flag} ${name}: ${table.id} has no such column (${table.columns.join(', ')})`);
      return found;
    };
    const wanted = o.identityPriority;
    const identityPriority = wanted.flatMap((name) => ct.resolveColumn(table.columns, name, '--identity-priority') ?? []);
    if (identityPriority.length === 0) throw new TakeoutError('USAGE', `--identity-priority ${wanted.join(',')}: ${table.id} has none of these columns; name the ones that identify a user`);
    const tsColumn = column(o.tsColumn, '--ts-column');
    const range = ct.clevertapWindow(
      {
        ...(typeof o.from === 'string' ? { from: o.from } : {}),
        ...(typeof o.until === 'string' ? { until: o.until } : {}),
        noLimit: limitNegated(o) || o.noLimit === true,
        recurring: o.recurring === true,
      },
      new Date(),
    );
    const windowInSource = ct.sourceFiltersWindow(typeof o.source === 'string' ? o.source : undefined, table, tsColumn);
    const options = {
      format,
      eventColumn: column(o.eventColumn, '--event-column'),
      tsColumn,
      identityPriority,
      profileColumns: (o.profileColumns ?? []).map((c) => column(c, '--profile-columns')),
      deviceColumns: (o.deviceColumns ?? []).map((c) => column(c, '--device-columns')),
      ...(typeof o.databaseId === 'string' ? { databaseId: ct.checkDatabaseId(o.databaseId) } : {}),
      // CleverTap's files are always compressed (--gzip is personalize's, off by default).
      gzip: true,
      filterWindow: !windowInSource,
    };
    return {
      layoutName: 'clevertap',
      layoutOptions: {
        exportFormat: format,
        eventColumn: options.eventColumn,
        tsColumn,
        identityPriority,
        profileColumns: options.profileColumns,
        deviceColumns: options.deviceColumns,
        databaseId: options.databaseId ?? null,
      },
      buildLayout: (ctx) => ct.clevertapLayout(ctx, options),
      windowColumn: tsColumn,
      windowInSource,
      window: { type: 'INCREMENTAL_EXPORT', from: range.from, ...(range.to ? { to: range.to } : {}) },
      defaultMaxFileBytes: ct.CLEVERTAP_MAX_FILE_BYTES,
      exportArn: (exportId) => `clevertap:table/${table.displayName ?? table.name}/export/${exportId}`,
    };
  },
  statusName: (status) => CLEVERTAP_STATUS[status]?.[0] ?? status,
  statusNames: CLEVERTAP_STATUS,
};

export const LAYOUTS: Record<string, LayoutCli> = { dynamodb, personalize, plain, clevertap };

/** Each layout's options under a heading of its own, in the order of LAYOUTS: `--help` shows which layout takes what. */
export const LAYOUT_OPTIONS = [
  ...inGroup('Layout dynamodb', DYNAMODB_LAYOUT_OPTIONS),
  ...inGroup('Layout personalize', PERSONALIZE_LAYOUT_OPTIONS),
  ...inGroup('Layout plain', PLAIN_LAYOUT_OPTIONS),
  ...inGroup('Layout clevertap', CLEVERTAP_LAYOUT_OPTIONS),
] as const;

/*
 * The dataset export's options live beside its layouts: the layout option takes their names, each layout adds its
 * own options, and each layout's plan reads the options those specs compute — one unit, one module.
 */
/** DynamoDB writes one file per partition and has no size knob; 256 MB keeps files few and each easy to handle. */
export const DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024;
/** Below this a file holds too little for a good gzip ratio. */
const MIN_FILE_BYTES = 16 * 1024;
/** S3 copies objects up to 5 GiB in one request. */
const MAX_FILE_BYTES = 5 * 1024 * 1024 * 1024;
/** The account id in ARNs when none is given: a real export's ARN names the table's account. */
const DEFAULT_ACCOUNT_ID = '000000000000';

const EXPORT_OPTIONS = [
  ...pickSpecs(RUN_OPTIONS, ['source', 'token', 'compressionLevel']),
  { key: 'dest', flags: '-d, --dest <dest>', description: `where the export goes: ${STORE_FORMS} (required)`, type: 'string', group: GROUP.destination },
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
  ...LAYOUT_OPTIONS,
] as const satisfies readonly OptionSpec[];

export const DATASET_EXPORT_SPECS = [...EXPORT_OPTIONS, ...S3_OPTIONS, ...DYNAMODB_OPTIONS, ...COMMON_OPTIONS] as const;

export type DatasetExportOptions = OptionValues<typeof DATASET_EXPORT_SPECS>;
