import { randomUUID } from 'node:crypto';
import { canCleanLeftovers, canPreflight, type Leftover } from '../stores/store.js';
import { openStore } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import { acquireLease, liveLeases, nestedLeases } from '../pipeline/lease.js';
import type { LeaseRecord } from '../manifests/lease.js';
import { parseDuration } from '../units.js';
import { COMMON_OPTIONS, destinationOptions, S3_ACCESS_OPTIONS, type OptionSpec, type OptionValues } from './options.js';
import type { CommandContext } from './context.js';

export const CLEANUP_OPTIONS = [
  { key: 'olderThan', flags: '--older-than <age>', description: 'only leftovers older than this: 30m, 24h, 7d, 1w, or 0 for all', type: 'string', default: '24h' },
  { key: 'dryRun', flags: '-n, --dry-run', description: 'list what would be aborted or removed, change nothing', type: 'boolean', default: false },
] as const satisfies readonly OptionSpec[];

export const CLEANUP_SPECS = [...CLEANUP_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS] as const;

export type CleanupOptions = OptionValues<typeof CLEANUP_SPECS>;

/** What cleanup does, item by item, as it does it: the CLI says each as it comes (a line, or a JSON object). */
export type CleanupEvent =
  | { kind: 'cleaned'; item: Leftover; dryRun: boolean }
  | { kind: 'kept'; item: Leftover; folder: string; holder: LeaseRecord }
  | { kind: 'in-use'; destination: string; holder: LeaseRecord }
  /** The counts, once every item is done (before the lease is given back). */
  | { kind: 'summary'; summary: CleanupSummary };

export interface CleanupSummary {
  destination: string;
  dryRun: boolean;
  olderThanMs: number;
  multipartUploads: number;
  tempFiles: number;
  keptForLiveRuns: number;
}

/** `30m`, `24h`, `7d`, `1w`, `90s` or `0` → milliseconds (parseDuration: a bare number other than 0 has no unit). */
export function parseAge(text: string, origin = '--older-than'): number {
  const age = parseDuration(text, origin);
  if (!age.ok) throw age.error;
  return age.value;
}

/**
 * `takeout cleanup`: aborts the incomplete multipart uploads and removes the temp files older than `olderThanMs`
 * (--older-than, parsed by the caller before anything is set up) that crashed runs left, holding the
 * destination's lease while it works; leaves alone what lies under a folder whose lease is live.
 */
export async function cleanup(dest: string, o: CleanupOptions, olderThanMs: number, context: CommandContext, onEvent: (event: CleanupEvent) => void): Promise<CleanupSummary> {
  const dryRun = o.dryRun;
  const destination = await openStore(dest, destinationOptions(o, context.network));
  context.onClose(async () => destination.close?.());
  const summary: CleanupSummary = { destination: destination.description, dryRun, olderThanMs, multipartUploads: 0, tempFiles: 0, keptForLiveRuns: 0 };
  if (!canCleanLeftovers(destination)) {
    // GCS: an unfinished resumable upload is a session, not an object; it cannot be listed and expires after a
    // week (cloud.google.com/storage/docs/resumable-uploads). Nothing to do is success, so a nightly cleanup
    // over every destination does not fail on this one; the access is still proved.
    if (canPreflight(destination)) await destination.preflight({ readOnly: true });
    context.reporter.emit({ type: 'warning', message: `${destination.description}: nothing a crashed run leaves there can be listed or cleaned (an unfinished upload holds no object and expires on its own)` });
    onEvent({ kind: 'summary', summary });
    return summary;
  }
  const leftovers = destination.leftovers.bind(destination);
  const removeLeftover = destination.removeLeftover.bind(destination);
  const clean = async (): Promise<void> => {
    // A run under a folder of this prefix (cleanup s3://backups/ while a run writes to s3://backups/kbc/).
    const holderOf = nestedLeases(destination);
    for (const item of found) {
      if (context.signal.aborted) throw new TakeoutError('INTERRUPTED', 'cleanup interrupted');
      if (lease?.failure) throw lease.failure;
      const holder = await holderOf(item.key);
      if (holder) {
        summary.keptForLiveRuns += 1;
        onEvent({ kind: 'kept', item, folder: holder.folder, holder: holder.lease });
        continue;
      }
      if (!dryRun) await removeLeftover(item);
      if (item.kind === 'multipart-upload') summary.multipartUploads += 1;
      else summary.tempFiles += 1;
      onEvent({ kind: 'cleaned', item, dryRun });
    }
    onEvent({ kind: 'summary', summary });
  };
  // A live run's uploads look just like a dead one's: cleanup holds the lease while it works, so no run
  // starts meanwhile, and is refused (exit 9) while a run holds it. A dry run only says so.
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomUUID().slice(0, 8)}`;
  // Listed first: a folder with nothing to clean is not created by writing a lease into it.
  const found: Leftover[] = [];
  for await (const item of leftovers(olderThanMs)) {
    if (context.signal.aborted) throw new TakeoutError('INTERRUPTED', 'cleanup interrupted');
    found.push(item);
  }
  const lease = dryRun || found.length === 0
    ? undefined
    : await acquireLease(destination, { runId, command: 'cleanup', toolVersion: context.version, scope: { kind: 'run' }, takeOver: true, takeOverWith: 'cleanup', emit: (event) => context.reporter.emit(event), signal: context.signal });
  if (dryRun) {
    for (const holder of await liveLeases(destination)) onEvent({ kind: 'in-use', destination: destination.description, holder });
  }
  try {
    await clean();
  } finally {
    await lease?.release((event) => context.reporter.emit(event));
  }
  return summary;
}
