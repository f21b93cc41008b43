import { TakeoutError } from '../../errors.js';
import { SYNTAX_BYTES } from './grammar.js';

const { LF } = SYNTAX_BYTES;

/**
 * Where the CSV machines are in their input, for error messages only: the byte loops never touch it.
 * Errors read `file:5 (byte 1234): message`, the place as editors and compilers give it, with the byte
 * offset for binary tools.
 */

/** Line feeds in buf[from, to): one indexOf per line, never a loop over bytes. */
export function countLf(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(LF, from); i !== -1 && i < to; i = buf.indexOf(LF, i + 1)) n++;
  return n;
}

/** Line feeds in text[from, to): the same count over decoded text (a separate function keeps each indexOf call site of one type). */
export function lineFeeds(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Where something is in the input file: its line (1-based, counting every LF, quoted ones too) and byte offset. */
export interface InputPlace {
  line: number;
  byte: number;
}

/**
 * Tracks where a byte scanner is in the input file. Per chunk it counts line feeds once (indexOf), and
 * remembers where the record in progress began.
 */
export class InputPosition {
  /** File offset of the current chunk's first byte. */
  private offset = 0;
  /** Line feeds before the current chunk. */
  private lines = 0;
  private chunk: Buffer = Buffer.alloc(0);
  /** File offset where the record in progress began, and its line once that chunk is done (0: not yet known). */
  private recordByte = 0;
  private recordLine = 1;

  /** A new chunk; `skipped` bytes before it (a BOM) are part of the file but not of the chunk. */
  begin(chunk: Buffer, skipped = 0): void {
    this.offset += skipped;
    this.chunk = chunk;
  }

  /** The current chunk is done: its line feeds counted, the record in progress placed if it began in it. */
  end(): void {
    const n = this.chunk.length;
    const total = countLf(this.chunk, 0, n);
    const rel = this.recordByte - this.offset;
    if (rel >= 0) this.recordLine = this.lines + 1 + total - countLf(this.chunk, rel, n);
    this.lines += total;
    this.offset += n;
    this.chunk = Buffer.alloc(0);
  }

  /** A record begins at `pos` of the current chunk. */
  mark(pos: number): void {
    this.recordByte = this.offset + pos;
  }

  /** Where `pos` of the current chunk is. */
  at(pos: number): InputPlace {
    return { line: this.lines + 1 + countLf(this.chunk, 0, pos), byte: this.offset + pos };
  }

  /** Where the record in progress began. */
  record(): InputPlace {
    const rel = this.recordByte - this.offset;
    return rel >= 0 ? this.at(rel) : { line: this.recordLine, byte: this.recordByte };
  }
}

/** `file:5 (byte 1234): message`, with the place and the record (1-based) in the details. */
export function inputError(origin: string, place: InputPlace, record: number, message: string, hint?: string): TakeoutError {
  return new TakeoutError('INVALID_INPUT', `${origin}:${place.line} (byte ${place.byte}): ${message}`, {
    details: { origin, record, line: place.line, byte: place.byte },
    ...(hint === undefined ? {} : { hint }),
  });
}
