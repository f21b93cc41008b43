import { gzipSync } from 'node:zlib';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { TakeoutError } from '../errors.js';
import type { Row } from '../model.js';
import { jsonDocument, plainJsonOfDynamoItem } from './jsonl.js';
import { numberText, parseBinary, parseBoolean, type RecordColumn } from './typed-records.js';

/**
 * One Parquet file built in memory from batches of rows, with hyparquet-writer (pure JS, no native parts).
 * Every column is OPTIONAL (NULL → a null), typed by its kind:
 * - string, date, timestamp → BYTE_ARRAY UTF8, the cell's text (timestamps keep their digits and zone as written;
 *   a TIMESTAMP type would need a zone for zoneless values and would cut microseconds to what the unit holds);
 * - integer → INT64; a value outside the 64-bit range is INVALID_INPUT naming the column (a column's type is
 *   fixed before all its values are seen, so it cannot fall back to DOUBLE for one value);
 * - number → DOUBLE: digits past a double's ~15–17 significant ones are rounded (DynamoDB's 38-digit N included);
 * - boolean → BOOLEAN; binary → BYTE_ARRAY (the bytes);
 * - json → UTF8 JSON text as the document is written; dynamodb-item → UTF8 plain JSON of the item (as JSON lines).
 *
 * Memory: rows wait, converted, until `rowGroupRows` of them fill a row group, which is then encoded and
 * compressed into the file's buffer; the file as a whole stays in memory until `finish`. The caller bounds it:
 * add rows one at a time and, when `boundBytes + rowBytes(row)` would reach the layout's maximum file size
 * (CleverTap's 100 MB), `settle` the pending rows (their size is then known, not estimated) and finish the file
 * before adding the row if it still would. The buffer grows by doubling, so a file of N bytes can hold up to 2·N while it is built.
 */
export type ParquetCodec = 'GZIP' | 'SNAPPY' | 'UNCOMPRESSED';

export interface ParquetFileOptions {
  /** Column chunk compression. GZIP is what CleverTap delivers (`.parquet.gzip`). */
  codec: ParquetCodec;
  /** Rows per row group (readers scan a row group at a time; more rows = fewer, larger chunks). */
  rowGroupRows: number;
}

/** A row group size that keeps a pending group of ~8 small columns to a few MB of JS values. */
export const DEFAULT_ROW_GROUP_ROWS = 50_000;

/**
 * Footer bytes per column chunk besides the column's name (repeated in its path_in_schema): its metadata and
 * statistics (hyparquet-writer cuts byte-array min/max to 16 bytes: STATS_TRUNCATE_LENGTH in src/unconvert.js).
 */
const FOOTER_BYTES_PER_CHUNK = 160;
/** hyparquet-writer's page size (`pageSize` in ParquetWriter.write): a chunk has a page per this many bytes. */
const PAGE_BYTES = 1024 * 1024;
/** An offset index entry per page (offset, size, first row as Thrift varints), written at the end when a chunk has several. */
const OFFSET_INDEX_BYTES_PER_PAGE = 24;
/**
 * Bytes a column chunk adds besides its values: the page header (Thrift, ~30 bytes), definition levels
 * (RLE runs) and, with GZIP, the gzip header and trailer (18 bytes, RFC 1952 §2.3). Small files are mostly this.
 */
const PAGE_OVERHEAD_BYTES_PER_CHUNK = 64;
/** The file's own frame: `PAR1` at both ends, the footer length, the row group list and `created_by`. */
const FILE_OVERHEAD_BYTES = 128;
/** Footer bytes per column in the schema besides its name: type, repetition, converted type. */
const SCHEMA_BYTES_PER_COLUMN = 16;
/** Bytes a boolean, integer or double cell adds before compression (its physical size). */
const FIXED_CELL_BYTES = 8;
/** A PLAIN byte array's length prefix, added to its text size. */
const BYTE_ARRAY_PREFIX_BYTES = 4;

/** gzip level 6 (zlib's default): most of level 9's ratio at a fraction of its time. */
const GZIP_LEVEL = 6;

