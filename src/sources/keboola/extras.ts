/**
 * What Keboola's backup engine keeps besides buckets, tables and configurations
 * (keboola/php-kbc-project-backup `src/Backup.php`): the default branch's metadata, triggers, notification
 * subscriptions, permanent files and each configuration's metadata, read from the same endpoints.
 */
import { TakeoutError, toTakeoutError } from '../../errors.js';
import type { ComponentDescriptor, KeboolaProjectExtras, PermanentFileDescriptor } from '../../model.js';
import { isLoopbackHost, type StorageClient } from './client.js';

type Json = Record<string, unknown>;

/**
 * `GET files` page size: the documented default (keboola.docs.apiary.io, "List Files", limit default 100). The
 * listing ends at a short page, so a page size above a server cap the documentation does not give would end it early.
 */
const FILES_PAGE = 100;
/** The id the notification service is listed under in the stack's service index (`GET /v2/storage/`). */
const NOTIFICATION_SERVICE = 'notification';

/** The default branch's id (`GET dev-branches`, the one with `isDefault: true`), as Backup.php finds it. */
export async function defaultBranchId(client: StorageClient): Promise<string> {
  const branches = await client.get<Json[]>('dev-branches');
  const found = branches.find((b) => b.isDefault === true);
  if (found === undefined) throw new TakeoutError('FAILED', 'Storage API GET dev-branches: no default branch');
  return String(found.id);
}

/** Files kept for good: `maxAgeDays` null (Backup.php `backupPermanentFiles`), every page of `GET files`. */
async function permanentFiles(client: StorageClient): Promise<PermanentFileDescriptor[]> {
  const taken: PermanentFileDescriptor[] = [];
  for (let offset = 0; ; offset += FILES_PAGE) {
    const page = await client.get<Json[]>('files', { query: { limit: FILES_PAGE, offset } });
    for (const f of page) {
      if (f.maxAgeDays !== null) continue;
      taken.push({
        id: f.id as string | number,
        name: String(f.name),
        tags: Array.isArray(f.tags) ? f.tags : [],
        ...(typeof f.sizeBytes === 'number' ? { sizeBytes: f.sizeBytes } : {}),
      });
    }
    if (page.length < FILES_PAGE) return taken;
  }
}

/** The notification service's URL from the stack's service index, or undefined when the stack has none. */
export async function notificationUrl(client: StorageClient): Promise<string | undefined> {
  const index = await client.get<{ services?: { id?: string; url?: string }[] }>('', { query: { exclude: 'components' } });
  const url = index.services?.find((s) => s.id === NOTIFICATION_SERVICE)?.url;
  if (url === undefined) return undefined;
  const parsed = new URL(url);
  // The token goes there too: over https, or to this machine.
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
    throw new TakeoutError('FAILED', `Storage API service index: the notification service is at ${parsed.origin}, not over https; the token is not sent there`);
  }
  return url;
}

/** Subscriptions of the default branch (Backup.php `backupNotifications` leaves other branches' out). */
async function notifications(client: StorageClient, branchId: string, warnings: string[]): Promise<unknown[]> {
  const url = await notificationUrl(client);
  if (url === undefined) {
    warnings.push('the stack lists no notification service: notifications.json is empty');
    return [];
  }
  const subscriptions = await client.getService<Json[]>(url, 'project-subscriptions');
  return subscriptions.filter((s) => {
    const filters = Array.isArray(s.filters) ? (s.filters as Json[]) : [];
    return !filters.some((f) => f.field === 'branch.id' && f.value !== branchId);
  });
}

/** Each configuration's metadata, put on its descriptor (Backup.php lists it per configuration on the default branch). */
async function configurationMetadata(client: StorageClient, branchId: string, components: readonly ComponentDescriptor[]): Promise<void> {
  for (const component of components) {
    for (const config of component.configurations) {
      const path = `branch/${encodeURIComponent(branchId)}/components/${encodeURIComponent(component.id)}/configs/${encodeURIComponent(config.id)}/metadata`;
      config.metadata = await client.get<unknown[]>(path);
    }
  }
}

/**
 * One part, or its empty value with a warning when the token may not read it (AUTH): a token that can
 * take the tables out is not refused for want of, say, the right to list triggers; the run says what it left out.
 */
async function readable<T>(what: string, empty: T, warnings: string[], read: () => Promise<T>, anyFailure = false): Promise<T> {
  try {
    return await read();
  } catch (error) {
    const failure = toTakeoutError(error);
    if (!anyFailure && failure.code !== 'AUTH') throw failure;
    warnings.push(`${what} not taken: ${failure.message}`);
    return empty;
  }
}

/** Everything beyond buckets, tables and configurations that Keboola's restore engine reads back. */
export async function listExtras(client: StorageClient, components: readonly ComponentDescriptor[], warnings: string[]): Promise<KeboolaProjectExtras> {
  const branchId = await defaultBranchId(client);
  const branch = encodeURIComponent(branchId);
  const branchMetadata = await readable('branch metadata', [], warnings, () => client.get<unknown[]>(`branch/${branch}/metadata`));
  await readable('configuration metadata', undefined, warnings, () => configurationMetadata(client, branchId, components));
  const triggers = await readable('triggers', [], warnings, () => client.get<unknown[]>('triggers'));
  // A separate service: whatever keeps it from answering, the takeout goes on without notifications and says so.
  const subscriptions = await readable('notifications', [], warnings, () => notifications(client, branchId, warnings), true);
  const files = await readable('permanent files', [], warnings, () => permanentFiles(client));
  return { branchMetadata, triggers, notifications: subscriptions, permanentFiles: files };
}
