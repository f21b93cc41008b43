import { invalid, ok, type Validation } from '../errors.js';

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

/** Sizes are binary everywhere takeout prints them (`1 MiB` = 1024 KiB), as `--slice-size` and S3 part sizes are. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${units[i]}`;
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
