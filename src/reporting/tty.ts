import type { TakeoutError } from '../errors.js';
import type { PipelineEvent } from '../pipeline/events.js';
import { formatBytes, plural } from '../units.js';
import { addSample, displayWidth, formatCount, layoutBars, type BarsState, type BarState } from './bars.js';
import { paintLine, paintLines } from './color.js';
import { type Reporter } from './reporter.js';
import { codeTag, copyStartLine, copySummaryLine, errorLine, datasetLine, mergeSummaryLine, planLines, restorePlanLines, restoreStartLine, restoreSummaryLine, summaryLines } from './lines.js';
import { ProgressTracker } from './progress.js';
import { terminalLine } from './redact.js';

/** Redraws per second: smooth enough for a rate that changes each second, cheap on a busy machine. */
const FRAME_MS = 100;
/** Without a width from the terminal (a pty that does not say), lay out for the classic 80 columns. */
const FALLBACK_COLUMNS = 80;

const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';

export interface TtyReporterOptions {
  /** Errors red, warnings yellow, success green (colorEnabled decides). */
  color: boolean;
}

type TtyStream = NodeJS.WritableStream & { columns?: number; rows?: number };

/**
 * A terminal: one bar per table under way, each with its own rate and ETA, and a total line for a run or a
 * restore, on stderr. Lines logged (a table done, a warning) are printed above the bars. The bars are erased before the
 * final line, an error, an interruption or the end of the process, and the cursor is shown again: nothing
 * frozen is left on the screen.
 */
export class TtyReporter implements Reporter {
  /** Bars under way by table (or `merge`), with the rows each has taken. */
  private readonly bars = new Map<string, { bar: BarState; rows: number }>();
  private total: BarState | undefined;
  /** What finished tables contribute to the total line's size shown and rows. */
  private finished = { bytes: 0, rows: 0 };
  /** Display widths of the lines on the screen now, to erase them (rows they take after a resize included). */
  private drawn: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** false once the bars are finished (end, error, interruption): from then on only plain lines. */
  private live = true;
  private cursorHidden = false;
  /** What each table's progress measures (rows against its count, or bytes read against its size): the units of its bar. */
  private readonly tracker = new ProgressTracker();
  private readonly onResize = (): void => this.render();
  private readonly onExit = (): void => {
    // process.exit (a second Ctrl-C, the shutdown deadline) skips close(): the cursor must not stay hidden.
    if (this.cursorHidden) this.err.write(SHOW_CURSOR);
  };

  constructor(
    private readonly err: TtyStream,
    private readonly options: TtyReporterOptions = { color: false },
  ) {
    err.on('resize', this.onResize);
    process.on('exit', this.onExit);
  }

  private columns(): number {
    const columns = this.err.columns;
    return columns !== undefined && columns > 0 ? columns : FALLBACK_COLUMNS;
  }

  /** Escapes that take the cursor back to where the frame started and clear it; lines a resize wrapped included. */
  private erase(): string {
    const columns = this.columns();
    const rows = this.drawn.reduce((n, width) => n + Math.max(1, Math.ceil(width / columns)), 0);
    this.drawn = [];
    // Clear the frame's first row by itself, the rest from the row below: an erase-below issued at the top-left
    // corner is a whole-screen clear to tmux (scroll-on-clear), which pushes the screen into the scrollback.
    return rows > 0 ? `\r\u001b[${rows}A\u001b[2K\u001b[1B\u001b[J\u001b[1A` : '';
  }

  private state(): BarsState {
    return { bars: [...this.bars.values()].map((b) => b.bar), ...(this.total ? { total: this.total } : {}) };
  }

