import type { Readable } from 'node:stream';
import type { AwsConnectionOptions } from '../aws/client.js';
import type { NetworkOptions } from './network.js';

/**
 * Where a takeout's files go and where they are read back from (verify, files download, resume, the Keboola
 * source): a local folder or an S3 prefix. Every store reads, writes, lists and deletes; what only some can
 * do is a named capability below (as rclone's optional interfaces, rclone.org/overview/#optional-features,
 * and unstorage's driver `flags`), asked for with its type guard. Keys are always relative, '/'-separated
 * and already validated by `assertSafeKey`; the store adds its own root/prefix.
 */
export interface Store {
  /** Human description with no secrets, e.g. `s3://bucket/prefix/` or `/abs/path/`. */
  readonly description: string;
  /** The URL form used in Redshift manifests (`s3://bucket/prefix/key`), or undefined for local folders. */
  urlFor(key: string): string | undefined;

  /**
   * Open a writer for one object. Nothing is visible under `key` until `finish()` resolves;
   * `abort()` (or any failure) leaves nothing behind: local temp files are removed, multipart uploads aborted.
   */
  writer(key: string, options?: WriteOptions): Promise<ObjectWriter>;
  /** Write a small object whole (JSON files, manifests). Same atomicity as `writer`. */
  put(key: string, body: Buffer | string, options?: WriteOptions): Promise<WrittenObject>;

  /** Read an object, or a byte range of it (`end` inclusive, as in HTTP). Throws NOT_FOUND when absent. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** Size of an object, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix` (relative to the store root), in key order. */
  list(prefix?: string): AsyncIterable<ObjectInfo>;
  /** Remove objects; missing ones are not an error. */
  delete(keys: readonly string[]): Promise<void>;

  /** Release sockets and handles. */
  close?(): Promise<void>;
}

/**
 * Capability: a check that the store can be reached and written, before any data moves. Throws a TakeoutError.
 * `readOnly` (a dry run): the same checks with nothing created, not even the destination folder.
 */
export interface Preflight {
  preflight(options?: { readOnly?: boolean }): Promise<void>;
}

/**
 * Capability: what crashed runs left behind (a SIGKILL sends no abort), found and removed: incomplete
 * multipart uploads under an S3 prefix, blobs with only uncommitted blocks in Azure, temp files in a local folder.
 */
export interface CleanableLeftovers {
  /** Only items started before `now - olderThanMs`. */
  leftovers(olderThanMs: number): AsyncIterable<Leftover>;
  /** Abort the multipart upload or remove the temp file. Gone already is not an error. */
  removeLeftover(item: Leftover): Promise<void>;
}

/** Capability: a folder on this machine's file systems. */
export interface LocalFolder {
  /** The absolute path of the root (it may not exist yet), to tell overlap with a source folder. */
  readonly localPath: string;
  /** Bytes free for new files (the file system's statfs), or undefined when unknown. Creates nothing. */
  freeBytes(): Promise<number | undefined>;
  /** Whether names that differ only in case are the same file (macOS and Windows by default). */
  caseInsensitive(): Promise<boolean>;
}

/**
 * Capability: copy an object of another store into this one with no byte passing through this machine: S3
 * CopyObject (UploadPartCopy above 5 GiB), Azure Copy Blob within one account, GCS rewrite, and for a local
 * folder a kernel file copy (copy_file_range or a clone) into a temp file that is renamed like any write.
 * It applies only where one principal reaches both: the same cloud, endpoint or account, and credentials.
 */
export interface ServerSideCopy {
  /** Whether `source` can be copied from server-side (no request is made): otherwise stream it (get → writer). */
  canCopyFrom(source: Store): boolean;
  /**
   * `fromKey` of `source` to `toKey` here, create-only or replacing as `write`; nothing is visible under
   * `toKey` until the copy is complete. The copied size is checked against the source's (INTEGRITY when it
   * differs). Throws USAGE when `canCopyFrom(source)` is false, NOT_FOUND when the source object is absent.
   */
  copyFrom(source: Store, fromKey: string, toKey: string, options?: CopyOptions): Promise<WrittenObject>;
}

export interface CopyOptions {
  /** Create-only, as `WriteOptions.ifNoneMatch`: EXISTS when `toKey` exists. */
  ifNoneMatch?: boolean;
  /** The source object's size when the caller knows it (a manifest); otherwise it is read from the source. */
  size?: number;
  signal?: AbortSignal;
}

/** Whether the store checks its reach before a run (both built-in stores do; a test double may not). */
export function canPreflight<S extends Store>(store: S): store is S & Preflight {
  return typeof (store as Partial<Preflight>).preflight === 'function';
}

export function canCleanLeftovers<S extends Store>(store: S): store is S & CleanableLeftovers {
  const candidate = store as Partial<CleanableLeftovers>;
  return typeof candidate.leftovers === 'function' && typeof candidate.removeLeftover === 'function';
}

