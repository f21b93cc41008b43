import { Transform, type TransformCallback } from 'node:stream';
import { bomLength, SYNTAX_BYTES } from './grammar.js';
import { InputPosition, inputError } from './position.js';

const { QUOTE, COMMA, LF, CR } = SYNTAX_BYTES;
const LF_BYTES = Buffer.from([LF]);

/**
 * CSV bytes passed through with every record ended by one LF, for a reader that wants one line ending per
 * file (DuckDB's `read_csv` in strict mode refuses a file whose record ends change between CR LF and LF; a
 * Keboola slice can hold both). A record end outside quotes — CR LF, CR or LF, as `CsvRecordParser` reads
 * them — becomes LF; quoted line breaks are data and pass as they are; a final record without a newline
 * gets one. It counts the records as the parser does (a blank line is none, unless the table has one
 * column) and refuses what the reader could take silently: an unterminated quoted field (DuckDB reads it as
 * the end of the file) and a quote inside an unquoted field (DuckDB keeps it as data). Field counts and text
 * after a closing quote are left to the reader. Memory: the chunk at hand; the bytes are copied only when
 * a CR is rewritten. A BOM at the start is dropped.
 */
export class LfRecords extends Transform {
  private inQuotes = false;
  /** The last byte of the previous chunk outside quotes (a field may open after a separator only); LF at the start. */
  private last: number = LF;
  /** The previous chunk ended in a CR record end: an LF opening this one is the same end. */
  private afterCr = false;
  /** No byte of the record in progress seen yet (a record end here is a blank line). */
  private lineStart = true;
  private started = false;
  private records = 0;
  private readonly position = new InputPosition();

  constructor(
    private readonly columns: number,
    private readonly origin: string,
  ) {
    super();
  }

  /** Records seen so far (all of them once the stream has ended). */
  get count(): number {
    return this.records;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const out = this.scan(chunk);
      if (out.length > 0) this.push(out);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.inQuotes) {
      callback(inputError(this.origin, this.position.record(), this.records + 1, `unterminated quoted field in record ${this.records + 1}`));
      return;
    }
    if (!this.lineStart) {
      this.records++;
      this.push(LF_BYTES);
    }
    callback();
  }

  private scan(input: Buffer): Buffer {
    let skipped = 0;
    if (!this.started && input.length > 0) {
      this.started = true;
      skipped = bomLength(input);
    }
    const chunk = skipped > 0 ? input.subarray(skipped) : input;
    const n = chunk.length;
    if (n === 0) return chunk;
    const position = this.position;
    position.begin(chunk, skipped);
    const parts: Buffer[] = [];
    let from = 0;
    let i = 0;
    let inQuotes = this.inQuotes;
    let records = this.records;
    // Where the record in progress began in this chunk (-1: in an earlier one).
    let recordStart = this.lineStart ? 0 : -1;
    if (this.afterCr && !inQuotes && chunk[0] === LF) {
      from = 1;
      i = 1;
      recordStart = 1;
      position.mark(1);
    }
    this.afterCr = false;
    /** A record end at `at`; the next record begins at `next`. */
    const endRecord = (at: number, next: number): void => {
      if (recordStart !== at || this.columns === 1) records++;
      recordStart = next;
      position.mark(next);
    };
    while (i < n) {
      if (inQuotes) {
        const q = chunk.indexOf(QUOTE, i);
        if (q === -1) break;
        inQuotes = false;
        i = q + 1;
        continue;
      }
      let c = 0;
      while (i < n) {
        c = chunk[i]!;
        if (c === QUOTE || c === LF || c === CR) break;
        i++;
      }
      if (i >= n) break;
      if (c === QUOTE) {
        const before = i > 0 ? chunk[i - 1]! : this.last;
        // After a closing quote, another quote is an escaped one ("a""b"), not a new field.
        if (before !== COMMA && before !== LF && before !== CR && before !== QUOTE) {
          this.records = records;
          throw inputError(this.origin, position.at(i), records + 1, `stray quote in record ${records + 1}`);
        }
        inQuotes = true;
        i++;
      } else if (c === LF) {
        endRecord(i, i + 1);
        i++;
      } else {
        // CR: CR LF keeps its LF; a lone CR (or one that ends the chunk: afterCr) becomes LF.
        parts.push(chunk.subarray(from, i));
        from = i + 1;
        if (i + 1 < n && chunk[i + 1] === LF) {
          endRecord(i, i + 2);
          i += 2;
          continue;
        }
        parts.push(LF_BYTES);
        endRecord(i, i + 1);
        if (i + 1 >= n) this.afterCr = true;
        i++;
      }
    }
    position.end();
    this.inQuotes = inQuotes;
    this.records = records;
    this.lineStart = !inQuotes && recordStart === n;
    this.last = chunk[n - 1]!;
    if (parts.length === 0) return from === 0 ? chunk : chunk.subarray(from);
    parts.push(chunk.subarray(from));
    return Buffer.concat(parts);
  }
}
