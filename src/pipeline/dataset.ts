import { createHash, randomBytes } from 'node:crypto';
import type { Destination } from '../destinations/destination.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { DEFAULT_BLOCK_BYTES } from '../formats/csv.js';
import { dynamoChangeEncoder, dynamoJsonEncoder, type ChangeCodec } from '../formats/dynamodb-json.js';
import { dynamoIonEncoder, ionAttributeValue, ionDecimal, ionFieldNames, ION_VERSION_MARKER } from '../formats/dynamodb-ion.js';
import { parseTimestamp, recordColumns, type LineEncoder, type RecordColumn } from '../formats/records.js';
import * as ddb from '../layouts/dynamodb.js';
import { jobJournalKey, jobKey, listJobs, newExportId, readJob, readToken, tokenKey, type JobRecord, type JobStatus } from '../manifests/jobs.js';
import type { Source, TableDescriptor, TableQuery } from '../sources/source.js';
import { OrderedCompressor } from './compress.js';
import type { Emit } from './events.js';
import { readJournal } from './journal.js';
import { recordBatches } from './records.js';
import { startJournal } from './resume.js';
import { SliceChanged, Slicer, type SliceRecord } from './slicer.js';

/** Encoded text gathered before it becomes a block: the same 2 MiB the CSV pipeline compresses at once. */
const BLOCK_CHARS = DEFAULT_BLOCK_BYTES;
/** Smallest block worth compressing on its own (per-member gzip overhead); blocks shrink to this for small files. */
const MIN_BLOCK_CHARS = 16 * 1024;

export interface DatasetExportOptions {
  source: Source;
  destination: Destination;
  table: TableDescriptor;
  /** Columns and filters (the table export options); the export window is added to it. */
  query?: TableQuery;
  layout: 'dynamodb';
  exportFormat: ddb.DynamoFormat;
  exportType: ddb.DynamoExportType;
  /** Full exports: rows changed after it are left out (needs changedColumn). Default: the start time. */
  exportTime?: Date;
  exportFromTime?: Date;
  exportToTime?: Date;
  exportViewType: ddb.DynamoViewType;
  changedColumn?: string;
  deletedColumn?: string;
  /** Each run takes what changed since the last completed run of the same definition. */
  recurring: boolean;
  clientToken?: string;
  maxFileBytes: number;
  compressionLevel: number;
  /** Where the files are, for the manifests' bucket, prefix and keys; null for a local folder. */
  bucket: string | null;
  prefix: string;
  sse: 'AES256' | 'KMS' | null;
  sseKmsKeyId: string | null;
  region: string;
  accountId: string;
  toolVersion: string;
  /** Recorded in the job record as given (already free of secrets). */
  recordedOptions: Record<string, unknown>;
  signal?: AbortSignal;
  emit: Emit;
}

