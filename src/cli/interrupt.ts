import { isLocalFolder, type Store } from '../stores/store.js';

/**
 * What an interruption undoes, said in the words of the destinations this process writes to: a local
 * folder has temp files to remove and no uploads to abort. One CLI invocation per process, so the
 * state is the process's.
 */
let uploads = false;
/** A restore writes into a target (a database, a Keboola project), not into a store: it rolls a table back. */
let restoring = false;

/** Shortens the shutdown deadline, for tests that prove it holds without waiting for it. */
export const SHUTDOWN_DEADLINE_ENV = 'TAKEOUT_SHUTDOWN_DEADLINE_MS';

/** A command opened this destination to write to: any but a local folder (S3, Azure, GCS) has uploads to abort. */
export function noteDestination(destination: Store): void {
  if (!isLocalFolder(destination)) uploads = true;
}

export function noteRestore(): void {
  restoring = true;
}

/** What is being undone, for "takeout: interrupting: …". */
export function undoing(): string {
  if (restoring) return 'rolling back the table being loaded';
  return uploads ? 'aborting uploads and removing temp files' : 'removing temp files';
}

/** What was undone, for the "interrupted: …" error. */
export function undone(): string {
  if (restoring) return 'the table being loaded was rolled back; --resume goes on';
  return uploads ? 'open uploads were aborted and temp files removed' : 'temp files were removed';
}

/**
 * The abort reason when the reader of stdout went away (`takeout run --json | head -1`): the run stops and
 * cleans up as on Ctrl-C, then ends quietly with exit 0, as `cat` does when its reader has what it wanted.
 */
export class ReaderGone extends Error {
  constructor() {
    super('stdout was closed by its reader');
    this.name = 'ReaderGone';
  }
}

export function readerGone(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof ReaderGone;
}
