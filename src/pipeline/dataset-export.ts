import { createHash, randomBytes } from 'node:crypto';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { canPreflight, whereIs } from '../stores/store.js';
import { BAD_CREDENTIAL_CODES } from '../aws/errors.js';
import { recordColumns, type RecordColumn } from '../formats/typed-records.js';
import type { DatasetLayout, LayoutFile } from '../layouts/dataset-layout.js';
import { readJournal } from '../manifests/journal.js';
import { jobJournalKey, jobKey, newExportId, readJob, readToken, tokenKey, type JobRecord, type JobStatus } from '../manifests/jobs.js';
import { checkOverlap } from './preflight.js';
import { acquireLease, describeHolder, liveLeases, type Lease } from './lease.js';
import { startJournal } from './resume.js';
import type { DatasetExportOptions } from './dataset-export/options.js';
import { writeData } from './dataset-export/data-files.js';
import { definitionOf, exportWindow, parametersOf, windowOf, windowRange, type ExportWindow } from './dataset-export/window.js';
import { untilAborted } from './limit.js';

export type { DatasetExportOptions } from './dataset-export/options.js';

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
  else if (error.code === 'AUTH' && ((awsCode !== undefined && BAD_CREDENTIAL_CODES.has(awsCode)) || /credentials/i.test(error.message))) lead = '403 Invalid AWS credentials';
  else if (error.code === 'AUTH') lead = '403 All access to this object has been disabled';
  if (!lead) return error;
  return new TakeoutError(error.code, `${lead}: ${error.message}`, { ...(error.hint ? { hint: error.hint } : {}), details: error.details, cause: error });
}

async function exportJob(options: DatasetExportOptions): Promise<JobRecord> {
  const { destination, emit } = options;
  await checkOverlap(options.source, destination);
  if (canPreflight(destination)) await untilAborted(destination.preflight(), options.signal, `checking ${destination.description}`);
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
    window: ExportWindow;
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
    throw new TakeoutError('EXISTS', `${whereIs(destination, layout.manifestKey)} already exists: an earlier export wrote there`, {
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
