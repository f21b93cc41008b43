import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { loadCsvSlice, type CsvSpool } from './duckdb-csv.js';
import { quoteIdent, type BaseType, type RestoreColumn, type RestoreTable, type TableLoad, type TableState, type Target, type TakeoutMetadata } from './target.js';

/**
 * `duckdb:PATH`: one DuckDB file, one schema per bucket (`"in.c-main"."orders"`, as in PostgreSQL), the rest of
 * the takeout in the `_takeout` schema. The "keep the POC for reference" target: a single queryable file.
 *
 * Load path: DuckDB's own CSV reader, one `INSERT … SELECT … FROM read_csv(…)` per slice inside the table's
 * transaction, fed through a FIFO (`duckdb-csv.ts`), so a table is created, filled and committed (or rolled
 * back) as one. It replaced the appender fed value by value from takeout's CSV parser: parsing in JS alone
 * took about as long as DuckDB's whole load, and DataChunks filled from JS were slower still (measured on
 * 500,000 rows: parsing alone 4.9 s, DuckDB's whole load 4.1 s; bench/restore-duckdb.mjs).
 */

const DUCKDB_TYPES: Record<BaseType, string> = {
  STRING: 'VARCHAR',
  INTEGER: 'BIGINT',
  // DuckDB's DECIMAL caps at 38 digits; without a length, DOUBLE keeps any magnitude (DECIMAL defaults to (18,3)).
  NUMERIC: 'DOUBLE',
  FLOAT: 'DOUBLE',
  BOOLEAN: 'BOOLEAN',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
};

/** DuckDB's largest DECIMAL precision (duckdb.org/docs/stable/sql/data_types/numeric). */
const MAX_DECIMAL_WIDTH = 38;

function duckType(column: RestoreColumn): string {
  if (column.type === 'NUMERIC' && column.length !== undefined) {
    const [width = '18', scale = '0'] = column.length.split(',');
    if (Number(width) <= MAX_DECIMAL_WIDTH && Number(scale) <= Number(width)) return `DECIMAL(${width}, ${scale})`;
  }
  return DUCKDB_TYPES[column.type];
}

/** Names DuckDB opens as data in an in-memory database (its replacement scans: duckdb.org/docs "Data Sources"). */
const DATA_FILE_NAME = /\.(csv|tsv|txt|json|jsonl|ndjson|parquet)(\.gz|\.zst)?$/i;

function duckError(error: unknown, what: string): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const message = (error as Error).message ?? String(error);
  if (/Conversion Error|Constraint Error|Could not convert/i.test(message)) return new TakeoutError('INVALID_INPUT', `${what}: ${message}`, { cause: error });
  if (/Could not set lock|Conflicting lock/i.test(message)) return new TakeoutError('USAGE', `${what}: ${message}`, { cause: error, hint: 'is another process using the file?' });
  if (/IO Error/i.test(message)) return new TakeoutError('USAGE', `${what}: ${message}`, { cause: error, hint: 'give a new file or a DuckDB database in a folder that can be written' });
  return toTakeoutError(error, what);
}

/** The _takeout schema, replaced whole in one transaction. */
async function writeMetadata(c: DuckDBConnection, m: TakeoutMetadata, description: string): Promise<void> {
  const run = async (sql: string): Promise<void> => {
    await c.run(sql);
  };
  await run('BEGIN TRANSACTION');
  try {
    await run('DROP SCHEMA IF EXISTS "_takeout" CASCADE');
    await run('CREATE SCHEMA "_takeout"');
    await run('CREATE TABLE "_takeout".restore (run_id VARCHAR NOT NULL, source VARCHAR NOT NULL, restored_at TIMESTAMPTZ NOT NULL)');
    await run('CREATE TABLE "_takeout".buckets (id VARCHAR PRIMARY KEY, body JSON NOT NULL)');
    await run('CREATE TABLE "_takeout".tables (id VARCHAR PRIMARY KEY, target VARCHAR NOT NULL, body JSON NOT NULL)');
    await run('CREATE TABLE "_takeout".configurations (component_id VARCHAR NOT NULL, configuration_id VARCHAR NOT NULL, body JSON NOT NULL, PRIMARY KEY (component_id, configuration_id))');
    await run('CREATE TABLE "_takeout".files (key VARCHAR PRIMARY KEY, body VARCHAR NOT NULL)');
    const insert = async (tableName: string, values: (readonly string[])[]): Promise<void> => {
      if (values.length === 0) return;
      const appender = await c.createAppender(tableName, '_takeout');
      for (const row of values) {
        for (const v of row) appender.appendVarchar(v);
        appender.endRow();
      }
      appender.closeSync();
    };
    await insert('restore', [[m.runId, m.source, m.restoredAt]]);
    await insert('buckets', m.buckets.map((b) => [String(b.id), JSON.stringify(b)]));
    await insert('tables', m.tables.map((t) => [String(t.raw.id), t.target, JSON.stringify(t.raw)]));
    await insert('configurations', m.configurations.map((x) => [x.componentId, x.configurationId, JSON.stringify(x.body)]));
    await insert('files', m.files.map((f) => [f.key, f.text]));
    await run('COMMIT');
  } catch (error) {
    await run('ROLLBACK').catch(() => undefined);
    throw duckError(error, `${description}: writing the _takeout schema`);
  }
}

