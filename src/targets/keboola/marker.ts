import type { StorageClient } from '../../sources/keboola/client.js';
import type { Json } from './api.js';

/**
 * The mark an unfinished restore leaves in the project: items of the default branch's metadata
 * (apiary.apib "Development Branch Metadata": create or update, delete by id) holding the takeout's run id,
 * written before the first change and deleted after the last, and how many of the steps that cannot be
 * told apart afterwards (triggers, notification subscriptions, permanent files: making one twice makes two)
 * are done. A Keboola project has no transaction around a restore (buckets, configurations and tables are
 * separate calls and jobs), so this is what lets `--resume` tell "what my interrupted restore of this
 * takeout left" from "what the project held before" — and what refuses a fresh restore into a project an
 * interrupted one left half-made. A finished restore leaves nothing.
 */

export const RESTORE_MARKER_KEY = 'takeout.restore.runId';
const PROGRESS_KEY = 'takeout.restore.extrasDone';
/** Branch metadata of takeout's own: never restored from a takeout into a project. */
export const MARKER_KEYS: ReadonlySet<string> = new Set([RESTORE_MARKER_KEY, PROGRESS_KEY]);

const BRANCH_METADATA = 'branch/default/metadata';

export interface RestoreMarker {
  runId: string;
  /** Triggers, subscriptions and permanent files made, in the takeout's order. */
  extrasDone: number;
}

function find(list: unknown): RestoreMarker | undefined {
  const items = Array.isArray(list) ? (list as Json[]) : [];
  const mark = items.find((m) => m.key === RESTORE_MARKER_KEY);
  if (!mark) return undefined;
  const done = Number(items.find((m) => m.key === PROGRESS_KEY)?.value ?? 0);
  return { runId: String(mark.value), extrasDone: Number.isSafeInteger(done) && done > 0 ? done : 0 };
}

export async function readMarker(client: StorageClient): Promise<RestoreMarker | undefined> {
  return find(await client.get<Json[]>(BRANCH_METADATA));
}

export async function writeMarker(client: StorageClient, runId: string): Promise<RestoreMarker> {
  await client.post(BRANCH_METADATA, { body: { metadata: [{ key: RESTORE_MARKER_KEY, value: runId }] } });
  return { runId, extrasDone: 0 };
}

export async function writeProgress(client: StorageClient, extrasDone: number): Promise<void> {
  await client.post(BRANCH_METADATA, { body: { metadata: [{ key: PROGRESS_KEY, value: String(extrasDone) }] } });
}

/** Deletes every item of the mark, by the ids the stack gave them. */
export async function removeMarker(client: StorageClient): Promise<void> {
  for (const item of await client.get<Json[]>(BRANCH_METADATA)) {
    if (MARKER_KEYS.has(String(item.key))) await client.request('DELETE', `${BRANCH_METADATA}/${encodeURIComponent(String(item.id))}`);
  }
}
