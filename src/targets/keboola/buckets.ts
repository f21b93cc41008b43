import type { StorageClient } from '../../sources/keboola/client.js';
import { metadataByProvider, type Json } from './api.js';

/**
 * Buckets as Keboola's restore engine makes them (keboola/php-kbc-project-restore Restore.php restoreBucket):
 * `POST buckets` with the name without its `c-` prefix, the stage and the description, then the bucket's
 * metadata per provider (`POST buckets/{id}/metadata`). Linked buckets (a `sourceBucket`) and system buckets
 * (a name without `c-`, or the `sys` stage, which `POST buckets` does not take: apiary.apib stage in|out) are
 * skipped and named. The stack's default backend is used (the engine's `useDefaultBackend`).
 */

/** Why a bucket of buckets.json is not restored, or undefined when it is. */
export function bucketSkipReason(bucket: Json): string | undefined {
  if (bucket.sourceBucket) return 'a linked bucket (link it again from its source project)';
  if (typeof bucket.name !== 'string' || !bucket.name.startsWith('c-') || bucket.stage === 'sys') return 'a system bucket (Keboola creates it)';
  if (bucket.stage !== 'in' && bucket.stage !== 'out') return `stage ${JSON.stringify(bucket.stage)} is neither in nor out`;
  return undefined;
}

/** Creates a bucket (unless `exists`: --resume found it made by the interrupted restore), then sets its metadata. */
export async function createBucket(client: StorageClient, bucket: Json, exists = false, signal?: AbortSignal): Promise<void> {
  const name = String(bucket.name).slice(2);
  const displayName = typeof bucket.displayName === 'string' && bucket.displayName !== '' ? bucket.displayName : undefined;
  if (!exists) {
    await client.post('buckets', {
      body: { name, stage: bucket.stage, description: typeof bucket.description === 'string' ? bucket.description : '', ...(displayName ? { displayName } : {}) },
      ...(signal ? { signal } : {}),
    });
  }
  const id = String(bucket.id);
  for (const [provider, metadata] of metadataByProvider(bucket.metadata)) {
    await client.post(`buckets/${encodeURIComponent(id)}/metadata`, { body: { provider, metadata }, ...(signal ? { signal } : {}) });
  }
}
