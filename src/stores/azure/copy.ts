/**
 * Server-side copies within one storage account: Copy Blob (`beginCopyFromURL`), which Azure runs itself
 * (https://learn.microsoft.com/rest/api/storageservices/copy-blob). Within one account its source is read with
 * the request's own Shared Key authorization; with a SAS the source URL carries the SAS (both checked against
 * Azurite). Not `syncCopyFromURL` (Copy Blob From URL: 256 MiB at most) nor
 * `stageBlockFromURL` (which Azurite lacks). A pending copy is polled to its end, within a bound.
 */
import type { BlobClient } from '@azure/storage-blob';
import { TakeoutError } from '../../errors.js';
import type { ObjectInfo } from '../store.js';

/** 2 s between polls of a pending copy: within one account most finish at once (the first answer says success). */
export const COPY_POLL_MS = 2_000;
/** 1 hour: a copy inside one account still pending after this is aborted (Abort Copy Blob) and reported. */
export const MAX_COPY_WAIT_MS = 60 * 60_000;

export interface AzureCopyRequest {
  source: BlobClient;
  info: ObjectInfo;
  destination: BlobClient;
  createOnly: boolean;
  signal?: AbortSignal | undefined;
  /** Where the destination is, for messages. */
  where: string;
  waitMs?: number;
}

/** Copies and waits for the copy to end; SDK errors are thrown as they are, for the store to map. */
export async function copyBlob(request: AzureCopyRequest): Promise<void> {
  const poller = await request.destination.beginCopyFromURL(request.source.url, {
    intervalInMs: COPY_POLL_MS,
    ...(request.createOnly ? { conditions: { ifNoneMatch: '*' } } : {}),
    // The source as it was when looked up: one replaced meanwhile fails (412) instead of being copied.
    ...(request.info.etag === undefined ? {} : { sourceConditions: { ifMatch: `"${request.info.etag}"` } }),
    ...(request.signal ? { abortSignal: request.signal } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), request.waitMs ?? MAX_COPY_WAIT_MS);
    timer.unref();
  });
  try {
    const outcome = await Promise.race([poller.pollUntilDone(), timedOut]);
    if (outcome === 'timeout') {
      await poller.cancelOperation().catch(() => undefined);
      throw new TakeoutError('NETWORK', `the copy to ${request.where} was still pending after ${Math.round((request.waitMs ?? MAX_COPY_WAIT_MS) / 60_000)} min: aborted`);
    }
    if (outcome.copyStatus !== undefined && outcome.copyStatus !== 'success') {
      throw new TakeoutError('FAILED', `the copy to ${request.where} ended ${outcome.copyStatus}`);
    }
  } finally {
    clearTimeout(timer);
  }
}
