import { describe, expect, it } from 'vitest';
import { addSample, displayWidth, etaMs, formatCount, formatEta, layoutBars, shortenMiddle, windowRate, type BarState, type BarsState } from '../src/reporting/bars.js';
import { colorEnabled, paintLine } from '../src/reporting/color.js';
import { formatBytes, formatRate, rateOf } from '../src/units.js';

const MiB = 1024 * 1024;
const LONG_ID = 'in.c-very-long-bucket-name-for-testing.customers_with_a_really_long_table_name';

/** A bar that has taken `bytesPerSecond` for `seconds`, sampled every 200 ms, as the reporter feeds it. */
function bar(name: string, bytesPerSecond: number, seconds: number, total: number | undefined, t0 = 0): BarState {
  const b: BarState = { name, done: 0, unit: 'bytes', bytes: 0, count: '0 rows', samples: [], ...(total !== undefined ? { total } : {}) };
  addSample(b, t0);
  for (let t = 200; t <= seconds * 1000; t += 200) {
    b.done += bytesPerSecond / 5;
    b.bytes += bytesPerSecond / 5;
    b.count = `${formatCount(Math.round(b.bytes / 40))} rows`;
    addSample(b, t0 + t);
  }
  return b;
}

function runState(seconds: number): BarsState {
  const a = bar('in.c-main.orders', 6 * MiB, seconds, 80 * MiB);
  const b = bar(LONG_ID, 9 * MiB, seconds, 120 * MiB);
  const total = bar('total', 15 * MiB, seconds, 200 * MiB);
  return { bars: [a, b], total };
}

/** A line ends with a whole field, never a cut one. */
const WHOLE_END = /(\d%|\d (B|KiB|MiB|GiB)|rows?|\/s|ETA (--|\d+s|\d+m\d\ds|\d+h\d\dm))$/;

describe('layoutBars', () => {
  it.each([40, 50, 60, 70, 80, 90, 100, 120, 160, 200])('every line fits %i columns and ends with a whole field', (columns) => {
    const lines = layoutBars(runState(4), columns, 4000);
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(displayWidth(line), line).toBeLessThanOrEqual(columns - 1);
      expect(line, line).toMatch(WHOLE_END);
    }
    // Every line shows the same fields in aligned columns: the bars start in the same column.
    const barStarts = lines.map((l) => l.search(/[█░]/));
    expect(new Set(barStarts).size, lines.join('\n')).toBe(1);
  });

  it('at 160 columns shows everything: the whole id, the size of the total, rows, rate and ETA', () => {
    const lines = layoutBars(runState(4), 160, 4000);
    expect(lines[1]).toContain(LONG_ID);
    for (const line of lines) expect(line).toMatch(/ of \d.* rows {2}.*\/s {2}ETA \d+s$/);
  });

  it('drops ETA first, then rate, then rows, before the name is cut below readable; the percentage and size stay', () => {
    const at = (columns: number): string => layoutBars(runState(4), columns, 4000)[1]!;
    expect(at(100)).toMatch(/ETA/);
    expect(at(75)).not.toMatch(/ETA/);
    expect(at(75)).toMatch(/MiB\/s$/);
    expect(at(60)).not.toMatch(/\/s/);
    expect(at(60)).toMatch(/rows$/);
    expect(at(50)).not.toMatch(/rows/);
    for (const c of [50, 60, 75]) expect(at(c)).toMatch(/^in\.c-very.*….*table_name /);
    expect(at(45)).toMatch(/\d+%\s+\d+\.\d MiB$/);
  });

  it('at 70 columns shows each table its own rate, and the names shortened in the middle', () => {
    const lines = layoutBars(runState(4), 70, 4000);
    const rates = lines.map((l) => /([\d.]+ MiB\/s)$/.exec(l)?.[1]);
    expect(rates).toEqual(['6.00 MiB/s', '9.00 MiB/s', '15.0 MiB/s']);
    expect(lines[1]!.startsWith('in.c-very…table_name ')).toBe(true);
  });

  it('ETA is `--` before a rate is measured, without a total and past the total; never NaN or negative', () => {
    const young = bar('t', 5 * MiB, 0.4, 100 * MiB);
    expect(formatEta(etaMs(young, 400))).toBe('--');
    expect(layoutBars({ bars: [young] }, 160, 400)[0]).toMatch(/ETA --$/);
    const unknown = bar('t', 5 * MiB, 3, undefined);
    expect(etaMs(unknown, 3000)).toBeUndefined();
    expect(layoutBars({ bars: [unknown] }, 160, 3000)[0]).toMatch(/ETA --$/);
    const past = bar('t', 5 * MiB, 3, 1 * MiB);
    expect(etaMs(past, 3000)).toBeUndefined();
    expect(layoutBars({ bars: [past] }, 160, 3000)[0]).toMatch(/100% .*ETA --$/);
    const measured = bar('t', 5 * MiB, 4, 100 * MiB);
    expect(formatEta(etaMs(measured, 4000))).toBe('16s');
    for (const ms of [NaN, -5, Infinity, undefined]) expect(formatEta(ms)).toBe('--');
    expect([formatEta(59_000), formatEta(65_000), formatEta(3_720_000)]).toEqual(['59s', '1m05s', '1h02m']);
  });

  it('the rate is over a sliding window: a table that stalls shows it, and its ETA goes to --', () => {
    const b = bar('t', 10 * MiB, 10, 1000 * MiB);
    expect(windowRate(b.samples, 'bytes', 10_000)).toBeCloseTo(10 * MiB, -3);
    expect(windowRate(b.samples, 'bytes', 12_500)! / MiB).toBeCloseTo(5, 0);
    expect(windowRate(b.samples, 'bytes', 16_000)).toBe(0);
    expect(formatEta(etaMs(b, 16_000))).toBe('--');
    // The history stays bounded however many events come.
    expect(b.samples.length).toBeLessThanOrEqual(30);
  });

  it('a bar without a total shows a moving block and no percentage', () => {
    const lines = layoutBars({ bars: [bar('t', MiB, 2, undefined)] }, 80, 2000);
    expect(lines[0]).not.toMatch(/%/);
    expect(lines[0]).toMatch(/░*█░*/);
  });

  it('more bars than rows: the first ones, a count of the rest, the total; never taller than asked', () => {
    const state: BarsState = { bars: Array.from({ length: 40 }, (_, i) => bar(`in.c-b.t${i}`, MiB, 2, 10 * MiB)), total: bar('total', MiB, 2, 400 * MiB) };
    const lines = layoutBars(state, 80, 2000, 10);
    expect(lines).toHaveLength(10);
    expect(lines[8]).toBe('… and 32 more');
    expect(lines[9]).toMatch(/^total/);
  });

  it('names with terminal controls stay escaped and one line', () => {
    const lines = layoutBars({ bars: [bar('in.c-x.evil\u001b[2J\nname', MiB, 2, 10 * MiB)] }, 160, 2000);
    // eslint-disable-next-line no-control-regex
    expect(lines[0]).not.toMatch(/[\u0000-\u001f]/);
    expect(lines[0]).toContain('\\u001b[2J\\nname');
  });
});

