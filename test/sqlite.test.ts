import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TakeoutError } from '../src/errors.js';
import { openSource } from '../src/sources/registry.js';
import type { Row } from '../src/model.js';
import { affinityOf, createSqliteSource, sqliteBasetype, sqlitePath, sqliteText } from '../src/sources/sqlite.js';
import { quoteIdent } from '../src/sources/sql.js';
import { describeSourceContract } from './source.contract.js';
import { jsonLines, runCli, startCli } from './helpers/cli.js';

/**
 * The SQLite source against a database built here: tricky values, a composite key, a WITHOUT ROWID
 * table, odd names; expected records are read straight from the file with better-sqlite3.
 */

const ODD_TABLE = 'odd "name" t';
const MAX = 9223372036854775807n;
const MIN = -9223372036854775808n;

let dir: string;
let dbFile: string;

/** Every value as the export must print it, written independently of the source's own conversion. */
function expectedText(value: unknown): string {
  if (value === null) return '';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return String(value);
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  return value as string;
}

function readTable(table: string, sql = `SELECT * FROM ${quoteIdent(table)}`): { columns: string[]; records: string[][] } {
  const db = new Database(dbFile, { readonly: true });
  try {
    const statement = db.prepare(sql).raw(true).safeIntegers(true);
    const columns = statement.columns().map((c) => c.name);
    const records = (statement.all() as unknown[][]).map((row) => row.map(expectedText));
    return { columns, records };
  } finally {
    db.close();
  }
}

