import cliProgress from 'cli-progress';
import type { TakeoutError } from '../errors.js';
import type { PipelineEvent } from '../pipeline/events.js';
import { formatBytes } from '../pipeline/units.js';
import { errorLine, datasetLine, mergeSummaryLine, planLines, summaryLines, type Reporter } from './reporter.js';
import { ProgressTracker } from './progress.js';
import { printable, terminalLine } from './redact.js';

/** A terminal: one bar per active table plus a total (bytes, rows, rate, ETA), on stderr. */
export class TtyReporter implements Reporter {
  private readonly bars: cliProgress.MultiBar;
  private readonly tables = new Map<string, { bar: cliProgress.SingleBar; raw: number; rows: number }>();
  private total: cliProgress.SingleBar | undefined;
  private totalRaw = 0;
  private totalRows = 0;
  private estimated = 0;
  private readonly started = Date.now();
  /** Bars measure source-side progress (rows or bytes read), never output bytes against a source size. */
  private readonly tracker = new ProgressTracker();

  constructor(private readonly err: NodeJS.WritableStream) {
    this.bars = new cliProgress.MultiBar(
      {
        stream: err as NodeJS.WriteStream,
        clearOnComplete: true,
        hideCursor: true,
        barsize: 24,
        fps: 10,
        format: ' {name} |{bar}| {percentage}% {done} {rows} rows {rate} ETA {eta_formatted}',
        formatValue: (v, _o, type) => (type === 'percentage' ? String(v).padStart(3) : String(v)),
      },
      cliProgress.Presets.shades_classic,
    );
  }

  private log(text: string): void {
    this.bars.log(`${terminalLine(text)}\n`);
  }

  private payload(name: string, raw: number, rows: number): Record<string, string> {
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    return { name: printable(name).padEnd(32).slice(0, 32), done: formatBytes(raw), rows: rows.toLocaleString('en-US'), rate: `${(this.totalRaw / 1e6 / secs).toFixed(1)} MB/s` };
  }

  emit(event: PipelineEvent): void {
    this.tracker.observe(event);
    switch (event.type) {
      case 'run:start':
        this.log(`takeout: ${event.source} → ${event.destination}, ${event.tables} tables`);
        break;
      case 'table:start': {
        const est = Math.max(1, this.tracker.tables.get(event.table)?.total ?? 1);
        this.estimated += Math.max(1, event.estimatedBytes ?? 1);
        this.total ??= this.bars.create(1, 0, this.payload('total', 0, 0));
        this.total.setTotal(this.tracker.snapshot().totalBytes ?? this.estimated);
        this.tables.set(event.table, { bar: this.bars.create(est, 0, this.payload(event.table, 0, 0)), raw: 0, rows: 0 });
        break;
      }
      case 'table:progress': {
        const t = this.tables.get(event.table);
        const measure = this.tracker.tables.get(event.table);
        const overall = this.tracker.snapshot();
        this.totalRaw = overall.doneBytes;
        this.totalRows += event.rows;
        if (t && measure) {
          // Bytes read at the source; a source of rows (SQLite, DynamoDB) has none: the bytes encoded then.
          t.raw = measure.readBytes > 0 ? measure.readBytes : t.raw + event.rawBytes;
          t.rows += event.rows;
          if (measure.done > t.bar.getTotal()) t.bar.setTotal(measure.done);
          t.bar.update(measure.done, this.payload(event.table, t.raw, t.rows));
        }
        if (overall.totalBytes !== undefined) this.total?.setTotal(Math.max(1, overall.totalBytes));
        this.total?.update(Math.min(overall.doneBytes, overall.totalBytes ?? this.estimated), this.payload('total', overall.doneBytes, this.totalRows));
        break;
      }
      case 'table:done': {
        const t = this.tables.get(event.table);
        if (t) this.bars.remove(t.bar);
        this.tables.delete(event.table);
        this.log(`✔ ${event.table}: ${event.rows.toLocaleString('en-US')} rows, ${formatBytes(event.rawBytes)} → ${formatBytes(event.bytes)}, ${event.slices} slice${event.slices === 1 ? '' : 's'}`);
        break;
      }
      case 'table:error': {
        const t = this.tables.get(event.table);
        if (t) this.bars.remove(t.bar);
        this.tables.delete(event.table);
        this.log(`✖ ${event.table}: ${event.message} [${event.code}]`);
        break;
      }
      case 'table:skip':
        break;
      case 'warning':
        this.log(`warning: ${event.message}`);
        break;
      case 'run:plan':
        for (const l of planLines(event.plan)) this.log(l);
        break;
      case 'merge:start':
        this.total = this.bars.create(Math.max(1, event.slices), 0, this.payload(`${event.slices} slices → ${event.output}`, 0, 0));
        break;
      case 'merge:progress':
        this.totalRaw = event.outputBytes;
        this.total?.update(event.slicesDone, { ...this.payload(`${event.slicesDone}/${event.slices} slices`, event.outputBytes, 0), rows: '-' });
        break;
      case 'merge:done':
        this.bars.update();
        this.bars.stop();
        this.err.write(`${mergeSummaryLine(event.summary)}\n`);
        break;
      case 'dataset:done':
        this.bars.update();
        this.bars.stop();
        this.err.write(`${datasetLine(event.job)}\n`);
        break;
      case 'run:done':
        // Redraw once so lines logged since the last frame are printed before the bars go.
        this.bars.update();
        this.bars.stop();
        for (const l of summaryLines(event.summary)) this.err.write(`${l}\n`);
        break;
      default:
        break;
    }
  }

  error(error: TakeoutError): void {
    this.bars.stop();
    this.err.write(`${errorLine(error)}\n`);
  }

  async close(): Promise<void> {
    this.bars.stop();
  }
}