type ParquetSchema = ConstructorParameters<typeof ParquetWriter>[0]['schema'];
type ParquetValue = string | bigint | number | boolean | Uint8Array | null;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function schemaOf(columns: readonly RecordColumn[]): ParquetSchema {
  const schema: ParquetSchema = [{ name: 'root', num_children: columns.length }];
  for (const { name, kind } of columns) {
    switch (kind) {
      case 'integer':
        schema.push({ name, type: 'INT64', repetition_type: 'OPTIONAL' });
        break;
      case 'number':
        schema.push({ name, type: 'DOUBLE', repetition_type: 'OPTIONAL' });
        break;
      case 'boolean':
        schema.push({ name, type: 'BOOLEAN', repetition_type: 'OPTIONAL' });
        break;
      case 'binary':
        schema.push({ name, type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' });
        break;
      default:
        schema.push({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
    }
  }
  return schema;
}

function int64(text: string, where: string): bigint {
  const t = text.trim();
  let value: bigint | undefined;
  if (/^[+-]?\d+$/.test(t)) value = BigInt(t);
  else {
    // `1.0`, `1e3`: integral values written as numbers.
    const checked = numberText(t, where);
    const whole = /^(-?\d+)\.0*$/.exec(checked);
    if (whole) value = BigInt(whole[1]!);
    else {
      const n = Number(checked);
      if (Number.isSafeInteger(n)) value = BigInt(n);
    }
  }
  if (value === undefined) throw new TakeoutError('INVALID_INPUT', `${where}: '${t.slice(0, 40)}' is not an integer`);
  if (value < INT64_MIN || value > INT64_MAX) throw new TakeoutError('INVALID_INPUT', `${where}: ${t.slice(0, 40)} does not fit a 64-bit integer`);
  return value;
}

/** A cell's size before encoding, as `convert` counts it (JSON and binary cells by their text, at least as long). */
function cellBytes(kind: RecordColumn['kind'], cell: string): number {
  switch (kind) {
    case 'integer':
    case 'number':
      return FIXED_CELL_BYTES;
    case 'boolean':
      return 1;
    default:
      return Buffer.byteLength(cell, 'utf8') + BYTE_ARRAY_PREFIX_BYTES;
  }
}

export class ParquetFileBuilder {
  private readonly byteWriter = new ByteWriter();
  private readonly writer: ParquetWriter;
  private readonly pending: ParquetValue[][];
  private readonly wheres: string[];
  private pendingRows = 0;
  private pendingBytes = 0;
  /** Text bytes and file bytes of the row groups written so far: how well the data compresses. */
  private flushedRaw = 0;
  private flushedBytes = 0;
  private rowGroups = 0;
  private total = 0;
  private readonly schemaBytes: number;
  /** Footer bytes of one row group: every column's chunk metadata. */
  private readonly chunkFooterBytes: number;
  private finished = false;

  constructor(
    private readonly columns: readonly RecordColumn[],
    private readonly options: ParquetFileOptions,
    origin: string,
  ) {
    if (!Number.isInteger(options.rowGroupRows) || options.rowGroupRows < 1) throw new TakeoutError('USAGE', `rowGroupRows must be a positive integer, not ${options.rowGroupRows}`);
    this.writer = new ParquetWriter({
      writer: this.byteWriter,
      schema: schemaOf(columns),
      codec: options.codec,
      compressors: { GZIP: (input: Uint8Array) => gzipSync(input, { level: GZIP_LEVEL }) },
      createdBy: 'takeout',
    });
    this.pending = columns.map(() => []);
    const names = columns.reduce((n, c) => n + Buffer.byteLength(c.name), 0);
    this.schemaBytes = FILE_OVERHEAD_BYTES + names + columns.length * SCHEMA_BYTES_PER_COLUMN;
    this.chunkFooterBytes = FOOTER_BYTES_PER_CHUNK * columns.length + names;
    this.wheres = columns.map((c) => `${origin}: column ${c.name}`);
  }

  /** Rows written so far, pending ones included. */
  get rows(): number {
    return this.total;
  }

  /**
   * The file's size if it were finished now: bytes written, plus the pending rows at the compression ratio seen
   * so far (their text size before the first row group), plus the footer.
   */
  get estimatedBytes(): number {
    return this.sizeWith(this.ratio());
  }

  /**
   * What the file can at most be if finished now, for a size cap: the pending rows at their text size (a few
   * rows compress worse than the row groups before them) or worse if the data so far grew when encoded, plus
   * definition levels, page headers, the footer and the offset indexes. Exact but for the footer once `settle`d.
   */
  get boundBytes(): number {
    return this.sizeWith(Math.max(1, this.ratio()));
  }

  private sizeWith(pendingRatio: number): number {
    const groups = this.rowGroups + (this.pendingRows > 0 ? 1 : 0);
    // Definition levels: a bit per cell of an OPTIONAL column (RLE/bit-packed, Parquet's Encodings.md).
    const levels = this.pendingRows > 0 ? Math.ceil((this.pendingRows * this.columns.length) / 8) : 0;
    const pages = Math.ceil((this.flushedRaw + this.pendingBytes) / PAGE_BYTES) + groups * this.columns.length;
    return (
      this.byteWriter.offset +
      Math.ceil(this.pendingBytes * pendingRatio) +
      levels +
      (this.pendingRows > 0 ? PAGE_OVERHEAD_BYTES_PER_CHUNK * this.columns.length : 0) +
      groups * this.chunkFooterBytes +
      pages * OFFSET_INDEX_BYTES_PER_PAGE +
      this.schemaBytes
    );
  }

  /**
   * What adding `row` can at most add to `boundBytes`: its text size, at the compression seen so far if that
   * grew the data, plus its definition levels. A runner that settles and closes the file when `boundBytes +
   * rowBytes(row)` would reach its cap, before adding the row, keeps every file of more than one row under it.
   */
  rowBytes(row: Row): number {
    let bytes = 0;
    for (let i = 0; i < this.columns.length; i++) {
      const cell = row[i] ?? null;
      if (cell !== null) bytes += cellBytes(this.columns[i]!.kind, cell);
    }
    return Math.ceil(bytes * Math.max(1, this.ratio())) + Math.ceil(this.columns.length / 8);
  }

  /** File bytes per text byte of the row groups written so far; 1 before the first (no compression assumed). */
  private ratio(): number {
    return this.flushedRaw > 0 ? this.flushedBytes / this.flushedRaw : 1;
  }

  add(rows: readonly Row[]): void {
    if (this.finished) throw new TakeoutError('FAILED', 'ParquetFileBuilder.add after finish');
    for (const row of rows) {
      for (let i = 0; i < this.columns.length; i++) {
        const cell = row[i] ?? null;
        this.pending[i]!.push(cell === null ? null : this.convert(i, cell));
      }
      this.pendingRows++;
      this.total++;
      if (this.pendingRows >= this.options.rowGroupRows) this.flush();
    }
  }

  /** Write the pending rows as a row group now, so `boundBytes` is bytes written plus the footer. */
  settle(): void {
    if (this.finished) throw new TakeoutError('FAILED', 'ParquetFileBuilder.settle after finish');
    if (this.pendingRows > 0) this.flush();
  }

  /** The whole file. The builder cannot be used after. */
  finish(): Uint8Array {
    if (this.finished) throw new TakeoutError('FAILED', 'ParquetFileBuilder.finish called twice');
    if (this.pendingRows > 0) this.flush();
    this.finished = true;
    void this.writer.finish();
    return this.byteWriter.getBytes();
  }

  private convert(i: number, cell: string): ParquetValue {
    const column = this.columns[i]!;
    switch (column.kind) {
      case 'integer':
        this.pendingBytes += FIXED_CELL_BYTES;
        return int64(cell, this.wheres[i]!);
      case 'number':
        this.pendingBytes += FIXED_CELL_BYTES;
        return Number(numberText(cell, this.wheres[i]!));
      case 'boolean':
        this.pendingBytes += 1;
        return parseBoolean(cell);
      case 'binary': {
        const bytes = parseBinary(cell);
        this.pendingBytes += bytes.length + BYTE_ARRAY_PREFIX_BYTES;
        return bytes;
      }
      case 'json': {
        const text = jsonDocument(cell, this.wheres[i]!);
        this.pendingBytes += text.length + BYTE_ARRAY_PREFIX_BYTES;
        return text;
      }
      case 'dynamodb-item': {
        const text = plainJsonOfDynamoItem(cell, this.wheres[i]!);
        this.pendingBytes += text.length + BYTE_ARRAY_PREFIX_BYTES;
        return text;
      }
      default:
        // UTF-8 bytes, as written: UTF-16 units would under-count other text than ASCII up to 3 times.
        this.pendingBytes += Buffer.byteLength(cell, 'utf8') + BYTE_ARRAY_PREFIX_BYTES;
        return cell;
    }
  }

  private flush(): void {
    const before = this.byteWriter.offset;
    void this.writer.write({
      columnData: this.columns.map((c, i) => ({ name: c.name, data: this.pending[i]! })),
      rowGroupSize: this.pendingRows,
    });
    this.flushedRaw += this.pendingBytes;
    this.flushedBytes += this.byteWriter.offset - before;
    this.rowGroups++;
    for (const values of this.pending) values.length = 0;
    this.pendingRows = 0;
    this.pendingBytes = 0;
  }
}
