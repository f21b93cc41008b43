import { createHash } from 'node:crypto';
import { TakeoutError } from '../errors.js';
import { dynamoIonEncoder, ionAttributeValue, ionDecimal, ionFieldNames, ION_VERSION_MARKER } from '../formats/dynamodb-ion.js';
import { dynamoChangeEncoder, dynamoJsonEncoder, type ChangeCodec } from '../formats/dynamodb-json.js';
import { parseTimestamp, type LineEncoder, type RecordColumn } from '../formats/typed-records.js';
import type { SliceRecord } from '../model.js';
import type { DatasetLayout, LayoutContext } from './dataset-layout.js';

/**
 * The DynamoDB export-to-S3 layout (DynamoDB Developer Guide, "DynamoDB table export output format": https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):
 *
 *   <prefix>/AWSDynamoDB/<exportId>/_started                 written first
 *   <prefix>/AWSDynamoDB/<exportId>/data/<26 base32>.json.gz  full exports (.ion.gz for ION)
 *   <prefix>/AWSDynamoDB/data/<26 base32>.json.gz             incremental exports: one folder shared by all
 *   <prefix>/AWSDynamoDB/<exportId>/manifest-files.json (+ .md5)
 *   <prefix>/AWSDynamoDB/<exportId>/manifest-summary.json (+ .md5)   the commit record, with its .md5 last
 *
 * Keys here are relative to the destination root (which already holds the prefix); the manifests name
 * objects by their full key in the bucket (`…S3Key`), the prefix included.
 */
export const DYNAMODB_ROOT = 'AWSDynamoDB';

export type DynamoFormat = 'DYNAMODB_JSON' | 'ION';
export type DynamoExportType = 'FULL_EXPORT' | 'INCREMENTAL_EXPORT';
export type DynamoViewType = 'NEW_IMAGE' | 'NEW_AND_OLD_IMAGES';

/** Manifest versions as DynamoDB writes them. */
const FULL_VERSION = '2020-06-30';
const INCREMENTAL_VERSION = '2023-08-01';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/**
 * A data file's name: 26 base32 characters like DynamoDB's, but derived from the export id and the file's
 * index, so a resumed export names every file as the interrupted one did.
 */
export function dataFileName(exportId: string, index: number): string {
  const digest = createHash('sha256').update(`${exportId}:${index}`).digest();
  let name = '';
  for (let i = 0; i < 26; i++) name += BASE32[digest[i]! & 31];
  return name;
}

export function exportFolder(exportId: string): string {
  return `${DYNAMODB_ROOT}/${exportId}`;
}

export function dataKey(exportId: string, type: DynamoExportType, format: DynamoFormat, index: number): string {
  const folder = type === 'INCREMENTAL_EXPORT' ? `${DYNAMODB_ROOT}/data` : `${exportFolder(exportId)}/data`;
  return `${folder}/${dataFileName(exportId, index)}.${format === 'ION' ? 'ion' : 'json'}.gz`;
}

export const startedKey = (exportId: string): string => `${exportFolder(exportId)}/_started`;
export const manifestFilesKey = (exportId: string): string => `${exportFolder(exportId)}/manifest-files.json`;
export const manifestSummaryKey = (exportId: string): string => `${exportFolder(exportId)}/manifest-summary.json`;
/** A real export writes `.md5` sidecars (the guide calls them `.checksum`). */
export const md5Key = (key: string): string => key.replace(/\.json$/, '.md5');

/** The sidecar body: base64 MD5 of the file, as DynamoDB writes it. */
export function md5Base64(body: string | Buffer): string {
  return createHash('md5').update(body).digest('base64');
}

/** `manifest-files.json`: JSON lines, one per data file, ending with a newline. */
export function manifestFiles(files: readonly SliceRecord[], bucketKey: (key: string) => string): string {
  return files
    .map((f) => `${JSON.stringify({ itemCount: f.rows, md5Checksum: f.md5 ?? '', etag: f.etag ?? '', dataFileS3Key: bucketKey(f.key) })}\n`)
    .join('');
}

export interface SummaryFields {
  exportArn: string;
  tableArn: string;
  tableId: string;
  startTime: string;
  endTime: string;
  exportTime?: string;
  exportFromTime?: string;
  exportToTime?: string;
  s3Bucket: string | null;
  s3Prefix: string | null;
  s3SseAlgorithm: 'AES256' | 'KMS' | null;
  s3SseKmsKeyId: string | null;
  manifestFilesS3Key: string;
  billedSizeBytes: number;
  itemCount: number;
  outputFormat: DynamoFormat;
  exportType: DynamoExportType;
  outputView?: DynamoViewType;
}

/** `manifest-summary.json`, with the fields of a full or an incremental export as DynamoDB writes them. */
export function manifestSummary(f: SummaryFields): Record<string, unknown> {
  const incremental = f.exportType === 'INCREMENTAL_EXPORT';
  return {
    version: incremental ? INCREMENTAL_VERSION : FULL_VERSION,
    exportArn: f.exportArn,
    startTime: f.startTime,
    endTime: f.endTime,
    tableArn: f.tableArn,
    tableId: f.tableId,
    ...(incremental ? { exportFromTime: f.exportFromTime, exportToTime: f.exportToTime } : { exportTime: f.exportTime }),
    s3Bucket: f.s3Bucket,
    s3Prefix: f.s3Prefix,
    s3SseAlgorithm: f.s3SseAlgorithm,
    s3SseKmsKeyId: f.s3SseKmsKeyId,
    manifestFilesS3Key: f.manifestFilesS3Key,
    billedSizeBytes: f.billedSizeBytes,
    itemCount: f.itemCount,
    outputFormat: f.outputFormat,
    ...(incremental ? { outputView: f.outputView, exportType: f.exportType } : {}),
  };
}

