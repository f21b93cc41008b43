import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPostgresSource, describePostgres } from '../src/sources/postgres.js';
import { quoteIdent } from '../src/sources/sql.js';
import { describeSourceContract } from './source.contract.js';
import { runCli } from './helpers/cli.js';

const url = inject('pgUrl');
const TEXT = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

async function sql(database: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url.replace(/\/postgres$/, `/${database}`), types: TEXT });
  await client.connect();
  try {
    await client.query("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1");
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}

const TRICKY_ROWS = `
INSERT INTO shop.tricky (id, label, note, amount, ratio, at, day, flag, raw, tags, doc, empty_string)
VALUES
 (1, 'plain', NULL, 123456789012345678.123456789, 0.1, '2026-03-01 12:00:00+01', '2026-03-01', true, '\\x00ff10', '{a,b}', '{"k": [1, 2]}', ''),
 (2, 'quote " and, comma', E'line\\nbreak and \\r\\n crlf', -0.000000001, 1e-300, '1999-12-31 23:59:59.999999+00', '1970-01-01', false, '\\x', '{"x,y","z\\"q"}', '"str"', ''),
 (3, 'Žluťoučký kůň 🎉 東京', '', 0, 'NaN', 'infinity', '2000-02-29', NULL, NULL, '{}', 'null', NULL);`;

let database: string;

beforeAll(async () => {
  database = `shop_${Date.now().toString(36)}`;
  await sql('postgres', `CREATE DATABASE ${database}`);
  await sql(database, `
    CREATE SCHEMA shop;
    CREATE TABLE shop.tricky (id int PRIMARY KEY, label text NOT NULL, note text, amount numeric(40, 12), ratio float8,
      at timestamptz, day date, flag boolean, raw bytea, tags text[], doc jsonb, empty_string text);
    COMMENT ON TABLE shop.tricky IS 'values that break naive exporters';
    CREATE TABLE shop.orders (order_id bigint PRIMARY KEY, customer_id int, status text, updated_at timestamptz NOT NULL);
    INSERT INTO shop.orders SELECT g, g % 97, (ARRAY['new','paid','shipped'])[1 + g % 3], timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 5000) g;
    CREATE TABLE public."Odd Name" ("Column ""quoted""" text, "x;DROP TABLE y" int);
    INSERT INTO public."Odd Name" VALUES ('a', 1), ('b', 2);
    ${TRICKY_ROWS}`);
});

