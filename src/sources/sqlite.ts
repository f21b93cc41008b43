import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { keboolaName, quoteIdent, selectSql as buildSelect } from './sql.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import type { OpenTableOptions, Source } from './source.js';
import type { BucketDescriptor, MetadataEntry, ProjectDescriptor, Row, RowsBody, TableBody, TableDescriptor, TableQuery } from '../model.js';

/**
 * A SQLite database file: the main database → bucket `in.c-main`, its tables (rowid and WITHOUT ROWID;
 * not views, virtual tables, their shadow tables or `sqlite_*`) → tables. The file is opened read-only
 * on one connection, and every table is read inside ONE read transaction (BEGIN … COMMIT around the
 * whole takeout), so all tables come from one point in time: in WAL mode writers go on and the takeout
 * does not see them; in rollback-journal mode writers wait (busy) until the takeout ends.
 * One connection runs one table's rows at a time (a lock that the next table's rows wait for); rows are
 * read in batches through better-sqlite3 iterators, with a turn of the event loop between batches.
 * Values: NULL → null, INTEGER exactly (64-bit, as decimal text), REAL as JavaScript's shortest
 * round-trip text, TEXT as it is, BLOB as `\x` + hex (as PostgreSQL prints bytea).
 */

/** Rows read from SQLite before the event loop gets a turn. */
const BATCH_ROWS = 2048;
/** …or fewer when they are large (characters of text, bytes of blobs, roughly). */
const BATCH_CHARS = 1 << 20;
/** How long a read waits for a lock held by a writer (rollback-journal mode) before failing. */
const BUSY_TIMEOUT_MS = 10_000;
/** The SQL function that gives a value in the form it is exported in (for --where eq/ne). */
const TEXT_FUNCTION = 'takeout_text';

type Affinity = 'INTEGER' | 'TEXT' | 'BLOB' | 'REAL' | 'NUMERIC';

interface SqliteTable extends TableDescriptor {
  relname: string;
  affinities: Map<string, Affinity>;
}

/** One value as it is exported: exact integers, shortest round-trip reals, `\x…` blobs. */
export function sqliteText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return value;
    case 'bigint':
      return value.toString();
    case 'number':
      return String(value);
    default:
      if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
      if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
      return String(value);
  }
}

/** `sqlite:PATH` → PATH; `sqlite:///abs/file.db` → `/abs/file.db` (the URL form). */
export function sqlitePath(uri: string): string {
  let path = uri.replace(/^sqlite:/i, '');
  if (path.startsWith('///')) path = path.slice(2);
  if (path === '') throw new TakeoutError('USAGE', '--source sqlite:: give the database file, e.g. sqlite:./shop.db');
  return path;
}

/** The column's affinity by SQLite's rules (https://sqlite.org/datatype3.html, 3.1), in their order. */
export function affinityOf(declared: string): Affinity {
  const type = declared.toUpperCase();
  if (type.includes('INT')) return 'INTEGER';
  if (type.includes('CHAR') || type.includes('CLOB') || type.includes('TEXT')) return 'TEXT';
  if (type.includes('BLOB') || type.trim() === '') return 'BLOB';
  if (type.includes('REAL') || type.includes('FLOA') || type.includes('DOUB')) return 'REAL';
  return 'NUMERIC';
}

/** Keboola's base type for a declared type: by affinity, with NUMERIC names for booleans and times told apart. */
export function sqliteBasetype(declared: string): string {
  const affinity = affinityOf(declared);
  if (affinity === 'INTEGER') return 'INTEGER';
  if (affinity === 'REAL') return 'FLOAT';
  if (affinity === 'TEXT' || affinity === 'BLOB') return 'STRING';
  const type = declared.toUpperCase();
  if (type.includes('BOOL')) return 'BOOLEAN';
  if (type.includes('DATETIME') || type.includes('TIMESTAMP')) return 'TIMESTAMP';
  if (type.includes('DATE')) return 'DATE';
  return 'NUMERIC';
}

