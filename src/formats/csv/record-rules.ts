import type { TakeoutError } from '../../errors.js';
import { plural } from '../../units.js';
import { bomLength, couldBeBomStart, MAX_RECORD_BYTES } from './grammar.js';
import { InputPosition, inputError, type InputPlace } from './position.js';

/** What the byte scanners are told about their input. */
export interface RecordRulesOptions {
  /** Number of columns every record must have. */
  columns: number;
  /** Drop the first record (a header). */
  hasHeader: boolean;
  /** Named in errors: a file path, a query. */
  origin: string;
  maxRecordBytes?: number;
}

/**
 * The rules both byte scanners (re-quoting and pass-through) hold records to, and the errors that name
 * where a record broke them: every record has the header's number of fields; the header record is
 * checked, then dropped; a BOM at the start is dropped; a blank line in a multi-column file is dropped at
 * the very end and is a ragged row anywhere else (as csv-parse sees it). The scanners call it once per
 * chunk and once per record, never per byte.
 */
export class RecordRules {
  readonly origin: string;
  readonly maxRecord: number;
  /** Where the scanner is, for errors; it marks where each record begins. */
  readonly pos = new InputPosition();
  /** Records kept so far, header excluded. */
  records = 0;
  private readonly expected: number;
  /** The next record is the header: validated, then dropped. */
  private skipHeader: boolean;
  private first = true;
  /** The file's first bytes, fewer than a BOM and each a BOM's: held until the rest shows whether it is one. */
  private held: Buffer | undefined;
  /** End of input: what is held is scanned as it is. */
  private ending = false;
  /** A blank line was seen after this many records; an error unless only blank lines follow. */
  private blankAt = 0;
  /** Where the blank line at blankAt is. */
  private blankPlace: InputPlace | undefined;

  constructor(options: RecordRulesOptions) {
    this.expected = options.columns;
    this.origin = options.origin;
    this.maxRecord = options.maxRecordBytes ?? MAX_RECORD_BYTES;
    this.skipHeader = options.hasHeader;
  }

  /**
   * A chunk of input begins; returns the bytes to scan (the file's start without its BOM). The first bytes
   * are held back while they could still be a BOM cut across chunks; the scanners skip an empty result.
   */
  begin(input: Buffer): Buffer {
    if (!this.first) {
      this.pos.begin(input);
      return input;
    }
    const chunk = this.held ? Buffer.concat([this.held, input]) : input;
    this.held = undefined;
    if (!this.ending && couldBeBomStart(chunk)) {
      this.held = chunk;
      return chunk.subarray(0, 0);
    }
    this.first = false;
    const bom = bomLength(chunk);
    const rest = bom === 0 ? chunk : chunk.subarray(bom);
    this.pos.begin(rest, bom);
    this.pos.mark(0);
    return rest;
  }

  /** End of input: the bytes still held (a file of one or two bytes that began like a BOM), to scan as data. */
  takeHeld(): Buffer | undefined {
    this.ending = true;
    const held = this.held;
    this.held = undefined;
    return held;
  }

  /** An error at `place` (default: where the record in progress began). */
  error(message: string, place: InputPlace = this.pos.record(), hint?: string): TakeoutError {
    return inputError(this.origin, place, this.records + 1, message, hint);
  }

  /**
   * A record of `fields` fields ended (`blank`: it held nothing but its line end). True: a row to keep;
   * false: leave it out (the header, a blank line). Throws when it breaks the rules.
   */
  end(fields: number, blank: boolean): boolean {
    if (blank && this.expected > 1) {
      if (this.blankAt === 0) {
        this.blankAt = this.records + 1;
        this.blankPlace = this.pos.record();
      }
      return false;
    }
    if (this.blankAt !== 0) throw this.error(`ragged row: record ${this.blankAt} is a blank line, the header has ${plural(this.expected, 'field')}`, this.blankPlace);
    if (fields !== this.expected) {
      if (this.skipHeader) throw this.error(`the header has ${plural(fields, 'field')}, expected ${this.expected}`);
      throw this.error(`ragged row: record ${this.records + 1} has ${plural(fields, 'field')}, the header has ${this.expected}`);
    }
    if (this.skipHeader) {
      this.skipHeader = false;
      return false;
    }
    this.records++;
    return true;
  }

  /** Throws when the record in progress, `bytes` long so far, is over the limit. */
  checkSize(bytes: number): void {
    if (bytes > this.maxRecord) throw this.error(`record ${this.records + 1} is larger than ${this.maxRecord} bytes (unterminated quote?)`);
  }

  /** Input ended inside a quoted field. */
  unterminated(): TakeoutError {
    return this.error(`unterminated quoted field in record ${this.records + 1}`);
  }
}
