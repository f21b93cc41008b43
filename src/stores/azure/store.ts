/**
 * An Azure Blob Storage container prefix as a store, through `@azure/storage-blob`. Loaded by the registry
 * with a dynamic import, so the CLI pays for the SDK only when an azure:// store is opened.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { BlobHTTPHeaders, ContainerClient } from '@azure/storage-blob';
import { errnoOf, isNetworkErrno, TakeoutError } from '../../errors.js';
import type { ByteRange, CleanableLeftovers, CopyOptions, Leftover, ObjectInfo, ObjectWriter, Preflight, ServerSideCopy, Store, StoreOptions, WriteOptions, WrittenObject } from '../store.js';
import { assertSafeKey, assertSafePrefix, keyProblem } from '../keys.js';
import { assertCopiedSize, copyRefused, sourceObject } from '../copy.js';
import { checkRange, continuedDownload, cutToRange, parseContentRange, putBytes, withMappedErrors } from '../streams.js';
import { throttledStore } from '../throttled.js';
import { buildContainerClient, SOCKET_TIMEOUT_MS } from './client.js';
import { copyBlob } from './copy.js';
import { resolveAzureAuth } from './credentials.js';
import type { AzureAuth } from './credentials.js';
import { isAzureNotFound, mapAzureError, statusOf } from './errors.js';
import { parseAzureUrl } from './url.js';
import { AzureWriter, createOnly, stripQuotes } from './writer.js';

const MiB = 1024 * 1024;
/** 8 MiB blocks, as S3's parts: 50,000 blocks × 8 MiB = 390 GiB per blob (Put Block List's limit is 50,000). */
export const DEFAULT_BLOCK_SIZE = 8 * MiB;
/** Azure takes blocks up to 4000 MiB (service version 2019-12-12 and later). */
export const MAX_BLOCK_SIZE = 4000 * MiB;
/** At least 1 MiB: smaller blocks only multiply requests. */
export const MIN_BLOCK_SIZE = 1 * MiB;
export const DEFAULT_BLOCK_CONCURRENCY = 4;
/** List Blobs returns at most 5000 blobs per page. */
const MAX_LIST_PAGE = 5000;
/** Delete Blob requests in flight at once. */
const DELETE_CONCURRENCY = 8;
/** Reads that break mid-body are resumed from where they stopped this many times (the SDK's download retries). */
const DOWNLOAD_RETRIES = 3;

export interface AzureStoreOptions extends StoreOptions {
  /** Blobs per List Blobs page (default and maximum 5000); tests set it low to exercise paging. */
  listPageSize?: number;
}

export type AzurePrefixStore = Store & Preflight & CleanableLeftovers & ServerSideCopy;

class AzureStore implements AzurePrefixStore {
  readonly description: string;
  private readonly container: string;
  private readonly prefix: string;
  private readonly where: string;
  private readonly blockSize: number;
  private readonly concurrency: number;
  private readonly listPageSize: number;
  /** No byte of a download body for this long: the body is taken as cut (the request timeout, else 60 s). */
  private readonly idleMs: number;

  constructor(
    private readonly client: ContainerClient,
    container: string,
    prefix: string,
    endpoint: string,
    options: AzureStoreOptions,
    /** How requests are authorized: Copy Blob reads its source with a shared key or a SAS in its URL, not with an Entra token. */
    private readonly authKind: AzureAuth['kind'],
  ) {
    this.container = container;
    this.prefix = prefix;
    this.where = endpoint;
    this.description = `azure://${container}/${prefix} at ${endpoint}`;
    this.idleMs = options.azure?.requestTimeoutMs ?? SOCKET_TIMEOUT_MS;
    this.blockSize = options.s3?.partSize ?? DEFAULT_BLOCK_SIZE;
    if (!Number.isSafeInteger(this.blockSize) || this.blockSize < MIN_BLOCK_SIZE || this.blockSize > MAX_BLOCK_SIZE) {
      throw new TakeoutError('USAGE', `block size ${this.blockSize} is outside 1 MiB to 4000 MiB (Azure's limit)`);
    }
    this.concurrency = options.s3?.partConcurrency ?? DEFAULT_BLOCK_CONCURRENCY;
    if (!Number.isSafeInteger(this.concurrency) || this.concurrency < 1) {
      throw new TakeoutError('USAGE', `part concurrency must be a positive integer, got ${this.concurrency}`);
    }
    this.listPageSize = options.listPageSize ?? MAX_LIST_PAGE;
    if (!Number.isSafeInteger(this.listPageSize) || this.listPageSize < 1 || this.listPageSize > MAX_LIST_PAGE) {
      throw new TakeoutError('USAGE', `list page size must be between 1 and ${MAX_LIST_PAGE}`);
    }
  }

