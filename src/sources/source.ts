import type { GzipSlicesBody, ProjectDescriptor, TableBody, TableDescriptor, TableQuery } from '../model.js';

/**
 * A source of a project: buckets, tables with their data, and component configurations.
 * Required: `project()` and `tables()`; `openTable()` gives one table's body.
 * Sources never print; they throw TakeoutError and let the pipeline report.
 */
export interface Source {
  /** Description with no secrets, e.g. `dir:fixtures/demo-project` or `postgres://user@host/db`. */
  readonly description: string;
  /** A folder source: its absolute path, so a destination inside it (or around it) is refused. */
  readonly localPath?: string;
  /** Buckets, tables (descriptors only) and configurations. */
  project(options?: ProjectOptions): Promise<ProjectDescriptor>;
  /** The body of one table, in the fastest form the source can produce. */
  openTable(table: TableDescriptor, options: OpenTableOptions): Promise<TableBody>;
  /** Optional: a stored file by id (Storage API files): its slices, or one object that starts with a header. */
  openFile?(fileId: string, options: OpenTableOptions): Promise<GzipSlicesBody>;
  /** Optional: learn every table that will be opened before the first is, e.g. to queue server-side exports up front. */
  prepare?(tables: TableDescriptor[], options: OpenTableOptions): Promise<void>;
  close?(): Promise<void>;
}

export interface ProjectOptions {
  signal?: AbortSignal;
}

export interface OpenTableOptions {
  signal?: AbortSignal;
  /** A subset of the table (`takeout table export`); sources without it refuse filters they cannot apply. */
  query?: TableQuery;
}

