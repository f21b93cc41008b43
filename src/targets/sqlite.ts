import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { sliceRows } from './rows.js';
import { cellValue, quoteIdent, type BaseType, type TableLoad, type TableState, type Target, type TakeoutMetadata } from './target.js';

/**
 * `sqlite:PATH`: one SQLite file. SQLite has no schemas, so each Keboola table becomes one table named by
 * its table id, as it is: `"in.c-main"."orders"` in PostgreSQL is `"in.c-main.orders"` here. The mapping is
 * reversible (the name is the id), cannot collide (table ids are unique in a project and start with a stage,
 * `in.`, `out.` or `sys.`), and never meets the `_takeout_*` tables that keep the rest.
 *
 * Column types are SQLite's declared types (sqlite.org/datatype3.html, "Type Affinity"): INTEGER, NUMERIC,
 * REAL, BOOLEAN, DATE, TIMESTAMP, TEXT; values are inserted as text and SQLite's affinity converts them.
 * Rows go in through one prepared INSERT in one transaction per table (better-sqlite3 is synchronous; a
 * transaction turns thousands of fsyncs into one). The primary key is declared in CREATE TABLE: SQLite cannot
 * add one later.
 */

const SQLITE_TYPES: Record<BaseType, string> = {
  STRING: 'TEXT',
  INTEGER: 'INTEGER',
  NUMERIC: 'NUMERIC',
  FLOAT: 'REAL',
  BOOLEAN: 'BOOLEAN',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
};

/** SQLite waits this long for a lock held by another connection before failing (a reader of the same file). */
const BUSY_TIMEOUT_MS = 10_000;

const METADATA_SQL = `
CREATE TABLE "_takeout_restore" (run_id TEXT NOT NULL, source TEXT NOT NULL, restored_at TEXT NOT NULL);
CREATE TABLE "_takeout_buckets" (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE "_takeout_tables" (id TEXT PRIMARY KEY, target TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE "_takeout_configurations" (component_id TEXT NOT NULL, configuration_id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (component_id, configuration_id));
CREATE TABLE "_takeout_files" (key TEXT PRIMARY KEY, body TEXT NOT NULL);
`;

function sqliteError(error: unknown, what: string): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const code = (error as { code?: string }).code ?? '';
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') return new TakeoutError('INVALID_INPUT', `${what}: ${(error as Error).message}`, { cause: error, hint: 'the takeout holds two rows with one primary key' });
  if (code === 'SQLITE_NOTADB') return new TakeoutError('USAGE', `${what}: ${(error as Error).message}`, { cause: error, hint: 'give a new file or an SQLite database' });
  if (code === 'SQLITE_CANTOPEN') return new TakeoutError('USAGE', `${what}: ${(error as Error).message}`, { cause: error, hint: 'check that the folder can be written' });
  return toTakeoutError(error, what);
}

export function createSqliteTarget(file: string): Target {
  const description = `sqlite:${file}`;
  let db: Database.Database | undefined;
  const open = async (): Promise<Database.Database> => {
    if (db) return db;
    await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    try {
      db = new Database(file);
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    } catch (error) {
      throw sqliteError(error, description);
    }
    return db;
  };
  const exists = (d: Database.Database, name: string): boolean => d.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;

  return {
    description,
    locate: (table) => quoteIdent(table.id),
    async inspect(tables) {
      // A file that is not there holds nothing; it is not created by asking (a --dry-run writes nothing).
      if (!db && !(await stat(file).then(() => true, () => false))) return { tables: tables.map(() => ({ exists: false })) };
      const d = await open();
      try {
        const states: TableState[] = tables.map((t) => {
          if (!exists(d, t.id)) return { exists: false };
          const row = d.prepare(`SELECT count(*) AS n FROM ${quoteIdent(t.id)}`).get() as { n: number };
          return { exists: true, rows: row.n };
        });
        if (!exists(d, '_takeout_restore')) return { tables: states };
        const record = d.prepare('SELECT run_id FROM "_takeout_restore"').get() as { run_id: string } | undefined;
        return { tables: states, ...(record ? { record: { runId: record.run_id } } : {}) };
      } catch (error) {
        // A file that is not a database is found by its first query, not when it is opened.
        throw sqliteError(error, description);
      }
    },
    async load(table, options): Promise<TableLoad> {
      const d = await open();
      const name = quoteIdent(table.id);
      d.exec('BEGIN IMMEDIATE');
      try {
        if (options.create) {
          const columns = table.columns.map((c) => `${quoteIdent(c.name)} ${SQLITE_TYPES[c.type]}`);
          if (table.primaryKey.length > 0) columns.push(`PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`);
          d.exec(`CREATE TABLE ${name} (${columns.join(', ')})`);
        }
      } catch (error) {
        d.exec('ROLLBACK');
        throw sqliteError(error, `${description}: creating ${name}`);
      }
      const insert = d.prepare(`INSERT INTO ${name} VALUES (${table.columns.map(() => '?').join(', ')})`);
      return {
        async slice(body: Readable, origin: string): Promise<number> {
          let rows = 0;
          for await (const batch of sliceRows(body, table.columns.length, origin)) {
            try {
              for (const row of batch) insert.run(row.map((v, i) => cellValue(v, table.columns[i]!)));
            } catch (error) {
              throw sqliteError(error, `${description}: loading ${origin} into ${name}`);
            }
            rows += batch.length;
          }
          return rows;
        },
        async commit() {
          d.exec('COMMIT');
        },
        async rollback() {
          if (d.inTransaction) d.exec('ROLLBACK');
        },
      };
    },
    async writeMetadata(m: TakeoutMetadata) {
      const d = await open();
      const write = d.transaction(() => {
        if (exists(d, '_takeout_restore')) {
          for (const t of ['_takeout_restore', '_takeout_buckets', '_takeout_tables', '_takeout_configurations', '_takeout_files']) d.exec(`DROP TABLE IF EXISTS ${quoteIdent(t)}`);
        }
        d.exec(METADATA_SQL);
        d.prepare('INSERT INTO "_takeout_restore" VALUES (?, ?, ?)').run(m.runId, m.source, m.restoredAt);
        const bucket = d.prepare('INSERT INTO "_takeout_buckets" VALUES (?, ?)');
        for (const b of m.buckets) bucket.run(String(b.id), JSON.stringify(b));
        const tableRow = d.prepare('INSERT INTO "_takeout_tables" VALUES (?, ?, ?)');
        for (const t of m.tables) tableRow.run(String(t.raw.id), t.target, JSON.stringify(t.raw));
        const config = d.prepare('INSERT INTO "_takeout_configurations" VALUES (?, ?, ?)');
        for (const c of m.configurations) config.run(c.componentId, c.configurationId, JSON.stringify(c.body));
        const fileRow = d.prepare('INSERT INTO "_takeout_files" VALUES (?, ?)');
        for (const f of m.files) fileRow.run(f.key, f.text);
      });
      try {
        write();
      } catch (error) {
        throw sqliteError(error, `${description}: writing the _takeout_* tables`);
      }
    },
    async close() {
      db?.close();
      db = undefined;
    },
  };
}
