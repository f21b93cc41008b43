import type { PipelineEvent } from '../pipeline/events.js';

/**
 * Seconds between plain-mode progress lines: s5cmd --log-progress and rclone --stats both default to a
 * line every few seconds; 10 s keeps a CI log readable over an hour-long run (360 lines).
 */
export const PLAIN_PROGRESS_INTERVAL_MS = 10_000;
/** At most one `progress` event per second in --json: enough for a live view, few enough to log. */
export const JSON_PROGRESS_INTERVAL_MS = 1_000;
/**
 * Hidden: TAKEOUT_PROGRESS_INTERVAL_MS overrides both intervals, so tests see periodic progress in a run that
 * lasts a second. Not in --help or the README.
 */
export const PROGRESS_INTERVAL_ENV = 'TAKEOUT_PROGRESS_INTERVAL_MS';

export function progressInterval(env: NodeJS.ProcessEnv, fallback: number): number {
  const text = env[PROGRESS_INTERVAL_ENV];
  const value = text === undefined ? NaN : Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : fallback;
}

/** How a table's progress is measured: rows against its row count, or source bytes read against its size. */
export interface TableMeasure {
  unit: 'rows' | 'bytes' | 'none';
  done: number;
  /** In `unit`; absent when the source does not know it. */
  total?: number;
  rows: number;
  readBytes: number;
  writtenBytes: number;
  /** The table's size at the source, for weighting it in the overall progress. */
  estimatedBytes?: number;
  finished: boolean;
  /** Ended with an error: what it did not take leaves the total instead of counting as done. */
  failed?: boolean;
}

/** The `progress` event: the whole command's progress, source-side, with the bytes written apart. */
export interface ProgressSnapshot {
  type: 'progress';
  elapsedMs: number;
  /** Rows taken so far (absent for a merge, which does not count them). */
  rows?: number;
  /** Source-side bytes done: read, or for tables measured in rows, their share of their size. */
  doneBytes: number;
  /** Source-side size of everything this command takes, when every part of it has a known size. */
  totalBytes?: number;
  /** Bytes written to the destination so far (compressed where the output is). */
  writtenBytes: number;
  /** 0–100, when totalBytes is known. */
  percent?: number;
  /** doneBytes per second since the start. */
  bytesPerSecond: number;
  /** When percent is known and something is done. */
  etaMs?: number;
}

/**
 * Follows the pipeline's events and answers "how far along is the whole command?" in one unit: source-side
 * bytes. A table with a row count is measured in rows (a database's size on disk is not the size of its
 * CSV), scaled to its source size for the total; one with only a size in bytes read. Output bytes never
 * count against a source size.
 */
export class ProgressTracker {
  readonly tables = new Map<string, TableMeasure>();
  private readonly started: number;
  /** The run's whole estimate (run:start): tables not started yet count in the total. */
  private plannedBytes: number | undefined;
  private plannedTables: number | undefined;
  private merge: { done: number; total?: number; written: number } | undefined;
  private active = false;

  constructor(private readonly now: () => number = Date.now) {
    this.started = now();
  }

  /** Something is under way: a run, a table or a merge started and the command has not ended. */
  get running(): boolean {
    return this.active;
  }

  observe(event: PipelineEvent): void {
    switch (event.type) {
      case 'run:start':
        this.active = true;
        this.plannedTables = event.tables;
        if (event.estimatedBytes !== undefined) this.plannedBytes = event.estimatedBytes;
        break;
      case 'table:start': {
        this.active = true;
        const unit = event.measure ?? 'none';
        const total = unit === 'rows' ? event.estimatedRows : unit === 'bytes' ? event.estimatedBytes : undefined;
        this.tables.set(event.table, {
          unit,
          done: 0,
          ...(total !== undefined ? { total } : {}),
          rows: 0,
          readBytes: 0,
          writtenBytes: 0,
          ...(event.estimatedBytes !== undefined ? { estimatedBytes: event.estimatedBytes } : {}),
          finished: false,
        });
        break;
      }
      case 'table:progress': {
        const t = this.tables.get(event.table);
        if (!t) break;
        t.rows += event.rows;
        t.readBytes += event.readBytes ?? 0;
        t.writtenBytes += event.bytes;
        t.done = t.unit === 'rows' ? t.rows : t.readBytes;
        break;
      }
      case 'table:done':
      case 'table:error': {
        const t = this.tables.get(event.table);
        if (!t) break;
        t.finished = true;
        if (event.type === 'table:error') t.failed = true;
        if (event.type === 'table:done') {
          t.rows = event.rows;
          t.writtenBytes = event.bytes;
        }
        break;
      }
      case 'merge:start':
        this.active = true;
        this.merge = { done: 0, written: 0, ...(event.totalBytes !== undefined ? { total: event.totalBytes } : {}) };
        break;
      case 'merge:progress':
        if (this.merge) {
          this.merge.done = event.bytes;
          this.merge.written = event.outputBytes;
        }
        break;
      // A copy's progress is a merge's: bytes done of a known total.
      case 'copy:start':
        this.active = true;
        this.merge = { done: 0, written: 0, total: event.bytes };
        break;
      case 'copy:progress':
        if (this.merge) {
          this.merge.done = event.bytesDone;
          this.merge.written = event.bytesDone;
        }
        break;
      case 'restore:start':
        this.active = true;
        this.plannedTables = event.tables;
        this.plannedBytes = event.bytes;
        break;
      case 'run:done':
      case 'restore:done':
      case 'copy:done':
      case 'merge:done':
      case 'dataset:done':
        this.active = false;
        break;
      default:
        break;
    }
  }

