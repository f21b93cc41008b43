import { formatBytes, formatRate, scaled } from '../units.js';
import { printable } from './redact.js';

/**
 * The progress bars as text: a pure function of (state, columns, now), so the layout is tested without a
 * terminal. The TTY reporter feeds the state from events and draws what this returns.
 */

/** One point of a bar's history, for its rate over a sliding window. */
export interface Sample {
  at: number;
  /** Progress in the bar's unit (bytes, or slices for a merge). */
  done: number;
  bytes: number;
}

export interface BarState {
  name: string;
  /** Progress in the bar's unit; `total` in the same unit when it is known. */
  done: number;
  total?: number;
  /** Whether `done`/`total` are bytes (the size field then shows `of <total>`). */
  unit: 'bytes' | 'count';
  /** Bytes taken so far: the size shown and the rate measured. */
  bytes: number;
  /** Rows, or `3/10 slices`, as shown. */
  count?: string;
  /** Oldest first; kept by `addSample`. */
  samples: Sample[];
}

export interface BarsState {
  bars: BarState[];
  /** The whole command's line, under the bars. */
  total?: BarState;
}

/**
 * Rates are measured over the last 5 s: long enough that one slow upload or one gzip batch does not make the
 * number jump, short enough that a table that stalls shows it within seconds (rclone's default averages 1 min;
 * a table bar lives shorter than that).
 */
export const RATE_WINDOW_MS = 5_000;
/** Below this much history a rate (and an ETA) would be noise: none is shown. */
export const MIN_RATE_SPAN_MS = 1_000;
/** Samples closer than this are merged: bounds the history to ~50 points per bar whatever the event rate. */
const SAMPLE_EVERY_MS = 100;
/** An ETA beyond this is not an estimate anyone can use: `--`. */
const MAX_ETA_MS = 100 * 3600_000;

/** Records the bar's current `done`/`bytes` at `now`, dropping history the window no longer needs. */
export function addSample(bar: BarState, now: number): void {
  const last = bar.samples[bar.samples.length - 1];
  const previous = bar.samples[bar.samples.length - 2];
  if (last && previous && now - previous.at < SAMPLE_EVERY_MS) {
    last.at = now;
    last.done = bar.done;
    last.bytes = bar.bytes;
  } else {
    bar.samples.push({ at: now, done: bar.done, bytes: bar.bytes });
  }
  // Keep one sample at or before the window's start: the rate's base.
  while (bar.samples.length > 2 && bar.samples[1]!.at <= now - RATE_WINDOW_MS) bar.samples.shift();
}

/** Units of `key` per second over the window ending now; undefined while there is too little history. */
export function windowRate(samples: readonly Sample[], key: 'done' | 'bytes', now: number): number | undefined {
  const last = samples[samples.length - 1];
  if (!last) return undefined;
  let base = samples[0]!;
  for (const s of samples) if (s.at <= now - RATE_WINDOW_MS) base = s;
  const span = now - base.at;
  if (span < MIN_RATE_SPAN_MS) return undefined;
  return Math.max(0, last[key] - base[key]) / (span / 1000);
}

/** Milliseconds left, when there is an answer: a known total not yet passed and a measured, non-zero rate. */
export function etaMs(bar: BarState, now: number): number | undefined {
  if (bar.total === undefined || bar.done > bar.total) return undefined;
  const rate = windowRate(bar.samples, 'done', now);
  if (rate === undefined || !(rate > 0)) return undefined;
  const ms = ((bar.total - bar.done) / rate) * 1000;
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_ETA_MS ? ms : undefined;
}

/** `42s`, `3m05s`, `2h03m`; `--` when there is no estimate. */
export function formatEta(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '--';
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A count in at most 5 characters for a bar (`9,999`, `12.3k`, `1.23M`): the exact number is in the line
 * printed when the table is done; while it runs the digits that change are noise and take the room of the rate.
 */
export function formatCount(n: number): string {
  if (n < 10_000) return n.toLocaleString('en-US');
  // 999.5k would round to "1000k": it is 1.00M.
  return scaled(n, 1000, ['k', 'M', 'G', 'T'], 999.5);
}

// ---------------------------------------------------------------------------------------------
// Display width

/** Columns a code point takes: 0 for combining marks and joiners, 2 for East Asian wide and emoji, else 1. */
function charWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0x20d0 && cp <= 0x20ff)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Terminal columns `text` takes (text without control characters: printable() has escaped them). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const c of text) width += charWidth(c.codePointAt(0)!);
  return width;
}

