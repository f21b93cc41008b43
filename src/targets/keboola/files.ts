import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import { TakeoutError } from '../../errors.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import { openFileStorage, registerFileSecrets, type FileStorage, type StorageFile } from '../../sources/keboola/file-storage.js';
import type { ObjectWriter } from '../../stores/store.js';
import { RecordCounter } from '../../formats/csv/record-counter.js';
import type { Json } from './api.js';

/**
 * Uploads into the stack's file storage, as storage-api-php-client uploadSlicedFile does: `POST files/prepare`
 * (federationToken, isSliced, name), each slice to `<key><slice name>` with the answer's upload credentials
 * (aws `uploadParams.credentials`, azure `absUploadParams.absCredentials.SASConnectionString`, gcp
 * `gcsUploadParams.access_token`), then the manifest `<key>manifest` `{"entries":[{"url"}]}` last
 * (apiary.apib "Working with Sliced Files"). The storage is opened as the Keboola source opens a file's
 * storage for reading, through the same stores; upload credentials that are about to end are renewed
 * (SlicedUpload), and aws uploads carry the server-side encryption the answer asks for.
 */

interface Prepared extends Json {
  id: number | string;
  provider?: string;
  region?: string;
  isEncrypted?: boolean;
  uploadParams?: { key: string; bucket: string; credentials: StorageFile['credentials']; 'x-amz-server-side-encryption'?: string };
  absUploadParams?: { blobName: string; container: string; accountName: string; absCredentials: StorageFile['absCredentials'] };
  gcsUploadParams?: { key: string; bucket: string; access_token: string; expires_in?: number; token_type?: string; projectId?: string };
}

/** The upload answer in the shape of a file detail, which openFileStorage opens. */
function asFileDetail(p: Prepared): StorageFile {
  const provider = p.provider ?? 'aws';
  const base = { id: p.id, provider, ...(p.region ? { region: p.region } : {}) };
  if (provider === 'azure' && p.absUploadParams) {
    return { ...base, absPath: { container: p.absUploadParams.container, name: p.absUploadParams.blobName }, absCredentials: p.absUploadParams.absCredentials ?? {} };
  }
  if (provider === 'gcp' && p.gcsUploadParams) {
    const g = p.gcsUploadParams;
    return { ...base, gcsPath: { bucket: g.bucket, key: g.key }, gcsCredentials: { access_token: g.access_token, ...(g.expires_in !== undefined ? { expires_in: g.expires_in } : {}) } };
  }
  if (p.uploadParams) return { ...base, s3Path: { bucket: p.uploadParams.bucket, key: p.uploadParams.key }, ...(p.uploadParams.credentials ? { credentials: p.uploadParams.credentials } : {}) };
  return base;
}

/** A manifest entry's URL for an object of the upload (the forms Keboola's clients write). */
function entryUrl(p: Prepared, key: string): string {
  if (p.provider === 'azure' && p.absUploadParams) return `azure://${p.absUploadParams.accountName}.blob.core.windows.net/${p.absUploadParams.container}/${key}`;
  if (p.provider === 'gcp' && p.gcsUploadParams) return `gs://${p.gcsUploadParams.bucket}/${key}`;
  return `s3://${p.uploadParams?.bucket ?? ''}/${key}`;
}

export interface Upload {
  /** The Storage API files holding the slices, in order: more than one when the upload went on in a new file. */
  readonly fileIds: readonly (number | string)[];
  /** Streams one gzipped headerless slice as it is; resolves with the records it holds (counted on the way; `columns` and `origin` are not needed for that). */
  slice(body: Readable, name: string, columns: number, origin: string): Promise<number>;
  /** Writes the manifest listing the slices of the last file, in order (a file before it got its own when it was closed). */
  finish(): Promise<void>;
  close(): Promise<void>;
}

export interface UploadOptions {
  description: string;
  s3Endpoint?: string;
  signal?: AbortSignal;
}

/**
 * Upload credentials are renewed before a slice when they have less than this left: a 256 MB slice (takeout
 * run's default) sent at 0.5 MB/s takes under 9 minutes; GCS tokens last one hour (apiary.apib "Refresh File
 * Credentials").
 */
const CREDENTIAL_MARGIN_MS = 10 * 60_000;
/**
 * The head of a slice kept in memory, so that a write refused for its credentials can be sent again with new
 * ones: the writers send nothing before their first part, chunk or block (8 MiB by default) and hear the
 * refusal of credentials that ended on that first request, while at most a few more parts are buffered (a
 * writer's own memory bound is 40 MiB). A refusal later in a slice cannot be replayed from a stream: it is the
 * table's error.
 */
const REPLAY_BYTES = 32 * 1024 * 1024;
/** Inflated 1 MiB at a time, as the sources inflate: a chunk's fixed cost is paid 64 times less often than at zlib's 16 KiB. */
const INFLATE_CHUNK_BYTES = 1024 * 1024;
/** Sent when an encrypted AWS upload's answer names no SSE (storage-api-php-client sends the answer's value). */
const DEFAULT_SSE = 'AES256';