function mapSqliteError(error: unknown, what: string): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const e = error as { code?: string; message?: string };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = `${what}: ${e.message ?? String(error)}`;
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new TakeoutError('INVALID_INPUT', `${what}: not a SQLite database, or a damaged one (${e.message ?? code})`, { cause: error });
  }
  if (code === 'SQLITE_PERM' || code === 'SQLITE_AUTH' || code.startsWith('SQLITE_READONLY')) return new TakeoutError('AUTH', message, { cause: error });
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return new TakeoutError('FAILED', message, { cause: error, hint: 'a database in WAL mode needs its -wal and -shm files readable, or its folder writable' });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new TakeoutError('FAILED', message, { cause: error, hint: 'another connection holds a lock on the database: try again when its writer is done' });
  }
  if (code === 'SQLITE_INTERRUPT') return new TakeoutError('INTERRUPTED', message, { cause: error });
  if (code.startsWith('SQLITE_ERROR')) {
    if (/no such table/i.test(message)) return new TakeoutError('NOT_FOUND', message, { cause: error });
    if (/no such column|syntax error/i.test(message)) return new TakeoutError('USAGE', message, { cause: error });
  }
  return toTakeoutError(error, what);
}

/** A bound value for gt/ge/lt/le: numbers as numbers unless the column compares as text. */
function rangeValue(value: string, affinity: Affinity): string | number | bigint {
  if (affinity === 'TEXT') return value;
  const text = value.trim();
  if (/^[+-]?\d+$/.test(text)) {
    const n = BigInt(text);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) return n;
    return Number(text);
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  return value;
}

/** A time as SQLite's strftime('%Y-%m-%d %H:%M:%f') prints it, in UTC. */
function sqliteTime(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/** One waiter at a time: a table's rows hold it from their first row to their last. */
class Lock {
  private tail: Promise<void> = Promise.resolve();

  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const before = this.tail;
    this.tail = before.then(() => held);
    return before.then(() => release);
  }
}

export interface SqliteSourceOptions {
  /** Only these schemas: `main` is the only one. */
  schemas?: readonly string[];
}

/** What one SQLite source holds: the one read-only connection and its read transaction, the listed tables, the open row iterators. */
interface SqliteState {
  readonly description: string;
  readonly path: string;
  readonly options: SqliteSourceOptions;
  /** Opened on first use; its read transaction lasts until close. */
  db: Database.Database | undefined;
  snapshotTime: string;
  closed: boolean;
  readonly tables: Map<string, SqliteTable>;
  /** One table's rows at a time on the one connection. */
  readonly lock: Lock;
  readonly iterators: Set<IterableIterator<unknown[]>>;
}

/** The database, opened read-only on first use, inside the read transaction every table is read in. */
async function openDatabase(state: SqliteState): Promise<Database.Database> {
  const { description, path } = state;
  if (state.db) return state.db;
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw new TakeoutError('INVALID_INPUT', `${description}: ${path} is a folder, not a SQLite database file`);
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') throw new TakeoutError('NOT_FOUND', `${description}: no such file ${path}`, { cause: error });
    throw mapSqliteError(error, description);
  }
  let opened: Database.Database;
  try {
    opened = new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    throw mapSqliteError(error, description);
  }
  try {
    opened.defaultSafeIntegers(true);
    opened.function(TEXT_FUNCTION, { deterministic: true, safeIntegers: true }, (value: unknown) => sqliteText(value));
    // A deferred transaction: its first read (below) fixes the snapshot that every table is read in.
    opened.exec('BEGIN');
    opened.prepare('SELECT count(*) FROM main.sqlite_master').get();
    state.snapshotTime = new Date().toISOString();
  } catch (error) {
    opened.close();
    throw mapSqliteError(error, description);
  }
  state.db = opened;
  return opened;
}

function selectSql(table: SqliteTable, query: TableQuery | undefined, params: unknown[]): string {
  return buildSelect(table, query, params, {
    placeholder: () => '?',
    from: `main.${quoteIdent(table.relname)}`,
    // Compared as text, the form every value is exported in (`1`, `0.1`, `\x00ff`).
    asText: (col) => `${TEXT_FUNCTION}(${col})`,
    rangeValue: (value, column) => rangeValue(value, table.affinities.get(column) ?? 'BLOB'),
    // INTEGER/REAL values are unix seconds, text is ISO 8601 (a zone suffix is honoured, none means UTC); compared in UTC to the millisecond.
    changedAt: (col) => `(CASE WHEN typeof(${col}) IN ('integer', 'real') THEN strftime('%Y-%m-%d %H:%M:%f', ${col}, 'unixepoch') ELSE strftime('%Y-%m-%d %H:%M:%f', ${col}) END)`,
    boundTime: (at) => sqliteTime(at),
    timeCast: '',
    // NULLs last ascending and first descending, as PostgreSQL sorts them.
    order: (desc) => (desc ? 'DESC NULLS FIRST' : 'ASC NULLS LAST'),
  });
}

