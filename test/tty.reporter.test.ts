import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TakeoutError } from '../src/errors.js';
import type { PipelineEvent, RunSummary } from '../src/pipeline/events.js';
import { displayWidth } from '../src/reporting/bars.js';
import { TtyReporter } from '../src/reporting/tty.js';

/**
 * The TTY reporter against a small terminal: enough of ECMA-48 (CR, LF, cursor up/down, erase line, erase
 * below, cursor visibility, colours ignored) to see what stays on the screen on each way a command ends.
 */
class Terminal extends EventEmitter {
  rows: string[] = [''];
  x = 0;
  y = 0;
  cursorVisible = true;
  constructor(public columns: number) {
    super();
  }

  write(chunk: string): boolean {
    // eslint-disable-next-line no-control-regex
    const tokens = chunk.match(/\u001b\[\??[\d;]*[A-Za-z]|[\s\S]/gu) ?? [];
    for (const t of tokens) {
      if (t === '\r') this.x = 0;
      else if (t === '\n') {
        this.y++;
        this.x = 0;
      } else if (t.startsWith('\u001b[')) this.control(t);
      else {
        if (this.x >= this.columns) {
          this.y++;
          this.x = 0;
        }
        while (this.rows.length <= this.y) this.rows.push('');
        const row = this.rows[this.y]!.padEnd(this.x);
        this.rows[this.y] = row.slice(0, this.x) + t + row.slice(this.x + 1);
        this.x++;
      }
      while (this.rows.length <= this.y) this.rows.push('');
    }
    return true;
  }

  private control(t: string): void {
    const n = Number(/\d+/.exec(t)?.[0] ?? '1');
    const op = t[t.length - 1];
    if (t === '\u001b[?25l') this.cursorVisible = false;
    else if (t === '\u001b[?25h') this.cursorVisible = true;
    else if (op === 'A') this.y = Math.max(0, this.y - n);
    else if (op === 'B') this.y += n;
    else if (op === 'K') this.rows[this.y] = '';
    else if (op === 'J') {
      this.rows[this.y] = (this.rows[this.y] ?? '').slice(0, this.x);
      this.rows.length = this.y + 1;
    }
  }

  get text(): string[] {
    return this.rows.map((r) => r.trimEnd()).filter((r) => r !== '');
  }
}

const BAR = /[█░]/;
const MiB = 1024 * 1024;

function summary(): RunSummary {
  return {
    runId: 'r',
    status: 'complete',
    source: 'dir:/p',
    destination: '/d/',
    tables: 2,
    tablesFailed: 0,
    tablesSkipped: 0,
    rows: 10,
    rawBytes: 30 * MiB,
    bytes: 10 * MiB,
    slices: 2,
    durationMs: 3000,
    throughputMBps: 10,
    manifest: '/d/takeout-manifest.json',
    failures: [],
  };
}

/** A run of two tables three seconds in, the bars drawn. */
function running(term: Terminal): TtyReporter {
  const reporter = new TtyReporter(term as unknown as NodeJS.WritableStream, { color: false });
  const events: PipelineEvent[] = [
    { type: 'run:start', runId: 'r', source: 'dir:/p', destination: '/d/', tables: 2, dryRun: false },
    { type: 'table:start', table: 'in.c-main.orders', estimatedBytes: 40 * MiB, measure: 'bytes' },
    { type: 'table:start', table: 'in.c-very-long-bucket-name-for-testing.customers_with_a_long_name', estimatedBytes: 60 * MiB, measure: 'bytes' },
  ];
  for (const e of events) reporter.emit(e);
  for (let i = 0; i < 15; i++) {
    vi.advanceTimersByTime(200);
    reporter.emit({ type: 'table:progress', table: 'in.c-main.orders', readBytes: MiB, rawBytes: MiB, bytes: MiB / 3, rows: 1000 });
    reporter.emit({ type: 'table:progress', table: 'in.c-very-long-bucket-name-for-testing.customers_with_a_long_name', readBytes: 2 * MiB, rawBytes: 2 * MiB, bytes: MiB, rows: 1000 });
  }
  vi.advanceTimersByTime(200);
  return reporter;
}

describe('TtyReporter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('draws a header, one bar per table with its own rate, and a total; the cursor hidden while they show', async () => {
    const term = new Terminal(70);
    const reporter = running(term);
    const screen = term.text;
    expect(screen[0]).toBe('takeout: dir:/p → /d/, 2 tables');
    const bars = screen.filter((l) => BAR.test(l));
    expect(bars).toHaveLength(3);
    expect(bars.map((l) => /([\d.]+ MiB\/s)$/.exec(l)?.[1])).toEqual(['4.69 MiB/s', '9.38 MiB/s', '14.1 MiB/s']);
    for (const l of bars) expect(displayWidth(l)).toBeLessThan(70);
    expect(term.cursorVisible).toBe(false);
    await reporter.close();
  });

  it('success: the done lines and the summary where the bars were, nothing below, the cursor back', async () => {
    const term = new Terminal(120);
    const reporter = running(term);
    reporter.emit({ type: 'table:done', table: 'in.c-main.orders', rows: 15000, rawBytes: 15 * MiB, bytes: 5 * MiB, slices: 1, durationMs: 3000 });
    vi.advanceTimersByTime(200);
    expect(term.text.filter((l) => BAR.test(l))).toHaveLength(2);
    reporter.emit({ type: 'run:done', summary: summary() });
    expect(term.text.filter((l) => BAR.test(l))).toEqual([]);
    expect(term.text.slice(-2)).toEqual([expect.stringMatching(/^takeout complete: 2 tables, 10 rows, 30.0 MiB → 10.0 MiB in 2 slices, 3.0 s, 10.0 MiB\/s$/), 'manifest: /d/takeout-manifest.json']);
    expect(term.cursorVisible).toBe(true);
    // No frame comes back after the end.
    vi.advanceTimersByTime(1000);
    expect(term.text.filter((l) => BAR.test(l))).toEqual([]);
    await reporter.close();
  });

  it('a failed table leaves the total: its data not taken does not count as done', async () => {
    const term = new Terminal(160);
    const reporter = running(term);
    expect(term.text.find((l) => l.startsWith('total'))).toMatch(/ 45% +45\.0 MiB of 100 MiB /);
    reporter.emit({ type: 'table:error', table: 'in.c-main.orders', code: 'INVALID_INPUT', message: 'ragged row' });
    vi.advanceTimersByTime(200);
    expect(term.text.find((l) => l.startsWith('✖'))).toBe('✖ in.c-main.orders: ragged row [INVALID_INPUT, exit 7]');
    expect(term.text.find((l) => l.startsWith('total'))).toMatch(/ 60% +45\.0 MiB of 75\.0 MiB /);
    await reporter.close();
  });

  it('an error: the bars go, the error line is last, the cursor back', async () => {
    const term = new Terminal(70);
    const reporter = running(term);
    reporter.error(new TakeoutError('NETWORK', 'the destination stopped answering'));
    vi.advanceTimersByTime(500);
    expect(term.text.filter((l) => BAR.test(l))).toEqual([]);
    expect(term.text[term.text.length - 1]).toMatch(/^takeout: error: the destination stopped answering \[NETWORK, exit 8\]$/);
    expect(term.cursorVisible).toBe(true);
    await reporter.close();
  });

  it('Ctrl-C or a closed pipe: the bars go at once and stay gone; later lines print plainly', async () => {
    const term = new Terminal(70);
    const reporter = running(term);
    reporter.interrupted();
    expect(term.text.filter((l) => BAR.test(l))).toEqual([]);
    expect(term.cursorVisible).toBe(true);
    reporter.emit({ type: 'warning', message: 'an upload was aborted' });
    reporter.emit({ type: 'table:progress', table: 'in.c-main.orders', rawBytes: MiB, bytes: MiB, rows: 1 });
    vi.advanceTimersByTime(500);
    expect(term.text.filter((l) => BAR.test(l))).toEqual([]);
    expect(term.text[term.text.length - 1]).toBe('takeout: warning: an upload was aborted');
    await reporter.close();
  });

  it('process.exit with the bars up (a second Ctrl-C) shows the cursor again', async () => {
    const term = new Terminal(70);
    const reporter = running(term);
    expect(term.cursorVisible).toBe(false);
    process.emit('exit', 130);
    expect(term.cursorVisible).toBe(true);
    await reporter.close();
  });

  it('a resize redraws at the new width, erasing the rows the old frame takes once the terminal rewraps it', async () => {
    const term = new Terminal(160);
    const reporter = running(term);
    expect(term.text.filter((l) => BAR.test(l))).toHaveLength(3);
    // A terminal that rewraps: each 150-odd column line now takes two rows of 90.
    const rewrapped: string[] = [];
    for (const row of term.rows) {
      rewrapped.push(row.slice(0, 90));
      if (row.length > 90) rewrapped.push(row.slice(90));
    }
    term.rows = rewrapped;
    term.y = rewrapped.length - 1;
    term.columns = 90;
    term.emit('resize');
    const screen = term.text;
    expect(screen[0]).toBe('takeout: dir:/p → /d/, 2 tables');
    expect(screen.filter((l) => BAR.test(l))).toHaveLength(3);
    expect(screen).toHaveLength(4);
    for (const l of screen) expect(displayWidth(l)).toBeLessThan(90);
    await reporter.close();
  });
});
