import { TakeoutError } from '../errors.js';
import type { Row } from '../model.js';
import { dynamoMapText, notAnItem, numberText, parseBinary, parseBoolean, parseDynamoItem, stringList, type LineEncoder, type RecordColumn } from './typed-records.js';

/**
 * JSON lines: one object per record, keys in column order, values typed by the column's kind:
 * integer/number → a JSON number when a reader's double holds the exact value, otherwise the number's
 * text as a JSON string (so `12345678901234567890` or a 38-digit decimal is never silently rounded);
 * boolean → true/false; json → the document itself; binary → base64; dynamodb-item → the plain JSON of
 * the item (as `unmarshall` gives it, sets as lists, binary as base64); NULL → null; everything else
 * (strings, dates, timestamps) → the cell's text. Built as text directly, for speed.
 */

/** Every decimal of at most this many significant digits survives a trip through a double (DBL_DIG). */
const DOUBLE_EXACT_DIGITS = 15;
/** Decimal exponents well inside a double's normal range, where the digit rule above holds. */
const DOUBLE_SAFE_EXPONENT = 300;

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const NUMBER_PARTS = /^-?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** A number as significant digits (no leading or trailing zeros) and the exponent of its last digit; zero → ''. */
function canonical(text: string): { negative: boolean; digits: string; exponent: number } | undefined {
  const m = NUMBER_PARTS.exec(text);
  if (m === null) return undefined;
  const all = `${m[1] ?? ''}${m[2] ?? ''}`;
  let exponent = Number(m[3] ?? '0') - (m[2] ?? '').length;
  const lead = all.replace(/^0+/, '');
  const digits = lead.replace(/0+$/, '');
  exponent += lead.length - digits.length;
  return { negative: text.startsWith('-') && digits !== '', digits, exponent: digits === '' ? 0 : exponent };
}

/**
 * A number cell (checked by `numberText`) as JSON: a number when JSON.parse on the reader's side gives back
 * exactly this value, otherwise a string of the number's text.
 */
export function jsonNumber(text: string): string {
  const c = canonical(text);
  if (c === undefined) return JSON.stringify(text);
  if (c.digits === '') return text.startsWith('-') ? '-0' : '0';
  const magnitude = c.exponent + c.digits.length;
  if (c.digits.length <= DOUBLE_EXACT_DIGITS && Math.abs(magnitude) < DOUBLE_SAFE_EXPONENT) {
    return JSON_NUMBER.test(text) ? text : String(Number(text));
  }
  // Longer: exact only if the double's shortest form has the same digits (2^53, 0.30000000000000004, …).
  const n = Number(text);
  if (!Number.isFinite(n)) return JSON.stringify(text);
  const back = canonical(String(n));
  if (back !== undefined && back.digits === c.digits && back.exponent === c.exponent && back.negative === c.negative) {
    return JSON_NUMBER.test(text) ? text : String(n);
  }
  return JSON.stringify(text);
}


/** Base64 decoded and encoded again, so what a reader decodes is what DynamoDB would. */
const base64 = (text: string): string => JSON.stringify(Buffer.from(text, 'base64').toString('base64'));

/** One DynamoDB JSON attribute value as plain JSON text. */
function plainValue(av: unknown, where: string): string {
  if (typeof av !== 'object' || av === null || Array.isArray(av)) throw notAnItem(where, 'an attribute value is not an object');
  const entries = Object.entries(av as Record<string, unknown>);
  if (entries.length !== 1) throw notAnItem(where, `an attribute value has ${entries.length} types`);
  const [type, value] = entries[0]!;
  switch (type) {
    case 'S':
      if (typeof value !== 'string') throw notAnItem(where, 'S is not a string');
      return JSON.stringify(value);
    case 'N':
      if (typeof value !== 'string') throw notAnItem(where, 'N is not a string');
      return jsonNumber(numberText(value, where));
    case 'B':
      if (typeof value !== 'string') throw notAnItem(where, 'B is not base64 text');
      return base64(value);
    case 'BOOL':
      if (typeof value !== 'boolean') throw notAnItem(where, 'BOOL is not true or false');
      return value ? 'true' : 'false';
    case 'NULL':
      return 'null';
    case 'M':
      return plainMap(value, where);
    case 'L':
      if (!Array.isArray(value)) throw notAnItem(where, 'L is not a list');
      return `[${value.map((v) => plainValue(v, where)).join(',')}]`;
    case 'SS':
      return `[${stringList(value, where, type).map((s) => JSON.stringify(s)).join(',')}]`;
    case 'NS':
      return `[${stringList(value, where, type).map((n) => jsonNumber(numberText(n, where))).join(',')}]`;
    case 'BS':
      return `[${stringList(value, where, type).map(base64).join(',')}]`;
    default:
      throw notAnItem(where, `unknown attribute type ${type.slice(0, 20)}`);
  }
}

