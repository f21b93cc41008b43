import { TakeoutError } from '../errors.js';
import { parseTimestamp } from './typed-records.js';

/**
 * CleverTap's character rules for exports: whitespace (any Unicode white space, tab included), slash and NUL
 * become `-`; other control characters (C0, DEL, C1) become `?`; everything else, emoji included, is kept.
 * Lone UTF-16 surrogates (no UTF-8 form) become `?` too. One code point in, one out, so lengths in code
 * points never change.
 *
 * CleverTap's documentation does not say whether the rules apply to names or to values. Takeout applies them
 * where a name becomes part of a file name: the event name in the clevertap layout's file-name template.
 * Values inside files are written as they are (escaped by each format as it needs).
 */
export function clevertapText(text: string): string {
  if (!NEEDS_CHANGE.test(text)) return text;
  let out = '';
  for (const ch of text) {
    if (DASH.test(ch)) out += '-';
    else if (QUESTION.test(ch)) out += '?';
    else out += ch;
  }
  return out;
}

/** Any character the rules change (checked first so the usual event name is returned untouched). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const NEEDS_CHANGE = /[\s/\0\x00-\x1f\x7f-\x9f\ud800-\udfff]/;
const DASH = /^[\s/\0]$/;
/** Control characters, and a lone surrogate (a valid pair reaches here as one two-unit character and is not matched). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const QUESTION = /^[\x00-\x1f\x7f-\x9f\ud800-\udfff]$/;

/** CleverTap writes `ts` as yyyyMMddHHmmss (UTC) read as an integer. */
const TS_DIGITS = 14;
/** Epoch times of up to 11 digits are seconds (to year 5138); 12–13 digits are milliseconds. */
const EPOCH_SECONDS_MAX_DIGITS = 11;
const EPOCH_MILLIS_MAX_DIGITS = 13;

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * An event time cell as CleverTap's `ts` (`20240501103000`): 14 digits are taken as they are, shorter digit
 * runs as epoch seconds (≤ 11 digits) or milliseconds (12–13), anything else as a timestamp (`2024-05-01
 * 10:30:00+02`, ISO 8601; UTC when it has no zone). `where` names the column for errors.
 */
export function clevertapTs(text: string, where: string): string {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    if (t.length === TS_DIGITS) return t;
    if (t.length <= EPOCH_MILLIS_MAX_DIGITS) {
      const ms = t.length <= EPOCH_SECONDS_MAX_DIGITS ? Number(t) * 1000 : Number(t);
      return formatTs(new Date(ms), text, where);
    }
  }
  // A date alone is midnight UTC (parseTimestamp would read its `-01` as a zone).
  const date = parseTimestamp(/^\d{4}-\d\d-\d\d$/.test(t) ? `${t}T00:00:00Z` : t);
  if (date === undefined) throw new TakeoutError('INVALID_INPUT', `${where}: '${text.slice(0, 40)}' is not a time CleverTap's ts can hold`);
  return formatTs(date, text, where);
}

function formatTs(date: Date, text: string, where: string): string {
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 0 || year > 9999) throw new TakeoutError('INVALID_INPUT', `${where}: '${text.slice(0, 40)}' is not a time CleverTap's ts can hold`);
  return `${pad(year, 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
}
