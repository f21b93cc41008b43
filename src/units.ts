import { invalid, ok, type Validation } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** `256MB`, `64 KiB`, `1g`, `1048576` → bytes. Units are binary (1 MB = 1 MiB), as S3 part sizes are. */
export function parseSize(text: string, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): Validation<number> {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    return invalid(`${name}: '${text}' is not a size`, 'use a number with an optional unit: 512KB, 256MB, 1GB');
  }
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes < min || bytes > max) {
    return invalid(`${name}: '${text}' is out of range (${formatBytes(min)} to ${formatBytes(max)})`);
  }
  return ok(bytes);
}

export function parseInteger(text: string, name: string, min: number, max: number): Validation<number> {
  if (!/^\s*\d+\s*$/.test(text)) return invalid(`${name}: '${text}' is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) return invalid(`${name}: '${text}' is out of range (${min} to ${max})`);
  return ok(n);
}

/**
 * `n` in the largest of `units` (each `base` times the one before) that keeps it under `limit`, with three
 * significant digits: the one rounding of sizes and counts that every line shares.
 */
export function scaled(n: number, base: number, units: readonly string[], limit = base): string {
  let value = n / base;
  let i = 0;
  while (value >= limit && i < units.length - 1) {
    value /= base;
    i++;
  }
  const digits = value >= 99.95 ? value.toFixed(0) : value >= 9.995 ? value.toFixed(1) : value.toFixed(2);
  return `${digits}${units[i]}`;
}

/** Sizes are binary everywhere takeout prints them (`1 MiB` = 1024 KiB), as `--slice-size` and S3 part sizes are. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  return scaled(bytes, 1024, [' KiB', ' MiB', ' GiB', ' TiB']);
}

/**
 * A rate in the same binary units as sizes (`8.61 MiB/s`): the one formatter for every rate takeout prints, so
 * a line never says MB/s beside MiB. Not finite or negative (nothing measured yet) → `0 B/s`.
 */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0 ? Math.round(bytesPerSecond) : 0)}/s`;
}

/** `bytes` over `ms` as a rate: the summary lines' throughput. */
export function rateOf(bytes: number, ms: number): string {
  return formatRate(ms > 0 ? bytes / (ms / 1000) : 0);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/**
 * A count with its noun, singular for exactly one: `1 row`, `0 rows`, `25,000 rows`. Every count in human
 * output goes through here, so none says "1 rows". `many` for nouns that do not just take an s (`entries`).
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** Milliseconds per duration unit, with the long names `--changed-since -3 days` has always taken. */
const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  msec: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

export interface DurationOptions {
  /**
   * What a number without a unit means, in ms per unit: what the option took before units were accepted
   * (1 for `--request-timeout`, which always was milliseconds). Unset: only a bare `0` is accepted.
   */
  bareUnitMs?: number;
  min?: number;
  max?: number;
}

/** The forms every duration option accepts, for its error hint. */
export const DURATION_FORMS = 'a number with a unit: 500ms, 30s, 5m, 2h, 7d, 1w (or combined: 1h30m)';

/**
 * `30s`, `5m`, `2h`, `7d`, `1w`, `500ms`, `1.5h`, `1h30m` → milliseconds: the forms of Go's
 * time.ParseDuration and rclone's durations, plus days and weeks. One parser for every duration option.
 */
export function parseDuration(text: string, name: string, options: DurationOptions = {}): Validation<number> {
  const trimmed = text.trim().toLowerCase();
  const bare = options.bareUnitMs;
  const hint = bare === undefined ? `use ${DURATION_FORMS}` : `use ${DURATION_FORMS}; a bare number is ${bare === 1 ? 'milliseconds' : `in units of ${formatDuration(bare)}`}`;
  let ms: number;
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) {
    if (bare === undefined && Number(trimmed) !== 0) return invalid(`${name}: '${text}' has no unit`, `use ${DURATION_FORMS} (or 0)`);
    ms = Number(trimmed) * (bare ?? 1);
  } else {
    const part = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/gy;
    ms = 0;
    let at = 0;
    for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
      const unit = DURATION_UNITS[match[2]!];
      if (unit === undefined) return invalid(`${name}: '${text}' is not a duration (unknown unit '${match[2]!}')`, hint);
      ms += Number(match[1]) * unit;
      at = part.lastIndex;
    }
    if (at === 0 || at !== trimmed.length) return invalid(`${name}: '${text}' is not a duration`, hint);
  }
  ms = Math.round(ms);
  const min = options.min ?? 0;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(ms) || ms < min || ms > max) {
    return invalid(`${name}: '${text}' is out of range (${formatDuration(min)} to ${max === Number.MAX_SAFE_INTEGER ? 'any' : formatDuration(max)})`);
  }
  return ok(ms);
}
