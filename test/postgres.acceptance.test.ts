import { createHash, hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGunzip, gunzipSync } from 'node:zlib';
import { parse as parseStream } from 'csv-parse';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jsonLines, parseCsv, readTakeout, removeTempFolders, runCli, startCli, tempFolder } from './helpers/cli.js';

/**
 * Acceptance tests of the PostgreSQL source, end to end through the built CLI (`npm run build` first):
 * tricky values round-trip exactly as PostgreSQL prints them, a 5-million-row table round-trips, a
 * writer committing during a parallel takeout changes nothing in it, and injection attempts through
 * --where, --columns, --order-by, table and schema names fail safely. Each block has its own database.
 */

const url = inject('pgUrl');
/** Every value as the text PostgreSQL prints: no type parsing in the test either. */
const TEXT = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
/** The session the source sets; the expected values are read in the same one. */
const SESSION = "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1";
const tag = `${Date.now().toString(36)}_${process.pid}`;
const databases: string[] = [];

const dbUrl = (database: string): string => url.replace(/\/postgres$/, `/${database}`);

async function connect(database: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: dbUrl(database), types: TEXT });
  await client.connect();
  await client.query(SESSION);
  return client;
}

async function withDb<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(database);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function sql(database: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  return withDb(database, (client) => client.query(text, params));
}

async function createDatabase(name: string): Promise<string> {
  const database = `acc_${name}_${tag}`;
  await sql('postgres', `CREATE DATABASE ${database}`);
  databases.push(database);
  return database;
}

