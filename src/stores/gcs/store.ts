/**
 * A Google Cloud Storage prefix (`gs://bucket/prefix`) as a store, through @google-cloud/storage's JSON API.
 *
 * Loaded by the registry with a dynamic import, so the CLI pays for the SDK only when a gs:// store is used.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Bucket, File, GetFilesOptions, Storage } from '@google-cloud/storage';
import { errnoOf, isNetworkErrno, TakeoutError } from '../../errors.js';
import type { ByteRange, CopyOptions, ObjectInfo, ObjectWriter, Preflight, ServerSideCopy, Store, StoreOptions, WriteOptions, WrittenObject } from '../store.js';
import { assertSafeKey, assertSafePrefix, keyProblem } from '../keys.js';
import { assertCopiedSize, copyRefused, sourceObject } from '../copy.js';
import { checkRange, continuedDownload, putBytes, withMappedErrors } from '../streams.js';
import { throttledStore } from '../throttled.js';
import { buildGcsClient, emulatorHost, logGcsRequests, REQUEST_TIMEOUT_MS } from './client.js';
import { isNotFound, mapGcsError } from './errors.js';
import { parseGcsUrl } from './url.js';
import { CHUNK_GRANULE, DEFAULT_CHUNK_SIZE, GcsWriter } from './writer.js';

/** objects.list answers at most 1000 items per page (https://cloud.google.com/storage/docs/json_api/v1/objects/list). */
const MAX_LIST_PAGE = 1000;
/** Deletes in flight at once: one request per object (the JSON API's batch endpoint is not used). */
const DELETE_CONCURRENCY = 8;

export interface GcsStoreOptions extends StoreOptions {
  /** Bytes per resumable chunk (default 8 MiB, a multiple of 256 KiB); tests set it low to exercise chunking. */
  chunkSize?: number;
  /** Objects per list page (default and maximum 1000); tests set it low to exercise paging. */
  listPageSize?: number;
  /**
   * A bearer token for this store only, instead of GOOGLE_OAUTH_ACCESS_TOKEN or the application default
   * credentials: the token the Storage API hands out with a file on a GCP stack (never put in process.env).
   */
  accessToken?: string;
}

/** What a GCS prefix can do besides read, write, list and delete. */
export type GcsPrefixStore = Store & Preflight & ServerSideCopy;

interface ObjectMetadata {
  size?: string | number;
  etag?: string;
  md5Hash?: string;
  updated?: string;
  name?: string;
}

class GcsStore implements GcsPrefixStore {
  readonly description: string;
  private readonly client: Storage;
  private readonly bucket: Bucket;
  private readonly bucketName: string;
  private readonly prefix: string;
  private readonly where: string;
  private readonly chunkSize: number;
  private readonly listPageSize: number;
  private readonly requestTimeoutMs: number;

