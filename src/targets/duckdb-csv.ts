import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { constants, mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import type { DuckDBConnection } from '@duckdb/node-api';
import { TakeoutError } from '../errors.js';
import { LfRecords } from '../formats/csv/lf-records.js';
import { quoteIdent, type RestoreColumn, type RestoreTable } from './target.js';

/**
 * DuckDB's load path: one `INSERT … SELECT … FROM read_csv(…)` per slice (duckdb.org/docs/stable/data/csv/overview),
 * DuckDB's own CSV reader, fed with the gunzipped slice through a named pipe (a FIFO: streamed, nothing on
 * disk; the docs read `/dev/stdin` the same way) — or, where `mkfifo` is missing (Windows), a temporary file
 * the size of the gunzipped slice, removed on every path. Measured on 500,000 rows (210 MB of CSV, 2 cores):
 * 2.2× as fast as the appender fed by takeout's CSV parser, 0.77× DuckDB's `read_csv` of the same CSV from a
 * plain file (bench/restore-duckdb.mjs): DuckDB reads a pipe with one thread while Node gunzips and scans on
 * another, where it reads a file with all of them.
 *
 * `read_csv` is told everything so that nothing is sniffed: headerless, `,` `"` `"`, every column VARCHAR by
 * position, `new_line='\n'` with `strict_mode=true` (a ragged row or text after a closing quote fails the
 * load). The bytes pass through `LfRecords` first: record ends made LF (strict mode refuses a file that mixes
 * CR LF and LF; a Keboola slice can), unterminated and stray quotes refused, records counted — the count
 * must equal the rows DuckDB inserted. `allow_quoted_nulls=false` keeps `""` as '' while an empty unquoted
 * field is NULL, then `cellValue`'s rule in SQL: '' for NULL in a STRING column, NULL for '' in a typed one,
 * cast to the column's type by DuckDB (a value that does not cast fails the load).
 */

/**
 * The longest record DuckDB reads, and its read buffer: one value for both (`buffer_size` may not be smaller
 * than `max_line_size`). A Snowflake-backed Keboola cell holds up to 16 MB (help.keboola.com/storage), above
 * DuckDB's default of 2 MB. Not takeout's own 64 MiB record limit: DuckDB fills its whole buffer from the pipe
 * before it parses, so a larger buffer serialises reading and gunzipping — measured on 210 MB of CSV, 16 MiB
 * loads in 4.1 s where 64 MiB takes 5.7 s (8 MiB: 3.5 s, but a full-size Keboola cell would not fit).
 */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Gunzipped bytes per chunk (zlib's default is 16 KiB): fewer, larger writes into the FIFO or file — measured,
 * about 0.5 CPU-s less per 200 MB of CSV; memory stays a few chunks.
 */
const GUNZIP_CHUNK_BYTES = 1024 * 1024;

/** How the gunzipped slice reaches DuckDB: a FIFO where the platform has one, else a temporary file. */
export type CsvSpool = 'fifo' | 'file';

const run = promisify(execFile);

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function selectColumn(column: RestoreColumn, index: number, type: string): string {
  const field = `c${index}`;
  if (column.type === 'STRING') return `coalesce(${field}, '')`;
  // A VARCHAR → TIMESTAMP cast drops an offset ('…03:04:05+02:00' would be 03:04:05); through TIMESTAMPTZ in a
  // UTC session (the connection's TimeZone) it is converted to UTC, and a value without one is taken as UTC.
  if (column.type === 'TIMESTAMP') return `CAST(CAST(nullif(${field}, '') AS TIMESTAMPTZ) AS ${type})`;
  return `CAST(nullif(${field}, '') AS ${type})`;
}

/** The statement that loads the CSV at `file` into the table, columns by position. */
export function insertCsvSql(table: RestoreTable, types: readonly string[], target: string, file: string): string {
  const columns = table.columns.map((_, i) => `'c${i}': 'VARCHAR'`).join(', ');
  const options = [
    'header = false',
    'auto_detect = false',
    `columns = {${columns}}`,
    "delim = ','",
    "quote = '\"'",
    "escape = '\"'",
    "new_line = '\\n'",
    'strict_mode = true',
    'allow_quoted_nulls = false',
    "compression = 'none'",
    `max_line_size = ${MAX_LINE_BYTES}`,
    `buffer_size = ${MAX_LINE_BYTES}`,
  ];
  const select = table.columns.map((column, i) => selectColumn(column, i, types[i] ?? 'VARCHAR')).join(', ');
  return `INSERT INTO ${target} (${table.columns.map((c) => quoteIdent(c.name)).join(', ')}) SELECT ${select} FROM read_csv(${literal(file)}, ${options.join(', ')})`;
}

/** A FIFO at `file`, or false where there is no `mkfifo` (the caller spools to a file instead). */
async function makeFifo(file: string): Promise<boolean> {
  if (process.platform === 'win32') return false;
  try {
    await run('mkfifo', ['-m', '600', file]);
    return true;
  } catch {
    return false;
  }
}

/**
 * DuckDB's error in one line, the slice named instead of the spool's temporary path: a CSV or cast error is
 * the slice's (INVALID_INPUT); anything else goes on for the target to classify.
 */
function readError(error: unknown, origin: string, file: string): Error {
  // A CSV error reads "CSV Error on Line: N", "Original Line: <the record>", then the reason: the record is left out.
  const lines = ((error as Error).message ?? String(error)).split('\n');
  const reason = lines[1]?.startsWith('Original Line:') && lines[2] ? `: ${lines[2].trim()}` : '';
  const first = `${lines[0]!}${reason}`.split(file).join(origin);
  if (/Invalid Input Error|Conversion Error|Constraint Error|Could not convert/i.test(first)) return new TakeoutError('INVALID_INPUT', `${origin}: ${first}`, { cause: error });
  return new Error(first, { cause: error });
}

/**
 * The write end of the FIFO, opened once DuckDB opens the read end (opening a FIFO blocks until both ends
 * are open), or undefined when the query ended without opening it (a statement error): then a reader of our
 * own releases the pending open so that no thread of Node's pool stays blocked.
 */
async function openWriteEnd(file: string, query: Promise<unknown>): Promise<FileHandle | undefined> {
  const opening = open(file, 'w');
  const first = await Promise.race([opening, query.then(() => undefined, () => undefined)]);
  if (first !== undefined) return first;
  const reader = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    await (await opening).close();
  } finally {
    await reader.close();
  }
  return undefined;
}

/** Streams one gzipped slice into DuckDB through a FIFO: DuckDB reads while Node gunzips. */
async function throughFifo(c: DuckDBConnection, sql: string, file: string, body: Readable, scanner: LfRecords, origin: string): Promise<number> {
  const query = c.run(sql);
  const abort = new AbortController();
  // DuckDB stopped reading (a CSV or cast error): stop feeding it; its error is the one reported.
  query.catch(() => abort.abort());
  const writer = await openWriteEnd(file, query);
  const fed = writer
    ? pipeline(body, createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }), scanner, writer.createWriteStream(), { signal: abort.signal })
    : Promise.reject(new Error('DuckDB did not open the slice'));
  const [feeding, reading] = await Promise.allSettled([fed, query]);
  if (feeding.status === 'rejected') {
    body.destroy();
    // The slice's own error (gzip, CSV, size or sha256 check) comes first: DuckDB only saw its bytes end
    // early, or garbage before it. Aborted or a broken pipe: DuckDB stopped reading, its error follows.
    const reason = feeding.reason as { name?: string; code?: string };
    if (writer && reason.name !== 'AbortError' && reason.code !== 'EPIPE') throw feeding.reason;
  }
  if (reading.status === 'rejected') throw readError(reading.reason, origin, file);
  if (feeding.status === 'rejected') throw feeding.reason;
  return reading.value.rowsChanged;
}

