import { TakeoutError } from '../errors.js';
import type { Row } from '../model.js';
import { dynamoMapText, notAnItem, numberText, parseBinary, parseBoolean, parseDynamoItem, parseJsonCell, stringList, type LineEncoder, type RecordColumn } from './typed-records.js';

/**
 * Amazon Ion text, as DynamoDB's ION export writes it: one `$ion_1_0 {Item:{…}}` per line, with
 * S → string, N → decimal (the number's own digits: `103.`, `6d2`), BOOL → bool, B → blob, L → list,
 * M → struct, NULL → `null`, and sets as lists annotated `$dynamodb_SS::`, `$dynamodb_NS::`, `$dynamodb_BS::`.
 * Built as text directly, like the DynamoDB JSON encoder: ion-js's writer builds an object per value and is
 * several times slower; the tests read every line back with ion-js.
 */

/** Every line starts with the Ion version marker, as DynamoDB's export does, so each line is a whole Ion stream. */
export const ION_VERSION_MARKER = '$ion_1_0';

const NUMBER_PARTS = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?)(\d+))?$/;

/**
 * A number's text (already checked by `numberText`) as an Ion decimal with the same digits: Ion needs a `.`
 * or a `d` exponent to read a decimal rather than an int or a float, and no leading zeros or bare `.5`.
 */
export function ionDecimal(text: string): string {
  const m = NUMBER_PARTS.exec(text);
  if (m === null) throw new TakeoutError('INVALID_INPUT', `'${text.slice(0, 40)}' is not a number`);
  const sign = m[1] ?? '';
  const int = (m[2] ?? '').replace(/^0+(?=\d)/, '') || '0';
  const frac = m[3] ?? '';
  if (m[5] === undefined) return `${sign}${int}.${frac}`;
  const exponent = `${m[4] === '-' ? '-' : ''}${m[5].replace(/^0+(?=\d)/, '')}`;
  return `${sign}${int}${frac === '' ? '' : `.${frac}`}d${exponent}`;
}

/** Characters a short Ion string or quoted symbol cannot hold as they are: quotes, backslash, controls, surrogates (pairs are checked one by one). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const NEEDS_ESCAPE = /["'\\\x00-\x1f\x7f\ud800-\udfff]/;

function escapeText(text: string, quote: '"' | "'"): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let rep: string | undefined;
    if (c === 0x22 || c === 0x27) {
      if (text[i] === quote) rep = `\\${quote}`;
    } else if (c === 0x5c) rep = '\\\\';
    else if (c < 0x20 || c === 0x7f) {
      rep = c === 0x0a ? '\\n' : c === 0x09 ? '\\t' : c === 0x0d ? '\\r' : `\\x${c.toString(16).padStart(2, '0')}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair: written as it is (UTF-8 of one code point)
        continue;
      }
      // A lone surrogate has no UTF-8 form; it would become U+FFFD on the way out anyway.
      rep = '\ufffd';
    }
    if (rep !== undefined) {
      out += text.slice(from, i) + rep;
      from = i + 1;
    }
  }
  return out + text.slice(from);
}

/** A string as an Ion string literal (UTF-8 kept as it is, controls escaped). */
export function ionString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? `"${escapeText(text, '"')}"` : `"${text}"`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Identifiers Ion reads as values, not symbols, so a field of that name must be quoted. */
const KEYWORDS = new Set(['null', 'true', 'false', 'nan']);

/** A struct field name: bare when it is a plain identifier (as DynamoDB writes `Item`, `Id`), otherwise a quoted symbol. */
export function ionSymbol(name: string): string {
  if (IDENTIFIER.test(name) && !KEYWORDS.has(name)) return name;
  return NEEDS_ESCAPE.test(name) ? `'${escapeText(name, "'")}'` : `'${name}'`;
}

/** Field names of the columns as Ion symbols, computed once per export. */
export function ionFieldNames(columns: readonly RecordColumn[]): string[] {
  return columns.map((c) => ionSymbol(c.name));
}

/**
 * One parsed JSON value (a json/jsonb cell) as Ion: objects → structs, arrays → lists. Numbers have been
 * through JSON.parse, so they carry a double's digits, as in the DynamoDB JSON encoder.
 */
