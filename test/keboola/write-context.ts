/**
 * What the write side of the Storage API test server (write-files.ts, write-buckets.ts, write-tables.ts,
 * write-configs.ts) gets from the server: the project it changes, the file storage, ids and async jobs.
 */
import type { IncomingMessage } from 'node:http';
import type { Json } from './http.js';
import type { StoredFile } from './types.js';
import type { FileBackend } from './storage-backends.js';

/** A table's data: the header, then rows of values in header order. */
export interface TableData {
  header: string[];
  rows: string[][];
}

/** The project as the read side serves it; the write side changes these lists in place. */
export interface Project {
  token: Json;
  buckets: Json[];
  tables: Json[];
  components: Json[];
  devBranches: Json[];
  branchMetadata: Json[];
  /** By `<componentId>/<configId>`. */
  configurationMetadata: Record<string, Json[]>;
  triggers: Json[];
  notifications: Json[];
  /** `GET files` items of files uploaded to the project; bytes in `file-data-<id>.txt`. */
  files: Json[];
}

export interface WriteContext {
  project: Project;
  projectId: string;
  creatorToken: { id: string; description: string };
  backend: FileBackend;
  files: Map<number, StoredFile>;
  newFileId(): number;
  /** A new id for a metadata item, a configuration or a row. */
  newId(): number;
  /** Prefix of every object key written. */
  keyPrefix: string;
  /** false: imports check the file's objects and keep no rows (StorageApiOptions.importRows). */
  importRows: boolean;
  /** `http://127.0.0.1:PORT`, for `uri` fields. */
  baseUrl(): string;
  /** When credentials handed out now end (faults.expiredCredentials: already ended). */
  credentialsExpiry(): Date;
  /** Whether upload credentials handed out now are taken by the storage (faults.refusedUploadCredentials counts down). */
  uploadCredentialsValid(): boolean;
  /** The data of a table: written here, else the fixture's CSV. */
  rowsOf(tableId: string): Promise<TableData>;
  setRows(tableId: string, data: TableData): void;
  dropRows(tableId: string): void;
  /** Queues an async job (answered 202); `run` happens when a poll finishes it and gives `results`. */
  startJob(operationName: string, tableId: string | null, params: Json, run: () => Promise<Json | null>): Json;
  /** Versions of configurations and rows written here, newest first, by `c/id` and `c/id/rows/r`. */
  versions: Map<string, Json[]>;
  /** Configuration metadata by `c/id`; the default branch's under `branch`. */
  configMetadata: Map<string, Json[]>;
  /** A component of the stack (`GET v2/storage`), without configurations; undefined when the stack has none such. */
  stackComponent(id: string): Json | undefined;
}

export interface WriteRoute {
  method: string;
  pattern: RegExp;
  endpoint: string;
}

/** Answers a request to one of the module's routes: `[status, body]`. */
export type WriteHandler = (
  ctx: WriteContext,
  endpoint: string,
  arg: (i: number) => string,
  url: URL,
  req: IncomingMessage,
) => Promise<[number, unknown]>;

/** The bucket as tables embed it (no metadata, no linkedBy). */
export function bucketSummary(bucket: Json): Json {
  const { metadata: _m, linkedBy: _l, ...rest } = bucket;
  return rest;
}

/** Upserts `{key, value}` items of one provider into a metadata list (apiary.apib "Bucket Metadata": key + provider). */
export function upsertMetadata(ctx: WriteContext, list: Json[], provider: string, items: unknown, time: string): Json[] {
  if (!Array.isArray(items)) return list;
  for (const item of items as Json[]) {
    const key = String(item.key ?? '');
    const value = String(item.value ?? '');
    const existing = list.find((m) => m.key === key && m.provider === provider);
    if (existing) {
      existing.value = value;
      existing.timestamp = time;
    } else {
      list.push({ id: String(ctx.newId()), key, value, provider, timestamp: time });
    }
  }
  return list;
}
