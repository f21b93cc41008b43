import type { Store } from '../../stores/store.js';
import type { Source } from '../../sources/source.js';
import type { TableQuery } from '../../model.js';
import type { Emit } from '../events.js';
import type { LeaseTiming } from '../lease.js';

export interface RunOptions {
  source: Source;
  destination: Store;
  structureOnly: boolean;
  include: readonly string[];
  exclude: readonly string[];
  sliceBytes: number;
  sliceRows?: number;
  compressionLevel: number;
  lineEnding: '\n' | '\r\n';
  /** Rewrite CSV input with every value quoted instead of passing its bytes through. */
  requote: boolean;
  /** Tables exported at once. */
  concurrency: number;
  overwrite: boolean;
  /** Go on with the run a journal at the destination records, writing only what is missing. */
  resume?: boolean;
  dryRun: boolean;
  /** Stop everything at the first failed table instead of finishing the others. */
  failFast: boolean;
  /** For the memory bound: bytes per upload part and parts in flight per upload (S3). */
  partBytes: number;
  partConcurrency: number;
  toolVersion: string;
  /** Recorded in the manifest as given (already free of secrets). */
  recordedOptions: Record<string, unknown>;
  /** The command as typed (`run`, `table export`), recorded in the lease. */
  command?: string;
  /** The lease's heartbeat and stale times; the defaults (LEASE_HEARTBEAT_MS, LEASE_STALE_MS) unless a test shortens them. */
  leaseTiming?: Partial<LeaseTiming>;
  /** A subset of each table (`takeout table export`). */
  query?: TableQuery;
  /** Write component configurations (default true; a single-table export leaves them out). */
  configurations?: boolean;
  signal?: AbortSignal;
  emit: Emit;
}