/** A stable UUID-shaped table id (DynamoDB's `tableId`) from the source and table. */
export function tableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface DynamoLayoutOptions {
  format: DynamoFormat;
  type: DynamoExportType;
  view: DynamoViewType;
  /** Incremental exports: the change-time column and an optional soft-delete column. */
  changedColumn?: string;
  deletedColumn?: string;
  sse: 'AES256' | 'KMS' | null;
  sseKmsKeyId: string | null;
  region: string;
  accountId: string;
}

/** The DynamoDB export-to-S3 layout for one export. */
export function dynamodbLayout(ctx: LayoutContext, o: DynamoLayoutOptions): DatasetLayout {
  const tableName = ctx.table.displayName ?? ctx.table.name;
  const tableArn = `arn:aws:dynamodb:${o.region}:${o.accountId}:table/${tableName}`;
  const bucketKey = (key: string): string => `${ctx.prefix ? `${ctx.prefix}/` : ''}${key}`;
  const filesKey = manifestFilesKey(ctx.exportId);
  const summaryKey = manifestSummaryKey(ctx.exportId);
  return {
    name: 'dynamodb',
    exportFormat: o.format,
    outputPrefix: `${exportFolder(ctx.exportId)}/`,
    manifestKey: summaryKey,
    startFiles: () => [{ key: startedKey(ctx.exportId), body: '' }],
    data: {
      kind: 'lines',
      encoder: dynamoEncoder(ctx, o),
      fileKey: (_series, index) => dataKey(ctx.exportId, o.type, o.format, index),
      gzip: true,
    },
    finishFiles(files, job) {
      const filesBody = manifestFiles(files, bucketKey);
      const summary = `${JSON.stringify(
        manifestSummary({
          exportArn: job.exportArn,
          tableArn,
          tableId: tableUuid(`${ctx.source}#${ctx.table.id}`),
          startTime: job.startTime,
          endTime: job.endTime ?? new Date().toISOString(),
          ...(job.exportTime ? { exportTime: job.exportTime } : {}),
          ...(job.exportFromTime ? { exportFromTime: job.exportFromTime, exportToTime: job.exportToTime } : {}),
          s3Bucket: ctx.bucket,
          s3Prefix: ctx.prefix || null,
          s3SseAlgorithm: o.sse,
          s3SseKmsKeyId: o.sseKmsKeyId,
          manifestFilesS3Key: bucketKey(filesKey),
          billedSizeBytes: files.reduce((n, f) => n + f.bytes, 0),
          itemCount: files.reduce((n, f) => n + f.rows, 0),
          outputFormat: o.format,
          exportType: o.type,
          outputView: o.view,
        }),
      )}\n`;
      return [
        { key: filesKey, body: filesBody, contentType: 'application/json' },
        { key: md5Key(filesKey), body: md5Base64(filesBody), contentType: 'text/plain' },
        { key: summaryKey, body: summary, contentType: 'application/json' },
        { key: md5Key(summaryKey), body: md5Base64(summary), contentType: 'text/plain' },
      ];
    },
  };
}

/** The ARN DynamoDB gives an export of this table. */
export function exportArn(table: { displayName?: string; name: string }, o: Pick<DynamoLayoutOptions, 'region' | 'accountId'>, exportId: string): string {
  return `arn:aws:dynamodb:${o.region}:${o.accountId}:table/${table.displayName ?? table.name}/export/${exportId}`;
}

function dynamoEncoder(ctx: LayoutContext, o: DynamoLayoutOptions): LineEncoder {
  const { columns } = ctx;
  const origin = ctx.table.id;
  const ion = o.format === 'ION';
  if (o.type === 'FULL_EXPORT') return ion ? dynamoIonEncoder(columns, origin) : dynamoJsonEncoder(columns, origin);
  const index = (name: string | undefined, flag: string): number => {
    const i = columns.findIndex((c) => c.name === name);
    if (i === -1) throw new TakeoutError('USAGE', `${flag} ${name ?? ''}: no such column in ${origin}`);
    return i;
  };
  if (ctx.table.primaryKey.length === 0) throw new TakeoutError('USAGE', `incremental exports need the table's primary key, and ${origin} has none`);
  return dynamoChangeEncoder(
    columns,
    {
      keys: ctx.table.primaryKey.map((k) => index(k, 'primary key column')),
      changed: index(o.changedColumn, '--changed-column'),
      ...(o.deletedColumn !== undefined ? { deleted: index(o.deletedColumn, '--deleted-column') } : {}),
      view: o.view,
    },
    parseTimestamp,
    origin,
    ion ? ionChangeCodec(columns) : undefined,
  );
}

/** Incremental records in Ion: the JSON records' structure, each line led by the version marker. */
function ionChangeCodec(columns: readonly RecordColumn[]): ChangeCodec {
  return {
    extension: 'ion',
    names: ionFieldNames(columns),
    value: ionAttributeValue,
    metadata: (micros) => `{WriteTimestampMicros:${ionDecimal(micros)}}`,
    field: (name) => name,
    line: (body) => `${ION_VERSION_MARKER} {${body}}\n`,
  };
}