function count(table: string, file = dbFile): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT count(*) FROM ${quoteIdent(table)}`).pluck().get() as number;
  } finally {
    db.close();
  }
}

const sha256 = async (file: string): Promise<string> => createHash('sha256').update(await readFile(file)).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'takeout-sqlite-'));
  dbFile = join(dir, 'shop.db');
  const db = new Database(dbFile);
  db.exec(`
    CREATE TABLE tricky (id INTEGER PRIMARY KEY, label TEXT NOT NULL, note TEXT, big INTEGER, ratio REAL, raw BLOB,
      anything, flag BOOLEAN, at DATETIME, amount NUMERIC(10,2), born DATE);
    CREATE TABLE pairs (a TEXT, b INTEGER, v VARCHAR(10), PRIMARY KEY (b, a));
    CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    CREATE TABLE ${quoteIdent(ODD_TABLE)} (${quoteIdent('Column "quoted"')} TEXT, ${quoteIdent('x;DROP TABLE y')} INT);
    CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INT, status TEXT, updated_at TEXT, updated_unix INTEGER);
    CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT);
    CREATE TABLE empty_table (id INTEGER PRIMARY KEY, x TEXT);
    CREATE VIEW paid AS SELECT * FROM orders WHERE status = 'paid';
    CREATE VIRTUAL TABLE notes USING fts5(body);
    INSERT INTO notes VALUES ('full text');
    INSERT INTO seq (x) VALUES ('one');
  `);
  const tricky = db.prepare('INSERT INTO tricky VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  tricky.run(1, 'plain', null, MAX, 0.1, Buffer.from([0x00, 0xff, 0x10]), 42n, 1, '2026-03-01 12:00:00', '12.50', '2026-03-01');
  tricky.run(2, 'quote " and, comma', 'line\nbreak and \r\n crlf', MIN, 0.1 + 0.2, Buffer.alloc(0), 0.5, 0, '1999-12-31T23:59:59.999Z', 0, '1970-01-01');
  tricky.run(3, 'Žluťoučký kůň 🎉 東京', '', 2n ** 53n + 1n, 1e300, null, 'text', null, null, null, null);
  tricky.run(4, '', '"', -1n, 5e-324, Buffer.from('quote " ,\n', 'utf8'), Buffer.from([1, 2]), null, null, 1e-7, null);
  tricky.run(5, ',', ' leading and trailing ', 0n, -0.000001, null, null, null, null, null, null);
  const pairs = db.prepare('INSERT INTO pairs VALUES (?, ?, ?)');
  pairs.run('x', 1, 'one');
  pairs.run('y', 1, null);
  pairs.run('x', 2, '');
  db.prepare('INSERT INTO kv VALUES (?, ?)').run('b', 'second');
  db.prepare('INSERT INTO kv VALUES (?, ?)').run('a', 1.5);
  db.prepare(`INSERT INTO ${quoteIdent(ODD_TABLE)} VALUES (?, ?)`).run('a', 1);
  db.prepare(`INSERT INTO ${quoteIdent(ODD_TABLE)} VALUES (?, ?)`).run('b', 2);
  const statuses = ['new', 'paid', 'shipped'];
  const order = db.prepare('INSERT INTO orders VALUES (?, ?, ?, ?, ?)');
  const base = Date.UTC(2026, 0, 1) / 1000;
  db.transaction(() => {
    for (let g = 1; g <= 5000; g++) {
      const at = new Date((base + g * 60) * 1000).toISOString().replace('T', ' ').replace('.000Z', '');
      order.run(g, g % 97, statuses[g % 3], at, base + g * 60);
    }
  })();
  db.close();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('SQLite helpers', () => {
  it('quotes identifiers, reads paths, maps declared types by affinity', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(sqlitePath('sqlite:./shop.db')).toBe('./shop.db');
    expect(sqlitePath('sqlite:///tmp/shop.db')).toBe('/tmp/shop.db');
    expect(() => sqlitePath('sqlite:')).toThrow(TakeoutError);
    expect(['INT', 'BIGINT', 'VARCHAR(10)', 'CLOB', 'BLOB', '', 'DOUBLE PRECISION', 'FLOAT', 'DECIMAL(10,2)', 'POINT'].map(affinityOf)).toEqual([
      'INTEGER', 'INTEGER', 'TEXT', 'TEXT', 'BLOB', 'BLOB', 'REAL', 'REAL', 'NUMERIC', 'INTEGER',
    ]);
    expect(['BOOLEAN', 'DATETIME', 'TIMESTAMP', 'DATE', 'NUMERIC', 'TEXT', 'REAL', 'INTEGER', ''].map(sqliteBasetype)).toEqual([
      'BOOLEAN', 'TIMESTAMP', 'TIMESTAMP', 'DATE', 'NUMERIC', 'STRING', 'FLOAT', 'INTEGER', 'STRING',
    ]);
    expect([null, MAX, 0.1 + 0.2, 1e300, 'x', Buffer.from([0, 255])].map(sqliteText)).toEqual([
      null, '9223372036854775807', '0.30000000000000004', '1e+300', 'x', '\\x00ff',
    ]);
  });

  it('is opened through the registry', async () => {
    const source = await openSource('sqlite:/no/such/dir/x.db');
    expect(source.description).toBe('sqlite:/no/such/dir/x.db');
    await expect(source.project()).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describeSourceContract('sqlite', async () => {
  const expected = new Map<string, { columns: string[]; records: string[][] }>();
  for (const [id, table] of [
    ['in.c-main.tricky', 'tricky'],
    ['in.c-main.pairs', 'pairs'],
    ['in.c-main.kv', 'kv'],
    ['in.c-main.odd__name__t', ODD_TABLE],
    ['in.c-main.orders', 'orders'],
    ['in.c-main.empty_table', 'empty_table'],
  ] as const) {
    expected.set(id, readTable(table));
  }
  return { source: createSqliteSource(dbFile), expected };
});

describe('the SQLite source', () => {
  it('lists tables (not views, virtual tables, their shadow tables or sqlite_*) with keys, types, counts and sizes', async () => {
    const source = createSqliteSource(dbFile);
    try {
      const project = await source.project();
      expect(project.name).toBe('shop');
      expect(project.buckets.map((b) => b.id)).toEqual(['in.c-main']);
      expect(project.tables.map((t) => t.id).sort()).toEqual(
        ['in.c-main.empty_table', 'in.c-main.kv', 'in.c-main.odd__name__t', 'in.c-main.orders', 'in.c-main.pairs', 'in.c-main.seq', 'in.c-main.tricky'],
      );
      const byName = new Map(project.tables.map((t) => [t.displayName, t]));
      expect(byName.get(ODD_TABLE)!.columns).toEqual(['Column "quoted"', 'x;DROP TABLE y']);
      expect(byName.get('pairs')!.primaryKey).toEqual(['b', 'a']);
      expect(byName.get('kv')!.primaryKey).toEqual(['k']);
      expect(byName.get('tricky')!.primaryKey).toEqual(['id']);
      expect(byName.get('orders')!.rowsCount).toBe(5000);
      expect(byName.get('orders')!.dataSizeBytes).toBeGreaterThan(100_000);
      const meta = byName.get('tricky')!.columnMetadata!;
      const value = (column: string, key: string): string | undefined => meta[column]!.find((m) => m.key === key)?.value;
      expect(value('amount', 'KBC.datatype.type')).toBe('NUMERIC(10,2)');
      expect(value('amount', 'KBC.datatype.basetype')).toBe('NUMERIC');
      expect(value('ratio', 'KBC.datatype.basetype')).toBe('FLOAT');
      expect(value('flag', 'KBC.datatype.basetype')).toBe('BOOLEAN');
      expect(value('label', 'KBC.datatype.nullable')).toBe('0');
      expect(value('note', 'KBC.datatype.nullable')).toBe('1');
      expect(value('id', 'KBC.datatype.nullable')).toBe('0');
      expect(value('anything', 'KBC.datatype.type')).toBeUndefined();
      expect(value('anything', 'KBC.datatype.basetype')).toBe('STRING');
      expect(project.meta).toMatchObject({ journalMode: 'delete' });
    } finally {
      await source.close?.();
    }
  });

  it('prints integers exactly, reals shortest, blobs as \\x hex, NULL as null', async () => {
    const source = createSqliteSource(dbFile);
    try {
      const project = await source.project();
      const body = await source.openTable(project.tables.find((t) => t.id === 'in.c-main.tricky')!, {});
      if (body.kind !== 'rows') throw new Error('expected rows');
      const rows: Row[] = [];
      for await (const row of body.rows) rows.push(row);
      expect(rows.map((r) => r[3])).toEqual(['9223372036854775807', '-9223372036854775808', '9007199254740993', '-1', '0']);
      expect(rows.map((r) => r[4])).toEqual(['0.1', '0.30000000000000004', '1e+300', '5e-324', '-0.000001']);
      expect(rows.map((r) => r[5])).toEqual(['\\x00ff10', '\\x', null, `\\x${Buffer.from('quote " ,\n').toString('hex')}`, null]);
      expect(rows.map((r) => r[6])).toEqual(['42', '0.5', 'text', '\\x0102', null]);
      expect(rows[2]![2]).toBe('');
      expect(rows[0]![2]).toBeNull();
    } finally {
      await source.close?.();
    }
  });

  it('reads one table at a time on its connection, and a close in the middle is an error, not a short table', async () => {
    const source = createSqliteSource(dbFile);
    const project = await source.project();
    const table = (id: string) => project.tables.find((t) => t.id === id)!;
    const pairs = await source.openTable(table('in.c-main.pairs'), {});
    const orders = await source.openTable(table('in.c-main.orders'), {});
    if (orders.kind !== 'rows' || pairs.kind !== 'rows') throw new Error('expected rows');
    const first = pairs.rows[Symbol.asyncIterator]();
    expect((await first.next()).value).toEqual(['x', '1', 'one']);
    // The second table waits for the first to end.
    const second = orders.rows[Symbol.asyncIterator]();
    let secondStarted = false;
    const waiting = second.next().then((r) => {
      secondStarted = true;
      return r;
    });
    await sleep(50);
    expect(secondStarted).toBe(false);
    await first.return?.();
    expect((await waiting).value).toEqual(['1', '1', 'paid', '2026-01-01 00:01:00', String(Date.UTC(2026, 0, 1) / 1000 + 60)]);
    // A close while a table is being read ends it with an error (after the rows already read), never early.
    await source.close?.();
    let read = 1;
    const drain = async (): Promise<void> => {
      for (;;) {
        if ((await second.next()).done) return;
        read++;
      }
    };
    await expect(drain()).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(read).toBeLessThan(5000);
  });

  it('refuses filters on columns the table does not have before running anything', async () => {
    const source = createSqliteSource(dbFile);
    try {
      const project = await source.project();
      const orders = project.tables.find((t) => t.id === 'in.c-main.orders')!;
      await expect(source.openTable(orders, { query: { columns: ['nope'] } })).rejects.toMatchObject({ code: 'USAGE' });
      await expect(source.openTable(orders, { query: { orderBy: [{ column: 'status; DROP TABLE orders', order: 'asc' }] } })).rejects.toThrow(/no column/);
      await expect(source.openTable(orders, { query: { changedSince: new Date() } })).rejects.toThrow(/--changed-column/);
      await expect(source.openTable(orders, { query: { where: [{ column: 'status', operator: 'gt', values: ['a', 'b'] }] } })).rejects.toThrow(/exactly one/);
    } finally {
      await source.close?.();
    }
  });
});

describe('takeout with a SQLite source', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'takeout-sqlite-out-'));
  });
  afterAll(async () => rm(out, { recursive: true, force: true }));

  it('takes out every table of the file, with types, keys and the snapshot time, read-only', async () => {
    const before = await sha256(dbFile);
    const dest = join(out, 'run');
    const result = await runCli(['run', '--source', `sqlite:${dbFile}`, '--dest', dest, '-q']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(await sha256(dbFile)).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(['shop.db']);

    const tables = JSON.parse(await readFile(join(dest, 'tables.json'), 'utf8')) as Record<string, unknown>[];
    expect(tables.map((t) => t.id).sort()).toEqual(
      ['in.c-main.empty_table', 'in.c-main.kv', 'in.c-main.odd__name__t', 'in.c-main.orders', 'in.c-main.pairs', 'in.c-main.seq', 'in.c-main.tricky'],
    );
    const tricky = tables.find((t) => t.id === 'in.c-main.tricky')!;
    expect(tricky.primaryKey).toEqual(['id']);
    expect(JSON.stringify((tricky.columnMetadata as Record<string, unknown>).amount)).toContain('NUMERIC(10,2)');
    expect(tables.find((t) => t.id === 'in.c-main.pairs')!.primaryKey).toEqual(['b', 'a']);
    const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as {
      status: string;
      source: string;
      project: { meta: { snapshotTime: string } };
      tables: { id: string; rows: number; slices: { key: string }[] }[];
    };
    expect(manifest.status).toBe('complete');
    expect(manifest.project.meta.snapshotTime).toMatch(/^\d{4}-\d\d-\d\dT/);

    for (const [id, table] of [
      ['in.c-main.tricky', 'tricky'],
      ['in.c-main.pairs', 'pairs'],
      ['in.c-main.kv', 'kv'],
      ['in.c-main.odd__name__t', ODD_TABLE],
      ['in.c-main.orders', 'orders'],
      ['in.c-main.empty_table', 'empty_table'],
    ] as const) {
      const entry = manifest.tables.find((t) => t.id === id)!;
      const listed = tables.find((t) => t.id === id)!;
      const want = readTable(table);
      expect(listed.columns).toEqual(want.columns);
      const text = Buffer.concat(await Promise.all(entry.slices.map(async (s) => gunzipSync(await readFile(join(dest, s.key)))))).toString('utf8');
      expect(text === '' ? [] : parse(text), id).toEqual(want.records);
      expect(entry.rows).toBe(want.records.length);
    }
    const raw = gunzipSync(await readFile(join(dest, 'in/c-main/tricky.part_0.csv.gz'))).toString('utf8');
    expect(raw).toContain('"line\nbreak and \r\n crlf"');
    expect(raw).toContain('"Žluťoučký kůň 🎉 東京"');
  });

  it('--dry-run lists the tables with their sizes and writes nothing', async () => {
    const dest = join(out, 'dry');
    const result = await runCli(['run', '--source', `sqlite:${dbFile}`, '--dest', dest, '--dry-run', '--json']);
    expect(result.code).toBe(0);
    const plan = jsonLines(result.stdout).find((e) => e.type === 'run:plan')!.plan as { tables: { id: string; estimatedBytes: number | null }[] };
    expect(plan.tables.find((t) => t.id === 'in.c-main.orders')!.estimatedBytes).toBeGreaterThan(100_000);
    await expect(readdir(dest)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('exports one table filtered, with values bound as parameters, merged into one file', async () => {
    const file = join(out, 'paid.csv');
    const result = await runCli([
      'table', 'export', 'main.orders', '--source', `sqlite:${dbFile}`, '-o', file, '-q',
      '--columns', 'order_id,status', '--where', 'status eq paid,shipped', '--where', 'customer_id lt 10',
      '--order-by', 'order_id:desc', '--limit', '5',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const want = readTable('orders', "SELECT order_id, status FROM orders WHERE status IN ('paid','shipped') AND customer_id < 10 ORDER BY order_id DESC LIMIT 5");
    const rows = parse(await readFile(file, 'utf8')) as string[][];
    expect(rows[0]).toEqual(['order_id', 'status']);
    expect(rows.slice(1)).toEqual(want.records);
    expect(rows.length).toBe(6);
  });

  it('--where eq/ne match values as they are exported; gt/ge/lt/le compare by the column type', async () => {
    const run = async (...flags: string[]): Promise<string[][]> => {
      const result = await runCli(['table', 'export', 'in.c-main.tricky', '--source', `sqlite:${dbFile}`, '-o', '-', '-q', '--no-header', '--columns', 'id', ...flags]);
      expect(result.stderr, flags.join(' ')).toBe('');
      expect(result.code).toBe(0);
      return parse(result.stdout) as string[][];
    };
    const ids = async (...flags: string[]): Promise<string[]> => (await run(...flags)).map((r) => r[0]!);
    expect(await ids('--where', 'big eq 9223372036854775807')).toEqual(['1']);
    expect(await ids('--where', 'big eq 9223372036854775806')).toEqual([]);
    expect(await ids('--where', 'big gt 9223372036854775806')).toEqual(['1']);
    expect(await ids('--where', 'big le -9223372036854775808')).toEqual(['2']);
    expect(await ids('--where', 'ratio eq 0.30000000000000004')).toEqual(['2']);
    expect(await ids('--where', 'ratio eq 0.3')).toEqual([]);
    expect(await ids('--where', 'raw eq \\x00ff10,\\x')).toEqual(['1', '2']);
    expect(await ids('--where', 'anything eq 42,text')).toEqual(['1', '3']);
    // A column with no declared type: numbers compare as numbers, not as text.
    expect(await ids('--where', 'anything ge 1', '--where', 'anything lt 100')).toEqual(['1']);
    expect(await ids('--where', 'label eq ["quote \\" and, comma"]')).toEqual(['2']);
    expect(await ids('--where', 'note ne [""]')).toEqual(['2', '4', '5']);
    // NULLs last ascending, first descending, as PostgreSQL sorts them.
    expect(await ids('--order-by', 'note', '--limit', '2')).toEqual(['3', '5']);
    expect(await ids('--order-by', 'note:desc', '--limit', '2')).toEqual(['1', '2']);
  });

  it('changed-since / changed-until over ISO text and unix seconds', async () => {
    for (const column of ['updated_at', 'updated_unix']) {
      const file = join(out, `window-${column}.csv`);
      const result = await runCli([
        'table', 'export', 'in.c-main.orders', '--source', `sqlite:${dbFile}`, '-o', file, '-q', '--no-header',
        '--changed-column', column, '--changed-since', '2026-01-01T01:00:00Z', '--changed-until', '2026-01-01T02:00:00Z',
      ]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const rows = parse(await readFile(file, 'utf8')) as string[][];
      expect(rows.length, column).toBe(60);
      expect(rows[0]![0]).toBe('60');
    }
    const result = await runCli([
      'table', 'export', 'in.c-main.tricky', '--source', `sqlite:${dbFile}`, '-o', '-', '-q', '--no-header', '--columns', 'id',
      '--changed-column', 'at', '--changed-since', '1999-12-31T23:59:59.999Z', '--changed-until', '2026-03-01T12:00:00.001Z',
    ]);
    expect(parse(result.stdout)).toEqual([['1'], ['2']]);
  });

  it('refuses injection through --where, column and table names, and the file does not change', async () => {
    const before = await sha256(dbFile);
    const attempts: [string[], number, RegExp][] = [
      [['--where', "status eq x'); DROP TABLE orders; --"], 0, /^$/],
      [['--where', "status gt x' OR 1=1 --"], 0, /^$/],
      [['--where', 'status; DROP TABLE orders eq x'], 2, /--where/],
      [['--where', '"status"" OR 1=1 --" eq x'], 2, /no column/],
      [['--columns', 'order_id,"status"; DROP TABLE orders; --'], 2, /no column/],
      [['--order-by', 'order_id; DROP TABLE orders'], 2, /no column/],
      [['--changed-column', 'updated_at) OR (1=1', '--changed-since', '-1d'], 2, /no column/],
    ];
    for (const [flags, code, message] of attempts) {
      const result = await runCli(['table', 'export', 'main.orders', '--source', `sqlite:${dbFile}`, '-o', '-', '-q', ...flags]);
      expect(result.code, flags.join(' ')).toBe(code);
      expect(result.stderr).toMatch(message);
      if (code === 0) expect(result.stdout).toBe('"order_id","customer_id","status","updated_at","updated_unix"\n');
    }
    const missing = await runCli(['table', 'export', 'main.orders"; DROP TABLE orders; --', '--source', `sqlite:${dbFile}`, '-o', '-', '-q']);
    expect(missing.code).toBe(5);
    expect(count('orders')).toBe(5000);
    expect(await sha256(dbFile)).toBe(before);
  });

  it('a missing file is exit 5 naming it; a file that is not SQLite, or a folder, is exit 7', async () => {
    const ghost = join(dir, 'no-such.db');
    const missing = await runCli(['run', '--source', `sqlite:${ghost}`, '--dest', join(out, 'missing'), '-q']);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toContain(ghost);
    await expect(readdir(dir)).resolves.not.toContain('no-such.db');

    const text = join(out, 'not-a-db.db');
    await writeFile(text, 'id,name\n1,not a database\n'.repeat(100));
    const bad = await runCli(['run', '--source', `sqlite:${text}`, '--dest', join(out, 'bad'), '-q']);
    expect(bad.code).toBe(7);
    expect(bad.stderr).toMatch(/not a SQLite database/);

    const folder = join(out, 'a-folder.db');
    await mkdir(folder);
    const notFile = await runCli(['table', 'export', 'x', '--source', `sqlite:${folder}`, '-o', '-', '-q']);
    expect(notFile.code).toBe(7);

    const schema = await runCli(['run', '--source', `sqlite:${dbFile}`, '--schema', 'other', '--dest', join(out, 'schema'), '--dry-run']);
    expect(schema.code).toBe(5);
  });

  it('a writer committing during the takeout (WAL) does not make tables disagree', async () => {
    const walFile = join(dir, 'live.db');
    const writer = new Database(walFile);
    writer.pragma('journal_mode = WAL');
    writer.exec('CREATE TABLE a_first (id INTEGER PRIMARY KEY, payload TEXT); CREATE TABLE b_second (id INTEGER PRIMARY KEY, payload TEXT);');
    const insertA = writer.prepare('INSERT INTO a_first (payload) VALUES (?)');
    const insertB = writer.prepare('INSERT INTO b_second (payload) VALUES (?)');
    // Every commit adds one row to each table: in any one point in time both have as many rows.
    const commit = writer.transaction((payload: string) => {
      insertA.run(payload);
      insertB.run(payload);
    });
    writer.transaction(() => {
      for (let i = 0; i < 60_000; i++) commit(`row ${i} ${'x'.repeat(40)}`);
    })();

    try {
      const dest = join(out, 'live');
      const cli = startCli(['run', '--source', `sqlite:${walFile}`, '--dest', dest, '--json', '--concurrency', '1', '--slice-size', '1MB'], { timeoutMs: 120_000 });
      let commits = 0;
      let duringRun = 0;
      let running = true;
      void cli.done.finally(() => (running = false));
      const started = cli.waitForStdout((s) => s.includes('"table:start"'), 60_000).then(() => (duringRun = commits));
      while (running) {
        commit(`late ${commits++}`);
        await sleep(1);
      }
      await started.catch(() => undefined);
      const result = await cli.done;
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as { tables: { id: string; rows: number }[] };
      const rows = new Map(manifest.tables.map((t) => [t.id, t.rows]));
      // Writes went on while tables were being read...
      expect(commits - duringRun).toBeGreaterThan(0);
      expect(count('a_first', walFile)).toBe(60_000 + commits);
      // ...and the takeout saw none of them halfway: both tables from one point in time.
      expect(rows.get('in.c-main.a_first')).toBe(rows.get('in.c-main.b_second'));
      expect(rows.get('in.c-main.a_first')).toBeLessThan(60_000 + commits);
    } finally {
      writer.close();
    }
  });
});
