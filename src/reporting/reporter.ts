import type { TakeoutError } from '../errors.js';
import type { PipelineEvent } from '../pipeline/events.js';
import { formatBytes, formatDuration, plural } from '../units.js';
import { paintLine, paintLines } from './color.js';
import { JSON_PROGRESS_INTERVAL_MS, PLAIN_PROGRESS_INTERVAL_MS, ProgressTracker } from './progress.js';
import { terminalLine } from './redact.js';
import { codeTag, copyStartLine, copySummaryLine, datasetLine, errorLine, eventLine, mergeSummaryLine, planLines, restorePlanLines, restoreStartLine, restoreSummaryLine, progressLine, summaryLines } from './lines.js';

/** Renders pipeline events. The pipeline knows nothing of terminals; reporters know nothing of S3. */
export interface Reporter {
  emit(event: PipelineEvent): void;
  error(error: TakeoutError): void;
  close(): Promise<void>;
  /** The command is being interrupted (Ctrl-C, a closed pipe): a live display goes before the notice is printed. */
  interrupted?(): void;
}

/**
 * Runs `tick` every `intervalMs` while the tracker says something is under way. unref'd: a periodic line never
 * keeps the process alive.
 */
class Ticker {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly tick: () => void,
  ) {}

  update(running: boolean): void {
    if (running && !this.timer) {
      this.timer = setInterval(this.tick, this.intervalMs);
      this.timer.unref();
    } else if (!running) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Non-TTY output (CI, a pipe, --no-progress): one line per table start and finish, a progress line every 10 s, no `\r`. */
export class PlainReporter implements Reporter {
  private readonly tracker = new ProgressTracker();
  private readonly ticker: Ticker;

  constructor(
    private readonly err: NodeJS.WritableStream,
    private readonly quiet: boolean,
    private readonly options: { color?: boolean; intervalMs?: number } = {},
  ) {
    this.ticker = new Ticker(options.intervalMs ?? PLAIN_PROGRESS_INTERVAL_MS, () => this.line(progressLine(this.tracker.snapshot())));
  }

  private line(text: string): void {
    this.err.write(`${paintLine(terminalLine(text), this.options.color === true)}\n`);
  }

  emit(event: PipelineEvent): void {
    this.tracker.observe(event);
    if (!this.quiet) this.ticker.update(this.tracker.running);
    if (event.type === 'table:error') {
      this.line(`takeout: error: table ${event.table}: ${event.message} ${codeTag(event.code)}`);
      if (event.hint) this.line(`  hint: ${event.hint}`);
      return;
    }
    if (event.type === 'warning') {
      this.line(`takeout: warning: ${event.message}`);
      return;
    }
    if (this.quiet) return;
    switch (event.type) {
      case 'run:start':
        this.line(`takeout: ${event.source} → ${event.destination}, ${plural(event.tables, 'table')}`);
        break;
      case 'table:start': {
        const size = [
          ...(event.estimatedBytes !== undefined ? [formatBytes(event.estimatedBytes)] : []),
          ...(event.estimatedRows !== undefined ? [`~${plural(event.estimatedRows, 'row')}`] : []),
        ];
        this.line(`start ${event.table}${size.length ? ` (${size.join(', ')})` : ''}`);
        break;
      }
      case 'table:done':
        this.line(
          `done  ${event.table}: ${plural(event.rows, 'row')}, ${formatBytes(event.rawBytes)} → ${formatBytes(event.bytes)}, ${plural(event.slices, 'slice')}, ${formatDuration(event.durationMs)}`,
        );
        break;
      case 'table:skip':
        this.line(`skip  ${event.table}: ${event.reason}`);
        break;
      case 'run:plan':
        for (const l of planLines(event.plan)) this.line(l);
        break;
      case 'run:done':
        for (const l of summaryLines(event.summary)) this.line(l);
        break;
      case 'merge:start':
        this.line(`takeout: merging ${plural(event.slices, 'slice')}${event.totalBytes !== undefined ? ` (${formatBytes(event.totalBytes)})` : ''} → ${event.output}`);
        break;
      case 'merge:done':
        this.line(mergeSummaryLine(event.summary));
        break;
      case 'dataset:start':
        this.line(`takeout: ${event.resumed ? 'going on with' : 'starting'} export ${event.exportId} (${event.layout}) of ${event.table} → ${event.destination}`);
        break;
      case 'dataset:done':
        this.line(datasetLine(event.job));
        break;
      case 'copy:start':
        this.line(copyStartLine(event));
        break;
      case 'copy:done':
        this.line(copySummaryLine(event.summary));
        break;
      case 'restore:start':
        this.line(restoreStartLine(event));
        break;
      case 'restore:plan':
        for (const l of restorePlanLines(event.plan)) this.line(l);
        break;
      case 'restore:done':
        this.line(restoreSummaryLine(event.summary));
        break;
      default:
        break;
    }
  }

  error(error: TakeoutError): void {
    this.ticker.stop();
    this.err.write(`${paintLines(errorLine(error), this.options.color === true)}\n`);
  }

  async close(): Promise<void> {
    this.ticker.stop();
  }
}

/**
 * `--json`: one JSON object per line on stdout, each with `type` and `time` (docs/events.schema.json), the
 * summary last; human text goes to stderr. Per-table progress at most once a second per table, and the whole
 * command's `progress` once a second while something runs.
 */
export class JsonReporter implements Reporter {
  private readonly progress = new Map<string, { at: number; pending: boolean; readBytes: number; rawBytes: number; bytes: number; rows: number }>();
  private mergeAt = 0;
  private readonly tracker = new ProgressTracker();
  private readonly ticker: Ticker;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
    private readonly intervalMs = JSON_PROGRESS_INTERVAL_MS,
  ) {
    this.ticker = new Ticker(intervalMs, () => this.write(this.tracker.snapshot()));
  }

  private write<T extends { type: string }>(value: T): void {
    this.out.write(`${eventLine(value)}\n`);
  }

  emit(event: PipelineEvent): void {
    this.tracker.observe(event);
    this.ticker.update(this.tracker.running);
    if (event.type === 'merge:progress' || event.type === 'copy:progress') {
      const now = Date.now();
      const last = event.type === 'merge:progress' ? event.slicesDone >= event.slices : event.objectsDone >= event.objects;
      if (now - this.mergeAt < this.intervalMs && !last) return;
      this.mergeAt = now;
    }
    if (event.type === 'table:progress') {
      const p = this.progress.get(event.table) ?? { at: 0, pending: false, readBytes: 0, rawBytes: 0, bytes: 0, rows: 0 };
      p.readBytes += event.readBytes ?? 0;
      p.rawBytes += event.rawBytes;
      p.bytes += event.bytes;
      p.rows += event.rows;
      p.pending = true;
      this.progress.set(event.table, p);
      if (Date.now() - p.at >= this.intervalMs) this.flushProgress(event.table);
      return;
    }
    // A table's last progress is never held back: its final counts come before it ends.
    if (event.type === 'table:done' || event.type === 'table:error') this.flushProgress(event.table);
    if (event.type === 'dataset:done' || event.type === 'run:done') for (const table of this.progress.keys()) this.flushProgress(table);
    this.write(event);
  }

  private flushProgress(table: string): void {
    const p = this.progress.get(table);
    if (!p?.pending) return;
    p.at = Date.now();
    p.pending = false;
    this.write({ type: 'table:progress', table, readBytes: p.readBytes, rawBytes: p.rawBytes, bytes: p.bytes, rows: p.rows });
  }

  error(error: TakeoutError): void {
    this.ticker.stop();
    this.write({ type: 'error', code: error.code, exitCode: error.exitCode, message: error.message, ...(error.hint ? { hint: error.hint } : {}), details: error.details });
    this.err.write(`${errorLine(error)}\n`);
  }

  async close(): Promise<void> {
    this.ticker.stop();
  }
}
