import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { jsonLinesEncoder, jsonNumber, plainJsonOfDynamoItem } from '../src/formats/jsonl.js';
import type { RecordColumn } from '../src/formats/typed-records.js';
import { TakeoutError } from '../src/errors.js';

const columns: RecordColumn[] = [
  { name: 'id', kind: 'integer' },
  { name: 'price', kind: 'number' },
  { name: 'name', kind: 'string' },
  { name: 'ok', kind: 'boolean' },
  { name: 'raw', kind: 'binary' },
  { name: 'doc', kind: 'json' },
  { name: 'day', kind: 'date' },
  { name: 'at', kind: 'timestamp' },
];

/** A decimal's value as normalized digits and exponent: the oracle for "a double holds exactly this value". */
function norm(text: string): string {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`not a number: ${text}`);
  let digits = `${m[2] ?? ''}${m[3] ?? ''}`.replace(/^0+/, '');
  let exponent = Number(m[4] ?? '0') - (m[3] ?? '').length;
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    exponent++;
  }
  return digits === '' ? '0' : `${m[1]}${digits}e${exponent}`;
}
const exactDouble = (text: string): boolean => Number.isFinite(Number(text)) && norm(String(Number(text))) === norm(text);

const readLines = (text: string): unknown[] => {
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n').map((line) => JSON.parse(line) as unknown);
};

