import { createHash } from 'node:crypto';
import { canCleanLeftovers, type Store } from '../stores/store.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { fingerprintDifference, readJournal, type Journal, type JournalSlice } from '../manifests/journal.js';
import type { Emit } from './events.js';
import { JournalWriter } from './journal.js';
import { mapLimit } from './limit.js';
import { plural } from '../units.js';

/** Landed slices checked at once when a run resumes (HEADs, or local reads). */
const CHECK_CONCURRENCY = 8;

/**
 * A journal left by an interrupted run, when this run may go on with it. Without --resume it is
 * refused (the message says how to resume or start over); with --overwrite it is ignored; with --resume
 * its fingerprint must match this run's.
 */
export async function checkJournal(
  destination: Store,
  options: { fingerprint: Record<string, unknown>; resume: boolean; overwrite: boolean },
): Promise<Journal | undefined> {
  const previous = await readJournal(destination);
  if (!previous) return undefined;
  if (!options.resume) {
    if (options.overwrite) return undefined;
    const slices = Object.values(previous.tables).reduce((n, t) => n + t.slices.length, 0);
    throw new TakeoutError('EXISTS', `${destination.description} holds an unfinished takeout (run ${previous.runId}, started ${previous.startedAt}, ${plural(slices, 'slice')} landed)`, {
      hint: 'pass --resume to continue it, or --overwrite to start over',
    });
  }
  const difference = fingerprintDifference(previous.fingerprint, options.fingerprint);
  if (difference) {
    throw new TakeoutError('USAGE', `--resume: ${difference} differs from the interrupted run's, which would give other slices`, {
      hint: 'resume with the same options, or pass --overwrite instead of --resume to start over',
    });
  }
  return previous;
}

/**
 * Starts this run's journal: a new one, or the interrupted run's, after removing what the killed run
 * left unfinished (multipart uploads, temp files) and checking every landed slice (HEAD size and ETag;
 * read back and hashed where the store has no ETag). The journal is written before any data moves.
 */
export async function startJournal(
  destination: Store,
  previous: Journal | undefined,
  options: {
    runId: string;
    fingerprint: Record<string, unknown>;
    emit: Emit;
    signal?: AbortSignal;
    key?: string;
    /** Says why the dead run's leftovers must stay (another live run writes to the destination), if they must. */
    removeLeftovers?: () => Promise<string | undefined>;
  },
): Promise<JournalWriter> {
  const journal = new JournalWriter(destination, {
    runId: options.runId,
    fingerprint: options.fingerprint,
    ...(previous ? { previous } : {}),
    ...(options.key ? { key: options.key } : {}),
  });
  if (previous) {
    const keep = await options.removeLeftovers?.();
    if (keep === undefined) await removeLeftovers(destination, options.emit);
    else options.emit({ type: 'warning', message: `left unfinished uploads and temp files alone: ${keep}; takeout cleanup removes them later` });
    let dropped = 0;
    for (const [id, table] of Object.entries(previous.tables)) {
      options.signal?.throwIfAborted();
      const intact = await intactSlices(destination, table.slices);
      dropped += table.slices.length - intact.length;
      journal.setTable(id, table.status === 'complete' && intact.length === table.slices.length ? table : { status: 'in-progress', slices: intact });
    }
    if (dropped > 0) options.emit({ type: 'warning', message: `${plural(dropped, 'slice')} the journal lists ${dropped === 1 ? 'is' : 'are'} missing or changed at the destination; ${dropped === 1 ? 'it' : 'they'} will be written again` });
  }
  await journal.flush();
  return journal;
}

/** The landed slices still at the destination as they were written. */
async function intactSlices(destination: Store, slices: readonly JournalSlice[]): Promise<JournalSlice[]> {
  const results = await mapLimit(slices, CHECK_CONCURRENCY, async (slice) => {
    const info = await destination.head(slice.key);
    if (!info || info.size !== slice.bytes) return false;
    if (slice.etag !== undefined && info.etag !== undefined) return info.etag === slice.etag;
    // No ETag to compare (a local folder): read it back.
    const hash = createHash('sha256');
    for await (const chunk of (await destination.get(slice.key)) as AsyncIterable<Buffer>) hash.update(chunk);
    return hash.digest('hex') === slice.sha256;
  });
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw toTakeoutError(failed.reason, 'checking the landed slices');
  return slices.filter((_, i) => results[i]?.status === 'fulfilled' && results[i].value);
}

/** A killed run sends no abort: its multipart uploads and temp files are still there. */
async function removeLeftovers(destination: Store, emit: Emit): Promise<void> {
  if (!canCleanLeftovers(destination)) return;
  let removed = 0;
  try {
    for await (const item of destination.leftovers(0)) {
      await destination.removeLeftover(item);
      removed++;
    }
  } catch (error) {
    const failure = toTakeoutError(error);
    // Some S3-compatible stores (s3rver among them) cannot list multipart uploads: nothing to find them by.
    if (failure.details.status !== 501) throw failure;
    emit({ type: 'warning', message: `${destination.description} cannot list unfinished multipart uploads; a lifecycle rule (AbortIncompleteMultipartUpload) removes what the interrupted run left` });
  }
  if (removed > 0) emit({ type: 'warning', message: `removed ${plural(removed, 'unfinished upload or temp file', 'unfinished uploads or temp files')} the interrupted run left` });
}
