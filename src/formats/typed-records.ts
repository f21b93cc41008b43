import { TakeoutError } from '../errors.js';
import type { Row, TableDescriptor } from '../model.js';

/**
 * Records with typed columns, for the encoders of dataset exports (DynamoDB JSON, Ion, JSON lines,
 * Parquet, XML). Cells stay in the text form sources give them (a CSV field, a COPY value; `null` for
 * SQL NULL); each column's kind says how to read that text.
 */
export type ColumnKind =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  /** Bytes: PostgreSQL `\x…` hex, or base64. */
  | 'binary'
  /** A JSON document (json/jsonb): objects become maps, arrays lists. */
  | 'json'
  | 'date'
  | 'timestamp'
  /** A whole DynamoDB item in DynamoDB JSON (the DynamoDB source's `item` column). */
  | 'dynamodb-item';

export interface RecordColumn {
  name: string;
  kind: ColumnKind;
}

const metaValue = (table: TableDescriptor, column: string, key: string): string | undefined =>
  table.columnMetadata?.[column]?.find((m) => m.key === key)?.value;

/** Column kinds from the source's column metadata (`KBC.datatype.type` / `basetype`); unknown → string. */
export function recordColumns(table: TableDescriptor, columns: readonly string[] = table.columns): RecordColumn[] {
  return columns.map((name) => {
    const type = (metaValue(table, name, 'KBC.datatype.type') ?? '').toLowerCase();
    const base = (metaValue(table, name, 'KBC.datatype.basetype') ?? '').toUpperCase();
    let kind: ColumnKind = 'string';
    if (type === 'dynamodb-item') kind = 'dynamodb-item';
    else if (type === 'json' || type === 'jsonb') kind = 'json';
    else if (type === 'bytea' || type === 'blob' || type === 'b') kind = 'binary';
    else if (type === 'n') kind = 'number';
    else if (base === 'INTEGER') kind = 'integer';
    else if (base === 'NUMERIC' || base === 'FLOAT') kind = 'number';
    else if (base === 'BOOLEAN') kind = 'boolean';
    else if (base === 'DATE') kind = 'date';
    else if (base === 'TIMESTAMP') kind = 'timestamp';
    return { name, kind };
  });
}

/** `t`, `true`, `1`, `yes`, `y` (any case) are true; everything else false. */
export function parseBoolean(text: string): boolean {
  return /^(t|true|1|yes|y)$/i.test(text.trim());
}

/** Bytes of a binary cell: PostgreSQL's `\x0a1b` hex output, otherwise base64. */
export function parseBinary(text: string): Buffer {
  return text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex') : Buffer.from(text, 'base64');
}

/** A number cell's text, checked: DynamoDB and Ion take it as written (no float rounding). */
export function numberText(text: string, origin: string): string {
  const t = text.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) {
    if (/^[+-]?(Infinity|NaN)$/i.test(t)) throw new TakeoutError('INVALID_INPUT', `${origin}: ${t} is not a number DynamoDB or Ion can hold`);
    throw new TakeoutError('INVALID_INPUT', `${origin}: '${t.slice(0, 40)}' is not a number`);
  }
  return t.startsWith('+') ? t.slice(1) : t;
}

/** A timestamp cell (`2024-05-01 10:00:00+00`, ISO 8601, with or without zone; UTC when none) as a Date. */
export function parseTimestamp(text: string): Date | undefined {
  const t = text.trim().replace(' ', 'T');
  // A date alone is midnight UTC; its `-01` is a day, not a zone.
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) return parseTimestamp(`${t}T00:00:00Z`);
  const withZone = /T.*([zZ]|[+-]\d\d(:?\d\d)?)$/.test(t) ? t.replace(/([+-]\d\d)$/, '$1:00') : `${t}Z`;
  const date = new Date(withZone);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Turns rows into the text of one record each, for formats written a line (or element) at a time:
 * DynamoDB JSON, Ion, JSON lines, CSV, XML. A file is `header`, then records, then `footer`.
 */
export interface LineEncoder {
  /** The file name extension of an uncompressed file, e.g. `json`, `ion`, `csv`, `xml`. */
  readonly extension: string;
  /** Text at the start of every file (a CSV header row, an XML prolog), if any. */
  readonly header?: string;
  /** Text at the end of every file (a closing XML element), if any. */
  readonly footer?: string;
  /** One record's text, its line end included. Throws INVALID_INPUT naming the column for a cell its kind cannot read. */
  encode(row: Row): string;
}

/** A DynamoDB JSON item (the DynamoDB source's `item` column) that is not one: what is wrong, and where. */
export function notAnItem(where: string, why: string): TakeoutError {
  return new TakeoutError('INVALID_INPUT', `${where} does not hold a DynamoDB item: ${why}`);
}

/** A set's members (SS, NS, BS), which DynamoDB JSON writes as strings. */
export function stringList(value: unknown, where: string, type: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw notAnItem(where, `${type} is not a list of strings`);
  return value as string[];
}

/** The text of a DynamoDB item parsed; `where` names the column for errors. */
export function parseDynamoItem(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw notAnItem(where, 'not valid JSON');
  }
}

/** A DynamoDB map (an item, or an M value) as `{key:value,…}`, each key and value written by the format. */
export function dynamoMapText(map: unknown, where: string, key: (name: string) => string, value: (attribute: unknown) => string): string {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw notAnItem(where, 'a map is not an object');
  let text = '';
  for (const [k, v] of Object.entries(map as Record<string, unknown>)) text += `${text === '' ? '' : ','}${key(k)}:${value(v)}`;
  return `{${text}}`;
}

/** A json column's cell parsed, or INVALID_INPUT naming the column. */
export function parseJsonCell(cell: string, origin: string, column: RecordColumn): unknown {
  try {
    return JSON.parse(cell) as unknown;
  } catch {
    throw new TakeoutError('INVALID_INPUT', `${origin}: column ${column.name} is not valid JSON`);
  }
}
