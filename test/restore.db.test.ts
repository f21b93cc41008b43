/**
 * `takeout restore` into databases, through the built CLI: the demo project and the tricky test project taken
 * out with `takeout run`, restored into SQLite, PostgreSQL (the throwaway cluster, a fresh database per test)
 * and DuckDB, every value compared with the source CSV files (other tests: with the takeout's CSV) (row multisets; typed columns compared by value,
 * an empty value NULL there and '' in text columns); a second restore refused (exit 9) and nothing changed;
 * a takeout on S3 restored; a corrupt slice refused (exit 6) with nothing of its table left; --dry-run writes
 * nothing; --resume after a restore that died between tables ends identical.
 */
import { cp, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { cellValue, type BaseType } from '../src/targets/target.js';
import { DEMO_PROJECT, DEMO_TABLES, jsonLines, parseCsv, readTakeout, sourceRecords, removeTempFolders, runCli, sha256, startCli, tempFolder, type CliResult, type Takeout } from './helpers/cli.js';
import { demoWithBigTable, expectOk, TRICKY_FILES, trickyProject } from './helpers/projects.js';
import { s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

const pgUrl = inject('pgUrl');
const s3Endpoint = inject('s3Endpoint');
const TEXT = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

type Kind = 'sqlite' | 'postgres' | 'duckdb';

function expectCode(result: CliResult, code: number): void {
  expect(result.code, `stdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr}`).toBe(code);
}

async function pgQuery(database: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: pgUrl.replace(/\/postgres$/, `/${database}`), types: TEXT });
  await client.connect();
  try {
    await client.query("SET TIME ZONE 'UTC'");
    return await client.query({ text, rowMode: 'array' });
  } finally {
    await client.end();
  }
}

let databases = 0;
/** A fresh target of each kind: a new file, or a new PostgreSQL database. */
async function freshTarget(kind: Kind, name: string): Promise<{ arg: string; database?: string; file?: string }> {
  if (kind === 'postgres') {
    const database = `restore_${Date.now().toString(36)}_${databases++}`;
    await pgQuery('postgres', `CREATE DATABASE ${database}`);
    return { arg: pgUrl.replace(/\/postgres$/, `/${database}`), database };
  }
  const file = path.join(await tempFolder(`restore-${kind}-${name}`), `db.${kind}`);
  return { arg: `${kind}:${file}`, file };
}

