import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { canPreflight, isLocalFolder, type Store } from '../stores/store.js';
import { findCaseCollision } from '../stores/keys.js';
import { TakeoutError } from '../errors.js';
import { BUCKETS_FILE, isLayoutKey, tablePath } from '../keboola/layout.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import { JOURNAL_FILE, type Journal } from '../manifests/journal.js';
import { isLeaseKey } from '../manifests/lease.js';
import type { Source } from '../sources/source.js';
import { untilAborted } from './limit.js';
import type { TableDescriptor } from '../model.js';
import type { Emit } from './events.js';
import { checkJournal } from './resume.js';
import { formatBytes } from '../units.js';

/** Keys looked at for content that is not a takeout: one S3 listing page, so a large takeout costs one request. */
const OTHER_CONTENT_PROBE_KEYS = 1000;

/**
 * The checks a takeout makes before any data moves, in one place for the real run and `--dry-run`:
 * the dry run makes them read-only and reports what it checked; a problem is the same error (and
 * exit code) either way. Only free space differs: the estimate is of the source's bytes before gzip,
 * so a real run only warns, while a dry run (whose job is to say what could go wrong) refuses.
 */
export interface PreflightOptions {
  source: Source;
  destination: Store;
  /** The selected tables whose data is written. */
  tables: readonly TableDescriptor[];
  fingerprint: Record<string, unknown>;
  overwrite: boolean;
  resume: boolean;
  /** Read-only, and the reach checks made here; a real run makes them (checkReach) before it writes its lease. */
  dryRun: boolean;
  /** The plan's estimate of the data, before compression. */
  estimatedBytes: number;
  emit: Emit;
  signal?: AbortSignal;
}

export interface PreflightResult {
  /** The interrupted run's journal a --resume goes on with. */
  previous: Journal | undefined;
  /** What was checked, one line each, for the dry run's report. */
  checks: string[];
}

export async function preflight(options: PreflightOptions): Promise<PreflightResult> {
  const { destination, emit, dryRun } = options;
  const checks = dryRun ? await checkReach(options.source, destination, true, options.signal) : [];
  checks.push(`${destination.description} can be reached${isLocalFolder(destination) ? ' and written' : ' with these credentials'}`);
  await checkCaseCollisions(destination, options.tables, emit, dryRun);
  const previous = await checkJournal(destination, { fingerprint: options.fingerprint, resume: options.resume, overwrite: options.overwrite });
  checks.push(await checkExisting(destination, { overwrite: options.overwrite || previous !== undefined, resume: options.resume, previous, emit }));
  const space = await checkFreeSpace(destination, options.estimatedBytes, dryRun, emit);
  if (space) checks.push(space);
  return { previous, checks };
}

/**
 * Source and destination do not overlap, and the destination can be reached (credentials, the bucket, a folder
 * that can be made): what a run asks before it writes anything, its lease included, so that the error names
 * the cause rather than the lease file.
 */
export async function checkReach(source: Source, destination: Store, readOnly: boolean, signal?: AbortSignal): Promise<string[]> {
  const overlap = await checkOverlap(source, destination);
  if (canPreflight(destination)) await untilAborted(destination.preflight({ readOnly }), signal, `checking ${destination.description}`);
  return overlap ? [overlap] : [];
}

/** The real path of `p`, or of its closest existing ancestor joined with the rest (a destination may not exist yet). */
async function realish(p: string): Promise<string> {
  const rest: string[] = [];
  let at = path.resolve(p);
  for (;;) {
    try {
      return path.join(await realpath(at), ...rest.reverse());
    } catch {
      const parent = path.dirname(at);
      if (parent === at) return path.resolve(p);
      rest.push(path.basename(at));
      at = parent;
    }
  }
}

function inside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative));
}

/**
 * A destination folder inside the source folder is read back as source data by the next run; a source
 * inside the destination can lose files to --overwrite's removal of stale parts. Both are refused.
 */
export async function checkOverlap(source: Source, destination: Store): Promise<string | undefined> {
  if (source.localPath === undefined || !isLocalFolder(destination)) return undefined;
  const from = await realish(source.localPath);
  const to = await realish(destination.localPath);
  const hint = 'choose a destination outside the source folder (and not around it)';
  if (from === to) throw new TakeoutError('USAGE', `the destination ${to} is the source folder`, { hint });
  if (inside(to, from)) throw new TakeoutError('USAGE', `the destination ${to} is inside the source folder ${from}`, { hint });
  if (inside(from, to)) throw new TakeoutError('USAGE', `the source folder ${from} is inside the destination ${to}`, { hint });
  return 'source and destination folders do not overlap';
}

