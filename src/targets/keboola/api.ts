import { TakeoutError } from '../../errors.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import type { TakeoutMetadata } from '../target.js';

/**
 * What the Keboola target asks of the Storage API besides plain calls: asynchronous jobs (a 202 answer is a
 * job `{id, status}`, polled at `GET jobs/{id}` until `success` or `error`; apiary.apib "Jobs"), and the
 * record shapes it reads back.
 */

/** First and longest wait between job polls (storage-api-php-client createSimpleJobPollDelay caps at 20 s). */
const POLL_FIRST_MS = 200;
const POLL_CAP_MS = 5_000;

export type Json = Record<string, unknown>;

export interface StorageJob {
  id: number | string;
  status: string;
  results?: Json | null;
  error?: { code?: string; message?: string; exceptionId?: string };
}

/** Sends a call answered with a job (a POST with `body`, else a DELETE) and waits for it; a failed job is an error naming `what`. */
export async function runJob(client: StorageClient, path: string, body: Json | undefined, what: string, signal?: AbortSignal): Promise<StorageJob> {
  const s = signal ? { signal } : {};
  let job = body === undefined ? await client.request<StorageJob>('DELETE', path, s) : await client.post<StorageJob>(path, { body, ...s });
  if (!job || job.id === undefined) throw new TakeoutError('FAILED', `${what}: the Storage API answered no job`);
  for (let n = 0; job.status !== 'success' && job.status !== 'error'; n++) {
    await client.wait(Math.min(POLL_CAP_MS, POLL_FIRST_MS * 2 ** n), signal);
    job = await client.get<StorageJob>(`jobs/${job.id}`, signal ? { signal } : {});
  }
  if (job.status === 'error') {
    const e = job.error ?? {};
    throw new TakeoutError('FAILED', `${what}: job ${job.id} failed: ${e.message ?? 'no message'}${e.code ? ` (${e.code})` : ''}${e.exceptionId ? `, exception ${e.exceptionId}` : ''}`);
  }
  return job;
}

/** A layout file of the takeout that holds a JSON list (tables.json, triggers.json, …); none there is an empty list. */
export function listFile(metadata: TakeoutMetadata, key: string): Json[] {
  const text = metadata.files.find((f) => f.key === key)?.text;
  if (text === undefined) return [];
  const value = JSON.parse(text) as unknown;
  if (!Array.isArray(value)) throw new TakeoutError('INTEGRITY', `${metadata.source}: ${key} is not a list`, { hint: 'check the takeout with takeout verify' });
  return value as Json[];
}

/** `[{key, value, provider}]` grouped by provider as `[{key, value}]` (Restore.php prepareMetadata). */
export function metadataByProvider(value: unknown, skip: readonly string[] = []): Map<string, { key: string; value: string }[]> {
  const out = new Map<string, { key: string; value: string }[]>();
  if (!Array.isArray(value)) return out;
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) continue;
    const { key, value: v, provider } = item as Json;
    if (typeof key !== 'string' || typeof provider !== 'string' || skip.includes(provider)) continue;
    const list = out.get(provider) ?? [];
    list.push({ key, value: v === null || v === undefined ? '' : String(v) });
    out.set(provider, list);
  }
  return out;
}
