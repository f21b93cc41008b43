/** The public types of the Storage API test server (server.ts). */
import type { Provider } from './storage-backends.js';
import type { Project, TableData } from './write-context.js';

export interface RateLimitFault {
  /** How many of the next matching requests get 429. Decremented as they are answered. */
  count: number;
  /** `Retry-After` header in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Only requests to this endpoint key (e.g. `"GET jobs/{id}"`); default every endpoint. */
  endpoint?: string;
}

export interface MaintenanceFault {
  /** How many of the next matching requests get 503. Decremented as they are answered. */
  count: number;
  /** `Retry-After` header in seconds (default 1). */
  retryAfterSeconds?: number;
  estimatedEndTime?: string;
  reason?: string;
  /** Only requests to this endpoint key; default every endpoint. */
  endpoint?: string;
}

export interface StorageApiFaults {
  rateLimit?: RateLimitFault;
  maintenance?: MaintenanceFault;
  /** Table IDs whose export jobs end in `status: "error"`. */
  failingTables?: string[];
  /**
   * Table IDs whose write jobs (tableCreate, tableDefinitionCreate, tableImport) end in `status: "error"`
   * without changing anything (default code `storage.tableImport.failed`, or `jobError`).
   */
  failingWrites?: string[];
  /** The `error` of failing jobs (default code `storage.tableExport.failed`). */
  jobError?: { code: string; message: string };
  /** Every request is answered 401 as if the token were wrong. */
  badToken?: boolean;
  /** Endpoint keys (e.g. `"GET triggers"`) answered 403, as for a token without the right to read them. */
  forbidden?: string[];
  /** `GET files/{id}` returns credentials that have already expired (Azurite and the GCS server refuse them too). */
  expiredCredentials?: boolean;
  /**
   * The next N upload credentials handed out (files/prepare, files/{id}/refresh) are refused by the file storage
   * although their expiration is ahead, as a revoked key or a clock ahead makes them (aws: behind `guardS3` only).
   */
  refusedUploadCredentials?: number;
}

export interface StorageApiOptions {
  /** s3rver endpoint, e.g. `inject('s3Endpoint')`. */
  s3Endpoint: string;
  /** The "project's S3" bucket exports are written into (use `takeout-other` in tests); the GCS bucket for gcp. */
  bucket: string;
  /** The stack's cloud (default aws). */
  provider?: Provider;
  /** Azurite's connection string with the account key (`inject('azureConnectionString')`), for provider azure. */
  azureConnectionString?: string;
  /** The one valid `X-StorageApi-Token`. */
  token: string;
  /** false: the service index lists no notification service (default true). */
  notificationService?: boolean;
  /** Directory of the fixture project (fixtures/keboola-project). */
  fixtureDir: string;
  faults?: StorageApiFaults;
  /** Uncompressed bytes per slice before a new slice is started (default 20_000). */
  sliceBytes?: number;
  /** false: exports are one gzipped CSV object with a header, `isSliced: false` (default true). */
  sliced?: boolean;
  /** Polls of `GET jobs/{id}` answered `waiting`, then `processing`, before `success`/`error` (default 0 and 1). */
  jobPolls?: { waiting?: number; processing?: number };
  /** Lifetime of file credentials (default 12 h). */
  credentialsTtlMs?: number;
  /**
   * aws: the file storage is reached through a proxy in front of s3rver that takes only the session tokens
   * handed out, until they expire, and uploads only with the SSE header files/prepare asked for (s3-guard.ts);
   * `storageEnv` then points TAKEOUT_KEBOOLA_S3_ENDPOINT at it.
   */
  guardS3?: boolean;
  /**
   * false: table import jobs check only that each object of the file is there and sum its bytes into the file's
   * `sizeBytes`, keeping no rows (benchmarks of gigabytes: otherwise the whole CSV is parsed in memory). Default true.
   */
  importRows?: boolean;
  /** Reuse the file of an identical earlier export with `cacheHit: true` (default true, like Keboola). */
  cache?: boolean;
  /** Prefix of every object key written (default `exp-15/<random>/`), so servers never collide. */
  keyPrefix?: string;
  /** Start with no buckets, tables or configurations (a project to restore into); token and branches stay. */
  emptyProject?: boolean;
  /**
   * Component ids the stack has (`GET v2/storage` lists them; configurations of others are refused);
   * default the fixture's components, also with `emptyProject`.
   */
  stackComponents?: string[];
}

