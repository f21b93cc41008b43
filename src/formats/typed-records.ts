import { StringDecoder } from 'node:string_decoder';
import { TakeoutError } from '../errors.js';
import type { Row, TableDescriptor } from '../model.js';
import { MAX_RECORD_BYTES } from './csv.js';
import { plural } from '../pipeline/units.js';

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

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/** Line feeds in text[from, to): one indexOf per line. */
function lineFeeds(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Parses CSV text into rows of cells, keeping what Keboola and PostgreSQL's COPY … FORCE_QUOTE * mean by
 * quoting: an empty unquoted field is NULL (`null`), an empty quoted one (`""`) is the empty string.
 * Streams: feed decoded chunks with `push`, get whole records back; `end` closes the last one.
 * Validates as the takeout scanner does: field counts, unterminated quotes, oversized records.
 */
export class CsvRecordParser {
  private readonly decoder = new StringDecoder('utf8');
  private carry = '';
  private record = 0;
  private skip: boolean;
  private first = true;
  /** Lines and bytes of the input before the text parse() is given (the carry's start): for errors' places. */
  private linesBefore = 0;
  private bytesBefore = 0;

  constructor(
    private readonly options: { columns: number; hasHeader: boolean; origin: string; maxRecordBytes?: number },
  ) {
    this.skip = options.hasHeader;
  }

  push(chunk: Buffer): Row[] {
    let text = this.decoder.write(chunk);
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) {
        text = text.slice(1);
        this.bytesBefore = 3;
      }
    }
    return this.parse(this.carry + text, false);
  }

  end(): Row[] {
    const rest = this.carry + this.decoder.end();
    this.carry = '';
    return this.parse(rest, true);
  }

  /** `origin:line (byte N): message` for the character at `pos` of `text` (what parse() was given). */
  private error(message: string, text: string, pos: number): TakeoutError {
    const line = this.linesBefore + 1 + lineFeeds(text, 0, pos);
    const byte = this.bytesBefore + Buffer.byteLength(text.slice(0, pos));
    const origin = this.options.origin;
    return new TakeoutError('INVALID_INPUT', `${origin}:${line} (byte ${byte}): ${message}`, { details: { origin, record: this.record + 1, line, byte } });
  }

  /** text[0, end) is done with: its lines and bytes move into the counts before the carry. */
  private consumed(text: string, end: number): void {
    this.linesBefore += lineFeeds(text, 0, end);
    this.bytesBefore += Buffer.byteLength(end === text.length ? text : text.slice(0, end));
  }

  private parse(text: string, final: boolean): Row[] {
    const rows: Row[] = [];
    const n = text.length;
    let pos = 0;
    const max = this.options.maxRecordBytes ?? MAX_RECORD_BYTES;
    for (;;) {
      if (pos >= n) break;
      const start = pos;
      const cells: (string | null)[] = [];
      let complete = false;
      for (;;) {
        if (pos >= n) break;
        const c = text.charCodeAt(pos);
        if (c === QUOTE) {
          // Quoted field: find the closing quote not followed by another.
          let value = '';
          let from = pos + 1;
          let closed = false;
          for (;;) {
            const q = text.indexOf('"', from);
            if (q === -1) break;
            if (q + 1 < n && text.charCodeAt(q + 1) === QUOTE) {
              value += text.slice(from, q + 1);
              from = q + 2;
              continue;
            }
            if (q + 1 >= n && !final) break;
            value += text.slice(from, q);
            pos = q + 1;
            closed = true;
            break;
          }
          if (!closed) {
            if (final) throw this.error(`unterminated quoted field in record ${this.record + 1}`, text, start);
            pos = n;
            break;
          }
          cells.push(value);
        } else {
          let end = pos;
          while (end < n) {
            const d = text.charCodeAt(end);
            if (d === COMMA || d === LF || d === CR) break;
            if (d === QUOTE) throw this.error(`stray quote in record ${this.record + 1}`, text, end);
            end++;
          }
          if (end >= n && !final) {
            pos = n;
            break;
          }
          cells.push(end === pos ? null : text.slice(pos, end));
          pos = end;
        }
        if (pos >= n) {
          if (final) complete = true;
          break;
        }
        const sep = text.charCodeAt(pos);
        if (sep === COMMA) {
          pos++;
          if (pos >= n && final) {
            cells.push(null);
            complete = true;
            break;
          }
          continue;
        }
        if (sep === CR) {
          if (pos + 1 >= n && !final) {
            pos = n;
            break;
          }
          pos += text.charCodeAt(pos + 1) === LF ? 2 : 1;
          complete = true;
          break;
        }
        if (sep === LF) {
          pos++;
          complete = true;
          break;
        }
        throw this.error(`text after a closing quote in record ${this.record + 1}`, text, pos);
      }
      if (!complete) {
        if (n - start > max) throw this.error(`record ${this.record + 1} is larger than ${max} bytes (an unterminated quote?)`, text, start);
        this.consumed(text, start);
        this.carry = text.slice(start);
        return rows;
      }
      // A blank line (one empty unquoted field) at the end of input is not a record.
      if (cells.length === 1 && cells[0] === null && this.options.columns !== 1) continue;
      if (cells.length !== this.options.columns) {
        throw this.error(`ragged row: record ${this.record + 1} has ${plural(cells.length, 'field')}, the table has ${plural(this.options.columns, 'column')}`, text, start);
      }
      if (this.skip) {
        this.skip = false;
        continue;
      }
      this.record++;
      rows.push(cells);
    }
    this.consumed(text, n);
    this.carry = '';
    return rows;
  }
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