/** Spools one gzipped slice to a temporary file, then DuckDB reads it. */
async function throughFile(c: DuckDBConnection, sql: string, file: string, body: Readable, scanner: LfRecords, origin: string): Promise<number> {
  await pipeline(body, createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }), scanner, createWriteStream(file, { mode: 0o600 }));
  try {
    return (await c.run(sql)).rowsChanged;
  } catch (error) {
    throw readError(error, origin, file);
  }
}

/**
 * Loads one gzipped, headerless CSV slice into `target` (an existing table, inside the connection's open
 * transaction); resolves with the rows loaded. The temporary directory holding the FIFO (or the spooled file)
 * is removed on every path.
 */
export async function loadCsvSlice(
  c: DuckDBConnection,
  table: RestoreTable,
  types: readonly string[],
  target: string,
  body: Readable,
  origin: string,
  spool: CsvSpool = 'fifo',
): Promise<number> {
  const dir = await mkdtemp(path.join(tmpdir(), 'takeout-duckdb-'));
  try {
    const file = path.join(dir, 'slice.csv');
    const sql = insertCsvSql(table, types, target, file);
    const scanner = new LfRecords(table.columns.length, origin);
    const fifo = spool === 'fifo' && (await makeFifo(file));
    const rows = fifo ? await throughFifo(c, sql, file, body, scanner, origin) : await throughFile(c, sql, file, body, scanner, origin);
    if (rows !== scanner.count) {
      throw new TakeoutError('INVALID_INPUT', `${origin}: DuckDB read ${rows} records, the slice holds ${scanner.count}`, { hint: 'check the takeout with takeout verify' });
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
