import type { JobRecord } from '../manifests/jobs.js';
import { ERROR_CODES, type ErrorCode, type TakeoutError } from '../errors.js';
import type { MergeSummary, PipelineEvent, RunPlan, RunSummary } from '../pipeline/events.js';
import { formatBytes, formatDuration, plural, rateOf } from '../pipeline/units.js';
import { paintLine, paintLines } from './color.js';
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
}

export async function createReporter(options: ReporterOptions): Promise<Reporter> {
  const out = options.stdout ?? process.stdout;
  const err = options.stderr ?? process.stderr;
  switch (options.kind) {
    case 'json':
      return new JsonReporter(out, err);
    case 'silent':
      return new PlainReporter(err, true);
    case 'tty': {
      if (options.quiet) return new PlainReporter(err, true, { color: options.color === true });
      const { TtyReporter } = await import('./tty.js');
      return new TtyReporter(err, { color: options.color === true });
    }
    case 'plain':
      return new PlainReporter(err, options.quiet, { color: options.color === true });
  }
}

/** `[INTEGRITY, exit 6]`: an error's code and the exit code it means, on every error line (a table's too). */
export function codeTag(code: string): string {
  const exit = Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : undefined;
  return exit === undefined ? `[${code}]` : `[${code}, exit ${exit}]`;
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

/** Seconds between the periodic total lines of the plain reporter. */
const PLAIN_TOTAL_INTERVAL_MS = 10_000;

/** Non-TTY output: one line per table start and finish, a periodic total, no `\r`. */
export class PlainReporter implements Reporter {
  private rawBytes = 0;
  private rows = 0;
  private lastTotal = Date.now();
  private readonly started = Date.now();

  constructor(
    private readonly err: NodeJS.WritableStream,
    private readonly quiet: boolean,
    private readonly options: { color: boolean } = { color: false },
  ) {}

  private line(text: string): void {
    this.err.write(`${paintLine(terminalLine(text), this.options.color)}\n`);
  }

  emit(event: PipelineEvent): void {
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
      case 'table:start':
        this.line(`start ${event.table}${event.estimatedBytes !== undefined ? ` (${formatBytes(event.estimatedBytes)})` : ''}`);
        break;
      case 'table:done':
        this.line(
          `done  ${event.table}: ${plural(event.rows, 'row')}, ${formatBytes(event.rawBytes)} → ${formatBytes(event.bytes)}, ${plural(event.slices, 'slice')}, ${formatDuration(event.durationMs)}`,
        );
        break;
      case 'table:skip':
        this.line(`skip  ${event.table}: ${event.reason}`);
        break;
      case 'table:progress': {
        this.rawBytes += event.rawBytes;
        this.rows += event.rows;
        const now = Date.now();
        if (now - this.lastTotal >= PLAIN_TOTAL_INTERVAL_MS) {
          this.lastTotal = now;
          this.line(`progress: ${plural(this.rows, 'row')}, ${formatBytes(this.rawBytes)}, ${rateOf(this.rawBytes, now - this.started)}`);
        }
        break;
      }
      case 'run:plan':
        for (const l of planLines(event.plan)) this.line(l);
        break;
      case 'run:done':
        for (const l of summaryLines(event.summary)) this.line(l);
        break;
      case 'merge:start':
        this.line(`takeout: merging ${plural(event.slices, 'slice')} → ${event.output}`);
        break;
      case 'merge:progress': {
        const now = Date.now();
        if (now - this.lastTotal >= PLAIN_TOTAL_INTERVAL_MS) {
          this.lastTotal = now;
          this.line(`progress: ${event.slicesDone}/${plural(event.slices, 'slice')}, ${formatBytes(event.outputBytes)} written, ${rateOf(event.outputBytes, now - this.started)}`);
        }
        break;
      }
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
    this.err.write(`${paintLines(errorLine(error), this.options.color)}\n`);
  }

  async close(): Promise<void> {}
}

/** Progress events are many; JSON consumers get at most one per table per this interval. */
const JSON_PROGRESS_INTERVAL_MS = 500;

/** `--json`: one JSON object per event on stdout, the summary last; human text goes to stderr. */
export class JsonReporter implements Reporter {
  private readonly progress = new Map<string, { at: number; rawBytes: number; bytes: number; rows: number }>();
  private mergeAt = 0;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly err: NodeJS.WritableStream,
  ) {}

  private write(value: unknown): void {
    this.out.write(`${jsonLine(value)}\n`);
  }

  emit(event: PipelineEvent): void {
    if (event.type === 'merge:progress') {
      const now = Date.now();
      if (now - this.mergeAt < JSON_PROGRESS_INTERVAL_MS && event.slicesDone < event.slices) return;
      this.mergeAt = now;
    }
    if (event.type === 'table:progress') {
      const p = this.progress.get(event.table) ?? { at: 0, rawBytes: 0, bytes: 0, rows: 0 };
      p.rawBytes += event.rawBytes;
      p.bytes += event.bytes;
      p.rows += event.rows;
      this.progress.set(event.table, p);
      const now = Date.now();
      if (now - p.at < JSON_PROGRESS_INTERVAL_MS) return;
      p.at = now;
      this.write({ type: 'table:progress', table: event.table, rawBytes: p.rawBytes, bytes: p.bytes, rows: p.rows, time: new Date().toISOString() });
      return;
    }
    this.write({ ...event, time: new Date().toISOString() });
  }

  error(error: TakeoutError): void {
    this.write({ type: 'error', code: error.code, exitCode: error.exitCode, message: error.message, ...(error.hint ? { hint: error.hint } : {}), details: error.details });
    this.err.write(`${errorLine(error)}\n`);
  }

  async close(): Promise<void> {}
}
