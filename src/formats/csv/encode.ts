import { TakeoutError } from '../../errors.js';
import type { Row } from '../../model.js';
import { plural } from '../../units.js';
import { BlockBuilder, type Block, type BlockOptions } from './blocks.js';

/** One CSV line with every value quoted; null becomes an empty value. */
export function encodeCsvRow(row: Row, eol = '\n'): string {
  let line = '';
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    const s = v === null || v === undefined ? '' : v;
    line += (i === 0 ? '"' : ',"') + (s.includes('"') ? s.replaceAll('"', '""') : s) + '"';
  }
  return line + eol;
}

/** The Keboola header: every name wrapped in quotes (names with quotes doubled), comma-joined. */
export function encodeHeader(columns: readonly string[], eol = '\n'): string {
  return encodeCsvRow(columns, eol);
}

/** Encodes rows of values into canonical CSV blocks: the path for sources that produce values. */
export class CsvRowEncoder {
  private readonly out: BlockBuilder;
  private readonly eol: string;
  private readonly columns: number;
  private readonly origin: string;
  private count = 0;

  constructor(options: BlockOptions & { columns: number; origin: string }) {
    this.out = new BlockBuilder(options);
    this.eol = options.lineEnding ?? '\n';
    this.columns = options.columns;
    this.origin = options.origin;
  }

  push(row: Row): Block[] {
    if (row.length !== this.columns) {
      throw new TakeoutError(
        'INVALID_INPUT',
        `${this.origin}: row ${this.count + 1} has ${plural(row.length, 'value')}, the table has ${plural(this.columns, 'column')}`,
      );
    }
    const line = encodeCsvRow(row, this.eol);
    const bytes = Buffer.byteLength(line);
    const buf = this.out.reserve(bytes);
    this.out.len += buf.write(line, this.out.len, 'utf8');
    this.count++;
    this.out.endRow();
    return this.out.take(false);
  }

  end(): Block[] {
    return this.out.take(true);
  }
}