/**
 * Where a key of `store` is, for messages: its URL when it has one, else the key joined to the description
 * before any ` at ENDPOINT` (`azure://c/p/x.json at http://127.0.0.1:10000/devstoreaccount1`, not `…/x.json`
 * after the endpoint).
 */
export function whereIs(store: Pick<Store, 'description'> & Partial<Pick<Store, 'urlFor'>>, key: string): string {
  const url = store.urlFor?.(key);
  if (url !== undefined) return url;
  const at = store.description.indexOf(' at ');
  const [base, endpoint] = at === -1 ? [store.description, ''] : [store.description.slice(0, at), store.description.slice(at)];
  return `${base.replace(/\/?$/, '/')}${key}${endpoint}`;
}

/** Whether the store can copy objects of (some) other stores server-side; ask `canCopyFrom` for a given source. */
export function canCopyServerSide<S extends Store>(store: S): store is S & ServerSideCopy {
  const candidate = store as Partial<ServerSideCopy>;
  return typeof candidate.canCopyFrom === 'function' && typeof candidate.copyFrom === 'function';
}

export function isLocalFolder<S extends Store>(store: S): store is S & LocalFolder {
  return typeof (store as Partial<LocalFolder>).localPath === 'string';
}

/** Something a crashed run left behind; `key` is relative to the destination root. */
export interface Leftover {
  key: string;
  kind: 'multipart-upload' | 'temp-file';
  /** When the upload was initiated, or the temp file last modified. */
  started?: Date;
  /** The multipart upload id. */
  id?: string;
}

export interface WriteOptions {
  contentType?: string;
  /** Total size when known up front (lets S3 avoid multipart for small objects). */
  contentLength?: number;
  /**
   * Conditional create (a create-only write): fail with EXISTS if the key already exists, instead of
   * replacing it. Every store takes it; the check is made when the object is committed, atomically where the
   * store allows it (local: link(2); S3: `If-None-Match: *`, named after the HTTP header, RFC 9110 §13.1.2).
   * Some S3-compatible stores ignore the condition (s3rver) or answer 501 to it (then it is dropped): pair it
   * with a HEAD before the run.
   */
  ifNoneMatch?: boolean;
  signal?: AbortSignal;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  etag?: string;
  lastModified?: Date;
}

export interface WrittenObject {
  key: string;
  size: number;
  etag?: string;
}

export interface ObjectWriter {
  /** Resolves when the bytes are accepted (back-pressure): never call again before it resolves. */
  write(chunk: Buffer): Promise<void>;
  /** Optional: write at a byte position (local files), so parts of known size can be filled in parallel. */
  writeAt?(chunk: Buffer, position: number): Promise<void>;
  /** Commit the object. */
  finish(): Promise<WrittenObject>;
  /** Discard everything written so far. Safe to call more than once and after failures. */
  abort(): Promise<void>;
}

/**
 * Options every destination factory understands; S3-specific ones are ignored by the local folder.
 * `throttle` limits what it writes and reads, `onRequest` hears each S3 request.
 */
export interface StoreOptions extends NetworkOptions {
  /** Local: file mode for new files (default 0o600). */
  fileMode?: number;
  /** Local: mode for new folders (default 0o700). */
  dirMode?: number;
  s3?: S3Options;
  /** Azure Blob Storage; block size and blocks in flight come from `s3.partSize` and `s3.partConcurrency`. */
  azure?: AzureOptions;
  gcs?: GcsOptions;
}

export interface GcsOptions {
  /** Per attempt, from sending a request (one resumable chunk at most) to its answer (default 120 s). */
  requestTimeoutMs?: number;
}

export interface AzureOptions {
  /** The storage account when no connection string names it (`--azure-account`; else AZURE_STORAGE_ACCOUNT). */
  account?: string;
  /** Where AZURE_STORAGE_* are read (default: process.env); tests pass their own. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Per try, from the first byte sent to the response headers (default 120 s). */
  requestTimeoutMs?: number;
}

export interface S3Options extends AwsConnectionOptions {
  /** Server-side encryption: AES256 or aws:kms. */
  sse?: 'AES256' | 'aws:kms';
  sseKmsKeyId?: string;
  expectedBucketOwner?: string;
  /** Multipart part size in bytes (default 8 MiB). */
  partSize?: number;
  /** Parts of one upload in flight at once (default 4). */
  partConcurrency?: number;
  /** Force path-style addressing even on AWS (always on with a custom endpoint). */
  forcePathStyle?: boolean;
  /**
   * false: no endpoint from AWS_ENDPOINT_URL(_S3) or the profile's endpoint_url (Keboola's file storage
   * is AWS's own S3, whatever the user's profile points at). Default: honoured, as the aws CLI does.
   */
  configuredEndpoint?: boolean;
}