afterAll(async () => {
  for (const database of databases) await sql('postgres', `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await removeTempFolders();
});

/** `SELECT * FROM table` as column names and rows of text (NULL as null). */
async function selectAll(client: pg.Client, table: string): Promise<{ columns: string[]; rows: (string | null)[][] }> {
  const result = await client.query<(string | null)[]>({ text: `SELECT * FROM ${table}`, rowMode: 'array' });
  return { columns: result.fields.map((f) => f.name), rows: result.rows };
}

const byId = (a: readonly (string | null)[], b: readonly (string | null)[]): number => Number(a[0]) - Number(b[0]);

// -------------------------------------------------------------------------------------------------
// Tricky values

/** One table per family of values; the first column is always `id`. Rows are inserted with bound parameters. */
interface Family {
  table: string;
  /** Column definitions, or with `create` the whole statement(s). */
  ddl: string;
  create?: string;
  /** The columns `rows` fill, when not all. */
  columns?: string;
  rows: unknown[][];
}

const TEXTS = [
  'plain',
  'double " quote and ""two""',
  "single ' quote",
  'comma, separated',
  'line\nfeed',
  'carriage\rreturn',
  'crlf\r\nline',
  '\r\n',
  '\n',
  '\r',
  'trailing newline\n',
  '\nleading newline',
  'tab\there\t',
  'back\\slash \\\\ two',
  '\\N',
  '\\.',
  'copy end marker\n\\.\nafter it',
  '"',
  '""',
  ',',
  '"quoted"',
  ' padded ',
  '   ',
  'Žluťoučký kůň úpěl ďábelské ódy',
  '東京 日本語 中文',
  'Ελληνικά Русский',
  'עברית RTL العربية',
  'emoji 🎉👩‍👩‍👧‍👦 flag 🇨🇿 astral 𝕏',
  'combining e\u0301 vs \u00e9',
  '\u2028 line and paragraph separators \u2029',
  'zero\u200bwidth\u200djoiner',
  '\ufeffBOM at the start',
  'bell\u0007 escape \u001b[31mred\u001b[0m del\u007f',
  'NULL',
  'null',
  '{"looks": "like json"}',
];

/** Long values with quotes and line breaks, so that records straddle the 64 KB slice boundaries. */
const LONG = Array.from({ length: 32 }, (_, i) =>
  Array.from({ length: 400 }, (_, j) => `${createHash('md5').update(`${i}:${j}`).digest('hex')}${j % 7 === 0 ? ' "q", ' : ''}${j % 11 === 0 ? '\r\n' : ''}`).join(
    i % 2 === 0 ? '\n' : ' ',
  ),
);

const FAMILIES: Family[] = [
  {
    table: 'text_values',
    ddl: 'id int PRIMARY KEY, v text, vc varchar(64), ch char(6)',
    rows: [
      ...TEXTS.map((t, i) => [i + 1, t, t.slice(0, 64), 'ab']),
      [100, '', '', ''],
      [101, null, null, null],
      ...LONG.map((t, i) => [200 + i, t, null, 'x"y']),
    ],
  },
  {
    table: 'empties',
    ddl: 'id int PRIMARY KEY, a text, b text',
    rows: [
      [1, null, ''],
      [2, '', null],
      [3, null, null],
      [4, '', ''],
    ],
  },
  {
    table: 'numbers',
    ddl: 'id int PRIMARY KEY, fixed numeric(60,30), free numeric, i2 smallint, i4 int, i8 bigint, m money',
    rows: [
      [1, '999999999999999999999999999999.999999999999999999999999999999', '1e1000', '-32768', '-2147483648', '-9223372036854775808', '-92233720368547758.08'],
      [2, '-0.000000000000000000000000000001', '1e-1000', '32767', '2147483647', '9223372036854775807', '92233720368547758.07'],
      [3, '0', 'NaN', '0', '0', '0', '0'],
      [4, '123456789012345678901234567890.123456789012345678901234567890', 'Infinity', null, null, null, '12.345'],
      [5, '-1.5', '-Infinity', '1', '-1', '1', '-0.01'],
      [6, null, '-0', null, null, null, null],
      [7, '0.1', '0.10', '7', '7', '7', '1234567.89'],
      [8, '3.141592653589793238462643383279', '12345678901234567890123456789012345678901234567890.000000000000000000001', '-7', '-7', '-7', null],
    ],
  },
  {
    table: 'floats',
    ddl: 'id int PRIMARY KEY, f4 real, f8 double precision',
    rows: [
      [1, 'NaN', 'NaN'],
      [2, 'Infinity', 'Infinity'],
      [3, '-Infinity', '-Infinity'],
      [4, '-0', '-0'],
      [5, '0', '0'],
      [6, '1.4e-45', '5e-324'],
      [7, '1.17549435e-38', '2.2250738585072014e-308'],
      [8, '3.4028235e38', '1.7976931348623157e308'],
      [9, '0.1', '0.1'],
      [10, '0.3', '0.30000000000000004'],
      [11, '-123.456', '1e100'],
      [12, null, null],
      [13, '16777217', '9007199254740993'],
      [14, '3.3333333', '0.3333333333333333'],
    ],
  },
  {
    table: 'times',
    ddl: 'id int PRIMARY KEY, tz timestamptz, ts timestamp, d date, t time, ttz timetz, iv interval',
    rows: [
      [1, '2026-03-29 02:30:00 Europe/Prague', '2026-03-29 02:30:00', '2000-02-29', '00:00:00', '12:00:00+05:30', '1 year 2 months 3 days 04:05:06.789'],
      [2, '2026-10-25 02:30:00 Europe/Prague', '2026-10-25 02:30:00.5', '1970-01-01', '23:59:59.999999', '23:59:59.999999+14', '-1 day +02:00:00'],
      [3, '2000-01-01 00:00:00+05:45', '2000-01-01 00:00:00', '0001-01-01 BC', '24:00:00', '00:00:00-15:59', '178000000 years'],
      [4, '2024-02-29 23:59:59.999999-12', '2024-02-29 23:59:59.999999', '4713-01-01 BC', '12:34:56.789', '00:00:00+00', '-178000000 years'],
      [5, '1900-01-01 00:00:00 America/New_York', '1900-01-01 00:00:00', '5874897-12-31', '00:00:00.000001', '01:02:03-07', '00:00:00.000001'],
      [6, '0044-03-15 12:00:00+00 BC', '0044-03-15 12:00:00 BC', 'infinity', null, null, '1 mon -1 days'],
      [7, '4713-01-01 00:00:00+00 BC', '4713-01-01 00:00:00 BC', '-infinity', null, null, '0'],
      [8, '294276-12-31 23:59:59.999999+00', '294276-12-31 23:59:59.999999', null, null, null, '-00:00:00.000001'],
      [9, 'infinity', 'infinity', null, null, null, '1 year -1 mon 1 day -1 sec'],
      [10, '-infinity', '-infinity', null, null, null, '1000 days 100:00:00'],
      [11, 'epoch', 'epoch', null, null, null, null],
      [12, '2026-06-15 12:00:00 Asia/Kathmandu', '2026-06-15 12:00:00', '2026-06-15', '12:00', '12:00:00-03:30', '@ 1 minute ago'],
      [13, '1847-01-01 00:00:00 Europe/London', '1847-01-01 00:00:00', '1847-01-01', null, null, null],
      [14, null, null, null, null, null, null],
    ],
  },
  {
    table: 'binary',
    ddl: 'id int PRIMARY KEY, b bytea',
    rows: [
      [1, Buffer.alloc(0)],
      [2, null],
      [3, Buffer.from([0])],
      [4, Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
      [5, Buffer.from('"quoted", comma\r\n\\ backslash', 'utf8')],
      [6, createHash('sha512').update('seed').digest()],
    ],
  },
  {
    table: 'arrays',
    ddl: 'id int PRIMARY KEY, ai int[], at text[], aj jsonb[], atz timestamptz[], an numeric[], ab bytea[]',
    rows: [
      [1, '{1,NULL,3}', ['a,b', 'c"d', 'NULL', null, '', '  sp  ', 'back\\slash', 'line\nbreak', 'say "hi", it\'s {braces}'], ['{"a": "b \\"q\\""}', null], ['2026-01-01 00:00:00+02', 'infinity', null], ['NaN', '1e-20', null], ['\\x00ff', null]],
      [2, '{}', [], [], [], [], []],
      [3, '{{1,2},{3,4}}', [['x', 'y'], ['"z"', null]], null, null, null, null],
      [4, '[0:2]={7,8,9}', ['{', '}', '\\', '"', ','], ['[]', '{}', 'null'], ['0044-03-15 12:00:00+00 BC'], ['Infinity'], []],
      [5, '{NULL}', [null], [null], [null], [null], [null]],
      [6, null, null, null, null, null, null],
    ],
  },
  {
    table: 'json_values',
    ddl: 'id int PRIMARY KEY, j json, jb jsonb',
    rows: [
      [1, '{"b":1,   "a":  [1,2,{"c":"d"}]}', '{"b":1,   "a":  [1,2,{"c":"d"}]}'],
      [2, '{"dup":1,"dup":2}', '{"dup":1,"dup":2}'],
      [3, '"\\u00e9 \\ud83d\\ude00 \\u0041"', '"\\u00e9 \\ud83d\\ude00 \\u0041"'],
      [4, '"\\u0000 kept as text by json"', '"no NUL in jsonb"'],
      [5, '{\n  "pretty": true,\r\n  "tab":\t1\n}', '{\n  "pretty": true,\r\n  "tab":\t1\n}'],
      [6, 'null', 'null'],
      [7, '1e400', '1e400'],
      [8, '{"quote":"\\" inside, comma","backslash":"\\\\"}', '{"quote":"\\" inside, comma","backslash":"\\\\"}'],
      [9, '[]', '{}'],
      [10, '[1,"2",null,true,1.000]', '[1,"2",null,true,1.000]'],
      [11, '{"nested":{"k":["a,b","c\\"d",{"e":"Žluť 🎉"}]}}', '{"nested":{"k":["a,b","c\\"d",{"e":"Žluť 🎉"}]}}'],
      [12, null, null],
    ],
  },
  {
    table: 'misc',
    ddl: `id int PRIMARY KEY, u uuid, b boolean, ip inet, net cidr, mac macaddr, r int4range, tr tstzrange, p point, bits varbit,
          x xml, m tricky.mood, c tricky.pair, dm tricky.short_text, tv tsvector, gone text,
          doubled int GENERATED ALWAYS AS (id * 2) STORED`,
    columns: 'id, u, b, ip, net, mac, r, tr, p, bits, x, m, c, dm, tv',
    rows: [
      [1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '[1,10)', '[2026-01-01 00:00+01,2026-02-01 00:00+01)', '(1.5,-2)', '1010', '<a b="c">d &amp; e</a>', 'happy', '("a ""b"", c",1)', 'short', "a fat cat sat on a mat 'it''s'"],
      [2, '00000000-0000-0000-0000-000000000000', false, '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'empty', '(,)', '(0,0)', '', '<![CDATA[ "x", y ]]>', 'sad', '(,)', '', ''],
      [3, null, null, null, null, null, null, null, null, null, null, null, null, null, null],
    ],
  },
  {
    table: 'measurements',
    ddl: '',
    create: `CREATE TABLE tricky.measurements (id int, at date, v text) PARTITION BY RANGE (at);
             CREATE TABLE tricky.measurements_2025 PARTITION OF tricky.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
             CREATE TABLE tricky.measurements_2026 PARTITION OF tricky.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');`,
    rows: [
      [1, '2025-06-01', 'in the 2025 partition'],
      [2, '2026-06-01', 'in the 2026 partition'],
      [3, '2026-12-31', 'last day'],
    ],
  },
];

describe('tricky values round-trip', () => {
  let database: string;
  let dest: string;

  beforeAll(async () => {
    database = await createDatabase('tricky');
    await withDb(database, async (client) => {
      await client.query(`
        CREATE SCHEMA tricky;
        CREATE TYPE tricky.mood AS ENUM ('happy', 'sad', 'it''s "complicated"');
        CREATE TYPE tricky.pair AS (label text, n int);
        CREATE DOMAIN tricky.short_text AS text CHECK (length(VALUE) < 10);`);
      for (const family of FAMILIES) {
        await client.query(family.create ?? `CREATE TABLE tricky.${family.table} (${family.ddl})`);
        for (const row of family.rows) {
          const marks = row.map((_, i) => `$${i + 1}`).join(', ');
          await client.query(`INSERT INTO tricky.${family.table} ${family.columns ? `(${family.columns})` : ''} VALUES (${marks})`, row);
        }
      }
      await client.query(`
        ALTER TABLE tricky.misc DROP COLUMN gone;
        INSERT INTO tricky.times (id, tz) VALUES (15, now());
        INSERT INTO tricky.text_values (id, v) VALUES (300, repeat('x', 200000));`);
    });
    dest = join(await tempFolder('pg-tricky'), 'takeout');
    const result = await runCli(['run', '--source', dbUrl(database), '--schema', 'tricky', '--dest', dest, '--slice-size', '64KB', '-q']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('lists exactly the tables (a partitioned table once, not its partitions) with the columns PostgreSQL returns', async () => {
    const takeout = await readTakeout(dest);
    expect(takeout.manifest.status).toBe('complete');
    expect(takeout.tables.map((t) => t.id).sort()).toEqual(FAMILIES.map((f) => `in.c-tricky.${f.table}`).sort());
    await withDb(database, async (client) => {
      for (const table of takeout.tables) {
        const { columns } = await selectAll(client, `tricky.${table.name}`);
        expect(table.columns, table.id).toEqual(columns);
        expect((await takeout.sliceManifest(table.id)).schema?.elements.map((e) => e.name)).toEqual(columns);
      }
    });
    // Column metadata says which columns may hold NULL, and their PostgreSQL types.
    const meta = takeout.tables.find((t) => t.name === 'numbers')!.columnMetadata as Record<string, { key: string; value: string }[]>;
    const value = (column: string, key: string): string | undefined => meta[column]?.find((m) => m.key === key)?.value;
    expect(value('id', 'KBC.datatype.nullable')).toBe('0');
    expect(value('fixed', 'KBC.datatype.nullable')).toBe('1');
    expect(value('fixed', 'KBC.datatype.type')).toBe('numeric(60,30)');
    expect(value('fixed', 'KBC.datatype.basetype')).toBe('NUMERIC');
    expect(value('i8', 'KBC.datatype.basetype')).toBe('INTEGER');
    expect(takeout.tables.find((t) => t.name === 'misc')!.columns).toEqual(['id', 'u', 'b', 'ip', 'net', 'mac', 'r', 'tr', 'p', 'bits', 'x', 'm', 'c', 'dm', 'tv', 'doubled']);
  });

  it.each(FAMILIES.map((f) => f.table))('%s: the parts parse to the values SELECT * returns', async (name) => {
    const takeout = await readTakeout(dest);
    const id = `in.c-tricky.${name}`;
    const entry = takeout.manifest.tables.find((t) => t.id === id)!;
    const { rows } = await withDb(database, (client) => selectAll(client, `tricky.${name}`));
    const expected = rows.map((row) => row.map((v) => v ?? '')).sort(byId);
    // Every part holds whole records: it parses alone, to the row count its manifest entry gives.
    const records: string[][] = [];
    for (const slice of entry.slices) {
      const part = parseCsv(gunzipSync(await takeout.store.get(slice.key)));
      expect(part.length, slice.key).toBe(slice.rows);
      records.push(...part);
    }
    expect(records.length).toBe(rows.length);
    expect(entry.rows).toBe(rows.length);
    expect(records.sort(byId)).toEqual(expected);
  });

  it('cuts the long text table into several 64 KB parts', async () => {
    const takeout = await readTakeout(dest);
    const entry = takeout.manifest.tables.find((t) => t.id === 'in.c-tricky.text_values')!;
    expect(entry.slices.length).toBeGreaterThan(2);
  });

  it('writes NULL as an empty unquoted field and the empty string as ""', async () => {
    const takeout = await readTakeout(dest);
    const raw = (await takeout.tableData('in.c-tricky.empties')).toString('utf8');
    expect(raw.split('\n').filter(Boolean).sort()).toEqual(['"1",,""', '"2","",', '"3",,', '"4","",""']);
    const text = (await takeout.tableData('in.c-tricky.text_values')).toString('utf8');
    // char(6) pads '' to six spaces.
    expect(text).toContain('\n"100","","","      "\n');
    expect(text).toContain('\n"101",,,\n');
  });
});

// -------------------------------------------------------------------------------------------------
// 5 million rows

describe('a table with 5 million rows', () => {
  const ROWS = 5_000_000;
  let database: string;

  beforeAll(async () => {
    database = await createDatabase('big');
    await sql(
      database,
      `CREATE SCHEMA big;
       CREATE TABLE big.five_million (id bigint NOT NULL, label text, amount numeric(14,4) NOT NULL, at timestamptz NOT NULL, flag boolean NOT NULL);
       INSERT INTO big.five_million
       SELECT g,
              CASE WHEN g % 1000 = 0 THEN E'quote " comma, newline\\n and crlf\\r\\n ' || g
                   WHEN g % 777 = 0 THEN NULL
                   WHEN g % 555 = 0 THEN ''
                   ELSE 'row ' || g || ' Žluť' END,
              (g % 1000003) / 7.0 - 50000,
              timestamptz '2020-01-01 00:00:00+00' + g * interval '1.001 seconds',
              g % 2 = 0
         FROM generate_series(1, ${ROWS}) g;
       ANALYZE big.five_million;`,
    );
  }, 120_000);

  it('5M rows: count, sum(id), sum(length(label)) and a per-row hash of the parts match PostgreSQL', async () => {
    const dest = join(await tempFolder('pg-big'), 'takeout');
    const result = await runCli(['run', '--source', dbUrl(database), '--schema', 'big', '--dest', dest, '--slice-size', '16MB', '-q'], { timeoutMs: 120_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // PostgreSQL computes its side while this process parses the parts. The per-row hash joins the values
    // as the parts hold them (NULL label as ''); concat_ws prints each value with its type's output
    // function, as COPY does. Summed, so the order of the rows does not matter.
    const checksums = sql(
      database,
      `SELECT count(*)::text AS n, sum(id)::text AS ids, sum(length(coalesce(label, '')))::text AS chars,
              sum(('x' || substr(md5(concat_ws(E'\\x1f', id, coalesce(label, ''), amount, at, flag)), 1, 8))::bit(32)::bigint)::text AS hash
         FROM big.five_million`,
    );
    checksums.catch(() => undefined);
    const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as {
      tables: { id: string; rows: number; slices: { key: string; rows: number }[] }[];
    };
    const table = manifest.tables.find((t) => t.id === 'in.c-big.five_million')!;
    expect(table.rows).toBe(ROWS);
    expect(table.slices.length).toBeGreaterThan(1);

    // Sums stay exact: ids and chars below 2^53 for 5M rows; the hash sum is folded into a BigInt every million rows.
    let n = 0;
    let ids = 0;
    let chars = 0;
    let hashes = 0;
    let hashSum = 0n;
    let misshapen = 0;
    for (const slice of table.slices) {
      // Streamed, with data events (the fastest way through csv-parse).
      const rows = await new Promise<number>((resolve, reject) => {
        let count = 0;
        const parser = parseStream({ record_delimiter: '\n' });
        parser.on('data', (record: string[]) => {
          if (record.length !== 5) misshapen++;
          count++;
          ids += Number(record[0]);
          chars += record[1]!.length;
          hashes += parseInt(hash('md5', record.join('\x1f')).slice(0, 8), 16);
          if (++n % 1_000_000 === 0) {
            hashSum += BigInt(hashes);
            hashes = 0;
          }
        });
        parser.once('end', () => resolve(count));
        parser.once('error', reject);
        const input = createReadStream(join(dest, slice.key)).pipe(createGunzip());
        input.once('error', reject);
        input.pipe(parser);
      });
      expect(rows, slice.key).toBe(slice.rows);
    }
    hashSum += BigInt(hashes);
    const want = (await checksums).rows[0] as { n: string; ids: string; chars: string; hash: string };
    expect(want.n).toBe(String(ROWS));
    expect(n).toBe(ROWS);
    expect(String(ids)).toBe(want.ids);
    expect(String(chars)).toBe(want.chars);
    expect(misshapen).toBe(0);
    expect(hashSum.toString()).toBe(want.hash);
  }, 180_000);
});

// -------------------------------------------------------------------------------------------------
// A concurrent writer

describe('a writer committing during a parallel takeout', () => {
  const TABLES = ['t1', 't2', 't3', 't4', 't5', 't6'];
  const ROWS = 60_000;
  let database: string;

  beforeAll(async () => {
    database = await createDatabase('live');
  });

  async function createTables(schema: string): Promise<void> {
    await sql(
      database,
      `CREATE SCHEMA ${schema};` +
        TABLES.map(
          (t) => `CREATE TABLE ${schema}.${t} (id int PRIMARY KEY, label text NOT NULL, payload text NOT NULL);
                  INSERT INTO ${schema}.${t} SELECT g, 'original', md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) FROM generate_series(1, ${ROWS}) g;`,
        ).join('\n'),
    );
  }

  /**
   * Runs `takeout run --schema <schema> --json`, stops the process (SIGSTOP) at its first `table:done`,
   * runs `change` in one committed transaction, resumes it, and returns the takeout with the events
   * that came after the commit.
   */
  async function takeoutWhile(schema: string, concurrency: number, change: (client: pg.Client) => Promise<void>) {
    const dest = join(await tempFolder(`pg-${schema}`), 'takeout');
    const cli = startCli(['run', '--source', dbUrl(database), '--schema', schema, '--dest', dest, '--json', '--concurrency', String(concurrency)]);
    let afterCommit: number;
    try {
      await cli.waitForStdout((out) => out.includes('"type":"table:done"'));
      cli.child.kill('SIGSTOP');
      // Let what the process wrote before it stopped arrive, so later events are really later.
      await new Promise((resolve) => setTimeout(resolve, 300));
      afterCommit = cli.stdout.length;
      await withDb(database, async (client) => {
        await client.query('BEGIN');
        await change(client);
        await client.query('COMMIT');
      });
    } finally {
      cli.child.kill('SIGCONT');
    }
    const result = await cli.done;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const later = jsonLines(result.stdout.slice(afterCommit));
    return { takeout: await readTakeout(dest), later };
  }

  async function partRecords(takeout: Awaited<ReturnType<typeof readTakeout>>, id: string): Promise<{ text: string; records: string[][] }> {
    const text = (await takeout.tableData(id)).toString('utf8');
    return { text, records: parseCsv(text) };
  }

  it('rows inserted after the snapshot are absent from every table, started or not', async () => {
    await createTables('live_insert');
    const { takeout, later } = await takeoutWhile('live_insert', 2, async (client) => {
      for (const t of TABLES) {
        await client.query(`INSERT INTO live_insert.${t} SELECT g, 'MARKER-inserted-after-snapshot', 'x' FROM generate_series(${ROWS + 1}, ${ROWS + 1000}) g`);
      }
    });
    // The test means something only if some tables started after the commit.
    expect(later.filter((e) => e.type === 'table:start').length).toBeGreaterThanOrEqual(2);
    expect(takeout.manifest.status).toBe('complete');
    for (const t of TABLES) {
      const id = `in.c-live_insert.${t}`;
      expect(takeout.manifest.tables.find((x) => x.id === id)!.rows, id).toBe(ROWS);
      const { text, records } = await partRecords(takeout, id);
      expect(text).not.toContain('MARKER');
      expect(records.length).toBe(ROWS);
      expect(Math.max(...records.map((r) => Number(r[0])))).toBe(ROWS);
    }
    // The writer did commit: the database has the rows the takeout left out.
    expect((await sql(database, 'SELECT count(*)::int AS n FROM live_insert.t6')).rows[0].n).toBe(String(ROWS + 1000));
  });

  it('rows deleted or updated after the snapshot are exported as they were', async () => {
    await createTables('live_change');
    const sumIds = String((ROWS * (ROWS + 1)) / 2);
    const { takeout, later } = await takeoutWhile('live_change', 1, async (client) => {
      for (const t of TABLES) {
        await client.query(`DELETE FROM live_change.${t} WHERE id % 2 = 0`);
        await client.query(`UPDATE live_change.${t} SET label = 'UPDATED-after-snapshot', payload = 'changed' WHERE id % 3 = 0`);
        await client.query(`INSERT INTO live_change.${t} VALUES (${ROWS + 1}, 'MARKER-inserted-after-snapshot', 'x')`);
      }
    });
    expect(later.filter((e) => e.type === 'table:start').length).toBeGreaterThanOrEqual(3);
    expect(takeout.manifest.status).toBe('complete');
    for (const t of TABLES) {
      const id = `in.c-live_change.${t}`;
      expect(takeout.manifest.tables.find((x) => x.id === id)!.rows, id).toBe(ROWS);
      const { text, records } = await partRecords(takeout, id);
      expect(text).not.toContain('UPDATED');
      expect(text).not.toContain('MARKER');
      expect(text).not.toContain('changed');
      expect(String(records.reduce((n, r) => n + Number(r[0]), 0))).toBe(sumIds);
      expect(records.every((r) => r[1] === 'original')).toBe(true);
    }
    expect((await sql(database, 'SELECT count(*)::int AS n FROM live_change.t6')).rows[0].n).toBe(String(ROWS / 2 + 1));
  });

  // TRUNCATE is not MVCC-safe: the source holds ACCESS SHARE locks on every table for the whole takeout
  // (as pg_dump does) and its workers lock NOWAIT, so a table truncated mid-run is taken out whole or
  // reported failed; never `complete` with rows missing. The writer gives up after 2 s, so it cannot hang.
  it('a table truncated after the snapshot is taken out whole or fails, never empty', async () => {
    await createTables('live_truncate');
    const dest = join(await tempFolder('pg-live_truncate'), 'takeout');
    const cli = startCli(['run', '--source', dbUrl(database), '--schema', 'live_truncate', '--dest', dest, '--json', '--concurrency', '1']);
    const writer = await connect(database);
    await writer.query("SET lock_timeout = '2s'");
    let truncating: Promise<unknown> | undefined;
    try {
      await cli.waitForStdout((out) => out.includes('"type":"table:done"'));
      cli.child.kill('SIGSTOP');
      // Unlocked, the TRUNCATE commits at once; locked, it waits (for at most its lock_timeout).
      truncating = writer.query('TRUNCATE live_truncate.t6');
      truncating.catch(() => undefined);
      await Promise.race([truncating, new Promise((resolve) => setTimeout(resolve, 500))]);
    } finally {
      cli.child.kill('SIGCONT');
    }
    const result = await cli.done;
    await truncating?.catch(() => undefined);
    await writer.end();
    const takeout = await readTakeout(dest);
    const t6 = takeout.manifest.tables.find((x) => x.id === 'in.c-live_truncate.t6')!;
    if (t6.status === 'complete') expect(t6.rows).toBe(ROWS);
    else expect(result.code).toBe(3);
  });
});

// -------------------------------------------------------------------------------------------------
// Injection

describe('injection attempts fail safely', () => {
  let database: string;

  /** Values that would change the statement if they were pasted into SQL; each is one row's label. */
  const VALUES = [
    "x'); DROP TABLE inj.items; --",
    '$1',
    '$1; DROP TABLE inj.items',
    "back\\slash \\' \\\\",
    "'; SELECT pg_sleep(5); --",
    '" OR ""="',
    "' OR '1'='1",
    '%',
    '_',
    'NULL',
    "E'\\x41'",
    '$$ dollar $$',
    '1; COMMIT; DROP TABLE inj.items',
    '*/ /*',
    'a,b',
    '[not json',
    ' padded ',
    '',
  ];

  beforeAll(async () => {
    database = await createDatabase('inj');
    await withDb(database, async (client) => {
      await client.query(`
        CREATE SCHEMA inj;
        CREATE TABLE inj.items (id int PRIMARY KEY, label text, "we""ird" text, "a;b" int);
        CREATE TABLE inj."items; DROP TABLE items; --" (id int, "x"" OR 1=1 --" text);
        INSERT INTO inj."items; DROP TABLE items; --" VALUES (1, 'still here');
        CREATE TABLE public.canary (id int);
        INSERT INTO public.canary VALUES (1);`);
      for (const [i, value] of VALUES.entries()) {
        await client.query('INSERT INTO inj.items VALUES ($1, $2, $3, $4)', [i + 1, value, `weird ${i + 1}`, 100 - i]);
      }
      await client.query('INSERT INTO inj.items VALUES ($1, NULL, NULL, NULL)', [VALUES.length + 1]);
    });
  });

  /** Every table with its row count and an md5 of its rows: the database is unchanged when this is. */
  async function fingerprint(): Promise<string> {
    return withDb(database, async (client) => {
      const tables = await client.query<{ name: string }>(
        "SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname IN ('inj', 'public') ORDER BY 1",
      );
      const parts: string[] = [];
      for (const { name } of tables.rows) {
        const r = await client.query<{ n: string; h: string }>(`SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS h FROM ${name} t`);
        parts.push(`${name} ${r.rows[0]!.n} ${r.rows[0]!.h}`);
      }
      return parts.join('\n');
    });
  }

  let before: string;
  beforeAll(async () => {
    before = await fingerprint();
    expect(before).toContain('inj.items 19');
  });

  afterAll(async () => {
    expect(await fingerprint()).toBe(before);
  });

  const exportRows = async (args: string[]): Promise<{ code: number; stderr: string; rows: string[][] }> => {
    const result = await runCli(['table', 'export', ...args, '--source', dbUrl(database), '-o', '-', '-q']);
    return { code: result.code, stderr: result.stderr, rows: result.code === 0 ? parseCsv(result.stdout) : [] };
  };

  it('--where values are bound as plain values: each matches exactly its own row', async () => {
    for (const [i, value] of VALUES.entries()) {
      // A value list with commas, or starting with `[`, or with spaces at its ends, is given as a JSON array.
      const plain = !/[,]|^\[|^\s|\s$/.test(value) && value !== '';
      const filter = plain ? `label eq ${value}` : `label eq ${JSON.stringify([value])}`;
      const result = await exportRows(['inj.items', '--columns', 'id,label', '--where', filter]);
      expect(result.stderr, filter).toBe('');
      expect(result.code, filter).toBe(0);
      expect(result.rows, filter).toEqual([
        ['id', 'label'],
        [String(i + 1), value],
      ]);
    }
    // ne with the same values: every other non-NULL row.
    const all = await exportRows(['inj.items', '--columns', 'id', '--where', `label ne ${JSON.stringify([VALUES[0]])}`]);
    expect(all.rows.length).toBe(1 + VALUES.length - 1);
  });

  it('a value that would widen a comparison is a value: no row, or a typed error, never every row', async () => {
    const eq = await exportRows(['inj.items', '--where', 'id eq 1 OR 1=1']);
    expect(eq.code).toBe(0);
    expect(eq.rows).toEqual([['id', 'label', 'we"ird', 'a;b']]);
    const gt = await exportRows(['inj.items', '--where', 'id gt 0 OR 1=1']);
    expect(gt.code).toBe(2);
    expect(gt.stderr).toMatch(/invalid input syntax for type integer/);
    const gtText = await exportRows(['inj.items', '--columns', 'id', '--where', "label gt ' OR 1=1 --"]);
    expect(gtText.code).toBe(0);
    const expected = VALUES.map((v, i) => [v, String(i + 1)] as const).filter(([v]) => v > "' OR 1=1 --");
    // The comparison is PostgreSQL's (collation C here), so only the count is checked.
    expect(gtText.rows.length - 1).toBe(expected.length);
  });

  it('quoted column names are names: they work when they exist and fail with a usage error otherwise', async () => {
    const weird = await exportRows(['inj.items', '--columns', 'id,we"ird,a;b', '--where', '"we""ird" eq weird 3', '--order-by', 'a;b:desc']);
    expect(weird.code).toBe(0);
    expect(weird.rows).toEqual([
      ['id', 'we"ird', 'a;b'],
      ['3', 'weird 3', '98'],
    ]);
    const attempts: string[][] = [
      ['--columns', 'id,label"; DROP TABLE inj.items; --'],
      ['--columns', 'id,"label"'],
      ['--columns', '*'],
      ['--where', '"label"" OR 1=1 --" eq x'],
      ['--where', '"id""::text; DROP TABLE inj.items; --" eq 1'],
      ['--order-by', 'id; DROP TABLE inj.items'],
      ['--order-by', 'id:desc; DROP TABLE inj.items'],
      ['--order-by', '(SELECT 1)'],
      ['--order-by', 'id desc, label'],
      ['--changed-column', 'id; DROP TABLE inj.items', '--changed-since', '2020-01-01'],
    ];
    for (const flags of attempts) {
      const result = await exportRows(['inj.items', ...flags]);
      expect(result.code, flags.join(' ')).toBe(2);
      expect(result.stderr, flags.join(' ')).toMatch(/no column/);
    }
    for (const flags of [
      ['--limit', '1; DROP TABLE inj.items'],
      ['--changed-column', 'id', '--changed-since', "2020-01-01'; DROP TABLE inj.items; --"],
      ['--where', 'label; DROP TABLE inj.items eq x'],
    ]) {
      const result = await exportRows(['inj.items', ...flags]);
      expect(result.code, flags.join(' ')).toBe(2);
    }
  });

  it('table and schema names are names: unknown ones are not found, odd real ones export', async () => {
    for (const id of [
      'inj.items; DROP TABLE inj.items',
      'inj.items"; DROP TABLE inj.items; --',
      'inj"."items',
      "in.c-inj.items'); DROP TABLE inj.items; --",
      'inj.items /* */',
    ]) {
      const result = await exportRows([id]);
      expect(result.code, id).toBe(5);
      expect(result.stderr, id).toMatch(/does not exist/);
    }
    const schema = await runCli(['run', '--source', dbUrl(database), '--schema', "inj'; DROP TABLE inj.items; --", '--dest', join(await tempFolder('pg-inj'), 'x'), '-q']);
    expect(schema.code).toBe(5);
    expect(schema.stderr).toMatch(/no tables in schema/);

    const odd = await exportRows(['inj.items; DROP TABLE items; --']);
    expect(odd.stderr).toBe('');
    expect(odd.code).toBe(0);
    expect(odd.rows).toEqual([
      ['id', 'x" OR 1=1 --'],
      ['1', 'still here'],
    ]);
    const dest = join(await tempFolder('pg-inj-run'), 'takeout');
    const run = await runCli(['run', '--source', dbUrl(database), '--schema', 'inj', '--dest', dest, '-q']);
    expect(run.code).toBe(0);
    const takeout = await readTakeout(dest);
    const table = takeout.tables.find((t) => t.displayName === 'items; DROP TABLE items; --')!;
    expect(table.id).toMatch(/^in\.c-inj\.[A-Za-z0-9_-]+$/);
    expect(table.columns).toEqual(['id', 'x" OR 1=1 --']);
    expect(parseCsv(await takeout.tableData(table.id))).toEqual([['1', 'still here']]);
  });
});
