/** Table exports through the Storage API: export-async with the table's query, then the job polled until it ends. */
import { TakeoutError } from '../../errors.js';
import type { TableDescriptor, TableQuery } from '../../model.js';
import type { StorageClient } from './client.js';

/** First and longest wait between job polls. */
const POLL_FIRST_MS = 200;
const POLL_CAP_MS = 5_000;

type Json = Record<string, unknown>;

export interface Job {
  id: number | string;
  status: 'waiting' | 'processing' | 'success' | 'error';
  results?: { file?: { id: number | string } } | unknown[] | null;
  error?: { code?: string; message?: string; exceptionId?: string };
}

/** The Storage API's export options from a TableQuery. */
export function exportBody(table: TableDescriptor, query: TableQuery | undefined): Json {
  if (query?.orderBy?.length && query.orderBy.some((o) => !table.columns.includes(o.column))) {
    throw new TakeoutError('USAGE', `--order-by: table ${table.id} has no such column`);
  }
  return {
    gzip: true,
    format: 'rfc',
    fileType: 'csv',
    // Columns explicitly, so their order is the table's (TableExporter does the same).
    columns: (query?.columns?.length ? query.columns : table.columns).join(','),
    ...(query?.where?.length ? { whereFilters: query.where.map((w) => ({ column: w.column, operator: w.operator, values: w.values })) } : {}),
    ...(query?.changedSince ? { changedSince: Math.floor(query.changedSince.getTime() / 1000) } : {}),
    ...(query?.changedUntil ? { changedUntil: Math.floor(query.changedUntil.getTime() / 1000) } : {}),
    ...(query?.limit !== undefined ? { limit: query.limit } : {}),
    ...(query?.orderBy?.length ? { orderBy: query.orderBy.map((o) => ({ column: o.column, order: o.order.toUpperCase() })) } : {}),
  };
}

/** A table's export queued with the stack; `description` names the source in the error of an answer without a job. */
export async function queue(client: StorageClient, description: string, table: TableDescriptor, query: TableQuery | undefined): Promise<Job> {
  const job = await client.post<Job>(`tables/${encodeURIComponent(table.id)}/export-async`, { body: exportBody(table, query) });
  if (!job || job.id === undefined) throw new TakeoutError('FAILED', `${description}: export of ${table.id} returned no job`);
  return job;
}

/** The job polled, with backoff, until it ends; a failed job is the table's error. */
export async function finished(client: StorageClient, table: TableDescriptor, started: Job, signal?: AbortSignal): Promise<Job> {
  let job = started;
  for (let n = 0; job.status !== 'success' && job.status !== 'error'; n++) {
    await client.wait(Math.min(POLL_CAP_MS, POLL_FIRST_MS * 2 ** n), signal);
    job = await client.get<Job>(`jobs/${job.id}`, signal ? { signal } : {});
  }
  if (job.status === 'error') {
    const e = job.error ?? {};
    throw new TakeoutError('FAILED', `table ${table.id}: export job ${job.id} failed: ${e.message ?? 'no message'}${e.code ? ` (${e.code})` : ''}${e.exceptionId ? `, exception ${e.exceptionId}` : ''}`);
  }
  return job;
}