/**
 * One dataset export job: a record at the destination (IN_PROGRESS first, COMPLETED last, FAILED or
 * STOPPED on the way out), the layout's start marker, data files through the one pipeline (encode →
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
 * Destination errors in the words the managed exports use (DynamoDB, CleverTap), so that runbooks written
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
  const tableName = options.table.displayName ?? options.table.name;
  const tableArn = `arn:aws:dynamodb:${options.region}:${options.accountId}:table/${tableName}`;
  const job: JobRecord = {
    formatVersion: 1,
    kind: 'takeout-dataset-export',
    exportId,
    exportArn: `${tableArn}/export/${exportId}`,
    status: 'IN_PROGRESS',
    layout: options.layout,
    exportFormat: options.exportFormat,
    exportType: options.exportType,
    table: options.table.id,
    source: options.source.description,
    destination: destination.description,
    outputPrefix: `${ddb.exportFolder(exportId)}/`,
    startTime: previous?.startTime ?? started.toISOString(),
    ...window.fields,
    ...(options.exportType === 'INCREMENTAL_EXPORT' ? { exportViewType: options.exportViewType } : {}),
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
  const saveJob = async (): Promise<void> => {
    await destination.put(jobKey(exportId), `${JSON.stringify(job, null, 2)}\n`, { contentType: 'application/json' });
  };
  await saveJob();
  if (options.clientToken !== undefined && !previous) {
    await destination.put(tokenKey(options.clientToken), `${JSON.stringify({ exportId, parameters })}\n`, { contentType: 'application/json' });
  }
  emit({ type: 'dataset:start', exportId, layout: options.layout, table: options.table.id, destination: destination.description, resumed: previous !== undefined });

  const journalKey = jobJournalKey(exportId);
  const landedBefore = previous ? await readJournal(destination, journalKey) : undefined;
  const journal = await startJournal(destination, landedBefore, {
    runId: exportId,
    fingerprint: { parameters },
    emit,
    key: journalKey,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  try {
    await destination.put(ddb.startedKey(exportId), '');
    const files = await writeData(options, exportId, window.query, journal);
    const bytes = files.reduce((n, f) => n + f.bytes, 0);
    job.itemCount = files.reduce((n, f) => n + f.rows, 0);
    job.billedSizeBytes = bytes;
    job.files = files.length;
    const bucketKey = (key: string): string => `${options.prefix ? `${options.prefix}/` : ''}${key}`;
    const filesBody = ddb.manifestFiles(files, bucketKey);
    const filesKey = ddb.manifestFilesKey(exportId);
    await destination.put(filesKey, filesBody, { contentType: 'application/json' });
    await destination.put(ddb.md5Key(filesKey), ddb.md5Base64(filesBody), { contentType: 'text/plain' });
    const ended = new Date();
    const summary = `${JSON.stringify(
      ddb.manifestSummary({
        exportArn: job.exportArn,
        tableArn,
        tableId: ddb.tableUuid(`${options.source.description}#${options.table.id}`),
        startTime: job.startTime,
        endTime: ended.toISOString(),
        ...window.fields,
        s3Bucket: options.bucket,
        s3Prefix: options.prefix || null,
        s3SseAlgorithm: options.sse,
        s3SseKmsKeyId: options.sseKmsKeyId,
        manifestFilesS3Key: bucketKey(filesKey),
        billedSizeBytes: bytes,
        itemCount: job.itemCount,
        outputFormat: options.exportFormat,
        exportType: options.exportType,
        outputView: options.exportViewType,
      }),
    )}\n`;
    const summaryKey = ddb.manifestSummaryKey(exportId);
    await destination.put(summaryKey, summary, { contentType: 'application/json' });
    await destination.put(ddb.md5Key(summaryKey), ddb.md5Base64(summary), { contentType: 'text/plain' });
    job.manifest = summaryKey;
    job.status = 'COMPLETED';
    job.endTime = ended.toISOString();
    await saveJob();
    await journal.remove();
    emit({ type: 'dataset:done', job });
    return job;
  } catch (error) {
    const failure = options.signal?.aborted ? new TakeoutError('INTERRUPTED', 'interrupted') : managedError(toTakeoutError(error, `export ${exportId}`));
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

/** The data files: rows → encoder → 2 MiB blocks → parallel gzip → slicer (cut at --max-file-size). */
async function writeData(
  options: DatasetExportOptions,
  exportId: string,
  query: TableQuery | undefined,
  journal: Awaited<ReturnType<typeof startJournal>>,
): Promise<SliceRecord[]> {
  const { table } = options;
  const names = query?.columns ?? table.columns;
  const columns = recordColumns(table, names);
  const encoder = encoderFor(options, columns);
  // Files are cut between blocks: blocks no larger than a file keep files close to --max-file-size.
  const blockChars = Math.max(MIN_BLOCK_CHARS, Math.min(BLOCK_CHARS, options.maxFileBytes));
  const attempt = async (resuming: boolean): Promise<SliceRecord[]> => {
    const landed = new Map((resuming ? (journal.table(table.id)?.slices ?? []) : []).map((s) => [s.index, s]));
    const slicer = new Slicer({
      destination: options.destination,
      keyFor: (index) => ddb.dataKey(exportId, options.exportType, options.exportFormat, index),
      sliceBytes: options.maxFileBytes,
      md5: true,
      ...(landed.size > 0 ? { landed: (index: number) => landed.get(index) } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onSlice: (slice) => {
        if (!slice.reused) journal.slice(table.id, { key: slice.key, index: slice.index, bytes: slice.bytes, rawBytes: slice.rawBytes, rows: slice.rows, sha256: slice.sha256, ...(slice.etag ? { etag: slice.etag } : {}) });
        options.emit({ type: 'table:slice', table: table.id, slice: { key: slice.key, bytes: slice.bytes, rows: slice.rows, sha256: slice.sha256 } });
      },
      onProgress: (delta) => options.emit({ type: 'table:progress', table: table.id, ...delta }),
    });
    const compressor = new OrderedCompressor(options.compressionLevel, (block) => slicer.write(block));
    try {
      const body = await options.source.openTable(table, { ...(options.signal ? { signal: options.signal } : {}), ...(query ? { query } : {}) });
      let text = '';
      let rows = 0;
      for await (const batch of recordBatches(body, columns.length, options.signal)) {
        for (const row of batch) {
          text += encoder.encode(row);
          rows++;
          if (text.length >= blockChars) {
            await compressor.push({ data: Buffer.from(text), rows });
            text = '';
            rows = 0;
          }
        }
      }
      if (rows > 0) await compressor.push({ data: Buffer.from(text), rows });
      await compressor.flush();
      return await slicer.finish();
    } catch (error) {
      await slicer.abort();
      throw error;
    }
  };
  options.emit({ type: 'table:start', table: table.id, ...(table.dataSizeBytes !== undefined ? { estimatedBytes: table.dataSizeBytes } : {}) });
  try {
    return await attempt(true);
  } catch (error) {
    if (!(error instanceof SliceChanged)) throw error;
    options.emit({ type: 'warning', message: `${table.id} changed since the interrupted run; exporting it again from its first file` });
    journal.setTable(table.id, undefined);
    return attempt(false);
  }
}

function encoderFor(options: DatasetExportOptions, columns: readonly RecordColumn[]): LineEncoder {
  const origin = options.table.id;
  const ion = options.exportFormat === 'ION';
  if (options.exportType === 'FULL_EXPORT') return ion ? dynamoIonEncoder(columns, origin) : dynamoJsonEncoder(columns, origin);
  const index = (name: string | undefined, flag: string): number => {
    const i = columns.findIndex((c) => c.name === name);
    if (i === -1) throw new TakeoutError('USAGE', `${flag} ${name ?? ''}: no such column in ${origin}`);
    return i;
  };
  if (options.table.primaryKey.length === 0) throw new TakeoutError('USAGE', `incremental exports need the table's primary key, and ${origin} has none`);
  return dynamoChangeEncoder(
    columns,
    {
      keys: options.table.primaryKey.map((k) => index(k, 'primary key column')),
      changed: index(options.changedColumn, '--changed-column'),
      ...(options.deletedColumn !== undefined ? { deleted: index(options.deletedColumn, '--deleted-column') } : {}),
      view: options.exportViewType,
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

interface ExportWindow {
  fields: Pick<JobRecord, 'exportTime' | 'exportFromTime' | 'exportToTime'>;
  query: TableQuery | undefined;
}

function windowQuery(options: DatasetExportOptions, since: Date | undefined, until: Date | undefined): TableQuery | undefined {
  if (!options.changedColumn) return options.query;
  return { ...options.query, changedColumn: options.changedColumn, ...(since ? { changedSince: since } : {}), ...(until ? { changedUntil: until } : {}) };
}

/**
 * The rows an export takes. Full: everything (or, with a change column, what changed before the export
 * time). Incremental: what changed in [from, to); --recurring starts where the last completed run of the
 * same definition ended, so consecutive runs leave no gap and take nothing twice.
 */
async function exportWindow(options: DatasetExportOptions, definitionId: string, started: Date): Promise<ExportWindow> {
  if (options.exportType === 'FULL_EXPORT') {
    const at = options.exportTime ?? started;
    return { fields: { exportTime: at.toISOString() }, query: windowQuery(options, undefined, options.changedColumn ? at : undefined) };
  }
  if (!options.changedColumn) throw new TakeoutError('USAGE', 'incremental exports need --changed-column (the column with each row\'s last change time)');
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

/** A resumed export takes the window it was started with, so it writes the same rows again. */
function windowOf(job: JobRecord, options: DatasetExportOptions): ExportWindow {
  if (job.exportFromTime && job.exportToTime) {
    return { fields: { exportFromTime: job.exportFromTime, exportToTime: job.exportToTime }, query: windowQuery(options, new Date(job.exportFromTime), new Date(job.exportToTime)) };
  }
  const at = new Date(job.exportTime ?? job.startTime);
  return { fields: { exportTime: at.toISOString() }, query: windowQuery(options, undefined, options.changedColumn ? at : undefined) };
}

/** What makes two runs the same export definition (recurring runs share it). */
function definitionOf(o: DatasetExportOptions): Record<string, unknown> {
  return {
    layout: o.layout,
    table: o.table.id,
    source: o.source.description,
    destination: o.destination.description,
    format: o.exportFormat,
    type: o.exportType,
    view: o.exportViewType,
    changedColumn: o.changedColumn ?? null,
    deletedColumn: o.deletedColumn ?? null,
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
