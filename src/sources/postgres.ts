import type { Readable } from 'node:stream';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { to as copyTo } from 'pg-copy-streams';
import { keboolaName, quoteIdent, selectSql as buildSelect } from './sql.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { registerSecret } from '../secrets.js';
import type { OpenTableOptions, Source } from './source.js';
import type { BucketDescriptor, MetadataEntry, ProjectDescriptor, Row, TableBody, TableDescriptor, TableQuery } from '../model.js';

/**
 * A PostgreSQL database: schema X → bucket `in.c-X`, tables → tables. Every table is read in one
 * REPEATABLE READ snapshot exported by a coordinator connection (`pg_export_snapshot()`) and imported
 * by each worker connection, so a takeout is one point in time however many tables run in parallel.
 * Data comes from `COPY (SELECT …) TO STDOUT (FORMAT csv, FORCE_QUOTE *)`, streamed into the pipeline
 * as CSV bytes; filtered exports use a cursor with bound parameters. Sessions use TimeZone UTC and
 * DateStyle ISO so values do not depend on the server's settings.
 */

/** Rows fetched per cursor round trip on the filtered path. */
const CURSOR_BATCH_ROWS = 10_000;
/** How long the coordinator waits for ACCESS SHARE locks on the tables before giving up. */
const LOCK_WAIT_TIMEOUT_MS = 60_000;
/** A connection attempt that takes longer has failed. */
const CONNECT_TIMEOUT_MS = 15_000;

interface PgTable extends TableDescriptor {
  schema: string;
  relname: string;
}

type Client = pg.Client;

/** Text exactly as PostgreSQL prints it: no value is parsed into a JavaScript type. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

function mapPgError(error: unknown, what: string): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const e = error as { code?: string; message?: string };
  const message = `${what}: ${e.message ?? String(error)}`;
  switch (e.code) {
    case '28P01':
    case '28000':
    case '42501':
      return new TakeoutError('AUTH', message, { cause: error });
    case '3D000':
    case '42P01':
    case '3F000':
      return new TakeoutError('NOT_FOUND', message, { cause: error });
    case '42703':
    case '42601':
    case '22P02':
    case '22007':
    case '22008':
      return new TakeoutError('USAGE', message, { cause: error });
    default:
      return toTakeoutError(error, what);
  }
}

/** `postgres://user:secret@host:5432/db` → `postgres://user@host:5432/db`. */
export function describePostgres(uri: string): string {
  try {
    const url = new URL(uri);
    url.password = '';
    url.search = '';
    return url.toString().replace(/^postgresql:/, 'postgres:');
  } catch {
    return 'postgres://(invalid URL)';
  }
}

function basetype(category: string, type: string): string {
  if (category === 'N') {
    if (/^(smallint|integer|bigint)$/.test(type)) return 'INTEGER';
    if (/^(real|double precision)$/.test(type)) return 'FLOAT';
    return 'NUMERIC';
  }
  if (category === 'B') return 'BOOLEAN';
  if (category === 'D') return type === 'date' ? 'DATE' : 'TIMESTAMP';
  return 'STRING';
}

export interface PostgresSourceOptions {
  /** Only these schemas (default: every schema but the system ones). */
  schemas?: readonly string[];
}

/** What one PostgreSQL source holds: its connection settings, the coordinator holding the snapshot, the worker connections, the listed tables. */
interface PgState {
  readonly description: string;
  readonly options: PostgresSourceOptions;
  readonly config: pg.ClientConfig;
  /** The connection that exported the snapshot and holds the tables' ACCESS SHARE locks until close. */
  coordinator: Client | undefined;
  snapshot: string | undefined;
  readonly workers: Set<Client>;
  readonly tables: Map<string, PgTable>;
}

async function connect(state: PgState): Promise<Client> {
  const client = new pg.Client(state.config);
  // A connection that dies in the background must not crash the process; the query in flight reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1");
  } catch (error) {
    await client.end().catch(() => undefined);
    throw mapPgError(error, state.description);
  }
  return client;
}

