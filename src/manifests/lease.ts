import type { Store } from '../stores/store.js';
import { JOBS_DIR } from './jobs.js';
import { readManifestText } from './read.js';

/**
 * The lease: which run writes to a destination right now. A run creates it (create-only) before anything
 * else and renews it with a heartbeat; a second run finds it live and is refused. It lives at the
 * destination's root, beside the journal, under a name no table can have (table data lives under
 * `<stage>/<bucket>/<table>.`), and never appears in a manifest.
 *
 * Dataset exports each have their own, `takeout-exports/<exportId>.lease.json`: two exports to one prefix
 * are separate jobs with separate files (as DynamoDB allows concurrent exports to one S3 prefix), so they
 * may run at once; the same export twice may not.
 */
export const LEASE_FILE = 'takeout-lease.json';
export const LEASE_VERSION = 1;

export const exportLeaseKey = (exportId: string): string => `${JOBS_DIR}/${exportId}.lease.json`;
const EXPORT_LEASE = /^\d{14}-[0-9a-f]{8}\.lease\.json$/;

/** A lease file of this tool: the root one, or a dataset export's. `verify` and the listings leave them out. */
export function isLeaseKey(key: string): boolean {
  if (key === LEASE_FILE) return true;
  return key.startsWith(`${JOBS_DIR}/`) && EXPORT_LEASE.test(key.slice(JOBS_DIR.length + 1));
}

export interface LeaseRecord {
  formatVersion: typeof LEASE_VERSION;
  kind: 'takeout-lease';
  runId: string;
  /** `run`, `table export`, `dataset export`, `cleanup`. */
  command: string;
  host: string;
  pid: number;
  /** Linux: the holder's pid namespace (`pid:[4026531836]`), so that a pid is only looked up where it means the same process. */
  pidNamespace?: string;
  user: string;
  startedAt: string;
  /** Renewed every `heartbeatMs` while the run lives. */
  heartbeatAt: string;
  heartbeatMs: number;
  /** No heartbeat for this long and the holder is taken for dead (its own value, so every reader agrees). */
  staleAfterMs: number;
  tool: { name: 'takeout'; version: string };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is string => typeof v === 'string' && Number.isFinite(Date.parse(v));
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** A lease as read, or undefined when the text is not one (a reader treats that as stale: nobody renews it). */
export function parseLease(text: string): LeaseRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || value.kind !== 'takeout-lease' || value.formatVersion !== LEASE_VERSION) return undefined;
  if (typeof value.runId !== 'string' || typeof value.command !== 'string' || typeof value.host !== 'string' || typeof value.user !== 'string') return undefined;
  if (value.pidNamespace !== undefined && typeof value.pidNamespace !== 'string') return undefined;
  if (!isPositive(value.pid) || !isTime(value.startedAt) || !isTime(value.heartbeatAt) || !isPositive(value.heartbeatMs) || !isPositive(value.staleAfterMs)) return undefined;
  return value as unknown as LeaseRecord;
}

export type LeaseRead = { state: 'absent' } | { state: 'unreadable'; key: string } | { state: 'held'; key: string; lease: LeaseRecord };

export async function readLease(destination: Pick<Store, 'head' | 'get'>, key = LEASE_FILE): Promise<LeaseRead> {
  if (!(await destination.head(key))) return { state: 'absent' };
  let text: string;
  try {
    text = await readManifestText(await destination.get(key), key);
  } catch (error) {
    // Removed between the HEAD and the GET: released.
    if ((error as { code?: string }).code === 'NOT_FOUND') return { state: 'absent' };
    throw error;
  }
  const lease = parseLease(text);
  return lease ? { state: 'held', key, lease } : { state: 'unreadable', key };
}
