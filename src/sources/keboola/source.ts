import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Store } from '../../stores/store.js';
import { TakeoutError } from '../../errors.js';
import { readManifestDocument, readManifestText, redshiftPlan } from '../../manifests/read.js';
import type { OpenTableOptions, Source } from '../source.js';
import type { GzipSlicesBody, ProjectDescriptor, TableBody, TableDescriptor } from '../../model.js';
import { StorageClient, cleartextWarning, stackUrl } from './client.js';
import { KEBOOLA_S3_ENDPOINT_ENV } from './env.js';
import { finished, queue, type Job } from './exports.js';
import { listProject } from './project.js';
import type { RequestLogger, Throttle } from '../../stores/network.js';
import { openFileStorage, registerFileSecrets, type FileStorage, type StorageFile } from './file-storage.js';

/**
 * A Keboola Connection project through its Storage API. Tables are exported with `export-async`
 * (gzip, queued up front, polled concurrently) and their slices copied as they are from the stack's file
 * storage (file-storage.ts) with the file's temporary credentials: no temp files, no recompression.
 */

/** File credentials are refreshed when they have less than this left (the SDK refreshes identities at 5 min too). */
const CREDENTIAL_MARGIN_MS = 5 * 60_000;

export interface KeboolaSourceOptions {
  token?: string;
  /** S3 endpoint of the project's file storage, for S3-compatible test stacks (env TAKEOUT_KEBOOLA_S3_ENDPOINT). */
  s3Endpoint?: string;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told once, when the source is created, of risks the run goes on with (a token sent in clear text). */
  onWarning?: (message: string) => void;
  /** Hears each HTTP request to the Storage API and to file storage (`--debug`). */
  onRequest?: RequestLogger;
  /** The bandwidth limit for file downloads (`--bwlimit`). */
  throttle?: Throttle;
}

export function createKeboolaSource(uri: string, options: KeboolaSourceOptions = {}): Source {
  const token = options.token ?? process.env.KBC_STORAGE_TOKEN;
  const baseUrl = stackUrl(uri);
  const description = `keboola+${baseUrl}`;
  if (!token) throw new TakeoutError('USAGE', `${description}: no Storage API token`, { hint: 'set KBC_STORAGE_TOKEN or pass --token' });
  const cleartext = cleartextWarning(baseUrl);
  if (cleartext !== undefined) options.onWarning?.(cleartext);
  const client = new StorageClient({ baseUrl, token, ...(options.sleep ? { sleep: options.sleep } : {}), ...(options.onRequest ? { onRequest: options.onRequest } : {}) });
  const s3Endpoint = options.s3Endpoint ?? process.env[KEBOOLA_S3_ENDPOINT_ENV];
  const jobs = new Map<string, Promise<Job>>();
  const stores: Store[] = [];

  /** The file with fresh temporary credentials, and a reader of its storage. */
  async function fileStore(fileId: string | number): Promise<FileStorage> {
    const file = await client.get<StorageFile>(`files/${fileId}`, { query: { federationToken: 1 } });
    registerFileSecrets(file);
    const storage = await openFileStorage(file, fileId, {
      description,
      ...(s3Endpoint ? { s3Endpoint } : {}),
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      ...(options.throttle ? { throttle: options.throttle } : {}),
    });
    stores.push(storage.store);
    return storage;
  }

  /** A file's slices (or its one object, which then starts with a header), read with its temporary credentials. */
  async function fileBody(fileId: string | number): Promise<GzipSlicesBody> {
    let current = await fileStore(fileId);
    const fresh = async (): Promise<Store> => {
      if (current.expires - Date.now() < CREDENTIAL_MARGIN_MS) current = await fileStore(fileId);
      return current.store;
    };
    /**
     * One object read with credentials fresh enough; refused (AUTH) once, read again with the file fetched
     * anew: a SAS or token can end before the time the answer gave (clocks differ, a key was rotated).
     * Refused again, the error names the file.
     */
    const read = async (objectKey: string): Promise<Readable> => {
      const before = await fresh();
      try {
        return await before.get(objectKey);
      } catch (error) {
        if (!(error instanceof TakeoutError) || error.code !== 'AUTH') throw error;
        if (current.store === before) current = await fileStore(fileId);
        try {
          return await current.store.get(objectKey);
        } catch (again) {
          if (!(again instanceof TakeoutError) || again.code !== 'AUTH') throw again;
          throw new TakeoutError('AUTH', `file ${fileId}: ${again.message}`, {
            cause: again,
            hint: 'the file storage refused the credentials the Storage API gave for this file; check the token can read it and run again',
          });
        }
      }
    };
    const { key, entryKey, isSliced } = current;
    if (!isSliced) {
      return { kind: 'gzip-slices', header: true, slices: [{ origin: `file ${fileId}`, open: () => read(key) }] };
    }
    const text = await readManifestText(await read(`${key}manifest`), `file ${fileId} manifest`);
    const plan = redshiftPlan(readManifestDocument(text, `file ${fileId} manifest`), `file ${fileId} manifest`);
    const slices = plan.entries.map((entry) => {
      const sliceKey = entryKey(entry.location, entry.label);
      return { origin: entry.label, open: () => read(sliceKey) };
    });
    return { kind: 'gzip-slices', slices };
  }

  return {
    description,

    project: (): Promise<ProjectDescriptor> => listProject(client, baseUrl),

    async prepare(tables: TableDescriptor[], open: OpenTableOptions): Promise<void> {
      // All exports are queued before any is awaited, so the stack works on them in parallel.
      for (const table of tables) {
        const job = queue(client, description, table, open.query);
        job.catch(() => undefined);
        jobs.set(table.id, job);
      }
    },

    async openTable(table: TableDescriptor, open: OpenTableOptions): Promise<TableBody> {
      const started = jobs.get(table.id) ?? queue(client, description, table, open.query);
      jobs.delete(table.id);
      const job = await finished(client, table, await started, open.signal);
      const results = job.results as { file?: { id: number | string } } | null | undefined;
      const fileId = results && !Array.isArray(results) ? results.file?.id : undefined;
      if (fileId === undefined) throw new TakeoutError('FAILED', `table ${table.id}: export job ${job.id} finished without a file`);
      const file = await fileBody(fileId);
      if (!file.header) return file;
      // One object with a header: gunzipped and sliced like any CSV.
      const raw = await file.slices[0]!.open();
      const gunzip = createGunzip({ chunkSize: 1 << 20 });
      raw.on('error', (error) => gunzip.destroy(error));
      return { kind: 'csv', stream: raw.pipe(gunzip), hasHeader: true, origin: `file ${fileId}` };
    },

    openFile(fileId: string): Promise<GzipSlicesBody> {
      if (!/^\d+$/.test(fileId)) throw new TakeoutError('USAGE', `${description}: '${fileId}' is not a Storage API file id`);
      return fileBody(fileId);
    },

    async close(): Promise<void> {
      for (const store of stores.splice(0)) await store.close?.();
    },
  };
}
