import type { Readable } from 'node:stream';
import { TakeoutError } from '../../errors.js';
import { FILES_DIR } from '../../keboola/layout.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import type { RestoreExtra } from '../target.js';
import type { Json } from './api.js';
import { prepare, type UploadOptions } from './files.js';

/**
 * Permanent files as Keboola's restore engine restores them (php-kbc-project-restore Restore.php
 * restorePermanentFiles): each `files/<id>` of permanentFiles.json uploaded again with its name and tags as a
 * permanent file (`POST files/prepare` with `isPermanent: true`, `federationToken`, then the bytes to the
 * stack's file storage with the credentials answered; storage-api-php-client uploadFile). The bytes are
 * streamed from the takeout through the manifest's size and sha256 check, never held whole; the plan has
 * checked them once already, before anything was written. A failure ends the restore, as it ends the engine's:
 * a file half uploaded is not a file restored.
 */

export interface PermanentFile {
  id: string;
  name: string;
  tags: string[];
}

export function permanentFilesOf(list: readonly Json[]): PermanentFile[] {
  return list.map((f) => ({ id: String(f.id), name: String(f.name), tags: Array.isArray(f.tags) ? f.tags.map(String) : [] }));
}

export function planPermanentFile(file: PermanentFile): RestoreExtra {
  return { kind: 'permanent file', name: `${file.id} (${file.name})`, action: 'create' };
}

/** Uploads one permanent file; answers its new id. */
export async function uploadPermanentFile(
  client: StorageClient,
  file: PermanentFile,
  sizeBytes: number,
  open: (key: string) => Promise<Readable>,
  options: UploadOptions,
): Promise<number | string> {
  const body = await open(`${FILES_DIR}/${file.id}`);
  // The check's error stays on the stream until it is read, not thrown as unhandled while files/prepare is awaited.
  body.on('error', () => undefined);
  const { prepared, storage } = await prepare(
    client,
    { name: file.name, isPermanent: true, isSliced: false, federationToken: true, isEncrypted: true, notify: false, sizeBytes, tags: file.tags },
    options,
  );
  try {
    const writer = await storage.store.writer(storage.key, { contentType: 'application/octet-stream', ...(options.signal ? { signal: options.signal } : {}) });
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) await writer.write(chunk);
      await writer.finish();
    } catch (error) {
      await writer.abort().catch(() => undefined);
      throw error instanceof TakeoutError ? error : new TakeoutError('FAILED', `${options.description}: permanent file ${file.id} (${file.name}): ${(error as Error).message}`, { cause: error });
    }
  } finally {
    body.destroy();
    await storage.store.close?.();
  }
  return prepared.id;
}
