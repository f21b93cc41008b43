/**
 * DuckDB's load path (`src/targets/duckdb-csv.ts`): a gzipped slice streamed through `LfRecords` into
 * `read_csv` over a FIFO (or a spooled temporary file), inside a transaction. `LfRecords` is checked against
 * takeout's CSV parser on the shapes a slice can hold, cut into chunks at every offset; the loader on tricky
 * values with both spools, and on every failure: each rejects, leaves the transaction to roll back, never
 * hangs, and removes its temporary directory.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TakeoutError } from '../src/errors.js';
import { CsvRecordParser } from '../src/formats/csv/record-parser.js';
import { LfRecords } from '../src/formats/csv/lf-records.js';
import { loadCsvSlice, type CsvSpool } from '../src/targets/duckdb-csv.js';
import type { Row } from '../src/model.js';
import type { RestoreTable } from '../src/targets/target.js';

/** What LfRecords makes of `input` fed in chunks cut at `cuts`: the bytes and the record count. */
async function lf(input: string | Buffer, columns: number, cuts: number[] = []): Promise<{ text: string; count: number }> {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(from, cut));
    from = cut;
  }
  const scanner = new LfRecords(columns, 'slice.csv');
  const out: Buffer[] = [];
  scanner.on('data', (b: Buffer) => out.push(b));
  const done = new Promise<void>((resolve, reject) => {
    scanner.on('end', resolve);
    scanner.on('error', reject);
  });
  for (const chunk of chunks) scanner.write(chunk);
  scanner.end();
  await done;
  return { text: Buffer.concat(out).toString('utf8'), count: scanner.count };
}

function parse(text: string, columns: number): Row[] {
  const parser = new CsvRecordParser({ columns, hasHeader: false, origin: 'x' });
  return [...parser.push(Buffer.from(text)), ...parser.end()];
}

const SHAPES: [string, string, number][] = [
  ['mixed CR LF and LF record ends', 'a,b,c\r\n"x\r\ny","q""",\n1,"",\r\n"é",,"z"\n', 3],
  ['a lone CR ends a record, a quoted one is data', 'a,b\rc,"d\re"\r\n', 2],
  ['no newline after the last record', 'a,b\r\nc,d', 2],
  ['blank lines are no records', '\na,b\n\r\n\nc,d\n\n', 2],
  ['one column: a blank line is a record (NULL)', 'a\n\nb\r\n', 1],
  ['quotes at chunk edges', '"a""","b"\n"""",""\n', 2],
  ['a BOM at the start', '\ufeffa,b\nc,d\n', 2],
];

describe('LfRecords', () => {
  it.each(SHAPES)('%s: LF record ends only, the records and values as the parser reads them, at every chunk cut', async (_name, input, columns) => {
    const expected = parse(input, columns);
    const bytes = Buffer.from(input);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { text, count } = await lf(bytes, columns, [cut]);
      expect(count, `cut at ${cut}`).toBe(expected.length);
      // Every record end is a lone LF: a CR is left only inside quotes.
      expect(parse(text, columns), `cut at ${cut}`).toEqual(expected);
      expect(text.endsWith('\n')).toBe(true);
    }
    // One byte at a time too.
    const { text } = await lf(bytes, columns, [...bytes.keys()].slice(1));
    expect(parse(text, columns)).toEqual(expected);
  });

  it('rewrites nothing when there is no CR (the chunk passes as it is)', async () => {
    expect(await lf('a,"b\nc"\nd,e\n', 2)).toEqual({ text: 'a,"b\nc"\nd,e\n', count: 2 });
  });

  it('refuses an unterminated quoted field and a stray quote, naming the slice and the record', async () => {
    await expect(lf('a,b\nc,"d\n', 2)).rejects.toThrow(/slice\.csv:2 \(byte 4\): unterminated quoted field in record 2/);
    await expect(lf('a,b\nc,d"e\n', 2)).rejects.toThrow(/slice\.csv:2 \(byte 7\): stray quote in record 2/);
    await expect(lf('a,b\nc,d"e\n', 2, [7])).rejects.toThrow(/stray quote in record 2/);
  });
});

