import type { StorageClient } from '../../sources/keboola/client.js';
import type { Json } from './api.js';

/**
 * The mark an unfinished restore leaves in the project: one item of the default branch's metadata
 * (apiary.apib "Development Branch Metadata": create or update, delete by id) holding the takeout's run id,
 * written before the first change and deleted after the last. A Keboola project has no transaction around a
 * restore (buckets, configurations and tables are separate calls and jobs), so this is what lets `--resume`
 * tell "what my interrupted restore of this takeout left" from "what the project held before" — and what
 * refuses a fresh restore into a project an interrupted one left half-made. A finished restore leaves nothing.
 */

export const RESTORE_MARKER_KEY = 'takeout.restore.runId';

const BRANCH_METADATA = 'branch/default/metadata';

export interface RestoreMarker {
  id: string;
  runId: string;
}

function find(list: unknown): RestoreMarker | undefined {
  const item = Array.isArray(list) ? (list as Json[]).find((m) => m.key === RESTORE_MARKER_KEY) : undefined;
  return item ? { id: String(item.id), runId: String(item.value) } : undefined;
}

export async function readMarker(client: StorageClient): Promise<RestoreMarker | undefined> {
  return find(await client.get<Json[]>(BRANCH_METADATA));
}

/** Writes the mark; answers it with the id the stack gave it (the answer lists all of the branch's metadata). */
export async function writeMarker(client: StorageClient, runId: string): Promise<RestoreMarker | undefined> {
  return find(await client.post<Json[]>(BRANCH_METADATA, { body: { metadata: [{ key: RESTORE_MARKER_KEY, value: runId }] } })) ?? (await readMarker(client));
}

export async function removeMarker(client: StorageClient, marker: RestoreMarker): Promise<void> {
  await client.request('DELETE', `${BRANCH_METADATA}/${encodeURIComponent(marker.id)}`);
}
