import type { Readable } from 'node:stream';

/**
 * The shapes every layer shares: a project's descriptors, a table's body, a landed slice.
 * Pure types at the bottom of the layers, so formats, layouts and manifests need not import an adapter.
 */

/** The Storage API's export options, as `takeout table export` takes them. */
export interface TableQuery {
  columns?: string[];
  where?: { column: string; operator: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le'; values: string[] }[];
  changedSince?: Date;
  changedUntil?: Date;
  /** The timestamp column that --changed-since/--changed-until compare (database sources). */
  changedColumn?: string;
  limit?: number;
  orderBy?: { column: string; order: 'asc' | 'desc' }[];
}

export interface ProjectDescriptor {
  /** Project id and name when the source knows them. */
  id?: string | number;
  name?: string;
  buckets: BucketDescriptor[];
  tables: TableDescriptor[];
  components: ComponentDescriptor[];
  /** Extra facts for the manifest (e.g. a database snapshot time). */
  meta?: Record<string, unknown>;
  /**
   * What the source leaves out on purpose, with why: buckets and tables (linked buckets, aliases), and the
   * entries of a project folder that are not tables (by their path in the folder).
   */
  skipped?: { id: string; reason: string }[];
  /** What the user should know about what is taken (a symlink read from outside the folder): one line each. */
  warnings?: string[];
  /**
   * Tables that `run` leaves out (they are in `skipped`) but that can be exported one by one with
   * `takeout table export`: Storage API aliases and tables of linked or external-schema buckets.
   */
  exportableSkipped?: TableDescriptor[];
  /**
   * The rest of a Keboola project that Keboola's backup engine keeps (keboola/php-kbc-project-backup
   * `src/Backup.php`), as the APIs answer it; sources without it write the empty lists that engine writes.
   */
  keboola?: KeboolaProjectExtras;
}

export interface KeboolaProjectExtras {
  /** `GET branch/{default}/metadata`: the default branch's (the project's) metadata. */
  branchMetadata: unknown[];
  /** `GET triggers`: table-change triggers. */
  triggers: unknown[];
  /** The notification service's `GET project-subscriptions`, of the default branch only. */
  notifications: unknown[];
  /** `GET files`: the files kept for good (`maxAgeDays` null), read by id with the source's `openFile`. */
  permanentFiles: PermanentFileDescriptor[];
}

export interface PermanentFileDescriptor {
  id: string | number;
  name: string;
  tags: unknown[];
  sizeBytes?: number;
  /** The bytes, when the source reads them itself (a takeout folder's `files/<id>`) rather than with `openFile`. */
  open?: () => Promise<Readable>;
}

export interface MetadataEntry {
  id?: string;
  key: string;
  value: string;
  provider?: string;
  timestamp?: string;
}

export interface BucketDescriptor {
  /** e.g. `in.c-main` */
  id: string;
  stage: string;
  /** e.g. `c-main` */
  name: string;
  displayName?: string;
  description?: string;
  created?: string;
  metadata?: MetadataEntry[];
  /** Raw API object when the source has one (Keboola): written to buckets.json as it is. */
  raw?: Record<string, unknown>;
}

export interface TableDescriptor {
  /** e.g. `in.c-main.customers` */
  id: string;
  bucketId: string;
  name: string;
  displayName?: string;
  description?: string;
  columns: string[];
  primaryKey: string[];
  created?: string;
  lastChangeDate?: string;
  /** Known before export (catalog, file size); used by --dry-run estimates. */
  rowsCount?: number;
  dataSizeBytes?: number;
  /**
   * dataSizeBytes is the size of what openTable reads (a file's size; a gzipped file's compressed size), so the
   * bytes read measure progress against it. Other sizes (a relation on disk, a warehouse's storage) do not.
   */
  dataSizeIsRead?: boolean;
  metadata?: MetadataEntry[];
  columnMetadata?: Record<string, MetadataEntry[]>;
  /** Raw API object when the source has one (Keboola): written to tables.json as it is. */
  raw?: Record<string, unknown>;
}

export interface ComponentDescriptor {
  id: string;
  type: string;
  name: string;
  /** Everything else of the component definition, passed through to configurations.json. */
  extra?: Record<string, unknown>;
  configurations: ConfigurationDescriptor[];
  /** The component exactly as configurations.json holds it (an existing takeout, the Storage API). */
  raw?: Record<string, unknown>;
}

export interface ConfigurationDescriptor {
  id: string;
  name: string;
  description?: string;
  created?: string;
  version?: number;
  changeDescription?: string;
  isDisabled?: boolean;
  isDeleted?: boolean;
  configuration: Record<string, unknown>;
  state?: Record<string, unknown>;
  rows?: ConfigurationRowDescriptor[];
  rowsSortOrder?: string[];
  versions?: Record<string, unknown>[];
  /** Everything else the source knows, kept as it is. */
  extra?: Record<string, unknown>;
  /** The configuration file exactly as a takeout holds it (with rows, state and _versions). */
  raw?: Record<string, unknown>;
  /** `GET branch/{default}/components/{c}/configs/{id}/metadata`; written beside the configuration when not empty. */
  metadata?: unknown[];
}

export interface ConfigurationRowDescriptor {
  id: string;
  name?: string;
  description?: string;
  isDisabled?: boolean;
  version?: number;
  created?: string;
  changeDescription?: string;
  configuration: Record<string, unknown>;
  state?: Record<string, unknown>;
  versions?: Record<string, unknown>[];
  extra?: Record<string, unknown>;
}

/** A cell is a string, or null for SQL NULL (written as an empty value, as Keboola does). */
export type Row = readonly (string | null)[];

/**
 * The forms a table body can take; the pipeline takes the fastest path for each:
 * - `rows`: values to encode;
 * - `csv`: CSV bytes already encoded (a CSV file, PostgreSQL COPY); re-quoted and validated in one scan, never parsed to rows;
 * - `gzip-slices`: already gzipped, headerless CSV slices, copied as they are.
 */
export type TableBody = RowsBody | CsvBody | GzipSlicesBody;

export interface RowsBody {
  kind: 'rows';
  rows: AsyncIterable<Row>;
}

export interface CsvBody {
  kind: 'csv';
  stream: Readable;
  /** The first record is a header to drop (its names were read into `columns`). */
  hasHeader: boolean;
  /** Where the bytes come from, for error messages (a file path, a query). */
  origin: string;
  /**
   * Bytes read at the source so far, when they are not the stream's own (a gzipped file: its compressed
   * bytes, the unit of the table's dataSizeBytes). Progress counts these instead of the stream's bytes.
   */
  sourceBytes?: () => number;
}

export interface GzipSlicesBody {
  kind: 'gzip-slices';
  slices: GzipSlice[];
  /** The data starts with its own header row (a non-sliced Storage API file). */
  header?: boolean;
}

export interface GzipSlice {
  /** Where it comes from, for error messages. */
  origin: string;
  /** Size when known, to check it on the way. */
  bytes?: number;
  rows?: number;
  sha256?: string;
  open(): Promise<Readable>;
}

/** One finished slice, as it goes into the takeout manifest. */
export interface SliceRecord {
  key: string;
  index: number;
  /** Stored (compressed) bytes. */
  bytes: number;
  /** Bytes before compression. */
  rawBytes: number;
  rows: number;
  sha256: string;
  /** base64 MD5 of the stored bytes, when asked for (DynamoDB-style manifests use it). */
  md5?: string;
  etag?: string;
  /** Landed in an interrupted run and found identical: not written again. */
  reused?: boolean;
}

/** What a resumed run knows of a slice an interrupted run landed (what the journal records of it). */
export type LandedSlice = Pick<SliceRecord, 'key' | 'index' | 'bytes' | 'rawBytes' | 'rows' | 'sha256' | 'etag'>;