/** One Storage API file of a table's upload, its storage opened with the file's upload credentials. */
interface Part {
  prepared: Prepared;
  storage: FileStorage;
  entries: string[];
}

const providerOf = (p: Prepared): string => p.provider ?? 'aws';

/**
 * An encrypted AWS upload carries `uploadParams['x-amz-server-side-encryption']`; storage-api-php-client's
 * S3Uploader sends it as ServerSideEncryption with every put and multipart upload, and so does the store.
 */
function sseOf(p: Prepared): 'AES256' | 'aws:kms' | undefined {
  if (providerOf(p) !== 'aws' || p.isEncrypted === false) return undefined;
  return p.uploadParams?.['x-amz-server-side-encryption'] === 'aws:kms' ? 'aws:kms' : DEFAULT_SSE;
}

async function open(prepared: Prepared, options: UploadOptions): Promise<FileStorage> {
  const detail = asFileDetail(prepared);
  registerFileSecrets(detail);
  if (prepared.id === undefined) throw new TakeoutError('FAILED', `${options.description}: files/prepare answered no file id`);
  const sse = sseOf(prepared);
  return openFileStorage(detail, prepared.id, { description: options.description, ...(options.s3Endpoint ? { s3Endpoint: options.s3Endpoint } : {}), ...(sse ? { sse } : {}) });
}

export async function prepare(client: StorageClient, body: Json, options: UploadOptions): Promise<Part> {
  const prepared = await client.post<Prepared>('files/prepare', { body, ...(options.signal ? { signal: options.signal } : {}) });
  return { prepared, storage: await open(prepared, options), entries: [] };
}

const isRefused = (error: unknown): boolean => error instanceof TakeoutError && error.code === 'AUTH';

/**
 * A sliced file for one table's slices. Upload credentials end (aws `Expiration`, azure `expiration` and the
 * SAS's `se=`, gcp `expires_in`) and a big table's upload can outlive them: they are renewed before a slice
 * when less than CREDENTIAL_MARGIN_MS is left, as the Keboola source renews a file's credentials for reading,
 * and once after a write refused for them:
 * - gcp: `PUT files/{id}/refresh` answers new `gcsUploadParams` for the same file, as storage-api-php-client's
 *   GCSUploader does after a 401 (RefreshFileCredentialsWrapper);
 * - aws and azure: the API renews no upload credentials (the refresh is "only for files stored in GCS", and a
 *   file detail's credentials are for downloading: apiary.apib), nor does the PHP client; the upload goes on in
 *   a new file of `files/prepare`, the file before it closed with its manifest while its credentials hold, and
 *   the table is loaded from each file in turn (tables.ts).
 */
export async function startSlicedUpload(client: StorageClient, name: string, sizeBytes: number, options: UploadOptions): Promise<Upload> {
  const request = { name, isSliced: true, federationToken: true, isEncrypted: true, sizeBytes, tags: ['takeout-restore'] };
  return new SlicedUpload(client, name, request, options, await prepare(client, request, options));
}

class SlicedUpload implements Upload {
  private readonly parts: Part[];

  constructor(
    private readonly client: StorageClient,
    private readonly name: string,
    private readonly request: Json,
    private readonly options: UploadOptions,
    first: Part,
  ) {
    this.parts = [first];
  }

  get fileIds(): (number | string)[] {
    return this.parts.map((p) => p.prepared.id);
  }

  private last(): Part {
    return this.parts[this.parts.length - 1]!;
  }

  private async putManifest(part: Part): Promise<void> {
    await part.storage.store.put(`${part.storage.key}manifest`, JSON.stringify({ entries: part.entries.map((url) => ({ url })) }), { contentType: 'application/json' });
  }

  /** New credentials for the last file (gcp), or a new file after it (aws, azure). */
  private async renew(): Promise<void> {
    const part = this.last();
    if (providerOf(part.prepared) === 'gcp') {
      const signal = this.options.signal ? { signal: this.options.signal } : {};
      const refreshed = await this.client.request<Prepared>('PUT', `files/${encodeURIComponent(String(part.prepared.id))}/refresh`, signal);
      const storage = await open({ ...refreshed, id: part.prepared.id }, this.options);
      await part.storage.store.close?.();
      part.storage = storage;
      return;
    }
    if (part.entries.length > 0) await this.putManifest(part);
    const next = await prepare(this.client, this.request, this.options);
    await part.storage.store.close?.();
    // A file that got no slice is left unused (the stack deletes it after 15 days, apiary.apib files/prepare).
    if (part.entries.length === 0) this.parts.pop();
    this.parts.push(next);
  }

