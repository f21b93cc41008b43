import type { Readable } from 'node:stream';

/**
 * A restore target: where `takeout restore` brings a takeout back (a database today, a Keboola project later).
 * The layer sits beside `sources/`: the pipeline (`pipeline/restore.ts`) reads and checks the takeout, a target
 * only creates and fills what it is given. The interface is small on purpose, as `stores/store.ts`'s:
 *
 * - `inspect` says what the target already holds of a plan (tables, rows, the `_takeout` record), so the
 *   pipeline refuses a conflict before anything is written, and `--resume` skips what a crashed restore
 *   fully loaded (a table loaded inside one transaction exists whole or not at all);
 * - `load` opens one table's load: created (unless `--data-only`) and filled slice by slice inside one
 *   transaction, committed only after every slice was read whole and matched the manifest (size, sha256,
 *   rows), rolled back otherwise — a corrupt takeout is never half-restored;
 * - `writeMetadata` keeps what is not table data (buckets, tables and column metadata, configurations, the
 *   layout files as they are) in the target's `_takeout` tables, last, in one transaction.
 *
 * Optional capabilities go beside it with type guards (as stores have `Preflight`): a target that loads
 * several tables at once (`ParallelLoads`), one that makes buckets and configurations first
 * (`PreparesStructure`); sharded runs restore a subset of a takeout's tables each (`--include`), all without
 * widening this interface.
 */

/** Keboola's base types (`KBC.datatype.basetype` column metadata; developers.keboola.com "Data types"). */
export const BASE_TYPES = ['STRING', 'INTEGER', 'NUMERIC', 'FLOAT', 'BOOLEAN', 'DATE', 'TIMESTAMP'] as const;
export type BaseType = (typeof BASE_TYPES)[number];

export interface RestoreColumn {
  name: string;
  /** From `KBC.datatype.basetype`; STRING (text) when the takeout gives none. */
  type: BaseType;
  /** `KBC.datatype.length` for NUMERIC (`precision,scale`), when given. */
  length?: string;
}

/** One Keboola table to create and fill. */
export interface RestoreTable {
  id: string;
  bucketId: string;
  name: string;
  columns: RestoreColumn[];
  primaryKey: string[];
  /** What the takeout manifest says the table holds. */
  rows: number;
}

/**
 * What a target holds of a table: absent, or present with its row count. `partial`: left by an interrupted
 * restore of the same takeout, which the target can drop and create again with --resume (a Keboola table is
 * created by one job and filled by another; a database table is loaded in one transaction, never partial).
 * `omitted`: why the target does not take the table at all (a Keboola system or linked bucket).
 */
export type TableState = { exists: false; omitted?: string } | { exists: true; rows: number; partial?: boolean };

/** What `inspect` is asked for: the takeout's run and whether an interrupted restore of it goes on. */
export interface InspectContext {
  runId: string;
  resume: boolean;
  /** buckets.json of the takeout. */
  buckets: readonly Record<string, unknown>[];
  /** --data-only: the tables exist (a --structure-only restore made them) and are filled. */
  dataOnly: boolean;
}

/** The `_takeout` record a finished restore leaves: which takeout it came from. */
export interface RestoreRecord {
  runId: string;
}

/** What is not table data: kept in the target so that nothing of the takeout is lost. */
export interface TakeoutMetadata {
  /** The takeout's run id (its manifest's `runId`) and where it was read from. */
  runId: string;
  source: string;
  restoredAt: string;
  buckets: Record<string, unknown>[];
  /** tables.json entries of the restored tables, with where each went in the target. */
  tables: { raw: Record<string, unknown>; target: string }[];
  configurations: { componentId: string; configurationId: string; body: unknown }[];
  /** Every layout file as it is in the takeout (buckets.json, tables.json, configurations…, the manifest); not `files/<id>`. */
  files: { key: string; text: string }[];
  /**
   * A permanent file's bytes (`files/<id>`, any size, any bytes) streamed from the takeout, checked on the way
   * against the size and sha256 its manifest lists (the stream fails at its end otherwise).
   */
  openListed?: (key: string) => Promise<Readable>;
}

/**
 * What a target restores of a project besides its tables (a Keboola project: triggers, notification subscriptions,
 * permanent files, and the configurations it leaves out), each named, for the plan and the summary.
 */
export interface RestoreExtra {
  kind: 'configuration' | 'trigger' | 'notification' | 'permanent file';
  name: string;
  action: 'create' | 'skip';
  /** Why it is skipped (also said in a warning when the restore runs). */
  reason?: string;
}

