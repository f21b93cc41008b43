import { createHash } from 'node:crypto';
import type { Store } from '../stores/store.js';
import { TakeoutError } from '../errors.js';
import { readManifestText } from './read.js';

/**
 * Dataset export jobs: each export has a record at its destination, `takeout-exports/<exportId>.json`,
 * rewritten as its status changes, so `dataset exports list|describe` work from any machine with
 * access to the destination. The fields follow DynamoDB's DescribeExport where they mean the same.
 */
export const JOBS_DIR = 'takeout-exports';
export const JOB_RECORD_VERSION = 1;

export type JobStatus = 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'STOPPED';

export interface JobRecord {
  formatVersion: typeof JOB_RECORD_VERSION;
  kind: 'takeout-dataset-export';
  exportId: string;
  exportArn: string;
  status: JobStatus;
  layout: string;
  /** DYNAMODB_JSON, ION, CSV, JSON, XML, PARQUET. */
  exportFormat: string;
  exportType: 'FULL_EXPORT' | 'INCREMENTAL_EXPORT';
  table: string;
  source: string;
  destination: string;
  /** Where the export's files are, relative to the destination. */
  outputPrefix: string;
  /** The commit record of the layout (DynamoDB: manifest-summary.json), relative to the destination. */
  manifest?: string;
  startTime: string;
  endTime?: string;
  exportTime?: string;
  exportFromTime?: string;
  exportToTime?: string;
  exportViewType?: string;
  itemCount: number;
  /** Stored bytes of the data files. */
  billedSizeBytes: number;
  files: number;
  clientToken?: string;
  /** Same export definition (layout, table, source, options) across recurring runs. */
  definitionId: string;
  recurring?: boolean;
  failureCode?: string;
  failureMessage?: string;
  /** Runs that worked on this export: a re-run with the same --client-token goes on with it. */
  attempts: number;
  /** Once COMPLETED: every data file and every file of the layout, so `takeout verify` can check them all. */
  dataFiles?: { key: string; bytes: number; rows: number; sha256: string; md5?: string }[];
  layoutFiles?: { key: string; bytes: number; sha256: string }[];
  options: Record<string, unknown>;
  tool: { name: 'takeout'; version: string };
}

export const jobKey = (exportId: string): string => `${JOBS_DIR}/${exportId}.json`;
export const jobJournalKey = (exportId: string): string => `${JOBS_DIR}/${exportId}.journal.json`;
/** Client tokens are hashed into the key: they may hold any characters. */
export const tokenKey = (clientToken: string): string => `${JOBS_DIR}/tokens/${createHash('sha256').update(clientToken).digest('hex').slice(0, 40)}.json`;

const EXPORT_ID = /^\d{14}-[0-9a-f]{8}$/;

/** DynamoDB's export id: the start time in epoch milliseconds, 14 digits, `-`, 8 hex characters. */
export function newExportId(start: Date, random: string): string {
  return `${String(start.getTime()).padStart(14, '0')}-${random.slice(0, 8)}`;
}

export function isExportId(text: string): boolean {
  return EXPORT_ID.test(text);
}

function invalid(origin: string, message: string): TakeoutError {
  return new TakeoutError('INTEGRITY', `${origin}: ${message}`);
}

export function parseJobRecord(text: string, origin: string): JobRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(origin, 'not valid JSON');
  }
  const r = value as Partial<JobRecord> | null;
  if (!r || typeof r !== 'object' || r.kind !== 'takeout-dataset-export') throw invalid(origin, 'not a takeout export record');
  if (r.formatVersion !== JOB_RECORD_VERSION) throw invalid(origin, `record format ${String(r.formatVersion)} is not one this version reads (${JOB_RECORD_VERSION})`);
  if (typeof r.exportId !== 'string' || !isExportId(r.exportId) || typeof r.status !== 'string' || typeof r.startTime !== 'string') throw invalid(origin, 'record fields missing');
  return r as JobRecord;
}

type Reader = Pick<Store, 'get' | 'head' | 'list' | 'description'>;

export async function readJob(destination: Reader, exportId: string): Promise<JobRecord | undefined> {
  if (!isExportId(exportId)) throw new TakeoutError('USAGE', `'${exportId}' is not an export id (like 01768385930622-efd1a093)`);
  const key = jobKey(exportId);
  if (!(await destination.head(key))) return undefined;
  return parseJobRecord(await readManifestText(await destination.get(key), key), key);
}

/** Every export recorded at the destination, newest first (as DynamoDB's ListExports, by start time). */
export async function listJobs(destination: Reader): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for await (const object of destination.list(`${JOBS_DIR}/`)) {
    const name = object.key.slice(JOBS_DIR.length + 1);
    if (!/^\d{14}-[0-9a-f]{8}\.json$/.test(name)) continue;
    jobs.push(parseJobRecord(await readManifestText(await destination.get(object.key), object.key), object.key));
  }
  return jobs.sort((a, b) => b.startTime.localeCompare(a.startTime) || b.exportId.localeCompare(a.exportId));
}

export interface TokenRecord {
  exportId: string;
  /** sha256 of the export's parameters: the same token with other parameters is a conflict. */
  parameters: string;
}

export async function readToken(destination: Reader, clientToken: string): Promise<TokenRecord | undefined> {
  const key = tokenKey(clientToken);
  if (!(await destination.head(key))) return undefined;
  const text = await readManifestText(await destination.get(key), key);
  try {
    const value = JSON.parse(text) as TokenRecord;
    if (typeof value.exportId === 'string' && typeof value.parameters === 'string') return value;
  } catch {
    // falls through
  }
  throw invalid(key, 'not a client token record');
}
