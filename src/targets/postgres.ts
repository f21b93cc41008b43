import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { registerSecret } from '../secrets.js';
import { describePostgres } from '../sources/postgres.js';
import { quoteIdent, type BaseType, type RestoreColumn, type RestoreTable, type TableLoad, type TableState, type Target, type TakeoutMetadata } from './target.js';

/**
 * `postgres://…`: one schema per bucket, named by the bucket id (`"in.c-main"`), one table per Keboola table
 * named by its name (`"in.c-main"."orders"`); the rest of the takeout in the `_takeout` schema.
 *
 * Data goes in through `COPY … FROM STDIN (FORMAT csv)` (postgresql.org/docs/current/sql-copy.html), fed
 * with each gunzipped slice as it streams (pg-copy-streams); the slices are headerless. One table is one
 * transaction: CREATE TABLE, one COPY per slice, the primary key added after the load (cheaper than
 * maintaining the index row by row), COMMIT. A slice that fails its checks rolls it all back (a failed COPY
 * leaves only dead tuples, reclaimed by VACUUM).
 *
 * Timestamps are `timestamptz` in a UTC session: a value without an offset is taken as UTC.
 *
 * NULLs: Keboola CSV has none. Text columns take an empty field as '' (FORCE_NOT_NULL); typed columns take
 * an empty field, quoted or not, as NULL (FORCE_NULL), as '' is no number or date.
 */

const PG_TYPES: Record<BaseType, string> = {
  STRING: 'text',
  INTEGER: 'bigint',
  NUMERIC: 'numeric',
  FLOAT: 'double precision',
  BOOLEAN: 'boolean',
  DATE: 'date',
  // With a time zone: an offset in the value (`…Z`, `+02:00`) is kept as the instant it names, not dropped.
  TIMESTAMP: 'timestamptz',
};

/** How long connecting may take before the target is said to be unreachable. */
const CONNECT_TIMEOUT_MS = 15_000;

/** PostgreSQL's identifier length (postgresql.org/docs/current/sql-syntax-lexical.html: NAMEDATALEN - 1 bytes). */
const MAX_IDENTIFIER_BYTES = 63;

/** The schema that keeps what is not table data. */
export const TAKEOUT_SCHEMA = '_takeout';

function pgType(column: RestoreColumn): string {
  if (column.type === 'NUMERIC' && column.length !== undefined) return `numeric(${column.length})`;
  return PG_TYPES[column.type];
}

function pgError(error: unknown, what: string): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const e = error as { code?: string; message?: string };
  const message = `${what}: ${e.message ?? String(error)}`;
  if (e.code === '28P01' || e.code === '28000' || e.code === '42501') return new TakeoutError('AUTH', message, { cause: error });
  if (e.code === '3D000') return new TakeoutError('NOT_FOUND', message, { cause: error, hint: 'create the database first (createdb)' });
  if (e.code === '42P07' || e.code === '42P06') return new TakeoutError('EXISTS', message, { cause: error });
  // Class 22 (data exception) and 23 (integrity constraint violation): the takeout's values do not fit.
  if (e.code?.startsWith('22') || e.code?.startsWith('23')) return new TakeoutError('INVALID_INPUT', message, { cause: error });
  if (typeof (e as { errno?: unknown }).errno === 'string' || e.code?.startsWith('E')) return toTakeoutError(error, what);
  return new TakeoutError('FAILED', message, { cause: error });
}

type Query = (sql: string, params?: unknown[]) => Promise<unknown>;