  /** A table's fraction done, 0–1, when it can be known. */
  static fraction(t: TableMeasure): number | undefined {
    if (t.finished && !t.failed) return 1;
    if (t.total === undefined) return undefined;
    return t.total <= 0 ? 0 : Math.min(1, t.done / t.total);
  }

  snapshot(): ProgressSnapshot {
    const elapsedMs = Math.max(0, this.now() - this.started);
    const seconds = Math.max(elapsedMs, 1) / 1000;
    if (this.merge) {
      const { done, total, written } = this.merge;
      const rate = done / seconds;
      return this.finish({ type: 'progress', elapsedMs, doneBytes: done, writtenBytes: written, bytesPerSecond: Math.round(rate) }, total, rate);
    }
    let rows = 0;
    let doneBytes = 0;
    let writtenBytes = 0;
    let startedBytes = 0;
    /** What failed tables did not take: out of the planned total too. */
    let dropped = 0;
    let known = true;
    for (const t of this.tables.values()) {
      rows += t.rows;
      writtenBytes += t.writtenBytes;
      const fraction = ProgressTracker.fraction(t);
      let done: number;
      if (t.unit === 'bytes') {
        done = Math.min(t.readBytes, t.total ?? t.readBytes);
      } else if (fraction !== undefined && t.estimatedBytes !== undefined) {
        done = Math.round(fraction * t.estimatedBytes);
      } else {
        done = t.readBytes;
      }
      doneBytes += done;
      if (t.failed) {
        startedBytes += done;
        dropped += Math.max(0, (t.estimatedBytes ?? done) - done);
      } else if (t.estimatedBytes === undefined || (t.unit === 'none' && !t.finished)) known = false;
      else startedBytes += t.estimatedBytes;
    }
    // A run knows every table's size up front; other commands only the tables they started.
    const waiting = this.plannedTables !== undefined && this.tables.size < this.plannedTables;
    let total: number | undefined = known ? startedBytes : undefined;
    if (this.plannedBytes !== undefined && total !== undefined) total = Math.max(total, this.plannedBytes - dropped);
    else if (waiting) total = undefined;
    if (this.tables.size === 0 && this.plannedBytes === undefined) total = undefined;
    const rate = doneBytes / seconds;
    return this.finish({ type: 'progress', elapsedMs, rows, doneBytes, writtenBytes, bytesPerSecond: Math.round(rate) }, total, rate);
  }

  /** Adds the total, percent and ETA when the total is known, fields in the documented order. */
  private finish(snapshot: ProgressSnapshot, total: number | undefined, rate: number): ProgressSnapshot {
    if (total === undefined) return snapshot;
    const done = Math.min(snapshot.doneBytes, total);
    const { type, elapsedMs, rows, doneBytes, writtenBytes, bytesPerSecond } = snapshot;
    return {
      type,
      elapsedMs,
      ...(rows !== undefined ? { rows } : {}),
      doneBytes,
      totalBytes: total,
      percent: total === 0 ? 100 : Math.floor((done / total) * 1000) / 10,
      writtenBytes,
      bytesPerSecond,
      ...(rate > 0 && done > 0 ? { etaMs: Math.round(((total - done) / rate) * 1000) } : {}),
    };
  }
}