describe('JSON lines encoder', () => {
  it('writes one typed object per line, keys in column order', () => {
    const enc = jsonLinesEncoder(columns, 'test');
    expect(enc.extension).toBe('jsonl');
    const rows = [
      ['1', '19.99', 'Žluťoučký "kůň" 🐎\n', 't', '\\x00ff', '{"a": [1, 2.5, null],\n "b": {"c": true}}', '2024-05-01', '2024-05-01 10:00:00+00'],
      ['-42', '1e3', '', 'false', 'AQID', '"text"', '2024-05-02', '2024-05-01T10:00:00.123456Z'],
      [null, null, null, null, null, null, null, null],
      ['9007199254740993', '0.1', ' ', 'yes', '', 'null', '', ''],
    ];
    const text = rows.map((r) => enc.encode(r)).join('');
    expect(text.split('\n')).toHaveLength(rows.length + 1);
    const objects = readLines(text);
    expect(objects[0]).toEqual({ id: 1, price: 19.99, name: 'Žluťoučký "kůň" 🐎\n', ok: true, raw: 'AP8=', doc: { a: [1, 2.5, null], b: { c: true } }, day: '2024-05-01', at: '2024-05-01 10:00:00+00' });
    expect(Object.keys(objects[0] as object)).toEqual(columns.map((c) => c.name));
    expect(objects[1]).toEqual({ id: -42, price: 1000, name: '', ok: false, raw: 'AQID', doc: 'text', day: '2024-05-02', at: '2024-05-01T10:00:00.123456Z' });
    expect(objects[2]).toEqual(Object.fromEntries(columns.map((c) => [c.name, null])));
    // 2^53 + 1 has no double: kept as its digits in a string.
    expect(objects[3]).toEqual({ id: '9007199254740993', price: 0.1, name: ' ', ok: true, raw: '', doc: null, day: '', at: '' });
  });

  it('writes a number as a JSON number only when a double holds exactly its value', () => {
    const cases: [string, unknown][] = [
      ['0', 0],
      ['-0', -0],
      ['007', 7],
      ['+5', 5],
      ['.5', 0.5],
      ['3.', 3],
      ['1.50', 1.5],
      ['9007199254740992', 9007199254740992],
      ['9007199254740993', '9007199254740993'],
      ['123456789012345678', '123456789012345678'],
      ['123456789012345680', 123456789012345680],
      ['0.30000000000000004', 0.30000000000000004],
      ['0.300000000000000041', '0.300000000000000041'],
      ['1e308', 1e308],
      ['1e309', '1e309'],
      ['5e-324', 5e-324],
      ['1e-400', '1e-400'],
      ['12345678901234567890123456789012345678', '12345678901234567890123456789012345678'],
    ];
    for (const [text, expected] of cases) expect(JSON.parse(jsonNumber(text.replace(/^\+/, ''))), text).toEqual(expected);
  });

  it('numbers read back as the same value, or as the same text (property)', () => {
    const decimal = fc
      .tuple(fc.constantFrom('', '-'), fc.stringMatching(/^[1-9]\d{0,25}$/), fc.option(fc.stringMatching(/^\d{1,12}$/)), fc.option(fc.integer({ min: -340, max: 320 })))
      .map(([sign, int, frac, exp]) => `${sign}${int}${frac === null ? '' : `.${frac}`}${exp === null ? '' : `e${exp}`}`);
    fc.assert(
      fc.property(decimal, (text) => {
        expect(JSON.parse(jsonNumber(text))).toEqual(exactDouble(text) ? Number(text) : text);
      }),
      { numRuns: 5000 },
    );
  });

  it('writes a DynamoDB item cell as the plain JSON unmarshall gives', () => {
    const item: Record<string, AttributeValue> = {
      pk: { S: 'user#1' },
      n: { N: '42' },
      big: { N: '12345678901234567890123456789012345678' },
      ok: { BOOL: true },
      nothing: { NULL: true },
      bin: { B: 'AP8=' as unknown as Uint8Array },
      tags: { SS: ['a', 'b'] },
      nums: { NS: ['1', '2.5'] },
      blobs: { BS: ['AQ==' as unknown as Uint8Array] },
      list: { L: [{ S: 'x' }, { N: '1' }, { M: { deep: { L: [] } } }] },
      map: { M: { 'a b': { S: 'c' } } },
    };
    const text = JSON.stringify(item);
    const enc = jsonLinesEncoder([{ name: 'item', kind: 'dynamodb-item' }, { name: 'n', kind: 'integer' }], 'test');
    const [read] = readLines(enc.encode([text, '1'])) as { item: Record<string, unknown>; n: number }[];
    // The reference: unmarshall with numbers kept as text, sets as lists; binary stays the base64 the item holds.
    const reference = unmarshall(item, { wrapNumbers: (v: string) => (exactDouble(v) ? Number(v) : v) });
    const plain = JSON.parse(JSON.stringify(reference, (_k, v: unknown) => (v instanceof Set ? [...(v as Set<unknown>)] : v))) as unknown;
    expect(read!.item).toEqual(plain);
    expect(read!.n).toBe(1);
    expect(plainJsonOfDynamoItem('{}', 't')).toBe('{}');
  });

  it('keeps every string and key (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (s, name) => {
        const line = jsonLinesEncoder([{ name, kind: 'string' }], 'test').encode([s]);
        expect(line.indexOf('\n')).toBe(line.length - 1);
        expect(JSON.parse(line)).toEqual({ [name]: s });
      }),
    );
  });

  it('refuses cells their kind cannot read, naming the column', () => {
    const cases: [RecordColumn, string, RegExp][] = [
      [{ name: 'qty', kind: 'integer' }, '1,5', /column qty: '1,5' is not a number/],
      [{ name: 'qty', kind: 'number' }, 'Infinity', /column qty: Infinity/],
      [{ name: 'doc', kind: 'json' }, '{"a":', /column doc is not valid JSON/],
      [{ name: 'item', kind: 'dynamodb-item' }, '{"a":{"S":1}}', /column item does not hold a DynamoDB item: S is not a string/],
      [{ name: 'item', kind: 'dynamodb-item' }, '{"a":{"S":"1","N":"1"}}', /column item does not hold a DynamoDB item: an attribute value has 2 types/],
    ];
    for (const [column, cell, message] of cases) {
      const run = (): string => jsonLinesEncoder([column], 'in.c-main.t').encode([cell]);
      expect(run).toThrow(TakeoutError);
      expect(run).toThrow(message);
      try {
        run();
      } catch (e) {
        expect((e as TakeoutError).code).toBe('INVALID_INPUT');
      }
    }
  });
});
