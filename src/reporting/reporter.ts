import type { JobRecord } from '../manifests/jobs.js';
import { ERROR_CODES, type ErrorCode, type TakeoutError } from '../errors.js';
import type { MergeSummary, PipelineEvent, RunPlan, RunSummary } from '../pipeline/events.js';
import { formatBytes, formatDuration, formatRate, plural, rateOf } from '../pipeline/units.js';
import { paintLine, paintLines } from './color.js';
import { JSON_PROGRESS_INTERVAL_MS, PLAIN_PROGRESS_INTERVAL_MS, ProgressTracker, type ProgressSnapshot } from './progress.js';
import { jsonLine, terminalLine } from './redact.js';

/** Renders pipeline events. The pipeline knows nothing of terminals; reporters know nothing of S3. */
export interface Reporter {
  emit(event: PipelineEvent): void;
  error(error: TakeoutError): void;
  close(): Promise<void>;
  /** The command is being interrupted (Ctrl-C, a closed pipe): a live display goes before the notice is printed. */
  interrupted?(): void;
}

export type ReporterKind = 'tty' | 'plain' | 'json' | 'silent';

export interface ReporterOptions {
  kind: ReporterKind;
  /** Errors only (stderr). */
  quiet: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Colour error, warning and success lines on stderr (colorEnabled: a terminal that wants it; never --json). */
  color?: boolean;
  /** Overrides the periodic progress interval of plain and --json output (tests). */
  progressIntervalMs?: number;
}

export async function createReporter(options: ReporterOptions): Promise<Reporter> {
  const out = options.stdout ?? process.stdout;
  const err = options.stderr ?? process.stderr;
  switch (options.kind) {
    case 'json':
      return new JsonReporter(out, err, options.progressIntervalMs ?? JSON_PROGRESS_INTERVAL_MS);
    case 'silent':
      return new PlainReporter(err, true);
    case 'tty': {
      if (options.quiet) return new PlainReporter(err, true, { color: options.color === true });
      const { TtyReporter } = await import('./tty.js');
      return new TtyReporter(err, { color: options.color === true });
    }
    case 'plain':
      return new PlainReporter(err, options.quiet, { color: options.color === true, intervalMs: options.progressIntervalMs ?? PLAIN_PROGRESS_INTERVAL_MS });
  }
}

/** `[INTEGRITY, exit 6]`: an error's code and the exit code it means, on every error line (a table's too). */
export function codeTag(code: string): string {
  const exit = Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : undefined;
  return exit === undefined ? `[${code}]` : `[${code}, exit ${exit}]`;
}

/**
 * One line of --json output: the event with the envelope every line has (`type` first, `time` last, an ISO
 * 8601 UTC timestamp), escaped and redacted. The shapes are docs/events.schema.json.
 */
export function eventLine<T extends { type: string }>(event: T): string {
  return jsonLine({ ...event, time: new Date().toISOString() });
}

export function errorLine(error: TakeoutError): string {
  // Message and hint each as one escaped line: a name holding a line break cannot fake a second error.
  const hint = error.hint ? `\n  hint: ${terminalLine(error.hint)}` : '';
  return `${terminalLine(`takeout: error: ${error.message} ${codeTag(error.code)}`)}${hint}`;
}

export function summaryLines(summary: RunSummary): string[] {
  const lines = [
    `takeout ${summary.status}: ${plural(summary.tables, 'table')}` +
      (summary.tablesFailed ? ` (${summary.tablesFailed} failed)` : '') +
      (summary.tablesSkipped ? ` (${summary.tablesSkipped} structure only)` : '') +
      `, ${plural(summary.rows, 'row')}, ${formatBytes(summary.rawBytes)} → ${formatBytes(summary.bytes)}` +
      ` in ${plural(summary.slices, 'slice')}, ${formatDuration(summary.durationMs)}, ${rateOf(summary.rawBytes, summary.durationMs)}`,
    `manifest: ${summary.manifest}`,
  ];
  if (summary.reused) lines.push(`resumed: kept ${plural(summary.reused.slices, 'slice')} (${formatBytes(summary.reused.bytes)}) the interrupted run had landed`);
  for (const f of summary.failures) lines.push(`failed: ${f.table}: ${f.message} ${codeTag(f.code)}`);
  if (summary.hint) lines.push(`hint: ${summary.hint}`);
  return lines.map(terminalLine);
}

/** How a dataset export ended, in one line. */
export function datasetLine(job: JobRecord): string {
  return terminalLine(
    `export ${job.exportId} ${job.status}: ${plural(job.itemCount, 'item')}, ${formatBytes(job.billedSizeBytes)} in ${plural(job.files, 'file')}` +
      ` (${job.layout}, ${job.exportFormat}, ${job.exportType}) → ${job.destination.replace(/\/?$/, '/')}${job.outputPrefix}`,
  );
}

export function mergeSummaryLine(s: MergeSummary): string {
  return terminalLine(
    `merged ${plural(s.slices, 'slice')}${s.skipped ? ` (${s.skipped} optional skipped)` : ''}: ` +
      `${formatBytes(s.bytes)} fetched → ${formatBytes(s.outputBytes)} written to ${s.output}, ${formatDuration(s.durationMs)}, ${rateOf(s.outputBytes, s.durationMs)}`,
  );
}

export function planLines(plan: RunPlan): string[] {
  const lines = [`dry run: ${plan.source} → ${plan.destination}`];
  for (const t of plan.tables) {
    lines.push(`  ${t.id}  ${plural(t.columns, 'column')}  ~${t.estimatedBytes === null ? '?' : formatBytes(t.estimatedBytes)}  → ${t.keyPattern}`);
  }
  const notSelected = plan.skipped.filter((s) => s.reason === 'not selected');
  for (const s of plan.skipped) if (s.reason !== 'not selected') lines.push(`  left out: ${s.id}: ${s.reason}`);
  if (notSelected.length > 0) lines.push(`  not selected: ${notSelected.map((s) => s.id).join(', ')}`);
  lines.push(`  configurations: ${plan.configurations}`);
  lines.push(`  files: ${plan.files.join(', ')}`);
  lines.push(`  estimated data: ${formatBytes(plan.estimatedBytes)} before compression`);
  lines.push(`  memory bound: ${plan.memoryBound}`);
  for (const check of plan.checks ?? []) lines.push(`  checked: ${check}`);
  lines.push('  nothing was written');
  return lines.map(terminalLine);
}

/**
 * A progress snapshot as one line: `progress: 45.0% 101 MiB of 224 MiB read, 1,234,567 rows, 12.3 MiB/s,
 * 38.0 MiB written, 1 min 5 s elapsed, ETA 1 min 20 s` (no percent or ETA while they are unknown).
 */
export function progressLine(p: ProgressSnapshot): string {
  const read = p.totalBytes !== undefined ? `${p.percent!.toFixed(1)}% ${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)} read` : `${formatBytes(p.doneBytes)} read`;
  const rows = p.rows !== undefined ? `, ${plural(p.rows, 'row')}` : '';
  const eta = p.etaMs !== undefined ? `, ETA ${formatDuration(p.etaMs)}` : '';
  return `progress: ${read}${rows}, ${formatRate(p.bytesPerSecond)}, ${formatBytes(p.writtenBytes)} written, ${formatDuration(p.elapsedMs)} elapsed${eta}`;
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
    if (event.type === 'merge:progress') {
      const now = Date.now();
      if (now - this.mergeAt < this.intervalMs && event.slicesDone < event.slices) return;
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