function jsonToIon(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return ionString(value);
    case 'number':
      return ionDecimal(String(value));
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(jsonToIon).join(',')}]`;
      let text = '';
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) text += `${text === '' ? '' : ','}${ionSymbol(k)}:${jsonToIon(v)}`;
      return `{${text}}`;
    }
    default:
      return 'null';
  }
}

/** Base64 as Ion blob text: decoded and encoded again, so stray characters never reach the blob. */
const ionBlob = (bytes: Buffer): string => `{{${bytes.toString('base64')}}}`;

/** One cell as an Ion value, typed by its column's kind (see `attributeValue` in dynamodb-json.ts). */
export function ionAttributeValue(column: RecordColumn, cell: string | null, origin: string): string {
  if (cell === null) return 'null';
  switch (column.kind) {
    case 'integer':
    case 'number':
      return ionDecimal(numberText(cell, `${origin}: column ${column.name}`));
    case 'boolean':
      return parseBoolean(cell) ? 'true' : 'false';
    case 'binary':
      return ionBlob(parseBinary(cell));
    case 'json': {
      return jsonToIon(parseJsonCell(cell, origin, column));
    }
    case 'dynamodb-item':
      return dynamoJsonItemToIon(cell, `${origin}: column ${column.name}`);
    default:
      return ionString(cell);
  }
}

const SET_ANNOTATIONS = { SS: '$dynamodb_SS::', NS: '$dynamodb_NS::', BS: '$dynamodb_BS::' } as const;


/** One DynamoDB JSON attribute value (`{"S":…}`, `{"NS":[…]}`, …) as Ion. */
function dynamoValueToIon(av: unknown, where: string): string {
  if (typeof av !== 'object' || av === null || Array.isArray(av)) throw notAnItem(where, 'an attribute value is not an object');
  const entries = Object.entries(av as Record<string, unknown>);
  if (entries.length !== 1) throw notAnItem(where, `an attribute value has ${entries.length} types`);
  const [type, value] = entries[0]!;
  switch (type) {
    case 'S':
      if (typeof value !== 'string') throw notAnItem(where, 'S is not a string');
      return ionString(value);
    case 'N':
      if (typeof value !== 'string') throw notAnItem(where, 'N is not a string');
      return ionDecimal(numberText(value, where));
    case 'B':
      if (typeof value !== 'string') throw notAnItem(where, 'B is not base64 text');
      return ionBlob(Buffer.from(value, 'base64'));
    case 'BOOL':
      if (typeof value !== 'boolean') throw notAnItem(where, 'BOOL is not true or false');
      return value ? 'true' : 'false';
    case 'NULL':
      return 'null';
    case 'M':
      return dynamoMapToIon(value, where);
    case 'L':
      if (!Array.isArray(value)) throw notAnItem(where, 'L is not a list');
      return `[${value.map((v) => dynamoValueToIon(v, where)).join(',')}]`;
    case 'SS':
      return `${SET_ANNOTATIONS.SS}[${stringList(value, where, type).map(ionString).join(',')}]`;
    case 'NS':
      return `${SET_ANNOTATIONS.NS}[${stringList(value, where, type).map((n) => ionDecimal(numberText(n, where))).join(',')}]`;
    case 'BS':
      return `${SET_ANNOTATIONS.BS}[${stringList(value, where, type).map((b) => ionBlob(Buffer.from(b, 'base64'))).join(',')}]`;
    default:
      throw notAnItem(where, `unknown attribute type ${type.slice(0, 20)}`);
  }
}

function dynamoMapToIon(map: unknown, where: string): string {
  return dynamoMapText(map, where, ionSymbol, (v) => dynamoValueToIon(v, where));
}

/**
 * A whole item in DynamoDB JSON (`{"pk":{"S":"1"},"tags":{"SS":["a"]}}`, as the DynamoDB source's `item` column
 * or `itemMap` holds it) as an Ion struct, every attribute type converted. `where` names the column for errors.
 */
export function dynamoJsonItemToIon(text: string, where: string): string {
  return dynamoMapToIon(parseDynamoItem(text, where), where);
}

/**
 * The item of a row as an Ion struct, mirroring `itemMap` in dynamodb-json.ts: a DynamoDB source's whole
 * `item` cell when there is one, otherwise every column. For `Item`, and for the `Keys`, `NewImage` and
 * `OldImage` of incremental records (pass the key columns alone for `Keys`). `names` from `ionFieldNames`.
 */
export function ionItem(columns: readonly RecordColumn[], names: readonly string[], row: Row, origin: string): string {
  let text = '';
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i]!;
    const cell = row[i] ?? null;
    if (column.kind === 'dynamodb-item') {
      if (cell === null) throw new TakeoutError('INVALID_INPUT', `${origin}: column ${column.name} does not hold a DynamoDB item`);
      return dynamoJsonItemToIon(cell, `${origin}: column ${column.name}`);
    }
    text += `${i === 0 ? '' : ','}${names[i]}:${ionAttributeValue(column, cell, origin)}`;
  }
  return `{${text}}`;
}

/** DynamoDB's ION export lines: `$ion_1_0 {Item:{…}}\n`, files named `.ion` (`.ion.gz` once gzipped). */
export function dynamoIonEncoder(columns: readonly RecordColumn[], origin: string): LineEncoder {
  const names = ionFieldNames(columns);
  return {
    extension: 'ion',
    encode: (row) => `${ION_VERSION_MARKER} {Item:${ionItem(columns, names, row, origin)}}\n`,
  };
}