describe('shortenMiddle', () => {
  it('keeps the table name at the end and the bucket at the start', () => {
    expect(shortenMiddle('in.c-very-long-bucket-name.long_table', 20)).toBe('in.c-ver….long_table');
    expect(shortenMiddle(LONG_ID, 20)).toBe('in.c-very…table_name');
    expect(shortenMiddle('in.c-very-long-bucket-name.orders', 20)).toBe('in.c-very…ame.orders');
    expect(shortenMiddle('short', 20)).toBe('short');
  });

  it.each([1, 2, 5, 12, 19, 20, 33])('fits %i columns exactly, wide characters counted as two', (width) => {
    for (const text of [LONG_ID, 'in.c-数据.表格表格表格表格表格表格表格表格']) {
      const short = shortenMiddle(text, width);
      expect(displayWidth(short)).toBeLessThanOrEqual(width);
      expect(displayWidth(short)).toBeGreaterThanOrEqual(width - 1);
    }
  });
});

describe('units', () => {
  it('sizes and rates are binary, with one formatter for rates', () => {
    expect(formatBytes(8.6 * MiB)).toBe('8.60 MiB');
    expect(formatRate(8.6 * MiB)).toBe('8.60 MiB/s');
    expect(rateOf(200 * MiB, 10_000)).toBe('20.0 MiB/s');
    expect(rateOf(5, 0)).toBe('0 B/s');
    expect(formatRate(NaN)).toBe('0 B/s');
  });

  it('counts take at most 5 characters', () => {
    expect([0, 9999, 10_000, 123_456, 999_499, 999_500, 3_294_499].map(formatCount)).toEqual(['0', '9,999', '10.0k', '123k', '999k', '1.00M', '3.29M']);
  });
});

describe('colour', () => {
  it.each([
    [{}, true, true],
    [{}, false, false],
    [{ TERM: 'dumb' }, true, false],
    [{ NO_COLOR: '1' }, true, false],
    [{ NO_COLOR: '' }, true, true],
    [{ FORCE_COLOR: '1', NO_COLOR: '1' }, true, true],
    [{ FORCE_COLOR: '1', TERM: 'dumb' }, true, true],
    [{ FORCE_COLOR: '0' }, true, false],
    [{ FORCE_COLOR: '1' }, false, false],
  ] as [NodeJS.ProcessEnv, boolean, boolean][])('env %j on a TTY: %s → %s', (env, tty, expected) => {
    expect(colorEnabled({ TERM: 'xterm-256color', ...env }, tty)).toBe(expected);
  });

  it('errors red, warnings yellow, success green, the rest plain', () => {
    expect(paintLine('takeout: error: x [USAGE, exit 2]', true)).toBe('\u001b[31mtakeout: error: x [USAGE, exit 2]\u001b[39m');
    expect(paintLine('takeout: warning: x', true)).toBe('\u001b[33mtakeout: warning: x\u001b[39m');
    expect(paintLine('takeout complete: 7 tables', true)).toBe('\u001b[32mtakeout complete: 7 tables\u001b[39m');
    expect(paintLine('export 0179-a0 COMPLETED: 3 items', true)).toBe('\u001b[32mexport 0179-a0 COMPLETED: 3 items\u001b[39m');
    expect(paintLine('merged 15 slices: 51.0 MiB fetched', true).startsWith('\u001b[32m')).toBe(true);
    expect(paintLine('takeout partial: 2 tables (1 failed)', true).startsWith('\u001b[33m')).toBe(true);
    expect(paintLine('✖ in.c-a.b: broken [INVALID_INPUT]', true).startsWith('\u001b[31m')).toBe(true);
    expect(paintLine('manifest: x', true)).toBe('manifest: x');
    expect(paintLine('takeout: error: x', false)).toBe('takeout: error: x');
  });
});
