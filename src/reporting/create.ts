/**
 * Which reporter a command gets: the terminal's bars (loaded only when used), plain lines, --json, or
 * errors only. The one place that knows every kind.
 */
import { JSON_PROGRESS_INTERVAL_MS, PLAIN_PROGRESS_INTERVAL_MS } from './progress.js';
import { JsonReporter, PlainReporter, type Reporter } from './reporter.js';

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