/** A worker connection inside the exported snapshot. */
async function worker(state: PgState): Promise<Client> {
  const client = await connect(state);
  state.workers.add(client);
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (state.snapshot) await client.query(`SET TRANSACTION SNAPSHOT '${state.snapshot}'`);
  } catch (error) {
    await release(state, client);
    throw mapPgError(error, `${state.description}: importing the snapshot`);
  }
  return client;
}

async function release(state: PgState, client: Client): Promise<void> {
  state.workers.delete(client);
  await client.query('COMMIT').catch(() => undefined);
  await client.end().catch(() => undefined);
}

function selectSql(table: PgTable, query: TableQuery | undefined, params: unknown[]): string {
  return buildSelect(table, query, params, {
    placeholder: (n) => `$${n}`,
    from: `${quoteIdent(table.schema)}.${quoteIdent(table.relname)}`,
    asText: (col) => `${col}::text`,
    rangeValue: (value) => value,
    changedAt: (col) => col,
    boundTime: (at) => at.toISOString(),
    timeCast: '::timestamptz',
    // PostgreSQL's own NULL order is the one takeout documents.
    order: (desc) => (desc ? 'DESC' : 'ASC'),
  });
}

interface SnapshotHead {
  id: string;
  at: string;
  version: string;
  db: string;
}
interface RelationRow {
  oid: string;
  schema: string;
  name: string;
  est_rows: string;
  bytes: string;
  comment: string | null;
  selectable: 't' | 'f';
}
interface ColumnRow {
  oid: string;
  name: string;
  type: string;
  notnull: 't' | 'f';
  comment: string | null;
  category: string;
}
interface KeyRow {
  oid: string;
  name: string;
}

/** The coordinator's REPEATABLE READ transaction begun and its snapshot exported, for the workers to import. */
async function exportSnapshot(state: PgState, c: Client): Promise<SnapshotHead> {
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const snap = await c.query<SnapshotHead>(
    "SELECT pg_export_snapshot() AS id, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at, current_setting('server_version') AS version, current_database() AS db",
  );
  const head = snap.rows[0]!;
  if (!/^[0-9A-Fa-f-]+$/.test(head.id)) throw new TakeoutError('FAILED', `unexpected snapshot id from ${state.description}`);
  state.snapshot = head.id;
  return head;
}