/** `spool`: how slices reach DuckDB's CSV reader, a FIFO (a temporary file where there is no `mkfifo`) or always a file. */
export function createDuckdbTarget(file: string, spool: CsvSpool = 'fifo'): Target {
  const description = `duckdb:${file}`;
  if (DATA_FILE_NAME.test(file)) {
    throw new TakeoutError('USAGE', `${description}: DuckDB reads a file of this name as data, not as a database (opened again, it would not be this one)`, { hint: 'give a file name such as project.duckdb' });
  }
  let instance: DuckDBInstance | undefined;
  let conn: DuckDBConnection | undefined;
  const connect = async (): Promise<DuckDBConnection> => {
    if (conn) return conn;
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    try {
      instance = await DuckDBInstance.create(file);
      conn = await instance.connect();
      // TIMESTAMP values are converted to UTC through TIMESTAMPTZ (duckdb-csv.ts), in this session's time zone.
      await conn.run("SET TimeZone = 'UTC'");
    } catch (error) {
      throw duckError(error, description);
    }
    // DuckDB opens a name ending in .csv, .json or .parquet as data in an in-memory database: a restore there
    // would end "restored" and leave nothing. The database must be the file.
    const backing = (await conn.runAndReadAll('SELECT path FROM duckdb_databases() WHERE database_name = current_database()')).getRowsJson()[0]?.[0];
    if (typeof backing !== 'string' || backing === '') {
      conn.closeSync();
      instance.closeSync();
      conn = undefined;
      instance = undefined;
      throw new TakeoutError('USAGE', `${description}: DuckDB does not open ${file} as a database file (it reads a .csv, .json or .parquet name as data)`, { hint: 'give a file name such as project.duckdb' });
    }
    return conn;
  };
  const rows = async <T>(sql: string): Promise<T[]> => {
    const c = await connect();
    try {
      return (await c.runAndReadAll(sql)).getRowObjectsJson() as T[];
    } catch (error) {
      throw duckError(error, description);
    }
  };
  const run = async (sql: string): Promise<void> => {
    const c = await connect();
    try {
      await c.run(sql);
    } catch (error) {
      throw duckError(error, description);
    }
  };
  const literal = (value: string): string => `'${value.replace(/'/g, "''")}'`;
  const tableExists = async (schema: string, name: string): Promise<boolean> =>
    (await rows(`SELECT 1 AS x FROM information_schema.tables WHERE table_schema = ${literal(schema)} AND table_name = ${literal(name)}`)).length > 0;
  const locate = (table: Pick<RestoreTable, 'bucketId' | 'name'>): string => `${quoteIdent(table.bucketId)}.${quoteIdent(table.name)}`;

  return {
    description,
    locate,
    async inspect(tables) {
      // A file that is not there holds nothing; it is not created by asking (a --dry-run writes nothing).
      if (!conn && !(await stat(file).then(() => true, () => false))) return { tables: tables.map(() => ({ exists: false })) };
      const states: TableState[] = [];
      for (const t of tables) {
        if (!(await tableExists(t.bucketId, t.name))) states.push({ exists: false });
        else states.push({ exists: true, rows: Number((await rows<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM ${locate(t)}`))[0]?.n ?? 0) });
      }
      if (!(await tableExists('_takeout', 'restore'))) return { tables: states };
      const record = (await rows<{ run_id: string }>('SELECT run_id FROM "_takeout".restore LIMIT 1'))[0];
      return { tables: states, ...(record ? { record: { runId: record.run_id } } : {}) };
    },
    async load(table, options): Promise<TableLoad> {
      const c = await connect();
      const name = locate(table);
      const types = table.columns.map(duckType);
      await run('BEGIN TRANSACTION');
      try {
        if (options.create) {
          const columns = table.columns.map((col, i) => `${quoteIdent(col.name)} ${types[i]!}`);
          if (table.primaryKey.length > 0) columns.push(`PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`);
          await c.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(table.bucketId)}`);
          await c.run(`CREATE TABLE ${name} (${columns.join(', ')})`);
        }
      } catch (error) {
        await c.run('ROLLBACK').catch(() => undefined);
        throw duckError(error, `${description}: creating ${name}`);
      }
      return {
        async slice(body: Readable, origin: string): Promise<number> {
          try {
            return await loadCsvSlice(c, table, types, name, body, origin, spool);
          } catch (error) {
            throw duckError(error, `${description}: loading ${origin} into ${name}`);
          }
        },
        async commit() {
          try {
            await c.run('COMMIT');
          } catch (error) {
            await c.run('ROLLBACK').catch(() => undefined);
            throw duckError(error, `${description}: committing ${name}`);
          }
        },
        async rollback() {
          await c.run('ROLLBACK').catch(() => undefined);
        },
      };
    },
    writeMetadata: async (m: TakeoutMetadata) => writeMetadata(await connect(), m, description),
    async close() {
      conn?.closeSync();
      instance?.closeSync();
      conn = undefined;
      instance = undefined;
    },
  };
}