const TABLE: RestoreTable = {
  id: 'in.c-t.t',
  bucketId: 'in.c-t',
  name: 't',
  columns: [
    { name: 'id', type: 'INTEGER' },
    { name: 'text', type: 'STRING' },
    { name: 'amount', type: 'NUMERIC', length: '12,2' },
    { name: 'when "quoted"', type: 'TIMESTAMP' },
  ],
  primaryKey: [],
  rows: 0,
};
const TYPES = ['BIGINT', 'VARCHAR', 'DECIMAL(12, 2)', 'TIMESTAMP'];
const TARGET = '"in.c-t"."t"';
const TRICKY = [
  '1,"multi\r\nline ""quoted"" é 🎉",1.50,2024-01-02 03:04:05\r\n',
  '2,,,\n',
  '3,"",,\r\n',
  `4,"${'x'.repeat(3_000_000)}",-2,2024-01-02T03:04:05Z\n`,
  '5,"a,b\rc",0.01,""',
].join('');

const BASE_TMP = tmpdir();
let tmp: string;
let instance: DuckDBInstance;
let c: DuckDBConnection;

describe('loadCsvSlice', () => {
  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    c = await instance.connect();
    // As the target's own connection: TIMESTAMP values converted to UTC through TIMESTAMPTZ.
    await c.run("SET TimeZone = 'UTC'");
    await c.run('CREATE SCHEMA "in.c-t"');
    await c.run(`CREATE TABLE ${TARGET} ("id" BIGINT, "text" VARCHAR, "amount" DECIMAL(12, 2), "when ""quoted""" TIMESTAMP)`);
  });
  afterAll(() => {
    c.closeSync();
    instance.closeSync();
  });
  beforeEach(async () => {
    // The loader's temporary directories go here, to check that none is left.
    tmp = await mkdtemp(path.join(BASE_TMP, 'duckdb-load-test-'));
    process.env.TMPDIR = tmp;
    await c.run('BEGIN TRANSACTION');
  });
  afterEach(async () => {
    await c.run('ROLLBACK').catch(() => undefined);
    process.env.TMPDIR = BASE_TMP;
    expect(await readdir(tmp)).toEqual([]);
    await rm(tmp, { recursive: true, force: true });
  });

  const gz = (text: string | Buffer): Readable => Readable.from([gzipSync(text)]);
  const load = (body: Readable, spool: CsvSpool): Promise<number> => loadCsvSlice(c, TABLE, TYPES, TARGET, body, 'in/c-t/t.part_0.csv.gz', spool);
  const rows = async (): Promise<unknown[][]> =>
    (await c.runAndReadAll(`SELECT id, text, amount::VARCHAR, "when ""quoted"""::VARCHAR FROM ${TARGET} ORDER BY id`)).getRowsJson();

  describe.each(['fifo', 'file'] as const)('loadCsvSlice through a %s', (spool) => {
    it("loads every value as the takeout holds it: '' in text, NULL in typed columns, casts, line breaks, long values", async () => {
      expect(await load(gz(TRICKY), spool)).toBe(5);
      const all = await rows();
      expect(all.map((r) => r[0])).toEqual(['1', '2', '3', '4', '5']);
      expect(all[0]).toEqual(['1', 'multi\r\nline "quoted" é 🎉', '1.50', '2024-01-02 03:04:05']);
      expect(all[1]).toEqual(['2', '', null, null]);
      expect(all[2]).toEqual(['3', '', null, null]);
      expect((all[3]![1] as string).length).toBe(3_000_000);
      expect(all[3]!.slice(2)).toEqual(['-2.00', '2024-01-02 03:04:05']);
      expect(all[4]).toEqual(['5', 'a,b\rc', '0.01', null]);
    });

    it('converts a timestamp with an offset to UTC (a plain VARCHAR → TIMESTAMP cast would drop the offset)', async () => {
      expect(await load(gz('6,x,1,2024-01-02 03:04:05+02:00\n7,y,1,2024-01-02T03:04:05Z\n'), spool)).toBe(2);
      expect((await rows()).map((r) => r[3])).toEqual(['2024-01-02 01:04:05', '2024-01-02 03:04:05']);
    });

    it('loads an empty slice (no bytes, or only a BOM) as no rows', async () => {
      expect(await load(gz(''), spool)).toBe(0);
      expect(await load(gz('\ufeff'), spool)).toBe(0);
      expect(await rows()).toEqual([]);
    });

    it('streams a slice larger than a pipe buffer, in many chunks, and counts its rows', async () => {
      const text = Array.from({ length: 50_000 }, (_, i) => `${i},"row ${i}\r\nsecond line",${i}.25,2024-01-01 00:00:00${i % 2 ? '\r\n' : '\n'}`).join('');
      const body = new PassThrough();
      const loading = load(body, spool);
      const bytes = gzipSync(text);
      for (let i = 0; i < bytes.length; i += 4096) body.write(bytes.subarray(i, i + 4096));
      body.end();
      expect(await loading).toBe(50_000);
      expect(Number((await c.runAndReadAll(`SELECT count(*) FROM ${TARGET} WHERE text = 'row ' || id || E'\\r\\nsecond line'`)).getRowsJson()[0]![0])).toBe(50_000);
    });

    it('refuses a ragged row, text after a closing quote and a value that does not cast (INVALID_INPUT, the slice named)', async () => {
      for (const bad of ['1,a,1,\n2,b\n', '1,"a"x,1,\n', '1,a,not-a-number,\n', '1,"a,1,\n']) {
        const error = await load(gz(bad), spool).catch((e: unknown) => e);
        expect(error, bad).toBeInstanceOf(TakeoutError);
        expect((error as TakeoutError).code, bad).toBe('INVALID_INPUT');
        expect((error as Error).message, bad).toContain('in/c-t/t.part_0.csv.gz');
        expect((error as Error).message, bad).not.toContain(tmp);
        await c.run('ROLLBACK');
        await c.run('BEGIN TRANSACTION');
      }
    });

    it('refuses a record over 16 MiB (the largest Keboola cell is 16 MB) as INVALID_INPUT', async () => {
      const error = await load(gz(`1,"${'y'.repeat(17 * 1024 * 1024)}",1,\n`), spool).catch((e: unknown) => e);
      expect((error as TakeoutError).code).toBe('INVALID_INPUT');
      expect((error as Error).message).toMatch(/in\/c-t\/t\.part_0\.csv\.gz: Invalid Input Error: CSV Error on Line: 1: Maximum line size of 16777216 bytes exceeded/);
      expect((error as Error).message).not.toContain('yyy');
    });

    it('rejects with the gzip error of a corrupt slice, and with the error of a stream that fails midway', async () => {
      const bytes = gzipSync(TRICKY);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      await expect(load(Readable.from([bytes]), spool)).rejects.toMatchObject({ code: expect.stringMatching(/^Z_/) as unknown });
      await c.run('ROLLBACK');
      await c.run('BEGIN TRANSACTION');
      const body = new PassThrough();
      const loading = load(body, spool);
      body.write(gzipSync('1,a,1,\n'.repeat(10_000)).subarray(0, 20_000));
      setTimeout(() => body.destroy(new Error('the store went away')), 50);
      await expect(loading).rejects.toThrow('the store went away');
    });

    it('rejects (and does not hang) when the statement fails before DuckDB opens the slice', async () => {
      const missing = { ...TABLE, name: 'missing' };
      await expect(loadCsvSlice(c, missing, TYPES, '"in.c-t"."missing"', gz(TRICKY), 'x.csv.gz', spool)).rejects.toThrow(/missing/);
    });
  });
});