afterAll(async () => {
  await sql('postgres', `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

const dbUrl = (): string => url.replace(/\/postgres$/, `/${database}`);

describe('PostgreSQL helpers', () => {
  it('quotes identifiers and hides passwords', () => {
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(describePostgres('postgres://u:secret@h:5432/db?sslmode=require')).toBe('postgres://u@h:5432/db');
  });
});

describeSourceContract('postgres', async () => {
  const expected = new Map<string, { columns: string[]; records: string[][] }>();
  for (const [id, table, cols] of [
    ['in.c-shop.tricky', 'shop.tricky', ['id', 'label', 'note', 'amount', 'ratio', 'at', 'day', 'flag', 'raw', 'tags', 'doc', 'empty_string']],
    ['in.c-shop.orders', 'shop.orders', ['order_id', 'customer_id', 'status', 'updated_at']],
  ] as const) {
    const result = await sql(database, `SELECT * FROM ${table}`, []);
    expected.set(id, {
      columns: [...cols],
      records: result.rows.map((r: Record<string, string | null>) => cols.map((c) => r[c] ?? '')),
    });
  }
  return { source: createPostgresSource(dbUrl()), expected };
});

describe('takeout with a PostgreSQL source', () => {
  let out: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'takeout-pg-'));
  });
  afterAll(async () => rm(out, { recursive: true, force: true }));

  it('takes out every schema as buckets, with types, primary keys, comments and the snapshot time', async () => {
    const dest = join(out, 'run');
    const result = await runCli(['run', '--source', dbUrl(), '--dest', dest, '-q']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const tables = JSON.parse(await readFile(join(dest, 'tables.json'), 'utf8')) as Record<string, unknown>[];
    expect(tables.map((t) => t.id).sort()).toEqual(['in.c-public.Odd_Name', 'in.c-shop.orders', 'in.c-shop.tricky']);
    const tricky = tables.find((t) => t.id === 'in.c-shop.tricky')!;
    expect(tricky.primaryKey).toEqual(['id']);
    expect(JSON.stringify(tricky.metadata)).toContain('values that break naive exporters');
    expect(JSON.stringify((tricky.columnMetadata as Record<string, unknown>).amount)).toContain('numeric(40,12)');
    const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as { project: { meta: { snapshotTime: string } }; status: string };
    expect(manifest.status).toBe('complete');
    expect(manifest.project.meta.snapshotTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    const odd = gunzipSync(await readFile(join(dest, 'in/c-public/Odd_Name.part_0.csv.gz'))).toString();
    expect(parse(odd)).toEqual([['a', '1'], ['b', '2']]);
  });

  it('exports one table filtered, with values bound as parameters, merged into one file', async () => {
    const file = join(out, 'paid.csv');
    const result = await runCli([
      'table', 'export', 'shop.orders', '--source', dbUrl(), '-o', file, '-q',
      '--columns', 'order_id,status', '--where', 'status eq paid,shipped', '--where', 'customer_id lt 10',
      '--order-by', 'order_id:desc', '--limit', '5',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const want = await sql(database, "SELECT order_id, status FROM shop.orders WHERE status IN ('paid','shipped') AND customer_id < 10 ORDER BY order_id DESC LIMIT 5");
    const rows = parse(await readFile(file, 'utf8')) as string[][];
    expect(rows[0]).toEqual(['order_id', 'status']);
    expect(rows.slice(1)).toEqual(want.rows.map((r: Record<string, string>) => [r.order_id, r.status]));
  });

  it('changed-since / changed-until over a timestamp column', async () => {
    const file = join(out, 'window.csv');
    const result = await runCli([
      'table', 'export', 'in.c-shop.orders', '--source', dbUrl(), '-o', file, '-q', '--no-header',
      '--changed-column', 'updated_at', '--changed-since', '2026-01-01T01:00:00Z', '--changed-until', '2026-01-01T02:00:00Z',
    ]);
    expect(result.code).toBe(0);
    const rows = parse(await readFile(file, 'utf8')) as string[][];
    expect(rows.length).toBe(60);
    expect(rows[0]![0]).toBe('60');
  });

  it('refuses injection through --where, column and table names', async () => {
    const attempts: [string[], number, RegExp][] = [
      [['--where', "status eq x'); DROP TABLE shop.orders; --"], 0, /^$/],
      [['--where', 'status; DROP TABLE shop.orders eq x'], 2, /--where/],
      [['--columns', 'order_id,"status"; DROP TABLE shop.orders; --'], 2, /no column/],
      [['--order-by', 'order_id; DROP TABLE shop.orders'], 2, /no column/],
    ];
    for (const [flags, code, message] of attempts) {
      const result = await runCli(['table', 'export', 'shop.orders', '--source', dbUrl(), '-o', '-', '-q', ...flags]);
      expect(result.code, flags.join(' ')).toBe(code);
      expect(result.stderr).toMatch(message);
    }
    const missing = await runCli(['table', 'export', 'shop.orders"; DROP TABLE shop.orders; --', '--source', dbUrl(), '-o', '-', '-q']);
    expect(missing.code).toBe(5);
    expect((await sql(database, 'SELECT count(*) AS n FROM shop.orders')).rows[0].n).toBe('5000');
  });

  it('wrong password and missing database have their exit codes, and the password is never printed', async () => {
    const bad = dbUrl().replace('takeout@', 'nobody:CANARY-PW-9876@');
    const result = await runCli(['run', '--source', bad, '--dest', join(out, 'bad'), '--dry-run']);
    expect(result.code).not.toBe(0);
    expect(result.stderr + result.stdout).not.toContain('CANARY-PW-9876');
    const missing = await runCli(['run', '--source', url.replace(/\/postgres$/, '/no_such_db'), '--dest', join(out, 'bad2'), '--dry-run']);
    expect(missing.code).toBe(5);
  });
});