  /** Refused again with renewed credentials: an authentication error naming the table, the file and what was written; any other error as it is. */
  private refusedAgain(error: unknown, what: string): unknown {
    if (!isRefused(error)) return error;
    const cause = error as TakeoutError;
    return new TakeoutError('AUTH', `${this.options.description}: table ${this.name}: file ${String(this.last().prepared.id)}, ${what}: ${cause.message}`, {
      cause,
      hint: 'the file storage refused the upload credentials the Storage API gave for this file, also after they were renewed; check the token may upload files and run again',
    });
  }

  async slice(body: Readable, sliceName: string): Promise<number> {
    if (this.last().storage.expires - Date.now() < CREDENTIAL_MARGIN_MS) await this.renew();
    const what = `slice ${sliceName}`;
    const open = async (): Promise<{ part: Part; key: string; writer: ObjectWriter }> => {
      const part = this.last();
      const key = `${part.storage.key}${sliceName}`;
      return { part, key, writer: await part.storage.store.writer(key, { contentType: 'application/gzip' }) };
    };
    let target = await open();
    // The bytes go up unchanged; a copy is gunzipped beside them and its records counted (newlines outside
    // quotes): the slice's size and sha256 are checked on the way, so a count is all that is left to check.
    const tee = createGunzip({ chunkSize: INFLATE_CHUNK_BYTES });
    const counting = (async () => {
      const counter = new RecordCounter();
      for await (const chunk of tee as AsyncIterable<Buffer>) counter.push(chunk);
      return counter.end();
    })();
    const head: Buffer[] = [];
    let headBytes = 0;
    let renewed = false;
    /** A write refused for its credentials: renewed once, and the slice's head sent again to a new writer. */
    const recover = async (error: unknown): Promise<void> => {
      if (!isRefused(error)) throw error;
      if (renewed || headBytes > REPLAY_BYTES) throw this.refusedAgain(error, what);
      renewed = true;
      await target.writer.abort().catch(() => undefined);
      try {
        await this.renew();
        target = await open();
        for (const chunk of head) await target.writer.write(chunk);
      } catch (again) {
        throw this.refusedAgain(again, what);
      }
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        headBytes += chunk.length;
        if (headBytes <= REPLAY_BYTES) head.push(chunk);
        else head.length = 0;
        // After a refusal, the head sent again holds this chunk.
        await target.writer.write(chunk).catch(recover);
        if (!tee.write(chunk)) await Promise.race([once(tee, 'drain'), counting]);
      }
      tee.end();
      const rows = await counting;
      await target.writer.finish().catch(async (error: unknown) => {
        await recover(error);
        await target.writer.finish().catch((again: unknown) => {
          throw this.refusedAgain(again, what);
        });
      });
      target.part.entries.push(entryUrl(target.part.prepared, target.key));
      return rows;
    } catch (error) {
      tee.destroy();
      counting.catch(() => undefined);
      await target.writer.abort().catch(() => undefined);
      throw error;
    }
  }

  async finish(): Promise<void> {
    const part = this.last();
    const gcp = providerOf(part.prepared) === 'gcp';
    // Only a gcp file's credentials are renewed for the same file; aws and azure ones still hold (renewed before each slice).
    if (gcp && part.storage.expires - Date.now() < CREDENTIAL_MARGIN_MS) await this.renew();
    try {
      await this.putManifest(part);
    } catch (error) {
      if (!isRefused(error)) throw error;
      if (!gcp) throw this.refusedAgain(error, 'manifest');
      await this.renew();
      await this.putManifest(part).catch((again: unknown) => {
        throw this.refusedAgain(again, 'manifest');
      });
    }
  }

  async close(): Promise<void> {
    await this.last().storage.store.close?.();
  }
}

/**
 * A one-object gzipped CSV holding only the header: how Keboola's restore engine creates a table without rows.
 * A put refused for its credentials is sent once more in a new file (the body is in memory).
 */
export async function uploadHeaderFile(client: StorageClient, name: string, columns: readonly string[], options: UploadOptions): Promise<number | string> {
  const body = gzipSync(`${columns.map((c) => `"${c.replace(/"/g, '""')}"`).join(',')}\n`);
  const request = { name, isSliced: false, federationToken: true, isEncrypted: true, sizeBytes: body.length, tags: ['takeout-restore'] };
  for (let attempt = 1; ; attempt++) {
    const { prepared, storage } = await prepare(client, request, options);
    try {
      await storage.store.put(storage.key, body, { contentType: 'application/gzip' });
      return prepared.id;
    } catch (error) {
      if (!isRefused(error)) throw error;
      if (attempt > 1) {
        const cause = error instanceof Error ? error : new Error(String(error));
        throw new TakeoutError('AUTH', `${options.description}: ${name}: file ${String(prepared.id)}: ${cause.message}`, {
          cause,
          hint: 'the file storage refused the upload credentials the Storage API gave, also for a new file; check the token may upload files and run again',
        });
      }
    } finally {
      await storage.store.close?.();
    }
  }
}
