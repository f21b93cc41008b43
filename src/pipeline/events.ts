import type { JobRecord } from '../manifests/jobs.js';
import type { TableDescriptor } from '../model.js';
import type { SliceRecord } from '../model.js';
import type { RestoreExtra } from '../targets/target.js';
export type { RestoreExtra };

/**
 * What the pipeline tells the world. The pipeline never prints: a reporter (TTY, plain, JSON,
 * silent) renders these events. Every event is JSON-able.
 */
export type PipelineEvent =
  | { type: 'run:start'; runId: string; source: string; destination: string; tables: number; dryRun: boolean; estimatedBytes?: number }
  /**
   * estimatedBytes: the table's size at the source (a file's size, a relation's, the Storage API's
   * dataSizeBytes); estimatedRows: its row count as the source knows it (exact or estimated); measure: what
   * its progress counts, rows against estimatedRows or readBytes against estimatedBytes (absent: neither is
   * known, so there is no percent).
   */
  | { type: 'table:start'; table: string; estimatedBytes?: number; estimatedRows?: number; measure?: 'rows' | 'bytes' }
  | { type: 'table:progress'; table: string } & ProgressDelta
  | { type: 'table:slice'; table: string; slice: Pick<SliceRecord, 'key' | 'bytes' | 'rows' | 'sha256'> }
  | { type: 'table:done'; table: string; rows: number; rawBytes: number; bytes: number; slices: number; durationMs: number }
  | { type: 'table:error'; table: string; code: string; message: string; hint?: string }
  | { type: 'table:skip'; table: string; reason: string }
  | { type: 'file:written'; key: string; bytes: number }
  | { type: 'warning'; message: string }
  | { type: 'run:plan'; plan: RunPlan }
  | { type: 'run:done'; summary: RunSummary }
  /** totalBytes: the slices' stored size, when the manifest gives every slice's size. */
  | { type: 'merge:start'; slices: number; output: string; totalBytes?: number }
  | { type: 'merge:progress'; slices: number; slicesDone: number; bytes: number; outputBytes: number }
  | { type: 'merge:done'; summary: MergeSummary }
  | { type: 'dataset:start'; exportId: string; layout: string; table: string; destination: string; resumed: boolean }
  | { type: 'dataset:done'; job: JobRecord }
  | { type: 'copy:start'; source: string; destination: string; objects: number; bytes: number }
  | { type: 'copy:progress'; objects: number; objectsDone: number; bytes: number; bytesDone: number; serverSideBytes: number }
  | { type: 'copy:done'; summary: CopySummary }
  | { type: 'restore:start'; source: string; target: string; tables: number; rows: number; bytes: number; dryRun: boolean }
  | { type: 'restore:plan'; plan: RestorePlan }
  | { type: 'restore:done'; summary: RestoreSummary };

/**
 * What a table's pipeline did since its last progress event. readBytes is source-side (the bytes read from the
 * source, in the unit of the table's estimatedBytes: a gzipped file's compressed bytes); rawBytes the
 * uncompressed bytes encoded for the destination (larger than readBytes when a layout re-encodes rows);
 * bytes the compressed bytes written. A progress bar measures readBytes or rows, never the output.
 */
export interface ProgressDelta {
  readBytes?: number;
  rawBytes: number;
  bytes: number;
  rows: number;
}

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

/** What `takeout copy` moved, and how: inside the cloud (server-side) or through this machine. */
export interface CopySummary {
  source: string;
  destination: string;
  /** --dry-run: what would be copied, and how; nothing was written. */
  dryRun: boolean;
  /** Objects written at the destination: slices and layout files, rewritten slice manifests and the takeout manifest included. */
  objects: number;
  bytes: number;
  serverSide: { objects: number; bytes: number };
  /** Read from the source and written by this process (sha256 checked), the rewritten manifests included. */
  throughMachine: { objects: number; bytes: number };
  /** Slice manifests whose entries were rewritten to name the destination. */
  rewrittenManifests: number;
  durationMs: number;
}

export type Emit = (event: PipelineEvent) => void;

/**
 * A table's start with what the source knows of its size, and what its progress measures: rows when the source
 * has a row count (a database's size on disk is not the size of its rows as CSV), else bytes read when the size
 * is of what is read (a file). A row count of 0 is taken as unknown (an unanalysed PostgreSQL table, a DynamoDB
 * count not refreshed yet).
 */
export function tableStart(table: TableDescriptor): PipelineEvent {
  const rows = table.rowsCount !== undefined && table.rowsCount > 0 ? table.rowsCount : undefined;
  const measure = rows !== undefined ? 'rows' : table.dataSizeBytes !== undefined && table.dataSizeIsRead === true ? 'bytes' : undefined;
  return {
    type: 'table:start',
    table: table.id,
    ...(table.dataSizeBytes !== undefined ? { estimatedBytes: table.dataSizeBytes } : {}),
    ...(rows !== undefined ? { estimatedRows: rows } : {}),
    ...(measure ? { measure } : {}),
  };
}

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

/** One table of a restore plan: where it goes, and what the restore does with it. */
export interface RestorePlanTable {
  id: string;
  /** Where it goes in the target: `"in.c-main"."orders"`, or `"in.c-main.orders"` in SQLite. */
  target: string;
  /** create: a new table; fill: --data-only into an existing empty one; skip: --resume found it loaded. */
  /** `replace`: --resume drops what an interrupted restore left of the table and creates it again; `omit`: not restored. */
  action: 'create' | 'fill' | 'skip' | 'replace' | 'omit';
  /** `omit`: why the target does not take the table (a Keboola system or linked bucket). */
  reason?: string;
  rows: number;
  /** Stored (gzipped) bytes of its slices. */
  bytes: number;
  slices: number;
  /** Columns typed from KBC.datatype.basetype metadata; the others are text. */
  typedColumns: number;
}

/** What `takeout restore --dry-run` would do. */
export interface RestorePlan {
  source: string;
  target: string;
  tables: RestorePlanTable[];
  /** Rows and stored bytes to load (skipped tables not counted). */
  rows: number;
  bytes: number;
  configurations: number;
  /** Whether the _takeout record (buckets, tables, configurations, layout files) is written. */
  metadata: boolean;
  /** A Keboola project's triggers, notifications, permanent files and the configurations left out, each named. */
  extras?: RestoreExtra[];
}

/** What `takeout restore` did. */
export interface RestoreSummary {
  source: string;
  target: string;
  dryRun: boolean;
  /** Tables created (or filled) and committed. */
  tables: number;
  /** Tables --resume found already loaded. */
  skipped: number;
  /** Tables the target does not take (a Keboola system or linked bucket). */
  omitted: number;
  rows: number;
  /** Stored (gzipped) bytes read from the takeout. */
  bytes: number;
  /** Configurations kept in the _takeout record. */
  configurations: number;
  metadata: boolean;
  /** What a Keboola project got besides (created) and what was left out with a warning (skip). */
  extras?: RestoreExtra[];
  durationMs: number;
}