/** Every row of a restored table, as the database gives it back, in a form the comparison reads. */
async function readTable(kind: Kind, target: { database?: string; file?: string }, id: string, bucketId: string, name: string): Promise<unknown[][]> {
  if (kind === 'sqlite') {
    const db = new Database(target.file!, { readonly: true });
    try {
      return db.prepare(`SELECT * FROM "${id}"`).raw().all() as unknown[][];
    } finally {
      db.close();
    }
  }
  if (kind === 'postgres') return (await pgQuery(target.database!, `SELECT * FROM "${bucketId}"."${name}"`)).rows as unknown[][];
  const instance = await DuckDBInstance.create(target.file!, { access_mode: 'READ_ONLY' });
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(`SELECT * FROM "${bucketId}"."${name}"`)).getRowsJson() as unknown[][];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A value in a comparable form for its Keboola type: the same for the CSV text and what the database gives back. */
function canonical(value: unknown, type: BaseType): string | null {
  if (value === null || value === undefined) return null;
  const text = String(value);
  switch (type) {
    case 'STRING':
      return text;
    case 'INTEGER':
      return BigInt(text).toString();
    case 'NUMERIC':
    case 'FLOAT':
      return String(Number(text));
    case 'BOOLEAN':
      return String(['true', 't', '1', 'yes'].includes(text.toLowerCase()));
    case 'DATE':
      return text.slice(0, 10);
    case 'TIMESTAMP': {
      const iso = text.replace(' ', 'T').replace(/\+00(:00)?$/, 'Z');
      return String(Date.parse(/Z$|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`));
    }
  }
}

function typesOf(takeout: Takeout, id: string): BaseType[] {
  const table = takeout.tables.find((t) => t.id === id)!;
  const meta = (table.columnMetadata ?? {}) as Record<string, { key: string; value: string }[]>;
  return table.columns.map((c) => {
    const base = (Array.isArray(meta) ? [] : meta[c] ?? []).find((m) => m.key === 'KBC.datatype.basetype')?.value;
    return (base ?? 'STRING') as BaseType;
  });
}

function multiset(rows: unknown[][]): string[] {
  return rows.map((r) => JSON.stringify(r)).sort();
}

/**
 * Every table of the takeout, in the target, holds the takeout's rows (as a multiset), typed columns compared by
 * value. With `sources` (each table's source CSV records, header first), the rows expected are the source's own:
 * what a user put in is what the database gives back, not only what the takeout holds.
 */
async function expectRestored(kind: Kind, target: { database?: string; file?: string }, takeout: Takeout, sources?: Map<string, string[][]>): Promise<void> {
  if (sources) expect(takeout.manifest.tables.map((t) => t.id).sort()).toEqual([...sources.keys()].sort());
  for (const t of takeout.manifest.tables) {
    const types = typesOf(takeout, t.id);
    const table = takeout.tables.find((x) => x.id === t.id)!;
    const source = sources?.get(t.id);
    if (source) expect(source[0], `${t.id}: source header`).toEqual(table.columns);
    const records = source ? source.slice(1) : parseCsv(await takeout.tableData(t.id));
    const expected = records.map((row) => row.map((v, i) => canonical(cellValue(v, { name: '', type: types[i]! }), types[i]!)));
    const actual = (await readTable(kind, target, t.id, table.bucket.id, table.name)).map((row) => row.map((v, i) => canonical(v, types[i]!)));
    expect(actual.length, t.id).toBe(t.rows);
    expect(actual.length, `${t.id}: rows in the source`).toBe(expected.length);
    expect(multiset(actual), `${kind} ${t.id}`).toEqual(multiset(expected));
  }
}

/** Each table's source records (header first), from the files of a project folder. */
async function sourceTables(root: string, files: Record<string, string>): Promise<Map<string, string[][]>> {
  return new Map(await Promise.all(Object.entries(files).map(async ([id, file]) => [id, await sourceRecords(path.join(root, file))] as const)));
}

/** What a target holds, to prove a refused restore changed nothing. */
async function fingerprint(kind: Kind, target: { database?: string; file?: string }): Promise<string> {
  if (kind === 'postgres') {
    const tables = await pgQuery(
      target.database!,
      `SELECT table_schema, table_name, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text
       FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
    );
    return JSON.stringify(tables.rows);
  }
  return sha256(await readFile(target.file!));
}

/** The declared types of in.c-main.orders (order_id, customer_id, ordered_at, status, amount, currency, note) per target. */
const TYPED_ORDERS: Record<Kind, string[]> = {
  sqlite: ['INTEGER', 'INTEGER', 'TIMESTAMP', 'TEXT', 'NUMERIC', 'TEXT', 'TEXT'],
  postgres: ['bigint', 'bigint', 'timestamp with time zone', 'text', 'numeric', 'text', 'text'],
  duckdb: ['BIGINT', 'BIGINT', 'TIMESTAMP', 'VARCHAR', 'DECIMAL(12,2)', 'VARCHAR', 'VARCHAR'],
};

async function columnTypes(kind: Kind, target: { database?: string; file?: string }, bucketId: string, name: string): Promise<string[]> {
  if (kind === 'sqlite') {
    const db = new Database(target.file!, { readonly: true });
    try {
      return (db.prepare(`SELECT type FROM pragma_table_info(?) ORDER BY cid`).all(`${bucketId}.${name}`) as { type: string }[]).map((r) => r.type);
    } finally {
      db.close();
    }
  }
  const sql = `SELECT data_type FROM information_schema.columns WHERE table_schema = '${bucketId}' AND table_name = '${name}' ORDER BY ordinal_position`;
  return firstColumn(kind, target, sql);
}

/** A table whose typed column has empty values, unquoted and quoted: NULL there, '' in the text column. */
async function emptiesProject(): Promise<string> {
  const root = path.join(await tempFolder('restore-empties'), 'project');
  await mkdir(path.join(root, 'in.c-n'), { recursive: true });
  await writeFile(path.join(root, 'in.c-n', 't.csv'), 'id,amount,label\n1,,\n2,"",""\n3,4.5,x\n');
  await writeFile(
    path.join(root, 'project.yaml'),
    'tables:\n  in.c-n.t:\n    primaryKey: [id]\n    columnMetadata:\n      id:\n        - {key: KBC.datatype.basetype, value: INTEGER, provider: user}\n      amount:\n        - {key: KBC.datatype.basetype, value: NUMERIC, provider: user}\n',
  );
  return root;
}

let demo: string;
let tricky: string;
let demoTakeout: Takeout;
let trickyTakeout: Takeout;
let demoSource: Map<string, string[][]>;
let trickySource: Map<string, string[][]>;

beforeAll(async () => {
  const root = await tempFolder('restore-db');
  demo = path.join(root, 'demo');
  tricky = path.join(root, 'tricky');
  const project = await trickyProject('restore-db-tricky');
  const [a, b] = await Promise.all([runCli(['run', 'demo', demo, '-q']), runCli(['run', project.root, tricky, '-q', '--slice-size', '64KB'])]);
  expectOk(a);
  expectOk(b);
  demoTakeout = await readTakeout(demo);
  trickyTakeout = await readTakeout(tricky);
  demoSource = await sourceTables(DEMO_PROJECT, DEMO_TABLES);
  trickySource = await sourceTables(project.root, TRICKY_FILES);
}, 60_000);

afterAll(removeTempFolders);

describe.each(['sqlite', 'postgres', 'duckdb'] as const)('takeout restore --to %s', (kind) => {
  it('restores the demo project with typed columns and the tricky project with every value as in its source CSV', async () => {
    const target = await freshTarget(kind, 'demo');
    const done = await runCli(['restore', demo, '--to', target.arg, '--json']);
    expectOk(done);
    const summary = jsonLines(done.stdout).find((e) => e.type === 'restore:done')?.summary as { tables: number; rows: number; configurations: number };
    expect(summary).toMatchObject({ tables: 7, rows: demoTakeout.manifest.totals.rows, configurations: 5 });
    await expectRestored(kind, target, demoTakeout, demoSource);
    expect(await columnTypes(kind, target, 'in.c-main', 'orders')).toEqual(TYPED_ORDERS[kind]);
    const other = await freshTarget(kind, 'tricky');
    expectOk(await runCli(['restore', tricky, '--to', other.arg, '-q']));
    await expectRestored(kind, other, trickyTakeout, trickySource);
  }, 60_000);

  it('refuses a second restore (exit 9) naming the first table, and changes nothing', async () => {
    const target = await freshTarget(kind, 'twice');
    expectOk(await runCli(['restore', demo, '--to', target.arg, '-q']));
    const before = await fingerprint(kind, target);
    const again = await runCli(['restore', demo, '--to', target.arg]);
    expectCode(again, 9);
    expect(again.stderr).toContain('in.c-crm.contacts');
    expect(again.stderr).toContain('already exists');
    expect(await fingerprint(kind, target)).toBe(before);
  }, 60_000);

  it("keeps an empty value as '' in a text column and NULL in a typed one", async () => {
    const takeout = path.join(await tempFolder(`restore-empties-${kind}`), 'takeout');
    expectOk(await runCli(['run', await emptiesProject(), takeout, '-q']));
    const target = await freshTarget(kind, 'empties');
    expectOk(await runCli(['restore', takeout, '--to', target.arg, '-q']));
    const rows = (await readTable(kind, target, 'in.c-n.t', 'in.c-n', 't')).map((r) => [String(r[0]), r[1] === null ? null : Number(r[1]), r[2]]);
    rows.sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(rows).toEqual([
      ['1', null, ''],
      ['2', null, ''],
      ['3', 4.5, 'x'],
    ]);
  }, 60_000);

  it('refuses a corrupt slice with exit 6: the tables before it are restored, nothing of that table is left', async () => {
    const copy = path.join(await tempFolder(`restore-corrupt-${kind}`), 'takeout');
    await cp(demo, copy, { recursive: true });
    const slice = path.join(copy, demoTakeout.manifest.tables.find((t) => t.id === 'in.c-main.orders')!.slices[0]!.key);
    const bytes = await readFile(slice);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(slice, bytes);
    const target = await freshTarget(kind, 'corrupt');
    const failed = await runCli(['restore', copy, '--to', target.arg]);
    expectCode(failed, 6);
    expect(failed.stderr).toContain('orders.part_0.csv.gz');
    const held = await tableNames(kind, target);
    expect(held).toContain('in.c-main.customers');
    expect(held).not.toContain('in.c-main.orders');
    expect(held.some((t) => t.startsWith('_takeout'))).toBe(false);
  }, 60_000);
});

/** The tables a target holds, as `bucket.table` (SQLite: its table names). */
async function tableNames(kind: Kind, target: { database?: string; file?: string }): Promise<string[]> {
  if (kind === 'sqlite') {
    const db = new Database(target.file!, { readonly: true });
    try {
      return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
    } finally {
      db.close();
    }
  }
  const sql = "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'main')";
  return firstColumn(kind, target, sql);
}

/** The first column of a query's rows, on PostgreSQL or DuckDB (read-only). */
async function firstColumn(kind: string, target: { database?: string; file?: string }, sql: string): Promise<string[]> {
  if (kind === 'postgres') return (await pgQuery(target.database!, sql)).rows.map((r) => String((r as unknown[])[0]));
  const instance = await DuckDBInstance.create(target.file!, { access_mode: 'READ_ONLY' });
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowsJson().map((r) => String(r[0]));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe('takeout restore', () => {
  it('--dry-run prints the plan and writes nothing: no database file is created', async () => {
    const file = path.join(await tempFolder('restore-dry'), 'db.sqlite');
    const plan = await runCli(['restore', demo, '--to', `sqlite:${file}`, '--dry-run', '--json']);
    expectOk(plan);
    const event = jsonLines(plan.stdout).find((e) => e.type === 'restore:plan')?.plan as { tables: { id: string; target: string; action: string }[]; rows: number };
    expect(event.tables).toHaveLength(7);
    expect(event.tables[0]).toMatchObject({ id: 'in.c-crm.contacts', target: '"in.c-crm.contacts"', action: 'create' });
    expect(event.rows).toBe(demoTakeout.manifest.totals.rows);
    await expect(stat(file)).rejects.toThrow();
  }, 60_000);

  it('--structure-only creates empty tables, then --data-only fills them; a TARGET that is none is a usage error', async () => {
    const target = await freshTarget('sqlite', 'structure');
    expectOk(await runCli(['restore', demo, '--to', target.arg, '--structure-only', '-q']));
    expect((await readTable('sqlite', target, 'in.c-main.orders', 'in.c-main', 'orders')).length).toBe(0);
    expect(await columnTypes('sqlite', target, 'in.c-main', 'orders')).toEqual(TYPED_ORDERS.sqlite);
    expectOk(await runCli(['restore', demo, '--to', target.arg, '--data-only', '-q']));
    await expectRestored('sqlite', target, demoTakeout);
    expectCode(await runCli(['restore', demo, '--to', target.arg, '--data-only']), 9);
    expectCode(await runCli(['restore', demo]), 2);
    expectCode(await runCli(['restore', demo, '--to', 'mysql://localhost/db']), 2);
  }, 60_000);

  it('a file that is not a database of that kind is refused (exit 2) and left as it was, never restored into memory', async () => {
    const folder = await tempFolder('restore-not-a-db');
    const json = path.join(folder, 'notes.json');
    await writeFile(json, '[{"a": 1}]\n');
    for (const kind of ['sqlite', 'duckdb'] as const) {
      const refused = await runCli(['restore', demo, '--to', `${kind}:${json}`]);
      expectCode(refused, 2);
      expect(refused.stderr).toMatch(kind === 'sqlite' ? /sqlite:.*notes\.json: file is not a database/ : /DuckDB reads a file of this name as data/);
      expect(await readFile(json, 'utf8')).toBe('[{"a": 1}]\n');
    }
    // DuckDB would open a new data-file name as an in-memory database: a restore there would keep nothing.
    expectCode(await runCli(['restore', demo, '--to', `duckdb:${path.join(folder, 'new.parquet')}`]), 2);
    await expect(stat(path.join(folder, 'new.parquet'))).rejects.toThrow();
  }, 60_000);

  it('restores a takeout on S3', async () => {
    const prefix = `s3://${TEST_BUCKET}/${uniquePrefix('restore-s3')}`;
    expectOk(await runCli(['run', 'demo', prefix, '-q', ...s3CliArgs(s3Endpoint)]));
    const target = await freshTarget('duckdb', 's3');
    expectOk(await runCli(['restore', prefix, '--to', target.arg, '-q', ...s3CliArgs(s3Endpoint)]));
    await expectRestored('duckdb', target, demoTakeout);
  }, 60_000);

  it('--resume after a restore that died between tables loads only what is missing and ends identical', async () => {
    const target = await freshTarget('sqlite', 'resume');
    expectOk(await runCli(['restore', demo, '--to', target.arg, '-q']));
    // As a restore killed while loading in.c-main.orders leaves it: that table rolled back, no _takeout record yet.
    const db = new Database(target.file!);
    for (const t of ['in.c-main.orders', 'out.c-reports.daily_revenue', 'sys.c-keboola.component_runs', '_takeout_restore', '_takeout_buckets', '_takeout_tables', '_takeout_configurations', '_takeout_files']) db.exec(`DROP TABLE "${t}"`);
    db.close();
    expectCode(await runCli(['restore', demo, '--to', target.arg]), 9);
    const resumed = await runCli(['restore', demo, '--to', target.arg, '--resume', '--json']);
    expectOk(resumed);
    const summary = jsonLines(resumed.stdout).find((e) => e.type === 'restore:done')?.summary as { tables: number; skipped: number; metadata: boolean };
    expect(summary).toMatchObject({ tables: 3, skipped: 4, metadata: true });
    await expectRestored('sqlite', target, demoTakeout);
    const check = new Database(target.file!, { readonly: true });
    expect((check.prepare('SELECT count(*) AS n FROM "_takeout_configurations"').get() as { n: number }).n).toBe(5);
    check.close();
  }, 60_000);

  it.each(['sqlite', 'postgres'] as const)('kill -9 while loading a table, then --resume: ends identical to an uninterrupted restore (%s)', async (kind) => {
    const big = path.join(await tempFolder(`restore-kill-${kind}`), 'takeout');
    expectOk(await runCli(['run', await demoWithBigTable(`restore-kill-${kind}`, 16), big, '-q', '--slice-size', '2MB']));
    const bigTakeout = await readTakeout(big);
    const target = await freshTarget(kind, 'kill');
    const cli = startCli(['restore', big, '--to', target.arg, '--json']);
    // Its first bytes are on their way into the table: the load is under way, most of it still to come.
    await cli.waitForStdout((out) => out.includes('"type":"table:progress","table":"in.c-big.events"'));
    cli.child.kill('SIGKILL');
    expect((await cli.done).code).toBe(128 + 9);
    // Whatever the kill left, the table being loaded is not there half-filled.
    const held = await tableNames(kind, target).catch(() => [] as string[]);
    if (held.includes('in.c-big.events')) expect((await readTable(kind, target, 'in.c-big.events', 'in.c-big', 'events')).length).toBe(bigTakeout.manifest.tables.find((t) => t.id === 'in.c-big.events')!.rows);
    const resumed = await runCli(['restore', big, '--to', target.arg, '--resume', '--json']);
    expectOk(resumed);
    const events = jsonLines(resumed.stdout);
    expect(events.find((e) => e.type === 'restore:done')?.summary).toMatchObject({ metadata: true });
    // The kill came mid-load: the resumed restore loads that table again, from its first slice.
    expect(events.some((e) => e.type === 'table:done' && e.table === 'in.c-big.events')).toBe(true);
    await expectRestored(kind, target, bigTakeout);
  }, 90_000);
});