function plainMap(map: unknown, where: string): string {
  return dynamoMapText(map, where, (k) => JSON.stringify(k), (v) => plainValue(v, where));
}

/**
 * A DynamoDB JSON item as plain JSON text: what `unmarshall` from @aws-sdk/util-dynamodb gives, with sets
 * as lists, binary as base64 and numbers by `jsonNumber`. Converted here rather than through `unmarshall`:
 * that returns Sets, Uint8Arrays and NumberValues needing a second walk, and checks no types (the tests use
 * it as the reference). `where` names the column for errors.
 */
export function plainJsonOfDynamoItem(text: string, where: string): string {
  return plainMap(parseDynamoItem(text, where), where);
}

/** A json/jsonb cell, checked, as the document's own text (number digits kept) on one line. */
export function jsonDocument(cell: string, where: string): string {
  try {
    JSON.parse(cell);
  } catch {
    throw new TakeoutError('INVALID_INPUT', `${where} is not valid JSON`);
  }
  // Line breaks in valid JSON are whitespace between tokens (strings hold them escaped): spaces keep one record a line.
  return /[\r\n]/.test(cell) ? cell.replace(/[\r\n]/g, ' ').trim() : cell.trim();
}

/** One cell as JSON text, typed by its column's kind. */
export function jsonValue(column: RecordColumn, cell: string | null, origin: string): string {
  if (cell === null) return 'null';
  switch (column.kind) {
    case 'integer':
    case 'number':
      return jsonNumber(numberText(cell, `${origin}: column ${column.name}`));
    case 'boolean':
      return parseBoolean(cell) ? 'true' : 'false';
    case 'binary':
      return JSON.stringify(parseBinary(cell).toString('base64'));
    case 'json':
      return jsonDocument(cell, `${origin}: column ${column.name}`);
    case 'dynamodb-item':
      return plainJsonOfDynamoItem(cell, `${origin}: column ${column.name}`);
    default:
      return JSON.stringify(cell);
  }
}

/** The plain layout's JSON lines: one object per line, files named `.jsonl`. */
export function jsonLinesEncoder(columns: readonly RecordColumn[], origin: string): LineEncoder {
  const names = columns.map((c) => `${JSON.stringify(c.name)}:`);
  return {
    extension: 'jsonl',
    encode: (row: Row) => {
      let text = '{';
      for (let i = 0; i < columns.length; i++) text += `${i === 0 ? '' : ','}${names[i]}${jsonValue(columns[i]!, row[i] ?? null, origin)}`;
      return `${text}}\n`;
    },
  };
}

/**
 * One cell as plain text, typed kinds normalised as JSON writes them (numbers checked, booleans true/false,
 * bytes base64, documents on one line, DynamoDB items as plain JSON), the rest as it is: for CSV and XML
 * outputs that carry values as text.
 */
export function textOfCell(column: RecordColumn, cell: string, origin: string): string {
  const where = `${origin}: column ${column.name}`;
  switch (column.kind) {
    case 'integer':
    case 'number':
      return numberText(cell, where);
    case 'boolean':
      return parseBoolean(cell) ? 'true' : 'false';
    case 'binary':
      return parseBinary(cell).toString('base64');
    case 'json':
      return jsonDocument(cell, where);
    case 'dynamodb-item':
      return plainJsonOfDynamoItem(cell, where);
    default:
      return cell;
  }
}