/** The _takeout schema, replaced whole in one transaction. */
async function writeMetadata(query: Query, m: TakeoutMetadata): Promise<void> {
  const s = quoteIdent(TAKEOUT_SCHEMA);
  await query('BEGIN');
  try {
    await query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await query(`CREATE SCHEMA ${s}`);
    await query(`CREATE TABLE ${s}.restore (run_id text NOT NULL, source text NOT NULL, restored_at timestamptz NOT NULL)`);
    await query(`CREATE TABLE ${s}.buckets (id text PRIMARY KEY, body jsonb NOT NULL)`);
    await query(`CREATE TABLE ${s}.tables (id text PRIMARY KEY, target text NOT NULL, body jsonb NOT NULL)`);
    await query(`CREATE TABLE ${s}.configurations (component_id text NOT NULL, configuration_id text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (component_id, configuration_id))`);
    await query(`CREATE TABLE ${s}.files (key text PRIMARY KEY, body text NOT NULL)`);
    await query(`INSERT INTO ${s}.restore VALUES ($1, $2, $3)`, [m.runId, m.source, m.restoredAt]);
    for (const b of m.buckets) await query(`INSERT INTO ${s}.buckets VALUES ($1, $2)`, [String(b.id), JSON.stringify(b)]);
    for (const t of m.tables) await query(`INSERT INTO ${s}.tables VALUES ($1, $2, $3)`, [String(t.raw.id), t.target, JSON.stringify(t.raw)]);
    for (const c of m.configurations) await query(`INSERT INTO ${s}.configurations VALUES ($1, $2, $3)`, [c.componentId, c.configurationId, JSON.stringify(c.body)]);
    for (const f of m.files) await query(`INSERT INTO ${s}.files VALUES ($1, $2)`, [f.key, f.text]);
    await query('COMMIT');
  } catch (error) {
    await query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export function createPostgresTarget(uri: string): Target {
  const description = describePostgres(uri);
  try {
    registerSecret(decodeURIComponent(new URL(uri).password));
  } catch {
    // An unparsable URL is reported when connecting.
  }
  registerSecret(process.env.PGPASSWORD);
  let client: pg.Client | undefined;
  const connect = async (): Promise<pg.Client> => {
    if (client) return client;
    const c = new pg.Client({ connectionString: uri.replace(/^postgresql:/, 'postgres:'), connectionTimeoutMillis: CONNECT_TIMEOUT_MS, options: '-c TimeZone=UTC' });
    try {
      await c.connect();
    } catch (error) {
      throw pgError(error, `connecting to ${description}`);
    }
    c.on('error', () => undefined);
    client = c;
    return c;
  };
  const locate = (table: Pick<RestoreTable, 'bucketId' | 'name'>): string => {
    // PostgreSQL cuts longer identifiers silently (NAMEDATALEN - 1): two tables could meet in one name.
    for (const name of [table.bucketId, table.name]) {
      if (Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
        throw new TakeoutError('INVALID_INPUT', `${description}: ${JSON.stringify(name)} is longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES}-byte identifiers`, { hint: 'restore it into duckdb: or sqlite:, or leave it out with --exclude' });
      }
    }
    return `${quoteIdent(table.bucketId)}.${quoteIdent(table.name)}`;
  };
  const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> => {
    const c = await connect();
    try {
      return await c.query<R>(sql, params);
    } catch (error) {
      throw pgError(error, description);
    }
  };

  return {
    description,
    locate,
    async inspect(tables) {
      const states: TableState[] = [];
      for (const t of tables) {
        const found = await query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [t.bucketId, t.name]);
        if (found.rowCount === 0) states.push({ exists: false });
        else states.push({ exists: true, rows: Number((await query<{ n: string }>(`SELECT count(*) AS n FROM ${locate(t)}`)).rows[0]?.n ?? 0) });
      }
      const meta = await query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [TAKEOUT_SCHEMA, 'restore']);
      if (meta.rowCount === 0) return { tables: states };
      const record = (await query<{ run_id: string }>(`SELECT run_id FROM ${quoteIdent(TAKEOUT_SCHEMA)}.restore LIMIT 1`)).rows[0];
      return { tables: states, ...(record ? { record: { runId: record.run_id } } : {}) };
    },
    async load(table, options): Promise<TableLoad> {
      const c = await connect();
      const name = locate(table);
      await query('BEGIN');
      try {
        if (options.create) {
          await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(table.bucketId)}`);
          await c.query(`CREATE TABLE ${name} (${table.columns.map((col) => `${quoteIdent(col.name)} ${pgType(col)}`).join(', ')})`);
        }
      } catch (error) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw pgError(error, `${description}: creating ${name}`);
      }
      const text = table.columns.filter((col) => col.type === 'STRING').map((col) => quoteIdent(col.name));
      const typed = table.columns.filter((col) => col.type !== 'STRING').map((col) => quoteIdent(col.name));
      const copyOptions = ['FORMAT csv', 'HEADER false', ...(text.length ? [`FORCE_NOT_NULL (${text.join(', ')})`] : []), ...(typed.length ? [`FORCE_NULL (${typed.join(', ')})`] : [])];
      const copySql = `COPY ${name} (${table.columns.map((col) => quoteIdent(col.name)).join(', ')}) FROM STDIN WITH (${copyOptions.join(', ')})`;
      return {
        async slice(body: Readable, origin: string): Promise<number> {
          const ingest = c.query(copyFrom(copySql));
          try {
            await pipeline(body, createGunzip(), ingest);
          } catch (error) {
            const code = (error as { code?: string }).code;
            if (code?.startsWith('Z_')) throw new TakeoutError('INTEGRITY', `${origin}: not a whole gzip file (${(error as Error).message})`, { cause: error });
            throw pgError(error, `${description}: loading ${origin} into ${name}`);
          }
          return ingest.rowCount;
        },
        async commit() {
          try {
            if (options.create && table.primaryKey.length > 0) await c.query(`ALTER TABLE ${name} ADD PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`);
            await c.query('COMMIT');
          } catch (error) {
            await c.query('ROLLBACK').catch(() => undefined);
            throw pgError(error, `${description}: committing ${name}`);
          }
        },
        async rollback() {
          await c.query('ROLLBACK').catch(() => undefined);
        },
      };
    },
    writeMetadata: (m: TakeoutMetadata) => writeMetadata(query, m),
    async close() {
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}
