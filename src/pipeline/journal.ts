import type { Destination } from '../destinations/destination.js';
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
  private readonly key: string;

  constructor(
    private readonly destination: Pick<Destination, 'put' | 'delete'>,
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

  /** Write now (the first write, before any data moves, so a run killed at once still leaves a journal). */
  async flush(): Promise<void> {
    this.schedule();
    while (this.writing) await this.writing;
    if (this.failure !== undefined) throw this.failure;
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
    while (this.writing) await this.writing;
    await this.destination.delete([this.key]);
  }

  private schedule(): void {
    this.pending = true;
    if (this.writing) return;
    this.writing = (async () => {
      while (this.pending && this.failure === undefined) {
        this.pending = false;
        this.journal.updatedAt = new Date().toISOString();
        try {
          await this.destination.put(this.key, `${JSON.stringify(this.journal)}\n`, { contentType: 'application/json' });
        } catch (error) {
          this.failure = error instanceof TakeoutError ? error : new TakeoutError('FAILED', `could not write ${this.key}: ${(error as Error).message}`);
        }
      }
      this.writing = undefined;
    })();
  }
}