/** The longest start of `chars` that fits `width` columns. */
function takeStart(chars: readonly string[], width: number): string {
  let out = '';
  let used = 0;
  for (const c of chars) {
    const w = charWidth(c.codePointAt(0)!);
    if (used + w > width) break;
    out += c;
    used += w;
  }
  return out;
}

function takeEnd(chars: readonly string[], width: number): string {
  return [...takeStart([...chars].reverse(), width)].reverse().join('');
}

/** A head this short says nothing; below it the name's end gets all the room. */
const MIN_HEAD = 4;

/**
 * `text` in at most `width` columns, shortened in the middle (`in.c-very…long_table`): a table id's end (the
 * table name) is what tells tables apart, so the end gets at least half the room, and all of the table name
 * when it fits with a few characters of the bucket before it.
 */
export function shortenMiddle(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 0) return '';
  if (width === 1) return '…';
  const chars = [...text];
  const room = width - 1;
  const tableName = text.slice(text.lastIndexOf('.'));
  const nameWidth = text.includes('.') ? displayWidth(tableName) : 0;
  const tail = nameWidth > Math.ceil(room / 2) && nameWidth <= room - MIN_HEAD ? nameWidth : Math.ceil(room / 2);
  const end = takeEnd(chars, tail);
  const start = takeStart(chars, room - displayWidth(end));
  return `${start}…${end}`;
}

function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - displayWidth(text))) + text;
}

// ---------------------------------------------------------------------------------------------
// Layout

type Field = 'pct' | 'size' | 'of' | 'count' | 'rate' | 'eta';
/** Left to right after the name and the bar. */
const FIELDS: readonly Field[] = ['pct', 'size', 'of', 'count', 'rate', 'eta'];
/** Dropped first to last when the line does not fit: the name goes on being readable longest. */
const DROP_ORDER: readonly Field[] = ['of', 'eta', 'rate', 'count'];
/** Then, when even the name at its minimum does not fit: the bar, the size, the percentage. */
const LAST_RESORT: readonly Field[] = ['size', 'pct'];
const RIGHT_ALIGNED = new Set<Field>(['pct', 'size', 'count', 'rate']);
/** The widest each field gets (`100%`, `1023 MiB`, `1023 MiB/s`, `ETA 59m59s`): columns do not move as numbers grow. */
const MIN_WIDTH: Partial<Record<Field, number>> = { pct: 4, size: 8, rate: 10, eta: 10 };

/** A name is shortened to this before any field is dropped… */
const NAME_READABLE = 20;
/** …and to this only when every droppable field is gone. */
const NAME_MIN = 12;
/** Bars narrower than this show nothing a percentage does not. */
const BAR_MIN = 8;
/** Spare room goes to the name (whole ids are best), then to the bar up to this. */
const BAR_MAX = 40;
const GAP = 2;
/** `12.3 MiB of 120 MiB` reads as one field. */
const gapBefore = (field: Field): number => (field === 'of' ? 1 : GAP);
/** Narrower terminals than this are not worth laying out for: lines are cut to it. */
const MIN_COLUMNS = 20;

function fieldText(bar: BarState, field: Field, now: number): string {
  switch (field) {
    case 'pct':
      return bar.total === undefined ? '' : `${Math.floor(Math.min(1, bar.total <= 0 ? 1 : bar.done / bar.total) * 100)}%`;
    case 'size':
      return formatBytes(bar.bytes);
    case 'of':
      return bar.unit === 'bytes' && bar.total !== undefined ? `of ${formatBytes(bar.total)}` : '';
    case 'count':
      return bar.count ?? '';
    case 'rate': {
      const rate = windowRate(bar.samples, 'bytes', now);
      return rate === undefined ? '' : formatRate(rate);
    }
    case 'eta':
      return `ETA ${formatEta(etaMs(bar, now))}`;
  }
}

