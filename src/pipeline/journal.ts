import type { Store } from '../stores/store.js';
import { TakeoutError } from '../errors.js';
import { JOURNAL_FILE, JOURNAL_VERSION, type Journal, type JournalSlice, type JournalTable } from '../manifests/journal.js';
import type { ManifestTable } from '../manifests/takeout.js';

/**
 * Keeps the journal at the destination current. Each change schedules a rewrite; rewrites are
 * serialised and coalesced (changes that arrive while one is in flight go out together in the next),
 * so slices that land in a burst cost one write, and a write never races an older one.
 */
export class JournalWriter {
  private readonly journal: Journal;
  private pending = false;
  private writing: Promise<void> | undefined;
  private failure: unknown;
  private readonly failedController = new AbortController();
  private readonly key: string;

  constructor(
    private readonly destination: Pick<Store, 'put' | 'delete'>,
    init: { runId: string; fingerprint: Record<string, unknown>; previous?: Journal; key?: string },
  ) {
    this.key = init.key ?? JOURNAL_FILE;
    const now = new Date().toISOString();
    this.journal = init.previous
      ? { ...init.previous, attempts: init.previous.attempts + 1, updatedAt: now }
      : { formatVersion: JOURNAL_VERSION, kind: 'takeout-journal', runId: init.runId, startedAt: now, updatedAt: now, attempts: 1, fingerprint: init.fingerprint, tables: {} };
  }

  get runId(): string {
    return this.journal.runId;
  }

  tableNames(): string[] {
    return Object.keys(this.journal.tables);
  }

  table(id: string): JournalTable | undefined {
    return this.journal.tables[id];
  }

  /** Replace a table's entry (e.g. only the slices a resumed run found intact). */
  setTable(id: string, entry: JournalTable | undefined): void {
    if (entry) this.journal.tables[id] = entry;
    else delete this.journal.tables[id];
    this.schedule();
  }

  /** A slice landed (or was found intact): record it, replacing an older entry of the same index. */
  slice(tableId: string, slice: JournalSlice): void {
    const entry = (this.journal.tables[tableId] ??= { status: 'in-progress', slices: [] });
    entry.slices = [...entry.slices.filter((s) => s.index !== slice.index), slice].sort((a, b) => a.index - b.index);
    this.schedule();
  }

  complete(table: ManifestTable): void {
    const entry = this.journal.tables[table.id];
    this.journal.tables[table.id] = { status: 'complete', slices: entry?.slices ?? [], manifest: table };
    this.schedule();
  }

  /**
   * Aborted with the error of the first write that failed: the run stops its tables at once instead of
   * moving data that no journal records (and learns why from `check()`).
   */
  get failed(): AbortSignal {
    return this.failedController.signal;
  }

  /** Throws the error of the first failed write, if one failed. */
  check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for the writes in flight; throws the error of the first one that failed. */
  async drain(): Promise<void> {
    await this.idle();
    this.check();
  }

  /** Write now (the first write, before any data moves, so a run killed at once still leaves a journal). */
  async flush(): Promise<void> {
    this.schedule();
    await this.idle();
    this.check();
  }

  /**
   * The run failed or was interrupted: keep the journal when it records landed slices (a --resume goes on
   * from them), otherwise remove it, so that a rerun is not asked to resume nothing. Never throws.
   */
  async settle(): Promise<void> {
    await this.flush().catch(() => undefined);
    if (Object.values(this.journal.tables).every((t) => t.slices.length === 0)) await this.remove().catch(() => undefined);
  }

  /** The run committed its manifest: the journal has done its job. */
  async remove(): Promise<void> {
    await this.idle();
    await this.destination.delete([this.key]);
  }

  /**
   * Waits for the write in flight (and the rewrites it coalesced). Each turn awaits a write loop that
   * `schedule()` started after the previous one was cleared, so this ends: it never awaits one settled
   * promise again and again, which would spin on microtasks without ever yielding to I/O or signals.
   */
  private async idle(): Promise<void> {
    for (let loop = this.writing; loop !== undefined; ) {
      await loop;
      const next = this.writing;
      if (next === loop) break;
      loop = next;
    }
  }

  private schedule(): void {
    this.pending = true;
    // After a failure nothing more is written: the run is ending, and the first error is the one reported.
    if (this.writing !== undefined || this.failure !== undefined) return;
    const loop = this.writeLoop();
    this.writing = loop;
    // Cleared from outside the loop, after it is stored: a loop that ends without awaiting (nothing
    // pending) must not leave its settled promise behind as "a write in flight".
    void loop.then(() => {
      if (this.writing === loop) this.writing = undefined;
    });
  }

  private async writeLoop(): Promise<void> {
    while (this.pending && this.failure === undefined) {
      this.pending = false;
      this.journal.updatedAt = new Date().toISOString();
      try {
        await this.destination.put(this.key, `${JSON.stringify(this.journal)}\n`, { contentType: 'application/json' });
      } catch (error) {
        this.failure = error instanceof TakeoutError ? error : new TakeoutError('FAILED', `could not write ${this.key}: ${(error as Error).message}`, { cause: error });
        this.failedController.abort(this.failure);
      }
    }
  }
}
