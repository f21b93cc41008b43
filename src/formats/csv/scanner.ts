import { BlockBuilder, MAX_EXPANSION, SCAN_PIECE_BYTES, type Block, type BlockOptions } from './blocks.js';
import { SYNTAX_BYTES } from './grammar.js';
import { RecordRules, type RecordRulesOptions } from './record-rules.js';

const { QUOTE, COMMA, LF, CR } = SYNTAX_BYTES;

const enum State {
  FieldStart,
  Unquoted,
  Quoted,
  QuoteInQuoted,
  AfterCr,
}

export interface CsvScanOptions extends BlockOptions, RecordRulesOptions {}

/**
 * Validates CSV bytes and rewrites them into canonical form in one pass, without building rows:
 * quoted fields are copied as they are, unquoted ones get quotes, row ends are normalised.
 * Errors: unterminated quote, ragged row, oversized record, stray text after a closing quote.
 */
export class CsvScanner {
  private readonly out: BlockBuilder;
  private readonly rules: RecordRules;
  private readonly eol: Buffer;
  private state: State = State.FieldStart;
  private fields = 0;

  constructor(options: CsvScanOptions) {
    this.out = new BlockBuilder(options);
    this.rules = new RecordRules(options);
    this.eol = Buffer.from(options.lineEnding ?? '\n');
  }

  /** Feed bytes; returns the blocks completed so far. */
  push(input: Buffer): Block[] {
    const chunk = this.rules.begin(input);
    if (chunk.length === 0) return [];
    for (let p = 0; p < chunk.length; p += SCAN_PIECE_BYTES) {
      this.scan(chunk, p, Math.min(chunk.length, p + SCAN_PIECE_BYTES));
    }
    this.rules.pos.end();
    return this.out.take(false);
  }

  /** End of input: closes the last record and returns the remaining blocks. */
  end(): Block[] {
    const held = this.rules.takeHeld();
    const early = held ? this.push(held) : [];
    switch (this.state) {
      case State.Quoted:
        throw this.rules.unterminated();
      case State.Unquoted:
      case State.QuoteInQuoted:
        this.closeField();
        this.endRecord(0);
        break;
      case State.FieldStart:
        if (this.fields > 0) {
          this.openField();
          this.closeField();
          this.endRecord(0);
        }
        break;
      case State.AfterCr:
        break;
    }
    return [...early, ...this.out.take(true)];
  }

  /** Records seen so far, header excluded. */
  get records(): number {
    return this.rules.records;
  }

  private openField(): void {
    const b = this.out.buffer;
    if (this.fields > 0) b[this.out.len++] = COMMA;
    b[this.out.len++] = QUOTE;
  }

  private closeField(): void {
    this.out.buffer[this.out.len++] = QUOTE;
    this.fields++;
  }

  /** A record ended; the next begins at `next` of the current chunk. */
  private endRecord(next: number): void {
    this.checkRecord();
    this.rules.pos.mark(next);
  }

  private checkRecord(): void {
    const fields = this.fields;
    this.fields = 0;
    // A blank line is one empty field: `""` in the output.
    if (!this.rules.end(fields, fields === 1 && this.out.len - this.out.rowStart === 2)) {
      this.out.len = this.out.rowStart;
      return;
    }
    const b = this.out.buffer;
    for (let i = 0; i < this.eol.length; i++) b[this.out.len++] = this.eol[i]!;
    this.out.endRow();
  }

  private scan(src: Buffer, from: number, to: number): void {
    const builder = this.out;
    builder.reserve((to - from) * MAX_EXPANSION + 16);
    this.rules.checkSize(builder.len - builder.rowStart);
    let i = from;
    while (i < to) {
      const out = builder.buffer;
      switch (this.state) {
        case State.FieldStart: {
          const c = src[i]!;
          if (c === QUOTE) {
            this.openField();
            this.state = State.Quoted;
            i++;
          } else if (c === COMMA) {
            this.openField();
            this.closeField();
            i++;
          } else if (c === LF) {
            // After a trailing comma this closes an empty last field; on a blank line endRecord drops it.
            this.openField();
            this.closeField();
            this.endRecord(i + 1);
            i++;
          } else if (c === CR) {
            this.openField();
            this.closeField();
            this.endRecord(i + 1);
            this.state = State.AfterCr;
            i++;
          } else {
            this.openField();
            this.state = State.Unquoted;
          }
          break;
        }
        case State.Unquoted: {
          // Copy plain bytes until a delimiter; a stray quote is kept as a literal (escaped).
          let j = i;
          let o = builder.len;
          while (j < to) {
            const c = src[j]!;
            if (c === COMMA || c === LF || c === CR) break;
            if (c === QUOTE) out[o++] = QUOTE;
            out[o++] = c;
            j++;
          }
          builder.len = o;
          i = j;
          if (j < to) {
            const c = src[j]!;
            this.closeField();
            i++;
            if (c === COMMA) {
              this.state = State.FieldStart;
            } else if (c === LF) {
              this.endRecord(i);
              this.state = State.FieldStart;
            } else {
              this.endRecord(i);
              this.state = State.AfterCr;
            }
          }
          break;
        }
        case State.Quoted: {
          const q = src.indexOf(QUOTE, i);
          const end = q === -1 || q >= to ? to : q;
          builder.len += src.copy(out, builder.len, i, end);
          i = end;
          if (end < to) {
            this.state = State.QuoteInQuoted;
            i++;
          }
          break;
        }
        case State.QuoteInQuoted: {
          const c = src[i]!;
          if (c === QUOTE) {
            out[builder.len++] = QUOTE;
            out[builder.len++] = QUOTE;
            this.state = State.Quoted;
            i++;
          } else if (c === COMMA) {
            this.closeField();
            this.state = State.FieldStart;
            i++;
          } else if (c === LF) {
            this.closeField();
            this.endRecord(i + 1);
            this.state = State.FieldStart;
            i++;
          } else if (c === CR) {
            this.closeField();
            this.endRecord(i + 1);
            this.state = State.AfterCr;
            i++;
          } else {
            throw this.rules.error(`unexpected character after a closing quote in record ${this.rules.records + 1}`, this.rules.pos.at(i));
          }
          break;
        }
        case State.AfterCr: {
          if (src[i] === LF) {
            i++;
            // CRLF: the next record begins after the LF.
            this.rules.pos.mark(i);
          }
          this.state = State.FieldStart;
          break;
        }
      }
    }
  }
}