export interface ExportParams {
  gzip?: boolean;
  columns?: string[] | string;
  whereFilters?: Array<{ column: string; operator?: string; values: string[]; dataType?: string }>;
  changedSince?: string | number;
  changedUntil?: string | number;
  limit?: number;
  format?: string;
  fileType?: string;
  [key: string]: unknown;
}

/**
 * An export job. Write jobs (tableCreate, tableImport, tableDefinitionCreate, bucketDrop) share the job list
 * and `GET jobs/{id}`; their `tableId` is null until the table exists, `operationParams` are the request's
 * and `results` the table (creates) or `{importedColumns, totalRowsCount, …}` (imports).
 */
export interface StorageJob {
  id: number;
  status: 'waiting' | 'processing' | 'success' | 'error';
  url: string;
  tableId: string;
  operationName: 'tableExport';
  operationParams: { export: ExportParams; queue: string };
  createdTime: string;
  startTime: string | null;
  endTime: string | null;
  runId: string | null;
  results: { file: { id: number }; cacheHit: boolean } | null;
  creatorToken: { id: string; description: string };
  metrics: Record<string, unknown>;
  error?: { code: string; message: string; exceptionId: string };
}

export interface StoredFile {
  id: number;
  created: string;
  name: string;
  /** Key of the sliced file: the manifest is `<key>manifest`, slices `<key>_0_0_N.csv.gz`. */
  key: string;
  sliced: boolean;
  /** Slice keys in manifest order (sliced), or `[key]` (non-sliced). */
  objectKeys: string[];
  sizeBytes: number;
  /** Data rows written (after filters/limit), or read from an upload. */
  rows: number;
  /** The exported table; '' for a client's upload. */
  tableId: string;
  /** Tags given to files/prepare (an export's are `table-export`). */
  tags?: string[];
  isPermanent?: boolean;
  /** Prepared by files/prepare and uploaded by the client. */
  uploaded?: boolean;
}

export interface StorageApiState {
  /** Mutable: change faults between requests. */
  faults: StorageApiFaults;
  /** Requests per endpoint key, e.g. `state.requests['GET jobs/{id}']`. Faulted requests count too. */
  requests: Record<string, number>;
  /** Every request in order. */
  log: Array<{ method: string; endpoint: string; path: string; status: number }>;
  jobs: Map<number, StorageJob>;
  files: Map<number, StoredFile>;
  /** Polls seen per job id. */
  jobPolls: Map<number, number>;
  /** Polls a job answers `waiting`, then `processing`, before it runs (options.jobPolls; a test may change them). */
  jobPollsNeeded: { waiting: number; processing: number };
  /** The project as written to: buckets, tables, components (with configurations) served by the read side. */
  project: Project;
  /** Table data written by tables-async / import-async, by table id. */
  tableData: Map<string, TableData>;
}

export interface StorageApiServer {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:PORT`; the API lives under `/v2/storage/`. */
  url: string;
  provider: Provider;
  /** What a CLI reading the file storage needs in its environment (STORAGE_EMULATOR_HOST for gcp). */
  storageEnv: Record<string, string>;
  /** A sliced file's manifest entry for an object key, as this stack writes it. */
  entryUrl(key: string): string;
  /** Writes (or replaces) an object in the file storage, e.g. a doctored manifest. */
  putObject(key: string, body: Buffer | string, contentType: string): Promise<void>;
  /** Every credential secret handed out in file details so far: none may ever be printed. */
  secretsHandedOut(): string[];
  /** aws with `guardS3`: every write to the file storage, with its SSE header; else empty. */
  fileStorageWrites(): Array<{ operation: string; key: string; sse: string | undefined }>;
  state: StorageApiState;
  stop(): Promise<void>;
}