/** A target that restores a project's extras: what it would do (the plan, --dry-run included) and what it did. */
export interface RestoresExtras {
  planExtras(metadata: TakeoutMetadata): Promise<RestoreExtra[]>;
  restoredExtras(): RestoreExtra[];
}

export function restoresExtras<T extends Target>(target: T): target is T & RestoresExtras {
  return typeof (target as Partial<RestoresExtras>).planExtras === 'function';
}

/** One table's load, inside one transaction. */
export interface TableLoad {
  /**
   * Loads one gzipped, headerless CSV slice streamed from the takeout; resolves with the records loaded.
   * A gzip or CSV error rejects; the caller rolls back.
   */
  slice(body: Readable, origin: string): Promise<number>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

export interface Target {
  /** For messages: `sqlite:/path/db.sqlite`, `postgres://host:5432/db` (no password), `duckdb:/path/db.duckdb`. */
  readonly description: string;
  /** Where a table goes, for messages and the `_takeout` record: `"in.c-main"."orders"`. */
  locate(table: Pick<RestoreTable, 'id' | 'bucketId' | 'name'>): string;
  /** What the target holds of these tables, in order, and whether it holds a `_takeout` record. */
  inspect(tables: readonly RestoreTable[], context: InspectContext): Promise<{ tables: TableState[]; record?: RestoreRecord }>;
  /**
   * Starts a table's load: `create` makes the table (and its schema), else it must exist and is filled;
   * `replace` (with --resume, a table `inspect` called partial) drops what an interrupted restore left first.
   */
  load(table: RestoreTable, options: { create: boolean; data: boolean; replace?: boolean }): Promise<TableLoad>;
  writeMetadata(metadata: TakeoutMetadata): Promise<void>;
  close(): Promise<void>;
}

/**
 * A target that must create what tables live in before they load (a Keboola project: buckets, then
 * configurations, in the order of Keboola's restore engine). Called after the plan, before the first table.
 */
export interface PreparesStructure {
  prepare(metadata: TakeoutMetadata): Promise<void>;
}

export function preparesStructure<T extends Target>(target: T): target is T & PreparesStructure {
  return typeof (target as Partial<PreparesStructure>).prepare === 'function';
}

/**
 * A target that loads several tables at once: a Keboola project, whose table jobs run side by side on the
 * stack (the restore engine runs 5: php-kbc-project-restore Restore.php restoreTables). A database file
 * takes one writer, and PostgreSQL's COPY is bound by the server: those load one table at a time.
 */
export interface ParallelLoads {
  readonly loadsAtOnce: number;
}

export function loadsAtOnce(target: Target): number {
  const n = (target as Partial<ParallelLoads>).loadsAtOnce;
  return typeof n === 'number' && n >= 1 ? n : 1;
}

/** Keboola CSV has no NULL: an empty value is '' in a text column, NULL in a typed one (it cannot be '' there). */
export function cellValue(value: string | null, column: RestoreColumn): string | null {
  if (column.type === 'STRING') return value ?? '';
  return value === null || value === '' ? null : value;
}

function metadataList(value: unknown): { key: string; value: string }[] {
  if (!Array.isArray(value)) return [];
  return (value as unknown[]).filter((m): m is { key: string; value: string } => typeof m === 'object' && m !== null && typeof (m as { key?: unknown }).key === 'string' && typeof (m as { value?: unknown }).value === 'string');
}

/**
 * A table's columns with their types from tables.json `columnMetadata` (`{column: [{key, value, provider}]}`):
 * `KBC.datatype.basetype` when it is one of Keboola's base types, else STRING.
 */
export function restoreColumns(columns: readonly string[], columnMetadata: unknown): RestoreColumn[] {
  const byColumn = typeof columnMetadata === 'object' && columnMetadata !== null && !Array.isArray(columnMetadata) ? (columnMetadata as Record<string, unknown>) : {};
  return columns.map((name) => {
    const meta = metadataList(byColumn[name]);
    const base = meta.find((m) => m.key === 'KBC.datatype.basetype')?.value.toUpperCase();
    const type: BaseType = (BASE_TYPES as readonly string[]).includes(base ?? '') ? (base as BaseType) : 'STRING';
    const length = meta.find((m) => m.key === 'KBC.datatype.length')?.value;
    return { name, type, ...(type === 'NUMERIC' && length !== undefined && /^\d+(,\d+)?$/.test(length) ? { length } : {}) };
  });
}

/** A double-quoted SQL identifier (SQLite, PostgreSQL and DuckDB all take `""` for a quote inside). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