  /** Manifests name blobs by key relative to the takeout root, as for a local folder: verify and files download read them back. */
  urlFor(): undefined {
    return undefined;
  }

  /**
   * A listing of one blob under the prefix: proves the endpoint, the container and the credentials without
   * container properties, which a container SAS cannot read (learn.microsoft.com "Create a service SAS").
   */
  async preflight(): Promise<void> {
    await this.send('ListBlobs', undefined, () => this.client.listBlobsFlat({ prefix: this.prefix }).byPage({ maxPageSize: 1 }).next());
  }

  async writer(key: string, options: WriteOptions = {}): Promise<ObjectWriter> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `upload of azure://${this.container}/${fullKey} was aborted`);
    return new AzureWriter(
      {
        blob: this.client.getBlockBlobClient(fullKey),
        container: this.container,
        blockSize: this.blockSize,
        concurrency: this.concurrency,
        headers: (o) => headers(o),
        map: (error, operation, k, flags) => this.map(error, operation, k, flags),
      },
      key,
      fullKey,
      options,
    );
  }

  /**
   * Another container prefix of the same storage account (its blob endpoint), reached with the same credentials,
   * a shared key or a SAS. Not with Azure's default chain (Entra ID): @azure/storage-blob 12.32.0 passes a bearer
   * token for the source (x-ms-copy-source-authorization) only to the synchronous Copy Blob From URL, which stops
   * at 256 MiB, not to Copy Blob; those objects are streamed instead.
   */
  canCopyFrom(source: Store): boolean {
    return source instanceof AzureStore && source.where === this.where && this.authKind !== 'default-chain' && source.authKind === this.authKind;
  }

  async copyFrom(source: Store, fromKey: string, toKey: string, options: CopyOptions = {}): Promise<WrittenObject> {
    if (!(source instanceof AzureStore) || !this.canCopyFrom(source)) throw copyRefused(this, source);
    assertSafeKey(fromKey);
    assertSafeKey(toKey);
    const fullKey = this.prefix + toKey;
    const target = `azure://${this.container}/${fullKey}`;
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `copy to ${target} was aborted`);
    const info = await sourceObject(source, fromKey, options.size);
    const createOnly = options.ifNoneMatch === true;
    await this.send(
      'CopyBlob',
      fullKey,
      () => copyBlob({ source: source.client.getBlobClient(source.prefix + fromKey), info, destination: this.client.getBlobClient(fullKey), createOnly, signal: options.signal, where: target }),
      { createOnly, signal: options.signal },
    );
    const copied = await this.head(toKey);
    assertCopiedSize(copied, info.size, target);
    return { key: toKey, size: info.size, ...(copied?.etag === undefined ? {} : { etag: copied.etag }) };
  }

  async put(key: string, body: Buffer | string, options: WriteOptions = {}): Promise<WrittenObject> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    const data = putBytes(body, options, `azure://${this.container}/${fullKey}`);
    const result = await this.send(
      'PutBlob',
      fullKey,
      () =>
        this.client.getBlockBlobClient(fullKey).upload(data, data.length, {
          blobHTTPHeaders: headers(options),
          ...createOnly(options),
          ...(options.signal ? { abortSignal: options.signal } : {}),
        }),
      { createOnly: options.ifNoneMatch === true, signal: options.signal },
    );
    const written: WrittenObject = { key, size: data.length };
    const etag = stripQuotes(result.etag);
    if (etag !== undefined) written.etag = etag;
    return written;
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    if (range) checkRange(range, `azure://${this.container}/${fullKey}`);
    const offset = range?.start ?? 0;
    const count = range ? range.end - range.start + 1 : undefined;
    const result = await this.send('GetBlob', fullKey, () => this.client.getBlobClient(fullKey).download(offset, count, { maxRetryRequests: DOWNLOAD_RETRIES }));
    const first = result.readableStreamBody as Readable | undefined;
    if (first === undefined) throw new TakeoutError('FAILED', `GetBlob azure://${this.container}/${fullKey} returned no readable body`);
    // A body that stops mid-way without closing its socket would wait forever.
    (first as Partial<IncomingMessage>).setTimeout?.(SOCKET_TIMEOUT_MS, () => first.destroy(Object.assign(new Error('socket idle'), { code: 'ETIMEDOUT' })));
    // The SDK takes a connection cut mid-body for an abort and does not ask again (12.32.0): bytes are counted
    // and the rest asked for, from the same blob (If-Match its ETag), from where the body stopped.
    const length = result.contentLength;
    const from = parseContentRange(result.contentRange)?.start ?? 0;
    const blob = this.client.getBlobClient(fullKey);
    const conditions = result.etag === undefined ? {} : { conditions: { ifMatch: result.etag } };
    const body =
      length === undefined
        ? first
        : continuedDownload(first, {
            length,
            reopen: async (got) => {
              const again = await this.send('GetBlob', fullKey, () => blob.download(from + got, length - got, { maxRetryRequests: DOWNLOAD_RETRIES, ...conditions }));
              return again.readableStreamBody as Readable;
            },
            idleMs: this.idleMs,
            what: `azure://${this.container}/${fullKey}`,
            isCut: (error) => (error as Error | undefined)?.name === 'AbortError' || isNetworkErrno(errnoOf(error)) || errnoOf(error) === 'ETIMEDOUT',
          });
    const mapped = withMappedErrors(body, (error) => this.map(error, 'GetBlob', fullKey));
    if (!range) return mapped;
    // Azure answers a range past the end with 416; Azurite 3.35 answers it with the whole blob. What came back
    // is checked against what was asked and cut to size, as for S3-compatible servers.
    const returned = parseContentRange(result.contentRange) ?? { start: 0, total: result.contentLength };
    if (returned.total !== undefined && range.start >= returned.total) {
      mapped.destroy();
      throw new TakeoutError('USAGE', `the requested byte range is outside azure://${this.container}/${fullKey}`, { details: { range } });
    }
    return cutToRange(mapped, returned, range, result.contentLength, `GetBlob azure://${this.container}/${fullKey}`);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key);
    const fullKey = this.prefix + key;
    try {
      const result = await this.client.getBlobClient(fullKey).getProperties();
      const info: ObjectInfo = { key, size: result.contentLength ?? 0 };
      const etag = stripQuotes(result.etag);
      if (etag !== undefined) info.etag = etag;
      if (result.lastModified) info.lastModified = result.lastModified;
      return info;
    } catch (error) {
      // A missing container also answers 404 to a HEAD (no body, so no error code): a missing blob either way.
      if (isAzureNotFound(error)) return undefined;
      throw this.map(error, 'GetBlobProperties', fullKey);
    }
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    assertSafePrefix(prefix);
    const fullPrefix = this.prefix + prefix;
    const pages = this.client.listBlobsFlat(fullPrefix === '' ? {} : { prefix: fullPrefix }).byPage({ maxPageSize: this.listPageSize });
    for (;;) {
      const page = await this.send('ListBlobs', fullPrefix || undefined, () => pages.next());
      if (page.done) return;
      for (const item of page.value.segment.blobItems) {
        if (!item.name.startsWith(this.prefix)) continue;
        const key = item.name.slice(this.prefix.length);
        // Names we could never write (and could not safely mirror to a folder) are not ours.
        if (keyProblem(key) !== undefined) continue;
        const info: ObjectInfo = { key, size: item.properties.contentLength ?? 0 };
        const etag = stripQuotes(item.properties.etag);
        if (etag !== undefined) info.etag = etag;
        info.lastModified = item.properties.lastModified;
        yield info;
      }
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertSafeKey(key);
    const queue = [...new Set(keys.map((key) => this.prefix + key))];
    const worker = async (): Promise<void> => {
      for (let fullKey = queue.shift(); fullKey !== undefined; fullKey = queue.shift()) {
        const name = fullKey;
        await this.send('DeleteBlob', name, () => this.client.getBlobClient(name).deleteIfExists());
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, queue.length) }, worker));
  }

  /**
   * Blobs with only uncommitted blocks (a writer killed before Put Block List) under the prefix, last staged
   * before the cutoff: listed with include=uncommittedblobs and not in the plain listing, nor committed by the
   * time it is looked at again. A committed blob is never one, even when it also has uncommitted blocks (an
   * overwrite in progress).
   */
  async *leftovers(olderThanMs: number): AsyncIterable<Leftover> {
    const cutoff = Date.now() - olderThanMs;
    const options = this.prefix === '' ? {} : { prefix: this.prefix };
    const committed = new Set<string>();
    const plain = this.client.listBlobsFlat(options).byPage({ maxPageSize: MAX_LIST_PAGE });
    for (let page = await this.send('ListBlobs', this.prefix || undefined, () => plain.next()); !page.done; page = await this.send('ListBlobs', this.prefix || undefined, () => plain.next())) {
      for (const item of page.value.segment.blobItems) committed.add(item.name);
    }
    const pages = this.client.listBlobsFlat({ ...options, includeUncommitedBlobs: true }).byPage({ maxPageSize: MAX_LIST_PAGE });
    for (;;) {
      const page = await this.send('ListBlobs', this.prefix || undefined, () => pages.next());
      if (page.done) return;
      for (const item of page.value.segment.blobItems) {
        if (committed.has(item.name) || !item.name.startsWith(this.prefix)) continue;
        const key = item.name.slice(this.prefix.length);
        if (key === '') continue;
        const started = item.properties.lastModified ?? item.properties.createdOn;
        if (olderThanMs > 0 && (started === undefined || started.getTime() >= cutoff)) continue;
        // Committed between the two listings (a live writer's Put Block List): not a leftover.
        if (keyProblem(key) === undefined && (await this.head(key)) !== undefined) continue;
        // Azure's incomplete multipart upload: reported (and counted by cleanup) as one.
        yield { key, kind: 'multipart-upload', ...(started === undefined ? {} : { started }) };
      }
    }
  }

  /**
   * Uncommitted blocks cannot be deleted on their own: an empty block list is committed only where no blob
   * exists (If-None-Match: *), which discards them, and that empty blob is deleted by its ETag. A blob
   * committed since the listing is left alone.
   */
  async removeLeftover(item: Leftover): Promise<void> {
    if (item.kind !== 'multipart-upload' || item.key === '') {
      throw new TakeoutError('USAGE', `${item.key} is not a blob with uncommitted blocks in ${this.description}`, { details: { key: item.key } });
    }
    assertSafeKey(item.key);
    const fullKey = this.prefix + item.key;
    const blob = this.client.getBlockBlobClient(fullKey);
    let etag: string | undefined;
    try {
      etag = (await blob.commitBlockList([], { conditions: { ifNoneMatch: '*' } })).etag;
    } catch (error) {
      if (statusOf(error) === 409 || statusOf(error) === 412) return;
      throw this.map(error, 'PutBlockList', fullKey);
    }
    await this.send('DeleteBlob', fullKey, () => blob.deleteIfExists(etag === undefined ? {} : { conditions: { ifMatch: etag } }));
  }

  async close(): Promise<void> {
    // The SDK's keep-alive agent is shared and unrefs its sockets: nothing to release.
  }

  private map(error: unknown, operation: string, fullKey?: string, flags: { createOnly?: boolean; aborted?: boolean } = {}): TakeoutError {
    return mapAzureError(error, {
      container: this.container,
      operation,
      where: this.where,
      ...(fullKey === undefined ? {} : { blob: fullKey }),
      ...flags,
    });
  }

  private async send<T>(operation: string, fullKey: string | undefined, call: () => Promise<T>, flags: { createOnly?: boolean; signal?: AbortSignal | undefined } = {}): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.map(error, operation, fullKey, { createOnly: flags.createOnly === true, aborted: flags.signal?.aborted === true });
    }
  }
}

function headers(options: WriteOptions): BlobHTTPHeaders {
  return options.contentType ? { blobContentType: options.contentType } : {};
}

/** A destination under `azure://CONTAINER/prefix` (or its https:// form); credentials from `options.azure` and AZURE_STORAGE_*. */
export async function createAzureStore(url: string, options: AzureStoreOptions = {}): Promise<AzurePrefixStore> {
  const location = parseAzureUrl(url);
  const auth = resolveAzureAuth(location, options.azure);
  const client = await buildContainerClient(auth, location.container, options.azure?.requestTimeoutMs, options.onRequest);
  const destination = new AzureStore(client, location.container, location.prefix, auth.endpoint, options, auth.kind);
  return options.throttle ? throttledStore(destination, options.throttle) : destination;
}
