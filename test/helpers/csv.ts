import fc from 'fast-check';
import { parse } from 'csv-parse/sync';
import type { TakeoutError } from '../../src/errors.js';
import type { Block } from '../../src/formats/csv/blocks.js';
import type { CsvPassThrough } from '../../src/formats/csv/pass-through.js';
import { CsvRecordParser } from '../../src/formats/csv/record-parser.js';
import type { CsvScanner } from '../../src/formats/csv/scanner.js';
import type { Row } from '../../src/model.js';

/** What the CSV tests share: feeding the machines in pieces, and generators of CSV tables. */

export type Scanner = CsvPassThrough | CsvScanner;

/** Feed `input` in pieces of the given sizes (cycled) and collect the blocks. */
export function scan(make: () => Scanner, input: Buffer, pieces: number[] = [input.length || 1]): Block[] {
  const scanner = make();
  const blocks: Block[] = [];
  let offset = 0;
  let i = 0;
  while (offset < input.length) {
    const size = Math.max(1, pieces[i++ % pieces.length]!);
    blocks.push(...scanner.push(input.subarray(offset, offset + size)));
    offset += size;
  }
  blocks.push(...scanner.end());
  return blocks;
}

/** Records as csv-parse reads them: the reference the scanners are held to. */
export const records = (text: string, bom = false): string[][] => parse(text, { bom, relax_column_count: false }) as string[][];
export const joined = (blocks: Block[]): string => Buffer.concat(blocks.map((b) => b.data)).toString('utf8');

/** Quoting a CSV the way a spreadsheet would: quotes only where needed. */
export function minimalCsv(rows: string[][], eol: string): string {
  return rows
    .map((r) => r.map((v) => (/[",\r\n]/.test(v) || v === '' ? `"${v.replaceAll('"', '""')}"` : v)).join(','))
    .join(eol) + eol;
}

/** Values that break CSV writers: quotes, commas, line ends, a BOM, NUL, graphemes of several code points. */
export const cell = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom('', '"', '""', ',', '\n', '\r\n', '\r', 'a,b', 'say "hi"', '\uFEFF', '\u0000', '🎉👩‍💻', 'Žluťoučký kůň', ' padded '),
);

/** A table of cells, a line ending, how the input is cut into pieces, and whether it starts with a BOM. */
export function table(shape: { minColumns: number; maxColumns: number; maxRows: number }) {
  return fc.integer({ min: shape.minColumns, max: shape.maxColumns }).chain((columns) =>
    fc.tuple(
      fc.constant(columns),
      fc.array(fc.array(cell, { minLength: columns, maxLength: columns }), { maxLength: shape.maxRows }),
      fc.constantFrom('\n', '\r\n'),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }),
      fc.boolean(),
    ),
  );
}

/** Feeds `text` to a record parser in pieces cut at `cuts` (byte offsets), as a stream would. */
export function parseInPieces(text: string, columns: number, cuts: number[] = [], hasHeader = false): Row[] {
  const parser = new CsvRecordParser({ columns, hasHeader, origin: 't.csv' });
  const bytes = Buffer.from(text);
  const rows: Row[] = [];
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b)) {
    rows.push(...parser.push(bytes.subarray(at, cut)));
    at = cut;
  }
  rows.push(...parser.push(bytes.subarray(at)));
  rows.push(...parser.end());
  return rows;
}

/** The error `run` throws; fails the test when it does not throw. */
export function thrown(run: () => unknown): TakeoutError {
  try {
    run();
  } catch (error) {
    return error as TakeoutError;
  }
  throw new Error('did not fail');
}

/** The error a scanner throws on `input` fed in `pieces`. */
export const failure = (make: () => Scanner, input: Buffer, pieces: number[]): TakeoutError => thrown(() => scan(make, input, pieces));

/** Line (every LF counts, quoted ones too) and byte of `at` in `bytes`, as the errors give them. */
export const placeOf = (bytes: Buffer, at: number): string => `${bytes.subarray(0, at).filter((b) => b === 0x0a).length + 1} (byte ${at})`;
