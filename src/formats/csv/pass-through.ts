import type { TakeoutError } from '../../errors.js';
import { BlockLimits, type Block } from './blocks.js';
import { SYNTAX_BYTES, endsField } from './grammar.js';
import { RecordRules } from './record-rules.js';
import type { CsvScanOptions } from './scanner.js';

const { QUOTE, COMMA, LF, CR } = SYNTAX_BYTES;

/** A stray quote is what --quote-all forgives: it reads the quote as a literal and quotes every value. */
export const STRAY_QUOTE_HINT = 'a quote inside an unquoted value is not RFC 4180 CSV; --quote-all reads it as a literal quote (and quotes every value)';

/**
 * The fast path for CSV input: finds row boundaries with a quote-aware scan and passes the bytes
 * through (no copy per byte, no re-quoting); only `\r\n` row ends become `\n`. It still validates: field counts per record,
 * unterminated quotes, stray quotes, text after a closing quote, oversized records. The header
 * record and a UTF-8 BOM are dropped; a missing final newline is added; blank lines at the very end
 * are dropped (anywhere else they are ragged rows, as csv-parse sees them).
 */
export class CsvPassThrough {
  private readonly rules: RecordRules;
  private readonly limits: BlockLimits;
  /** Inside a quoted field. */
  private inQuotes = false;
  /** The previous chunk ended on a quote inside a quoted field: escaped or closing, decided by the next byte. */
  private quoteAtEnd = false;
  /** The previous chunk ended right at the start of a field (after a comma or newline, or at input start). */
  private atFieldStart = true;
  private fields = 0;
  /** Bytes of complete rows waiting to form a block (segments of input chunks). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingRows = 0;
  /** Bytes of the record in progress carried over from earlier chunks. */
  private carry: Buffer[] = [];
  private carryBytes = 0;
  private readonly ready: Block[] = [];

  constructor(options: CsvScanOptions) {
    this.rules = new RecordRules(options);
    this.limits = new BlockLimits(options);
  }

  get rowCount(): number {
    return this.rules.records;
  }

  private cut(): void {
    if (this.pendingRows === 0) return;
    const data = this.pending.length === 1 ? Buffer.from(this.pending[0]!) : Buffer.concat(this.pending, this.pendingBytes);
    this.ready.push({ data, rows: this.pendingRows });
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingRows = 0;
  }

  /** The chunk being scanned, and where its not-yet-pending run of complete rows starts. */
  private chunk: Buffer = Buffer.alloc(0);
  private seg = 0;

  /** A record ended at `end` (exclusive, after its newline) in the current chunk, having started at `start` or in the carry. */
  private endRecord(start: number, end: number, fields: number): void {
    const chunk = this.chunk;
    const length = this.carryBytes + end - start;
    // A line holding nothing but its newline (\n or \r\n).
    const blank = fields === 1 && (length === 1 || (length === 2 && (this.carryBytes > 0 ? this.carry[0]![0] : chunk[start]) === CR));
    if (!this.rules.end(fields, blank)) {
      this.skipTo(start, end);
      return;
    }
    // Row ends are normalised to \n so that merged slices never mix line endings (CR inside quotes stays).
    let kept = length;
    const crInCarry = end === 1 && this.carryBytes > 0;
    if (crInCarry) {
      const last = this.carry.length - 1;
      const piece = this.carry[last]!;
      if (piece[piece.length - 1] === CR) {
        this.carry[last] = piece.subarray(0, piece.length - 1);
        kept--;
      }
    }
    if (this.carryBytes > 0) {
      // Only the first record of a chunk has a carry, so nothing of this chunk is pending yet.
      for (const c of this.carry) this.pending.push(c);
      this.carry = [];
      this.carryBytes = 0;
    }
    if (!crInCarry && end >= 2 && chunk[end - 2] === CR && end - 2 >= start) {
      this.pending.push(chunk.subarray(this.seg, end - 2));
      this.seg = end - 1;
      kept--;
    }
    this.pendingBytes += kept;
    this.pendingRows++;
    if (this.limits.full(this.pendingBytes, this.pendingRows)) {
      this.pending.push(chunk.subarray(this.seg, end));
      this.seg = end;
      this.cut();
    }
  }