/** The tables (not partitions) of the chosen schemas, their columns and primary keys, from the catalog. */
async function readCatalog(state: PgState, c: Client): Promise<{ rels: RelationRow[]; cols: ColumnRow[]; pks: KeyRow[] }> {
  const schemas = state.options.schemas?.length ? [...state.options.schemas] : null;
  const rels = await c.query<RelationRow>(
    `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS name, GREATEST(c.reltuples, 0)::bigint::text AS est_rows,
            pg_total_relation_size(c.oid)::text AS bytes, obj_description(c.oid, 'pg_class') AS comment,
            has_table_privilege(c.oid, 'SELECT') AS selectable
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
        AND ($1::text[] IS NULL OR n.nspname = ANY($1::text[]))
      ORDER BY n.nspname, c.relname`,
    [schemas],
  );
  if (schemas) {
    const found = new Set(rels.rows.map((r) => r.schema));
    const missing = schemas.filter((s) => !found.has(s));
    if (missing.length) throw new TakeoutError('NOT_FOUND', `${state.description}: no tables in schema ${missing.join(', ')}`);
  }
  const oids = rels.rows.map((r) => r.oid);
  // Every value arrives as text (TEXT_TYPES): attnotnull is 't' or 'f'.
  const cols = await c.query<ColumnRow>(
    `SELECT a.attrelid::text AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
            col_description(a.attrelid, a.attnum) AS comment, t.typcategory AS category
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  const pks = await c.query<KeyRow>(
    `SELECT i.indrelid::text AS oid, a.attname AS name
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indisprimary AND i.indrelid = ANY($1::oid[])
      ORDER BY i.indrelid, array_position(i.indkey::int2[], a.attnum)`,
    [oids],
  );
  return { rels: rels.rows, cols: cols.rows, pks: pks.rows };
}

/**
 * As pg_dump does: ACCESS SHARE locks on every listed table, held by this transaction until the
 * takeout ends, so a concurrent TRUNCATE, DROP or rewriting ALTER TABLE waits for the takeout instead
 * of emptying a table the snapshot has not read yet (TRUNCATE is not MVCC-safe).
 */
async function lockTables(c: Client, rels: RelationRow[]): Promise<void> {
  const lockable = rels.filter((r) => r.selectable === 't');
  if (lockable.length === 0) return;
  // Like pg_dump's --lock-wait-timeout: a table held exclusively by someone else fails the takeout clearly.
  await c.query(`SET LOCAL lock_timeout = '${LOCK_WAIT_TIMEOUT_MS}ms'`);
  await c.query(`LOCK TABLE ${lockable.map((r) => `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`).join(', ')} IN ACCESS SHARE MODE`);
}

/** One relation of the catalog as a table of bucket `in.c-<schema>`, its columns typed in column metadata. */
function pgTable(rel: RelationRow, bucketId: string, cols: ColumnRow[], pks: KeyRow[]): PgTable {
  const name = keboolaName(rel.name);
  const columns = cols.filter((col) => col.oid === rel.oid);
  const columnMetadata: Record<string, MetadataEntry[]> = {};
  for (const col of columns) {
    columnMetadata[col.name] = [
      { key: 'KBC.datatype.type', value: col.type, provider: 'takeout' },
      { key: 'KBC.datatype.nullable', value: col.notnull === 't' ? '0' : '1', provider: 'takeout' },
      { key: 'KBC.datatype.basetype', value: basetype(col.category, col.type), provider: 'takeout' },
      ...(col.comment ? [{ key: 'KBC.description', value: col.comment, provider: 'takeout' }] : []),
    ];
  }
  return {
    id: `${bucketId}.${name}`,
    bucketId,
    name,
    displayName: rel.name,
    schema: rel.schema,
    relname: rel.name,
    columns: columns.map((col) => col.name),
    primaryKey: pks.filter((p) => p.oid === rel.oid).map((p) => p.name),
    rowsCount: Number(rel.est_rows),
    dataSizeBytes: Number(rel.bytes),
    columnMetadata,
    ...(rel.comment ? { description: rel.comment } : {}),
  };
}

/** Buckets and tables in the exported snapshot, the tables locked against TRUNCATE and DROP until close. */
async function listProject(state: PgState): Promise<ProjectDescriptor> {
  const { description, tables } = state;
  state.coordinator ??= await connect(state);
  const c = state.coordinator;
  try {
    const head = await exportSnapshot(state, c);
    const { rels, cols, pks } = await readCatalog(state, c);
    await lockTables(c, rels);
    const buckets = new Map<string, BucketDescriptor>();
    tables.clear();
    for (const rel of rels) {
      const bucketName = `c-${keboolaName(rel.schema)}`;
      const bucketId = `in.${bucketName}`;
      if (!buckets.has(bucketId)) {
        buckets.set(bucketId, { id: bucketId, stage: 'in', name: bucketName, displayName: rel.schema, description: `PostgreSQL schema ${rel.schema}` });
      }
      const id = `${bucketId}.${keboolaName(rel.name)}`;
      if (tables.has(id)) throw new TakeoutError('INVALID_INPUT', `${description}: tables ${rel.schema}.${rel.name} and ${tables.get(id)!.schema}.${tables.get(id)!.relname} both map to ${id}`);
      tables.set(id, pgTable(rel, bucketId, cols, pks));
    }
    return {
      name: head.db,
      buckets: [...buckets.values()],
      tables: [...tables.values()],
      components: [],
      meta: { snapshotTime: head.at, serverVersion: head.version, isolation: 'REPEATABLE READ (exported snapshot)' },
    };
  } catch (error) {
    throw mapPgError(error, description);
  }
}

/** A table's body on its own worker connection: COPY's CSV when it is whole, a cursor's rows when filtered. */
async function openTable(state: PgState, descriptor: TableDescriptor, open: OpenTableOptions): Promise<TableBody> {
  const table = state.tables.get(descriptor.id);
  if (!table) throw new TakeoutError('NOT_FOUND', `${state.description}: no table ${descriptor.id}`);
  const query = open.query;
  const filtered = Boolean(query?.where?.length || query?.changedSince || query?.changedUntil || query?.orderBy?.length || query?.limit !== undefined);
  const params: unknown[] = [];
  const sql = selectSql(table, query, params);
  const client = await worker(state);
  const origin = `${state.description} ${table.schema}.${table.relname}`;
  const done = (c: Client): Promise<void> => release(state, c);
  try {
    // NOWAIT, as pg_dump's workers: queueing behind a TRUNCATE that waits for the coordinator's lock would never end.
    await client.query(`LOCK TABLE ${quoteIdent(table.schema)}.${quoteIdent(table.relname)} IN ACCESS SHARE MODE NOWAIT`);
  } catch (error) {
    await done(client);
    throw mapPgError(error, `${origin}: another session waits for an exclusive lock (TRUNCATE, DROP, ALTER TABLE…)`);
  }
  if (filtered) return { kind: 'rows', rows: cursorRows(client, sql, params, origin, done) };
  let stream: Readable;
  try {
    stream = client.query(copyTo(`COPY (${sql}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)`));
  } catch (error) {
    await done(client);
    throw mapPgError(error, origin);
  }
  const ended = (): void => void done(client);
  stream.once('end', ended);
  stream.once('close', ended);
  stream.once('error', ended);
  return { kind: 'csv', stream, hasHeader: false, origin };
}

async function close(state: PgState): Promise<void> {
  for (const client of [...state.workers]) await release(state, client);
  if (state.coordinator) {
    await state.coordinator.query('COMMIT').catch(() => undefined);
    await state.coordinator.end().catch(() => undefined);
    state.coordinator = undefined;
  }
}

export function createPostgresSource(uri: string, options: PostgresSourceOptions = {}): Source {
  const description = describePostgres(uri);
  try {
    const url = new URL(uri);
    registerSecret(decodeURIComponent(url.password));
  } catch {
    // An unparsable URL is reported when connecting.
  }
  registerSecret(process.env.PGPASSWORD);
  const config: pg.ClientConfig = { connectionString: uri.replace(/^postgresql:/, 'postgres:'), connectionTimeoutMillis: CONNECT_TIMEOUT_MS, types: TEXT_TYPES };
  const state: PgState = { description, options, config, coordinator: undefined, snapshot: undefined, workers: new Set(), tables: new Map() };
  return {
    description,
    project: (): Promise<ProjectDescriptor> => listProject(state),
    openTable: (descriptor: TableDescriptor, open: OpenTableOptions): Promise<TableBody> => openTable(state, descriptor, open),
    close: (): Promise<void> => close(state),
  };
}

async function* cursorRows(
  client: Client,
  sql: string,
  params: unknown[],
  origin: string,
  release: (client: Client) => Promise<void>,
): AsyncGenerator<Row> {
  const cursor = client.query(new Cursor(sql, params, { rowMode: 'array', types: TEXT_TYPES }));
  try {
    for (;;) {
      let rows: (string | null)[][];
      try {
        rows = (await cursor.read(CURSOR_BATCH_ROWS)) as (string | null)[][];
      } catch (error) {
        throw mapPgError(error, origin);
      }
      if (rows.length === 0) return;
      yield* rows;
    }
  } finally {
    await cursor.close().catch(() => undefined);
    await release(client);
  }
}