  /** Redraws the bars, with `above` (whole lines) printed first where the old frame was. */
  private render(above = ''): void {
    if (!this.live) {
      if (above) this.err.write(above);
      return;
    }
    const rows = this.err.rows;
    // The frame stays shorter than the screen, or moving the cursor up to erase it would stop at the top.
    const lines = layoutBars(this.state(), this.columns(), Date.now(), rows !== undefined && rows > 2 ? rows - 1 : undefined);
    let out = this.erase() + above;
    if (lines.length > 0 && !this.cursorHidden) {
      out += HIDE_CURSOR;
      this.cursorHidden = true;
    }
    out += lines.map((line) => `${line}\n`).join('');
    if (out) this.err.write(out);
    this.drawn = lines.map(displayWidth);
  }

  private startTimer(): void {
    if (this.timer || !this.live) return;
    this.timer = setInterval(() => this.render(), FRAME_MS);
    this.timer.unref();
  }

  /** The bars go for good; `lines` are printed where they were; the cursor is shown again. */
  private finish(lines: readonly string[] = []): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    let out = this.live ? this.erase() : '';
    this.live = false;
    if (this.cursorHidden) {
      out += SHOW_CURSOR;
      this.cursorHidden = false;
    }
    out += lines.map((line) => `${paintLine(line, this.options.color)}\n`).join('');
    if (out) this.err.write(out);
  }

  private log(text: string): void {
    this.render(`${paintLine(terminalLine(text), this.options.color)}\n`);
  }

  private newBar(name: string, total: number | undefined, unit: BarState['unit'], count: string): BarState {
    const bar: BarState = { name, done: 0, unit, bytes: 0, count, samples: [], ...(total !== undefined ? { total } : {}) };
    addSample(bar, Date.now());
    return bar;
  }

  private updateTotal(): void {
    const total = this.total;
    if (!total) return;
    let { bytes, rows } = this.finished;
    for (const { bar, rows: taken } of this.bars.values()) {
      bytes += bar.bytes;
      rows += taken;
    }
    total.bytes = bytes;
    total.count = rowsText(rows);
    // The whole command in one unit, source-side bytes (tables counted in rows by their share of their size);
    // the tracker also leaves out what failed tables did not take, and knows the total only once it is known.
    const overall = this.tracker.snapshot();
    total.done = overall.doneBytes;
    if (overall.totalBytes !== undefined) total.total = overall.totalBytes;
    else delete total.total;
    addSample(total, Date.now());
  }

  private tableEnded(table: string): void {
    const entry = this.bars.get(table);
    if (!entry) return;
    this.bars.delete(table);
    this.finished.bytes += entry.bar.bytes;
    this.finished.rows += entry.rows;
    this.updateTotal();
  }

  emit(event: PipelineEvent): void {
    this.tracker.observe(event);
    switch (event.type) {
      case 'run:start':
        if (event.tables > 1) this.total = this.newBar('total', undefined, 'bytes', rowsText(0));
        this.log(`takeout: ${event.source} → ${event.destination}, ${plural(event.tables, 'table')}`);
        // The total line moves while the source prepares (a Storage API export job, a snapshot), before any table starts.
        if (this.total) this.startTimer();
        break;
      case 'table:start': {
        // The bar counts what its total counts: rows against a row count, bytes read against a file's size.
        const measure = this.tracker.tables.get(event.table);
        const total = measure?.total !== undefined && measure.total > 0 ? measure.total : undefined;
        const unit = measure?.unit === 'rows' ? 'count' : 'bytes';
        this.bars.set(event.table, { bar: this.newBar(event.table, measure?.unit === 'none' ? undefined : total, unit, rowsText(0)), rows: 0 });
        this.updateTotal();
        this.startTimer();
        break;
      }
      case 'table:skip':
        // Every table not taken is named, as the plain reporter does ("skip  …").
        this.log(`– ${event.table}: ${event.reason}`);
        this.updateTotal();
        break;
      case 'table:progress': {
        const entry = this.bars.get(event.table);
        if (!entry) break;
        const { bar } = entry;
        entry.rows += event.rows;
        const measure = this.tracker.tables.get(event.table);
        // Bytes read at the source; a source of rows (SQLite, DynamoDB) has none: the bytes encoded then.
        bar.bytes += event.readBytes !== undefined && event.readBytes > 0 ? event.readBytes : event.rawBytes;
        bar.done = measure && measure.unit !== 'none' ? measure.done : bar.bytes;
        bar.count = rowsText(entry.rows);
        addSample(bar, Date.now());
        this.updateTotal();
        break;
      }
      case 'table:done':
        this.tableEnded(event.table);
        this.log(`✔ ${event.table}: ${plural(event.rows, 'row')}, ${formatBytes(event.rawBytes)} → ${formatBytes(event.bytes)}, ${plural(event.slices, 'slice')}`);
        break;
      case 'table:error':
        this.tableEnded(event.table);
        this.log(`✖ ${event.table}: ${event.message} ${codeTag(event.code)}`);
        if (event.hint) this.log(`  hint: ${event.hint}`);
        break;
      case 'warning':
        this.log(`takeout: warning: ${event.message}`);
        break;
      case 'run:plan':
        this.render(planLines(event.plan).map((line) => `${line}\n`).join(''));
        break;
      case 'merge:start':
        this.log(`takeout: merging ${plural(event.slices, 'slice')} → ${event.output}`);
        this.bars.set('merge', { bar: this.newBar(event.output, Math.max(1, event.slices), 'count', `0/${event.slices} slices`), rows: 0 });
        this.startTimer();
        break;
      case 'merge:progress': {
        const bar = this.bars.get('merge')?.bar;
        if (!bar) break;
        bar.done = event.slicesDone;
        bar.bytes = event.outputBytes;
        bar.count = `${event.slicesDone}/${event.slices} slices`;
        addSample(bar, Date.now());
        break;
      }
      case 'copy:start':
        this.log(copyStartLine(event));
        // Measured in bytes: one large slice weighs more than all the layout files together.
        this.bars.set('copy', { bar: this.newBar(event.destination, Math.max(1, event.bytes), 'bytes', `0/${event.objects} objects`), rows: 0 });
        this.startTimer();
        break;
      case 'copy:progress': {
        const bar = this.bars.get('copy')?.bar;
        if (!bar) break;
        bar.done = event.bytesDone;
        bar.bytes = event.bytesDone;
        bar.count = `${event.objectsDone}/${event.objects} objects`;
        addSample(bar, Date.now());
        break;
      }
      case 'restore:start':
        // Several tables (a Keboola project loads five at once): a total line, as a run has.
        if (event.tables > 1 && !event.dryRun) this.total = this.newBar('total', undefined, 'bytes', rowsText(0));
        this.log(restoreStartLine(event));
        if (this.total) this.startTimer();
        break;
      case 'restore:plan':
        for (const l of restorePlanLines(event.plan)) this.log(l);
        break;
      case 'restore:done':
        this.finish([restoreSummaryLine(event.summary)]);
        break;
      case 'copy:done':
        this.finish([copySummaryLine(event.summary)]);
        break;
      case 'dataset:start':
        this.log(`takeout: ${event.resumed ? 'going on with' : 'starting'} export ${event.exportId} (${event.layout}) of ${event.table} → ${event.destination}`);
        break;
      case 'merge:done':
        this.finish([mergeSummaryLine(event.summary)]);
        break;
      case 'dataset:done':
        this.finish([datasetLine(event.job)]);
        break;
      case 'run:done':
        this.finish(summaryLines(event.summary));
        break;
      default:
        break;
    }
  }

  /** Ctrl-C or a closed pipe: the bars go at once, before the interruption is told, and stay gone. */
  interrupted(): void {
    this.finish();
  }

  error(error: TakeoutError): void {
    this.finish();
    this.err.write(`${paintLines(errorLine(error), this.options.color)}\n`);
  }

  async close(): Promise<void> {
    this.finish();
    this.err.removeListener('resize', this.onResize);
    process.removeListener('exit', this.onExit);
  }
}

function rowsText(rows: number): string {
  return `${formatCount(rows)} row${rows === 1 ? '' : 's'}`;
}
