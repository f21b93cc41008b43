import type { JobRecord } from '../manifests/jobs.js';
import type { SliceRecord } from './slicer.js';

/**
 * What the pipeline tells the world. The pipeline never prints: a reporter (TTY, plain, JSON,
 * silent) renders these events. Every event is JSON-able.
 */
export type PipelineEvent =
  | { type: 'run:start'; runId: string; source: string; destination: string; tables: number; dryRun: boolean }
  | { type: 'table:start'; table: string; estimatedBytes?: number }
  | { type: 'table:progress'; table: string; rawBytes: number; bytes: number; rows: number }
  | { type: 'table:slice'; table: string; slice: Pick<SliceRecord, 'key' | 'bytes' | 'rows' | 'sha256'> }
  | { type: 'table:done'; table: string; rows: number; rawBytes: number; bytes: number; slices: number; durationMs: number }
  | { type: 'table:error'; table: string; code: string; message: string; hint?: string }
  | { type: 'table:skip'; table: string; reason: string }
  | { type: 'file:written'; key: string; bytes: number }
  | { type: 'warning'; message: string }
  | { type: 'run:plan'; plan: RunPlan }
  | { type: 'run:done'; summary: RunSummary }
  | { type: 'merge:start'; slices: number; output: string }
  | { type: 'merge:progress'; slices: number; slicesDone: number; bytes: number; outputBytes: number }
  | { type: 'merge:done'; summary: MergeSummary }
  | { type: 'dataset:start'; exportId: string; layout: string; table: string; destination: string; resumed: boolean }
  | { type: 'dataset:done'; job: JobRecord };

export interface MergeSummary {
  output: string;
  slices: number;
  skipped: number;
  /** Bytes fetched, as stored. */
  bytes: number;
  outputBytes: number;
  durationMs: number;
  /** Output MB per second. */
  throughputMBps: number;
}

export type Emit = (event: PipelineEvent) => void;

export interface RunPlan {
  source: string;
  destination: string;
  tables: { id: string; estimatedBytes: number | null; columns: number; data: boolean; keyPattern: string }[];
  skipped: { id: string; reason: string }[];
  configurations: number;
  estimatedBytes: number;
  /** Upper bound on buffered data in bytes, from concurrency × (blocks in flight + upload parts). */
  memoryBoundBytes: number;
  memoryBound: string;
  files: string[];
  /** What the dry run checked at the source and destination (the real run's preflight, read-only). */
  checks?: string[];
}

export interface RunSummary {
  runId: string;
  status: 'complete' | 'partial' | 'failed';
  source: string;
  destination: string;
  tables: number;
  tablesFailed: number;
  tablesSkipped: number;
  rows: number;
  rawBytes: number;
  bytes: number;
  slices: number;
  durationMs: number;
  /** Raw (uncompressed) MB per second. */
  throughputMBps: number;
  manifest: string;
  failures: { table: string; code: string; message: string }[];
  /** A resumed run: slices (and their stored bytes) the interrupted run had landed, kept as they were. */
  reused?: { slices: number; bytes: number };
  /** What to do next, when there is something to do (a partial run). */
  hint?: string;
}