/** The next batch of rows: at most BATCH_ROWS, or fewer of BATCH_CHARS in all; `done` at the end of the table. */
function readBatch(iterator: IterableIterator<unknown[]>, origin: string): { batch: Row[]; done: boolean } {
  const batch: Row[] = [];
  let chars = 0;
  try {
    while (batch.length < BATCH_ROWS && chars < BATCH_CHARS) {
      const next = iterator.next();
      if (next.done) return { batch, done: true };
      const row = next.value.map(sqliteText);
      for (const cell of row) chars += cell === null ? 1 : cell.length + 1;
      batch.push(row);
    }
  } catch (error) {
    throw mapSqliteError(error, origin);
  }
  return { batch, done: false };
}

/** A statement's rows, read in batches with a turn of the event loop between them, holding the connection's lock throughout. */
async function* rows(state: SqliteState, statement: Database.Statement, params: unknown[], origin: string, signal: AbortSignal | undefined): AsyncGenerator<Row> {
  const release = await state.lock.acquire();
  try {
    signal?.throwIfAborted();
    if (state.closed) throw new TakeoutError('INTERRUPTED', `${origin}: the source was closed`);
    let iterator: IterableIterator<unknown[]>;
    try {
      iterator = statement.iterate(...params) as IterableIterator<unknown[]>;
    } catch (error) {
      throw mapSqliteError(error, origin);
    }
    state.iterators.add(iterator);
    try {
      for (;;) {
        signal?.throwIfAborted();
        // close() ends open iterators: what follows would look like the end of the table.
        if (state.closed) throw new TakeoutError('INTERRUPTED', `${origin}: the source was closed while reading`);
        const { batch, done } = readBatch(iterator, origin);
        yield* batch;
        if (done) return;
        await nextTurn();
      }
    } finally {
      state.iterators.delete(iterator);
      try {
        iterator.return?.();
      } catch {
        // The connection is already closed.
      }
    }
  } finally {
    release();
  }
}

interface ListedTable {
  name: string;
  type: string;
  wr: number;
  strict: number;
}

/** One table of the main schema: its columns typed in column metadata, its rows counted in the snapshot. */
function sqliteTable(c: Database.Database, rel: ListedTable, bucketId: string, sizes: Map<string, number> | undefined, description: string): SqliteTable {
  const cols = c.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_xinfo(?, 'main') WHERE hidden IN (0, 2, 3) ORDER BY cid").safeIntegers(false).all(rel.name) as {
    name: string;
    type: string;
    notnull: number;
    pk: number;
  }[];
  if (cols.some((col) => col.name === '')) throw new TakeoutError('INVALID_INPUT', `${description}: table ${rel.name} has a column with an empty name`);
  const pk = cols.filter((col) => col.pk > 0).sort((a, b) => a.pk - b.pk);
  // An INTEGER PRIMARY KEY is the rowid, and WITHOUT ROWID keys are NOT NULL: neither can hold NULL.
  const rowidAlias = rel.wr === 0 && pk.length === 1 && pk[0]!.type.toUpperCase() === 'INTEGER';
  const columnMetadata: Record<string, MetadataEntry[]> = {};
  const affinities = new Map<string, Affinity>();
  for (const col of cols) {
    const nullable = col.notnull === 0 && !(col.pk > 0 && (rel.wr === 1 || rowidAlias));
    affinities.set(col.name, affinityOf(col.type));
    columnMetadata[col.name] = [
      ...(col.type !== '' ? [{ key: 'KBC.datatype.type', value: col.type, provider: 'takeout' }] : []),
      { key: 'KBC.datatype.nullable', value: nullable ? '1' : '0', provider: 'takeout' },
      { key: 'KBC.datatype.basetype', value: sqliteBasetype(col.type), provider: 'takeout' },
    ];
  }
  const count = c.prepare(`SELECT count(*) FROM main.${quoteIdent(rel.name)}`).pluck().get() as bigint;
  const bytes = sizes?.get(rel.name);
  return {
    id: `${bucketId}.${keboolaName(rel.name)}`,
    bucketId,
    name: keboolaName(rel.name),
    displayName: rel.name,
    relname: rel.name,
    affinities,
    columns: cols.map((col) => col.name),
    primaryKey: pk.map((col) => col.name),
    rowsCount: Number(count),
    ...(bytes !== undefined ? { dataSizeBytes: bytes } : {}),
    columnMetadata,
  };
}

