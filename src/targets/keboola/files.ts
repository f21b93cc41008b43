import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { TakeoutError } from '../../errors.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import { openFileStorage, registerFileSecrets, type FileStorage, type StorageFile } from '../../sources/keboola/file-storage.js';
import { sliceRows } from '../rows.js';
import type { Json } from './api.js';

/**
 * Uploads into the stack's file storage, as storage-api-php-client uploadSlicedFile does: `POST files/prepare`
 * (federationToken, isSliced, name), each slice to `<key><slice name>` with the answer's upload credentials
 * (aws `uploadParams.credentials`, azure `absUploadParams.absCredentials.SASConnectionString`, gcp
 * `gcsUploadParams.access_token`), then the manifest `<key>manifest` `{"entries":[{"url"}]}` last
 * (apiary.apib "Working with Sliced Files"). The storage is opened as the Keboola source opens a file's
 * storage for reading, through the same stores.
 */

interface Prepared extends Json {
  id: number | string;
  provider?: string;
  region?: string;
  uploadParams?: { key: string; bucket: string; credentials: StorageFile['credentials'] };
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
  fileId: number | string;
  /** Streams one gzipped headerless slice as it is; resolves with the records it holds (parsed on the way). */
  slice(body: Readable, name: string, columns: number, origin: string): Promise<number>;
  /** Writes the manifest listing the slices, in order. */
  finish(): Promise<void>;
  close(): Promise<void>;
}

export interface UploadOptions {
  description: string;
  s3Endpoint?: string;
  signal?: AbortSignal;
}

export async function prepare(client: StorageClient, body: Json, options: UploadOptions): Promise<{ prepared: Prepared; storage: FileStorage }> {
  const prepared = await client.post<Prepared>('files/prepare', { body, ...(options.signal ? { signal: options.signal } : {}) });
  const detail = asFileDetail(prepared);
  registerFileSecrets(detail);
  if (prepared.id === undefined) throw new TakeoutError('FAILED', `${options.description}: files/prepare answered no file id`);
  const storage = await openFileStorage(detail, prepared.id, { description: options.description, ...(options.s3Endpoint ? { s3Endpoint: options.s3Endpoint } : {}) });
  return { prepared, storage };
}

/** A sliced file for one table's slices. */
export async function startSlicedUpload(client: StorageClient, name: string, sizeBytes: number, options: UploadOptions): Promise<Upload> {
  const { prepared, storage } = await prepare(client, { name, isSliced: true, federationToken: true, isEncrypted: true, sizeBytes, tags: ['takeout-restore'] }, options);
  const entries: string[] = [];
  return {
    fileId: prepared.id,
    async slice(body, sliceName, columns, origin) {
      const key = `${storage.key}${sliceName}`;
      const writer = await storage.store.writer(key, { contentType: 'application/gzip' });
      // The bytes go up unchanged; a copy is parsed beside them, so the records loaded are counted.
      const tee = new PassThrough();
      const counting = (async () => {
        let n = 0;
        for await (const batch of sliceRows(tee, columns, origin)) n += batch.length;
        return n;
      })();
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          await writer.write(chunk);
          if (!tee.write(chunk)) await Promise.race([once(tee, 'drain'), counting]);
        }
        tee.end();
        const rows = await counting;
        await writer.finish();
        entries.push(entryUrl(prepared, key));
        return rows;
      } catch (error) {
        tee.destroy();
        counting.catch(() => undefined);
        await writer.abort().catch(() => undefined);
        throw error;
      }
    },
    async finish() {
      await storage.store.put(`${storage.key}manifest`, JSON.stringify({ entries: entries.map((url) => ({ url })) }), { contentType: 'application/json' });
    },
    close: async () => storage.store.close?.(),
  };
}

/** A one-object gzipped CSV holding only the header: how Keboola's restore engine creates a table without rows. */
export async function uploadHeaderFile(client: StorageClient, name: string, columns: readonly string[], options: UploadOptions): Promise<number | string> {
  const body = gzipSync(`${columns.map((c) => `"${c.replace(/"/g, '""')}"`).join(',')}\n`);
  const { prepared, storage } = await prepare(client, { name, isSliced: false, federationToken: true, isEncrypted: true, sizeBytes: body.length, tags: ['takeout-restore'] }, options);
  try {
    await storage.store.put(storage.key, body, { contentType: 'application/gzip' });
  } finally {
    await storage.store.close?.();
  }
  return prepared.id;
}