  /** Leave the record [start, end) out of the output (header, trailing blank line). */
  private skipTo(start: number, end: number): void {
    if (this.seg < start) this.pending.push(this.chunk.subarray(this.seg, start));
    this.seg = end;
    this.carry = [];
    this.carryBytes = 0;
  }

  /** Text after a closing quote, at `at` of the current chunk. */
  private afterQuote(at: number): TakeoutError {
    return this.rules.error(`unexpected text after a closing quote in record ${this.rules.records + 1}`, this.rules.pos.at(at));
  }

  push(input: Buffer): Block[] {
    const rules = this.rules;
    const chunk = rules.begin(input);
    // Nothing to scan: state that waits on the next byte (a quote at the chunk's end) must keep waiting.
    if (chunk.length === 0) return [];
    const n = chunk.length;
    this.chunk = chunk;
    this.seg = 0;
    let i = 0;
    let recordStart = 0;
    let fieldStart = this.atFieldStart ? 0 : -1;
    let fields = this.fields;
    let inQuotes = this.inQuotes;
    if (this.quoteAtEnd) {
      this.quoteAtEnd = false;
      if (n > 0 && chunk[0] === QUOTE) i = 1;
      else {
        inQuotes = false;
        const d = chunk[0];
        if (d !== undefined && !endsField(d)) throw this.afterQuote(0);
      }
    }
    while (i < n) {
      if (inQuotes) {
        const q = chunk.indexOf(QUOTE, i);
        if (q === -1) break;
        if (q + 1 === n) {
          this.quoteAtEnd = true;
          break;
        }
        const d = chunk[q + 1]!;
        if (d === QUOTE) {
          i = q + 2;
          continue;
        }
        if (!endsField(d)) throw this.afterQuote(q + 1);
        inQuotes = false;
        i = q + 1;
        continue;
      }
      const c = chunk[i]!;
      if (c > COMMA) {
        i++;
        continue;
      }
      if (c === COMMA) {
        fields++;
        i++;
        fieldStart = i;
      } else if (c === LF) {
        i++;
        this.endRecord(recordStart, i, fields + 1);
        // The next record begins here: its errors are placed from this mark.
        rules.pos.mark(i);
        recordStart = i;
        fieldStart = i;
        fields = 0;
      } else if (c === QUOTE) {
        if (i !== fieldStart) throw rules.error(`stray quote inside an unquoted field in record ${rules.records + 1}`, rules.pos.at(i), STRAY_QUOTE_HINT);
        inQuotes = true;
        i++;
      } else {
        i++;
      }
    }
    this.inQuotes = inQuotes || this.quoteAtEnd;
    this.fields = fields;
    this.atFieldStart = fieldStart === n;
    if (this.seg < recordStart) this.pending.push(chunk.subarray(this.seg, recordStart));
    if (recordStart < n) {
      this.carry.push(chunk.subarray(recordStart, n));
      this.carryBytes += n - recordStart;
      rules.checkSize(this.carryBytes);
    }
    rules.pos.end();
    return this.ready.splice(0, this.ready.length);
  }

  end(): Block[] {
    const held = this.rules.takeHeld();
    const early = held ? this.push(held) : [];
    if (this.inQuotes && !this.quoteAtEnd) throw this.rules.unterminated();
    if (this.carryBytes > 0 || this.quoteAtEnd) {
      this.inQuotes = false;
      this.quoteAtEnd = false;
      this.chunk = Buffer.from('\n');
      this.rules.pos.begin(Buffer.alloc(0));
      this.seg = 0;
      this.endRecord(0, 1, this.fields + 1);
      if (this.seg < 1 && this.pendingRows > 0) this.pending.push(this.chunk.subarray(this.seg, 1));
    }
    this.cut();
    return [...early, ...this.ready.splice(0, this.ready.length)];
  }
}