/**
 * Tables whose file names differ only in case (`in.c-main.Users`, `in.c-main.users`): one would replace the
 * other in a folder on a case-insensitive file system, so that is refused before anything is written; elsewhere
 * (S3, Linux) both are written and a warning says where they would collide. A dry run cannot probe the file
 * system (the probe writes a file), so it warns.
 */
async function checkCaseCollisions(destination: Store, tables: readonly TableDescriptor[], emit: Emit, dryRun: boolean): Promise<void> {
  const byPath = new Map(tables.map((t) => [tablePath(t), t.id]));
  const collision = findCaseCollision(byPath.keys());
  if (!collision) return;
  const [a, b] = collision.map((p) => byPath.get(p) ?? p) as [string, string];
  if (!dryRun && isLocalFolder(destination) && (await destination.caseInsensitive())) {
    throw new TakeoutError('INVALID_INPUT', `tables ${a} and ${b} differ only in case: their files would replace each other at ${destination.description} (a case-insensitive file system)`, {
      hint: 'leave one out with --exclude, or take out to S3 or a case-sensitive folder',
    });
  }
  emit({
    type: 'warning',
    message:
      `tables ${a} and ${b} differ only in case: their files collide if this takeout is copied to a case-insensitive file system (macOS, Windows)` +
      (dryRun && isLocalFolder(destination) ? '; the run refuses them if the destination folder is one' : ''),
  });
}

/** Keys a takeout writes (or its journal): anything else at the destination is someone else's. */
function isTakeoutKey(key: string): boolean {
  return isLayoutKey(key) || key.startsWith(`${MANIFESTS_DIR}/`) || key === TAKEOUT_MANIFEST_FILE || key === JOURNAL_FILE;
}

/**
 * A destination that holds a takeout is refused unless it is replaced (--overwrite) or resumed. Other
 * content is not refused (a takeout is written beside it, and --overwrite removes only takeout files),
 * but it is said, so a wrong prefix is noticed. Returns what was found, for the dry run's report.
 */
async function checkExisting(
  destination: Store,
  mode: { overwrite: boolean; resume: boolean; previous: Journal | undefined; emit: Emit },
): Promise<string> {
  if (!mode.overwrite) {
    const existing = (await destination.head(TAKEOUT_MANIFEST_FILE)) ?? (await destination.head(BUCKETS_FILE));
    if (existing) {
      throw new TakeoutError('EXISTS', `${destination.description} already holds a ${mode.resume ? 'finished ' : ''}takeout (${existing.key})${mode.resume ? ': nothing to resume' : ''}`, {
        hint: mode.resume ? `check it with takeout verify, or pass --overwrite to take it out again` : 'choose an empty destination, or pass --overwrite to replace it',
      });
    }
  }
  let takeout = 0;
  let other: string | undefined;
  for await (const object of destination.list('')) {
    if (takeout >= OTHER_CONTENT_PROBE_KEYS) break;
    // Leases are not content: this run's own, or an export's beside it (which the lease check has weighed).
    if (isLeaseKey(object.key)) continue;
    if (isTakeoutKey(object.key)) takeout++;
    else {
      other = object.key;
      break;
    }
  }
  if (other !== undefined) {
    mode.emit({ type: 'warning', message: `${destination.description} already holds files that are not a takeout (${JSON.stringify(other)}): the takeout is written beside them` });
    return `${destination.description} holds other files (the takeout is written beside them)`;
  }
  if (mode.previous) return `${destination.description} holds the interrupted run ${mode.previous.runId} to resume`;
  if (takeout > 0) return `${destination.description} holds a takeout that --overwrite replaces`;
  return `${destination.description} is empty`;
}

async function checkFreeSpace(destination: Store, estimatedBytes: number, dryRun: boolean, emit: Emit): Promise<string | undefined> {
  const free = isLocalFolder(destination) ? await destination.freeBytes() : undefined;
  if (free === undefined) return undefined;
  if (free >= estimatedBytes) return `${formatBytes(free)} free for an estimated ${formatBytes(estimatedBytes)} before compression`;
  const message = `${destination.description} has ${formatBytes(free)} free, less than the estimated ${formatBytes(estimatedBytes)} of data before compression`;
  if (!dryRun) {
    emit({ type: 'warning', message: `${message}: the run fails if the compressed slices do not fit` });
    return undefined;
  }
  // A real run that fills the disk ends with ENOSPC, FAILED (exit 1): the dry run says so up front.
  throw new TakeoutError('FAILED', `${message}: the run may fill the disk`, {
    hint: 'free some space or choose another destination (gzip usually makes CSV several times smaller, so it may still fit)',
  });
}
