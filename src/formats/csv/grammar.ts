/**
 * The CSV grammar every machine in this folder reads: RFC 4180 (https://www.rfc-editor.org/rfc/rfc4180),
 * comma-separated, `"` quotes with quotes doubled inside them, records ended by `\n` or `\r\n`, a UTF-8
 * byte order mark dropped. Keboola exports it with every value quoted and NULL as an empty value;
 * PostgreSQL's `COPY … FORCE_QUOTE *` the same, but with NULL an empty unquoted value. A lone `\r` outside
 * quotes ends a record for the scanner and the record parser; the pass-through and the counter split at
 * `\n` only and keep it as a byte of the value.
 *
 * The machines, each written once:
 * - `scanner.ts` (CsvScanner): validates any CSV and rewrites it canonical (every value quoted);
 * - `pass-through.ts` (CsvPassThrough): validates and passes the bytes on, only `\r\n` row ends rewritten;
 * - `record-parser.ts` (CsvRecordParser): text into rows of cells, NULL kept apart from '';
 * - `record-counter.ts` (RecordCounter): counts the records of canonical CSV (newlines outside quotes);
 * - `header.ts` (parseHeader): the header record of a file's first bytes;
 * - `encode.ts`: values into canonical CSV.
 * What they share lives beside them: the bytes and the BOM here, the record rules of both scanners (field
 * counts, header, blank lines, size bound) in `record-rules.ts`, error places in `position.ts`, output
 * blocks in `blocks.ts`. The quote states themselves stay inside each byte loop: each loop is shaped for
 * what it makes (a re-quoted copy, slices of the input, cells, a count), and a call per byte would cost
 * more than the loop.
 */

/**
 * The bytes of the grammar. The byte loops copy them into constants of their own module
 * (`const { QUOTE, COMMA, LF, CR } = SYNTAX_BYTES`): V8 folds a module's own constant into a compare, but loads an
 * imported binding on every one (measured: imported constants made the re-quoting scanner 15–30% slower).
 */
export const SYNTAX_BYTES = { QUOTE: 0x22, COMMA: 0x2c, LF: 0x0a, CR: 0x0d } as const;
const { COMMA, LF, CR } = SYNTAX_BYTES;

/** The byte order mark as a text decoder gives it (U+FEFF); in UTF-8 it is the bytes EF BB BF. */
export const BOM_CODE = 0xfeff;
/** Length of a UTF-8 byte order mark. */
export const BOM_BYTES = 3;

/** A single record larger than this is refused: it is almost always an unterminated quote, and it bounds memory. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

const BOM_UTF8 = [0xef, 0xbb, 0xbf] as const;

/** Bytes of UTF-8 BOM at the start of a file's first bytes (0 or 3). */
export function bomLength(chunk: Buffer): number {
  return chunk.length >= BOM_BYTES && chunk[0] === BOM_UTF8[0] && chunk[1] === BOM_UTF8[1] && chunk[2] === BOM_UTF8[2] ? BOM_BYTES : 0;
}

/** Fewer bytes than a BOM that may still become one (a stream may cut the file's first 3 bytes anywhere). */
export function couldBeBomStart(bytes: Buffer): boolean {
  return bytes.length < BOM_BYTES && bytes.every((b, i) => b === BOM_UTF8[i]);
}

/** A byte that may follow a closing quote: the end of the field or of the record. */
export function endsField(c: number): boolean {
  return c === COMMA || c === LF || c === CR;
}
