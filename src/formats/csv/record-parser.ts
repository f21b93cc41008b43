import { StringDecoder } from 'node:string_decoder';
import type { TakeoutError } from '../../errors.js';
import type { Row } from '../../model.js';
import { plural } from '../../units.js';
import { BOM_BYTES, BOM_CODE, SYNTAX_BYTES, MAX_RECORD_BYTES } from './grammar.js';
import { inputError, lineFeeds } from './position.js';

const { QUOTE, COMMA, LF, CR } = SYNTAX_BYTES;

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
      if (text.charCodeAt(0) === BOM_CODE) {
        text = text.slice(1);
        this.bytesBefore = BOM_BYTES;
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
    return inputError(this.options.origin, { line, byte }, this.record + 1, message);
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