/** Filled and empty cells; a bar without a total shows a block moving through it. */
function barText(bar: BarState, width: number, now: number): string {
  if (bar.total === undefined) {
    const at = Math.floor(now / 150) % width;
    return '░'.repeat(at) + '█' + '░'.repeat(width - at - 1);
  }
  const fraction = bar.total <= 0 ? 1 : Math.min(1, Math.max(0, bar.done / bar.total));
  const filled = Math.floor(fraction * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

interface Plan {
  fields: Field[];
  nameWidth: number;
  barWidth: number;
}

function planLayout(width: number, nameNatural: number, widths: Map<Field, number>, present: readonly Field[]): Plan {
  const fieldsWidth = (fields: readonly Field[]): number => fields.reduce((sum, f) => sum + gapBefore(f) + widths.get(f)!, 0);
  const withSpare = (fields: Field[], name: number, bar: number): Plan => {
    let spare = width - (name + (bar > 0 ? 1 + bar : 0) + fieldsWidth(fields));
    let barWidth = bar;
    let nameWidth = name;
    const grow = (to: number, current: number): number => {
      const add = Math.max(0, Math.min(spare, to - current));
      spare -= add;
      return current + add;
    };
    nameWidth = grow(nameNatural, nameWidth);
    if (barWidth > 0) barWidth = grow(BAR_MAX, barWidth);
    return { fields, nameWidth, barWidth };
  };
  let fields = [...present];
  const readable = Math.min(nameNatural, NAME_READABLE);
  for (const drop of [undefined, ...DROP_ORDER]) {
    if (drop) fields = fields.filter((f) => f !== drop);
    if (readable + 1 + BAR_MIN + fieldsWidth(fields) <= width) return withSpare(fields, readable, BAR_MIN);
  }
  const least = Math.min(nameNatural, NAME_MIN);
  if (least + 1 + BAR_MIN + fieldsWidth(fields) <= width) return withSpare(fields, least, BAR_MIN);
  for (const drop of [undefined, ...LAST_RESORT]) {
    if (drop) fields = fields.filter((f) => f !== drop);
    if (least + fieldsWidth(fields) <= width) return withSpare(fields, least, 0);
  }
  return { fields: [], nameWidth: width, barWidth: 0 };
}

/** What a frame shows when there are more bars than rows: the first ones and a count of the rest. */
function visibleBars(state: BarsState, maxLines: number): { bars: BarState[]; more: number } {
  const room = Math.max(1, maxLines - (state.total ? 1 : 0) - 1);
  if (state.bars.length + (state.total ? 1 : 0) <= maxLines) return { bars: state.bars, more: 0 };
  return { bars: state.bars.slice(0, room), more: state.bars.length - room };
}

/**
 * The frame's lines, each at most `columns - 1` wide (the last column is left alone: a character there puts
 * many terminals in a pending wrap, and a resize then reflows the line). Every line shows the same fields in
 * aligned columns; when they do not fit, the least useful go first, whole (ETA, then rate, then rows), never
 * cut in the middle of a number. Names are shortened in the middle. At most `maxLines` lines.
 */
export function layoutBars(state: BarsState, columns: number, now: number, maxLines = Number.POSITIVE_INFINITY): string[] {
  const width = Math.max(MIN_COLUMNS, Math.floor(Number.isFinite(columns) && columns > 0 ? columns : 80) - 1);
  const { bars, more } = visibleBars(state, maxLines);
  const lines = [...bars, ...(state.total ? [state.total] : [])];
  if (lines.length === 0) return [];
  const names = lines.map((bar) => printable(bar.name));
  const texts = lines.map((bar) => new Map(FIELDS.map((f) => [f, fieldText(bar, f, now)] as const)));
  const widths = new Map<Field, number>(
    FIELDS.map((f) => {
      const widest = Math.max(...texts.map((t) => displayWidth(t.get(f)!)));
      return [f, widest > 0 ? Math.max(widest, MIN_WIDTH[f] ?? 0) : 0];
    }),
  );
  const present = FIELDS.filter((f) => widths.get(f)! > 0);
  const plan = planLayout(width, Math.max(...names.map(displayWidth)), widths, present);
  const out = lines.map((bar, i) => {
    const parts = [padEnd(shortenMiddle(names[i]!, plan.nameWidth), plan.nameWidth)];
    if (plan.barWidth > 0) parts.push(` ${barText(bar, plan.barWidth, now)}`);
    for (const f of plan.fields) {
      const text = texts[i]!.get(f)!;
      parts.push(' '.repeat(gapBefore(f)) + (RIGHT_ALIGNED.has(f) ? padStart(text, widths.get(f)!) : padEnd(text, widths.get(f)!)));
    }
    return parts.join('').trimEnd();
  });
  if (more > 0) out.splice(bars.length, 0, shortenMiddle(`… and ${more} more`, width));
  return out;
}
