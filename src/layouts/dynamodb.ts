import { createHash } from 'node:crypto';
import type { SliceRecord } from '../pipeline/slicer.js';

/**
 * The DynamoDB export-to-S3 layout (see ../shared/design/export-formats.md §1):
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
