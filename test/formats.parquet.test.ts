import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBBlobValue, type DuckDBConnection } from '@duckdb/node-api';
import { DEFAULT_ROW_GROUP_ROWS, ParquetFileBuilder, type ParquetCodec } from '../src/formats/parquet.js';
import type { RecordColumn } from '../src/formats/typed-records.js';
import type { Row } from '../src/model.js';
import { TakeoutError } from '../src/errors.js';
import { removeTempFolders, tempFolder } from './helpers/temp.js';

/**
 * Files written with hyparquet-writer are read back with DuckDB's Parquet reader: a separate codebase (C++),
 * so a mistake shared by the writer and its sibling reader hyparquet cannot hide here.
 */

const columns: RecordColumn[] = [
  { name: 'name', kind: 'string' },
  { name: 'id', kind: 'integer' },
  { name: 'price', kind: 'number' },
  { name: 'ok', kind: 'boolean' },
  { name: 'raw', kind: 'binary' },
  { name: 'doc', kind: 'json' },
  { name: 'day', kind: 'date' },
  { name: 'at', kind: 'timestamp' },
  { name: 'item', kind: 'dynamodb-item' },
];

/** A small seeded generator, so a failure names the row that differs on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Expected {
  name: string | null;
  id: bigint | null;
  price: number | null;
  ok: boolean | null;
  raw: Buffer | null;
  doc: string | null;
  day: string | null;
  at: string | null;
  item: unknown;
}

const WORDS = ['', ' ', 'Žluťoučký kůň', '🎉👩‍💻', 'a,b', 'say "hi"', 'line\nbreak', '日本語', 'x'.repeat(300), '\u0000nul'];
const INTS = ['0', '-1', '42', '9223372036854775807', '-9223372036854775808', '9007199254740993', '+7', '1.0'];
const NUMBERS = ['0', '-0.5', '19.99', '1e300', '-2.2250738585072014e-308', '12345678901234567890123456789012345678', '.25'];

function makeRows(count: number, seed: number): { rows: Row[]; expected: Expected[] } {
  const next = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const rows: Row[] = [];
  const expected: Expected[] = [];
  for (let r = 0; r < count; r++) {
    const isNull = (): boolean => next() < 0.1;
    const name = isNull() ? null : `${pick(WORDS)}${r}`;
    const id = isNull() ? null : next() < 0.5 ? pick(INTS) : String(Math.floor((next() - 0.5) * 1e12));
    const price = isNull() ? null : next() < 0.5 ? pick(NUMBERS) : (next() * 1000).toFixed(2);
    const ok = isNull() ? null : pick(['t', 'f', 'true', 'false', 'yes', '0']);
    const bytes = Buffer.from(Array.from({ length: Math.floor(next() * 40) }, () => Math.floor(next() * 256)));
    const raw = isNull() ? null : next() < 0.5 ? `\\x${bytes.toString('hex')}` : bytes.toString('base64');
    const doc = isNull() ? null : JSON.stringify({ r, tags: [pick(WORDS)], deep: { n: next() } });
    const day = isNull() ? null : `2024-05-${String(1 + (r % 28)).padStart(2, '0')}`;
    const at = isNull() ? null : `2024-05-01 10:00:${String(r % 60).padStart(2, '0')}.123456+02`;
    const item = isNull() ? null : JSON.stringify({ pk: { S: `k${r}` }, n: { N: String(r) }, tags: { SS: ['a', 'b'] }, on: { BOOL: r % 2 === 0 } });
    rows.push([name, id, price, ok, raw, doc, day, at, item]);
    expected.push({
      name,
      id: id === null ? null : BigInt(id.replace(/\.0$/, '')),
      price: price === null ? null : Number(price),
      ok: ok === null ? null : ['t', 'true', 'yes'].includes(ok),
      raw: raw === null ? null : bytes,
      doc,
      day,
      at,
      item: item === null ? null : { pk: `k${r}`, n: r, tags: ['a', 'b'], on: r % 2 === 0 },
    });
  }
  return { rows, expected };
}

let dir: string;
let db: DuckDBInstance;
let connection: DuckDBConnection;

beforeAll(async () => {
  dir = await tempFolder('parquet');
  db = await DuckDBInstance.create(':memory:');
  connection = await db.connect();
});

afterAll(async () => {
  connection?.closeSync();
  db?.closeSync();
  await removeTempFolders();
});

async function readBack(bytes: Uint8Array, name: string): Promise<{ rows: Record<string, unknown>[]; types: string[]; groups: number; codecs: string[] }> {
  const file = join(dir, name);
  await writeFile(file, bytes);
  const result = await connection.runAndReadAll(`SELECT * FROM read_parquet('${file}')`);
  const meta = await connection.runAndReadAll(`SELECT DISTINCT row_group_id, compression FROM parquet_metadata('${file}')`);
  return {
    rows: result.getRowObjects(),
    types: result.columnTypes().map(String),
    groups: new Set(meta.getRows().map((r) => r[0])).size,
    codecs: [...new Set(meta.getRows().map((r) => String(r[1])))],
  };
}

const actualOf = (row: Record<string, unknown>): Expected => ({
  name: row.name as string | null,
  id: row.id as bigint | null,
  price: row.price as number | null,
  ok: row.ok as boolean | null,
  raw: row.raw === null ? null : Buffer.from((row.raw as DuckDBBlobValue).bytes),
  doc: row.doc as string | null,
  day: row.day as string | null,
  at: row.at as string | null,
  item: row.item === null ? null : (JSON.parse(row.item as string) as unknown),
});

describe('Parquet file builder', () => {
  for (const codec of ['GZIP', 'SNAPPY', 'UNCOMPRESSED'] as ParquetCodec[]) {
    it(`writes every value and NULL of every kind, over several row groups (${codec})`, async () => {
      const { rows, expected } = makeRows(3_000, 7);
      const builder = new ParquetFileBuilder(columns, { codec, rowGroupRows: 700 }, 'in.c-main.t');
      for (let i = 0; i < rows.length; i += 450) builder.add(rows.slice(i, i + 450));
      expect(builder.rows).toBe(rows.length);
      const estimate = builder.estimatedBytes;
      const bytes = builder.finish();
      // The estimate is what the caller's size cap relies on: close to the real size.
      expect(Math.abs(estimate - bytes.length) / bytes.length).toBeLessThan(0.1);
      const read = await readBack(bytes, `all-${codec}.parquet`);
      expect(read.types).toEqual(['VARCHAR', 'BIGINT', 'DOUBLE', 'BOOLEAN', 'BLOB', 'VARCHAR', 'VARCHAR', 'VARCHAR', 'VARCHAR']);
      expect(read.groups).toBe(Math.ceil(rows.length / 700));
      expect(read.codecs).toEqual([codec]);
      expect(read.rows).toHaveLength(rows.length);
      for (let i = 0; i < rows.length; i++) expect(actualOf(read.rows[i]!), `row ${i}`).toEqual(expected[i]);
    });
  }

  it('writes a file with no rows that readers open', async () => {
    const read = await readBack(new ParquetFileBuilder(columns, { codec: 'GZIP', rowGroupRows: DEFAULT_ROW_GROUP_ROWS }, 't').finish(), 'empty.parquet');
    expect(read.rows).toEqual([]);
    expect(read.types).toHaveLength(columns.length);
  });

  it('estimates the file size for a caller cutting files at a size: over before the first row group, close after', () => {
    const { rows } = makeRows(2_000, 11);
    for (const codec of ['GZIP', 'UNCOMPRESSED'] as ParquetCodec[]) {
      for (const cut of [1, 50, 499, 500, 700, 1_250, 2_000]) {
        const builder = new ParquetFileBuilder(columns, { codec, rowGroupRows: 500 }, 't');
        for (let i = 0; i < cut; i += 100) builder.add(rows.slice(i, Math.min(cut, i + 100)));
        const estimate = builder.estimatedBytes;
        const size = builder.finish().length;
        // Never much under (a size cap holds); once a row group shows how the data compresses, close.
        expect(estimate, `${codec} ${cut}`).toBeGreaterThan(size * 0.95);
        if (cut >= 500) expect(estimate / size, `${codec} ${cut}`).toBeLessThan(1.15);
      }
    }
  });

  // What the dataset runner does: before each row, settle and close when boundBytes + rowBytes(row) passes the cap.
  it('boundBytes and rowBytes keep every file of a cutting caller under its cap, any codec, non-ASCII text included', () => {
    const { rows } = makeRows(6_000, 5);
    for (const codec of ['GZIP', 'SNAPPY', 'UNCOMPRESSED'] as ParquetCodec[]) {
      for (const cap of [4 * 1024, 16 * 1024, 64 * 1024]) {
        const sizes: number[] = [];
        let builder = new ParquetFileBuilder(columns, { codec, rowGroupRows: DEFAULT_ROW_GROUP_ROWS }, 't');
        let inFile = 0;
        for (const row of rows) {
          if (inFile > 0 && builder.boundBytes > cap - builder.rowBytes(row)) {
            builder.settle();
            if (builder.boundBytes > cap - builder.rowBytes(row)) {
              sizes.push(builder.finish().length);
              builder = new ParquetFileBuilder(columns, { codec, rowGroupRows: DEFAULT_ROW_GROUP_ROWS }, 't');
              inFile = 0;
            }
          }
          builder.add([row]);
          inFile++;
        }
        sizes.push(builder.finish().length);
        expect(sizes.length, `${codec} ${cap}`).toBeGreaterThan(2);
        for (const size of sizes) expect(size, `${codec} ${cap}`).toBeLessThanOrEqual(cap);
        // Not needlessly small: files but the last fill most of the cap (at 4 KiB, rows of up to ~1 KiB make that coarse).
        if (cap >= 16 * 1024) expect(Math.min(...sizes.slice(0, -1)) / cap, `${codec} ${cap}`).toBeGreaterThan(0.6);
      }
    }
  });

  it('refuses cells their kind cannot read, naming the column, and misuse', () => {
    const cases: [RecordColumn, string, RegExp][] = [
      [{ name: 'id', kind: 'integer' }, '9223372036854775808', /in\.c-main\.t: column id: 9223372036854775808 does not fit a 64-bit integer/],
      [{ name: 'id', kind: 'integer' }, '1.5', /column id: '1.5' is not an integer/],
      [{ name: 'id', kind: 'integer' }, 'x', /column id: 'x' is not a number/],
      [{ name: 'price', kind: 'number' }, 'NaN', /column price: NaN/],
      [{ name: 'doc', kind: 'json' }, '{', /column doc is not valid JSON/],
      [{ name: 'item', kind: 'dynamodb-item' }, '{"a":1}', /column item does not hold a DynamoDB item/],
    ];
    for (const [column, cell, message] of cases) {
      const builder = new ParquetFileBuilder([column], { codec: 'SNAPPY', rowGroupRows: 10 }, 'in.c-main.t');
      let error: unknown;
      try {
        builder.add([[cell]]);
      } catch (e) {
        error = e;
      }
      expect(error, cell).toBeInstanceOf(TakeoutError);
      expect((error as TakeoutError).code).toBe('INVALID_INPUT');
      expect((error as TakeoutError).message).toMatch(message);
    }
    expect(() => new ParquetFileBuilder(columns, { codec: 'GZIP', rowGroupRows: 0 }, 't')).toThrow(/rowGroupRows/);
    const done = new ParquetFileBuilder(columns, { codec: 'GZIP', rowGroupRows: 10 }, 't');
    done.finish();
    expect(() => done.add([])).toThrow(/after finish/);
  });
});