  constructor(url: string, options: GcsStoreOptions) {
    const { bucket, prefix } = parseGcsUrl(url);
    this.bucketName = bucket;
    this.prefix = prefix;
    const emulator = emulatorHost();
    this.where = emulator ?? 'Google Cloud Storage';
    this.description = `gs://${bucket}/${prefix}${emulator ? ` at ${emulator}` : ''}`;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize < CHUNK_GRANULE || this.chunkSize % CHUNK_GRANULE !== 0) {
      throw new TakeoutError('USAGE', `chunk size ${options.chunkSize} is not a positive multiple of 256 KiB`);
    }
    this.listPageSize = options.listPageSize ?? MAX_LIST_PAGE;
    if (!Number.isSafeInteger(this.listPageSize) || this.listPageSize < 1 || this.listPageSize > MAX_LIST_PAGE) {
      throw new TakeoutError('USAGE', `list page size must be between 1 and ${MAX_LIST_PAGE}`);
    }
    this.requestTimeoutMs = options.gcs?.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.client = buildGcsClient(process.env, options.accessToken, this.requestTimeoutMs);
    logGcsRequests(this.client, options.onRequest);
    this.bucket = this.client.bucket(bucket);
  }

  urlFor(key: string): string {
    return `gs://${this.bucketName}/${this.prefix}${key}`;
  }

  /** Lists one object under the prefix (the bucket exists and may be read); unless read-only, also writes and deletes a tiny object. */
  async preflight(options: { readOnly?: boolean } = {}): Promise<void> {
    await this.send('list', this.prefix || undefined, () =>
      this.bucket.getFiles({ prefix: this.prefix, maxResults: 1, autoPaginate: false }),
    );
    if (options.readOnly) return;
    const probe = `${this.prefix}.takeout-preflight-${randomBytes(6).toString('hex')}`;
    const file = this.bucket.file(probe);
    await this.send('upload', probe, () => file.save(Buffer.alloc(0), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }));
    await this.send('delete', probe, () => file.delete({ ignoreNotFound: true }));
  }

  async writer(key: string, options: WriteOptions = {}): Promise<ObjectWriter> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    if (options.signal?.aborted) {
      throw new TakeoutError('INTERRUPTED', `upload of gs://${this.bucketName}/${fullKey} was aborted`);
    }
    return new GcsWriter(
      {
        file: this.bucket.file(fullKey),
        bucket: this.bucketName,
        chunkSize: this.chunkSize,
        map: (error, operation, k) => this.map(error, operation, k),
      },
      key,
      fullKey,
      options,
    );
  }

  /** Another bucket prefix on the same service (Google's, or the same emulator): one client's credentials reach both. */
  canCopyFrom(source: Store): boolean {
    return source instanceof GcsStore && source.where === this.where;
  }

  /**
   * objects.rewrite (https://cloud.google.com/storage/docs/json_api/v1/objects/rewrite) through `File#copy`,
   * which calls it again with each `rewriteToken` until the service says done: large objects and copies
   * across locations or storage classes take several calls. Pinned to the source's generation.
   */
  async copyFrom(source: Store, fromKey: string, toKey: string, options: CopyOptions = {}): Promise<WrittenObject> {
    if (!(source instanceof GcsStore) || !this.canCopyFrom(source)) throw copyRefused(this, source);
    assertSafeKey(fromKey);
    assertSafeKey(toKey);
    const fullKey = this.prefix + toKey;
    const target = `gs://${this.bucketName}/${fullKey}`;
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `copy to ${target} was aborted`);
    const sourceName = source.prefix + fromKey;
    let generation: string | number | undefined;
    try {
      const [metadata] = await source.bucket.file(sourceName).getMetadata();
      generation = (metadata as { generation?: string | number }).generation;
    } catch (error) {
      throw source.map(error, 'head', sourceName);
    }
    const info = await sourceObject(source, fromKey, options.size);
    const from = generation === undefined ? source.bucket.file(sourceName) : source.bucket.file(sourceName, { generation });
    await this.send('rewrite', fullKey, () => from.copy(this.bucket.file(fullKey), options.ifNoneMatch ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}));
    const copied = await this.head(toKey);
    assertCopiedSize(copied, info.size, target);
    return { key: toKey, size: info.size };
  }

  async put(key: string, body: Buffer | string, options: WriteOptions = {}): Promise<WrittenObject> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    const data = putBytes(body, options, `gs://${this.bucketName}/${fullKey}`);
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `upload of gs://${this.bucketName}/${fullKey} was aborted`);
    // One multipart request: small objects (JSON files, manifests) need no session.
    await this.send('upload', fullKey, () =>
      this.bucket.file(fullKey).save(data, {
        resumable: false,
        ...(options.contentType ? { contentType: options.contentType } : {}),
        ...(options.ifNoneMatch ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
      }),
    );
    return { key, size: data.length };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    const what = `gs://${this.bucketName}/${fullKey}`;
    if (range) checkRange(range, what);
    // The client starts a download only when the stream is first read, so a missing object would surface
    // there; its metadata first makes a missing object (and a range past the end) an error of get() itself.
    const file = this.bucket.file(fullKey);
    const [metadata] = await this.send('download', fullKey, () => file.getMetadata());
    const size = Number((metadata as ObjectMetadata).size ?? 0);
    if (range && range.start >= size) throw new TakeoutError('USAGE', `the requested byte range is outside ${what}`);
    // Pinned to the generation just read, so an object replaced meanwhile is not read half old, half new.
    const generation = (metadata as { generation?: string | number }).generation;
    const pinned = generation === undefined ? file : this.bucket.file(fullKey, { generation });
    const start = range?.start ?? 0;
    const end = range ? Math.min(range.end, size - 1) : size - 1;
    const source = pinned.createReadStream(range ? { start, end } : {});
    const mapped = (body: Readable): Readable => withMappedErrors(body, (error) => this.map(error, 'download', fullKey));
    // Served decompressed (decompressive transcoding): its length is not the stored size, nothing to count.
    if ((metadata as { contentEncoding?: string }).contentEncoding === 'gzip') return mapped(source);
    // 7.22.0's download never ends nor fails when the connection closes mid-body (node-fetch 2 under it does
    // not pass the abort on): bytes are counted and a cut or silent body is asked again from where it stopped.
    return mapped(
      continuedDownload(source, {
        length: end - start + 1,
        reopen: async (offset) => pinned.createReadStream({ start: start + offset, end }),
        idleMs: this.requestTimeoutMs,
        what: `gs://${this.bucketName}/${fullKey}`,
        isCut: (error) => isNetworkErrno(errnoOf(error)) || /premature close|aborted|socket hang up/i.test(String((error as Error | undefined)?.message)),
      }),
    );
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    try {
      const [metadata] = await this.bucket.file(fullKey).getMetadata();
      return this.info(key, metadata as ObjectMetadata);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.map(error, 'head', fullKey);
    }
  }

  /** Paged objects.list: the server lists names in lexicographic (UTF-8 byte) order, which is key order. */
  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    assertSafePrefix(prefix);
    const fullPrefix = this.prefix + prefix;
    let query: GetFilesOptions | undefined = { prefix: fullPrefix, maxResults: this.listPageSize, autoPaginate: false };
    while (query !== undefined) {
      const current: GetFilesOptions = query;
      const [files, next] = await this.send('list', fullPrefix || undefined, () => this.bucket.getFiles(current));
      for (const file of files as File[]) {
        if (!file.name.startsWith(this.prefix)) continue;
        const key = file.name.slice(this.prefix.length);
        // Names we could never write (and could not safely mirror to a folder) are not ours.
        if (keyProblem(key) !== undefined) continue;
        yield this.info(key, file.metadata as ObjectMetadata);
      }
      const token = (next as GetFilesOptions | null | undefined)?.pageToken;
      query = token ? { ...current, pageToken: token } : undefined;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertSafeKey(key);
    const queue = [...new Set(keys.map((key) => this.prefix + key))];
    const worker = async (): Promise<void> => {
      for (let fullKey = queue.shift(); fullKey !== undefined; fullKey = queue.shift()) {
        const name = fullKey;
        await this.send('delete', name, () => this.bucket.file(name).delete({ ignoreNotFound: true }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, queue.length) }, worker));
  }

  async close(): Promise<void> {
    // The client keeps no sockets of its own beyond Node's global agent's idle ones.
  }

  private info(key: string, metadata: ObjectMetadata): ObjectInfo {
    const info: ObjectInfo = { key, size: Number(metadata.size ?? 0) };
    if (metadata.md5Hash) info.etag = Buffer.from(metadata.md5Hash, 'base64').toString('hex');
    else if (metadata.etag) info.etag = metadata.etag;
    if (metadata.updated) info.lastModified = new Date(metadata.updated);
    return info;
  }

  private map(error: unknown, operation: string, fullKey?: string): TakeoutError {
    return mapGcsError(error, { bucket: this.bucketName, operation, where: this.where, ...(fullKey === undefined ? {} : { key: fullKey }) });
  }

  private async send<T>(operation: string, fullKey: string | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.map(error, operation, fullKey);
    }
  }
}

/** A destination under `gs://bucket/prefix`. */
export function createGcsStore(url: string, options: GcsStoreOptions = {}): GcsPrefixStore {
  const destination = new GcsStore(url, options);
  return options.throttle ? throttledStore(destination, options.throttle) : destination;
}