/** Each table's size from dbstat, or undefined in a build without it (sizes are then left out). */
function tableSizes(c: Database.Database): Map<string, number> | undefined {
  try {
    const pages = c.prepare("SELECT name, pgsize FROM dbstat('main') WHERE aggregate = 1").safeIntegers(false).all() as { name: string; pgsize: number }[];
    return new Map(pages.map((p) => [p.name, p.pgsize]));
  } catch {
    return undefined;
  }
}

/** The main schema as bucket `in.c-main`, its tables (not views, virtual tables or `sqlite_*`) as tables. */
async function listProject(state: SqliteState): Promise<ProjectDescriptor> {
  const { description, path, tables } = state;
  if (state.closed) throw new TakeoutError('FAILED', `${description}: the source is closed`);
  const schemas = state.options.schemas?.filter((s) => s !== 'main') ?? [];
  if (schemas.length) throw new TakeoutError('NOT_FOUND', `${description}: no tables in schema ${schemas.join(', ')}`, { hint: 'a SQLite file has one schema: main' });
  const c = await openDatabase(state);
  try {
    const listed = c
      .prepare("SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main' AND type = 'table' ORDER BY name")
      .safeIntegers(false)
      .all() as ListedTable[];
    const relations = listed.filter((r) => !r.name.toLowerCase().startsWith('sqlite_'));
    const sizes = tableSizes(c);
    const journal = c.pragma('main.journal_mode', { simple: true }) as string;
    const bucket: BucketDescriptor = { id: 'in.c-main', stage: 'in', name: 'c-main', displayName: 'main', description: `SQLite database ${basename(path)}` };
    tables.clear();
    for (const rel of relations) {
      const id = `${bucket.id}.${keboolaName(rel.name)}`;
      const other = tables.get(id);
      if (other) throw new TakeoutError('INVALID_INPUT', `${description}: tables ${rel.name} and ${other.relname} both map to ${id}`);
      tables.set(id, sqliteTable(c, rel, bucket.id, sizes, description));
    }
    return {
      name: basename(path, extname(path)),
      buckets: [bucket],
      tables: [...tables.values()],
      components: [],
      meta: {
        snapshotTime: state.snapshotTime,
        sqliteVersion: c.prepare('SELECT sqlite_version()').pluck().get() as string,
        journalMode: journal,
        isolation: 'one read transaction on one read-only connection',
      },
    };
  } catch (error) {
    throw mapSqliteError(error, description);
  }
}

async function openTable(state: SqliteState, descriptor: TableDescriptor, open: OpenTableOptions): Promise<TableBody> {
  if (state.closed) throw new TakeoutError('FAILED', `${state.description}: the source is closed`);
  const table = state.tables.get(descriptor.id);
  if (!table || !state.db) throw new TakeoutError('NOT_FOUND', `${state.description}: no table ${descriptor.id}`);
  const params: unknown[] = [];
  const sql = selectSql(table, open.query, params);
  const origin = `${state.description} ${table.relname}`;
  let statement: Database.Statement;
  try {
    statement = state.db.prepare(sql).raw(true).safeIntegers(true);
  } catch (error) {
    throw mapSqliteError(error, origin);
  }
  const body: RowsBody = { kind: 'rows', rows: rows(state, statement, params, origin, open.signal) };
  return body;
}

async function close(state: SqliteState): Promise<void> {
  if (state.closed) return;
  state.closed = true;
  for (const iterator of [...state.iterators]) {
    try {
      iterator.return?.();
    } catch {
      // Already ended.
    }
  }
  state.iterators.clear();
  if (state.db) {
    try {
      if (state.db.inTransaction) state.db.exec('COMMIT');
    } catch {
      // A read transaction has nothing to keep.
    }
    state.db.close();
    state.db = undefined;
  }
}

export function createSqliteSource(path: string, options: SqliteSourceOptions = {}): Source {
  const state: SqliteState = {
    description: `sqlite:${path}`,
    path,
    options,
    db: undefined,
    snapshotTime: '',
    closed: false,
    tables: new Map(),
    lock: new Lock(),
    iterators: new Set(),
  };
  return {
    description: state.description,
    project: (): Promise<ProjectDescriptor> => listProject(state),
    openTable: (descriptor: TableDescriptor, open: OpenTableOptions): Promise<TableBody> => openTable(state, descriptor, open),
    close: (): Promise<void> => close(state),
  };
}
