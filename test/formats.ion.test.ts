import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IonTypes, load, loadAll, type dom } from 'ion-js';
import { dynamoIonEncoder, dynamoJsonItemToIon, ionDecimal, ionFieldNames, ionItem } from '../src/formats/dynamodb-ion.js';
import type { RecordColumn } from '../src/formats/typed-records.js';
import { TakeoutError } from '../src/errors.js';

/** A decimal's value as normalized digits and exponent, from its text alone (the reference for ion-js's reading). */
function decimalOf(text: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eEdD]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`not a number: ${text}`);
  let digits = `${m[2] ?? ''}${m[3] ?? ''}`.replace(/^0+/, '');
  let exponent = Number(m[4] ?? '0') - (m[3] ?? '').length;
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    exponent++;
  }
  return digits === '' ? '0' : `${m[1] === '-' ? '-' : ''}${digits}e${exponent}`;
}

/** ion-js's reading of a value, as plain data: decimals normalized, blobs as base64, annotations kept. */
function native(value: dom.Value): unknown {
  const annotations = value.getAnnotations();
  let out: unknown;
  const type = value.getType();
  if (value.isNull()) out = null;
  else if (type === IonTypes.DECIMAL) {
    const d = value.decimalValue()!;
    out = { N: decimalOf(`${d.isNegative() ? '-' : ''}${d.getCoefficient() < 0n ? -d.getCoefficient() : d.getCoefficient()}e${d.getExponent()}`) };
  } else if (type === IonTypes.STRING) out = value.stringValue();
  else if (type === IonTypes.BOOL) out = value.booleanValue();
  else if (type === IonTypes.BLOB) out = { B: Buffer.from(value.uInt8ArrayValue()!).toString('base64') };
  else if (type === IonTypes.LIST) out = value.elements().map(native);
  else if (type === IonTypes.STRUCT) out = Object.fromEntries(value.fields().map(([k, v]) => [k, native(v)]));
  else throw new Error(`unexpected Ion type ${type.name}`);
  return annotations.length > 0 ? { annotations, value: out } : out;
}

/** Each line parsed alone, as DynamoDB's consumers do; also checks the line shape. */
function readLines(text: string): dom.Value[] {
  const lines = text.split('\n');
  expect(lines.pop()).toBe('');
  return lines.map((line) => {
    expect(line.startsWith('$ion_1_0 {Item:')).toBe(true);
    const values = loadAll(Buffer.from(line, 'utf8'));
    expect(values).toHaveLength(1);
    return values[0]!;
  });
}

const all: RecordColumn[] = [
  { name: 'Id', kind: 'integer' },
  { name: 'price', kind: 'number' },
  { name: 'title', kind: 'string' },
  { name: 'ok', kind: 'boolean' },
  { name: 'raw', kind: 'binary' },
  { name: 'doc', kind: 'json' },
  { name: 'day', kind: 'date' },
  { name: 'at', kind: 'timestamp' },
];

describe('DynamoDB Ion encoder', () => {
  it('writes one $ion_1_0 {Item:…} line per row with decimals, bools, blobs, structs and nulls', () => {
    const enc = dynamoIonEncoder(all, 'test');
    expect(enc.extension).toBe('ion');
    const rows = [
      ['103', '6E2', 'Žluťoučký kůň 🐎', 't', '\\x00ff10', '{"a":[1,2.5,null,"x"],"b":{"c":true}}', '2024-05-01', '2024-05-01 10:00:00+00'],
      ['-0', '.5', '', 'no', 'AQID', '[]', null, null],
      [null, null, null, null, null, null, null, null],
      ['12345678901234567890123456789012345678', '-9.99999999999999999999999999999999999E+125', 'say "hi"\\', 'TRUE', '', '"s"', '0001-01-01', 'x'],
    ];
    const text = rows.map((r) => enc.encode(r)).join('');
    const items = readLines(text).map((v) => native(v.get('Item')!));
    expect(items[0]).toEqual({
      Id: { N: '103e0' },
      price: { N: '6e2' },
      title: 'Žluťoučký kůň 🐎',
      ok: true,
      raw: { B: Buffer.from([0, 0xff, 0x10]).toString('base64') },
      doc: { a: [{ N: '1e0' }, { N: '25e-1' }, null, 'x'], b: { c: true } },
      day: '2024-05-01',
      at: '2024-05-01 10:00:00+00',
    });
    expect(items[1]).toEqual({ Id: { N: '0' }, price: { N: '5e-1' }, title: '', ok: false, raw: { B: 'AQID' }, doc: [], day: null, at: null });
    expect(items[2]).toEqual(Object.fromEntries(all.map((c) => [c.name, null])));
    expect(items[3]).toMatchObject({
      Id: { N: '12345678901234567890123456789012345678e0' },
      price: { N: decimalOf('-9.99999999999999999999999999999999999E+125') },
      title: 'say "hi"\\',
      ok: true,
      raw: { B: '' },
      doc: 's',
    });
  });

  it('writes numbers as decimals (never floats or ints) with their own digits', () => {
    const enc = dynamoIonEncoder([{ name: 'n', kind: 'number' }], 'test');
    for (const n of ['103', '0', '600', '6e2', '1.50', '-0.001', '1E-130', '9.9999999999999999999999999999999999999E+125', '+7', '00012.3400', '3.', '.25']) {
      const line = enc.encode([n]);
      const value = load(line)!.get('Item', 'n')!;
      expect(value.getType(), n).toBe(IonTypes.DECIMAL);
      expect(native(value)).toEqual({ N: decimalOf(n) });
    }
    expect(enc.encode(['103'])).toBe('$ion_1_0 {Item:{n:103.}}\n');
  });

  it('keeps any decimal text exact (property)', () => {
    const numberText = fc
      .tuple(fc.constantFrom('', '-', '+'), fc.stringMatching(/^\d{1,38}$/), fc.option(fc.stringMatching(/^\d{0,20}$/)), fc.option(fc.integer({ min: -130, max: 125 })))
      .map(([sign, int, frac, exp]) => `${sign}${int}${frac === null ? '' : `.${frac}`}${exp === null ? '' : `e${exp}`}`);
    fc.assert(
      fc.property(numberText, (n) => {
        const value = load(ionDecimal(n.replace(/^\+/, '')))!;
        expect(value.getType()).toBe(IonTypes.DECIMAL);
        expect(native(value)).toEqual({ N: decimalOf(n) });
      }),
    );
  });

  it('keeps every string, field name and byte (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary', minLength: 1 }), fc.uint8Array(), (s, name, bytes) => {
        const columns: RecordColumn[] = [
          { name, kind: 'string' },
          { name: `${name}#b`, kind: 'binary' },
        ];
        const line = dynamoIonEncoder(columns, 'test').encode([s, Buffer.from(bytes).toString('base64')]);
        expect(line.indexOf('\n')).toBe(line.length - 1);
        const item = loadAll(Buffer.from(line, 'utf8'))[0]!.get('Item')!;
        // Lone surrogates have no UTF-8 form: U+FFFD, as any UTF-8 writer makes of them.
        const wellFormed = (t: string): string => t.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
        expect(item.fieldNames()).toEqual([wellFormed(name), wellFormed(`${name}#b`)]);
        expect(item.get(wellFormed(name))!.stringValue()).toBe(wellFormed(s));
        expect(Buffer.from(item.get(wellFormed(`${name}#b`))!.uInt8ArrayValue()!)).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('quotes field names Ion would read as keywords, symbol ids or operators', () => {
    const names = ['null', 'true', 'nan', '$ion_1_0', '$10', 'a b', "it's", 'ünï', 'a-b', '_ok', 'Item'];
    const line = dynamoIonEncoder(names.map((name) => ({ name, kind: 'string' as const })), 'test').encode(names);
    const item = load(line)!.get('Item')!;
    expect(item.fields().map(([k, v]) => [k, v.stringValue()])).toEqual(names.map((n) => [n, n]));
  });

  it('converts a DynamoDB JSON item cell, every attribute type and the set annotations', () => {
    const item = {
      pk: { S: 'user#1' },
      n: { N: '12345678901234567890123456789012345678' },
      f: { N: '-1.5E-7' },
      ok: { BOOL: false },
      nothing: { NULL: true },
      bin: { B: 'AP8=' },
      tags: { SS: ['a', 'b', '🎉'] },
      nums: { NS: ['1', '2.5', '-0.0001'] },
      blobs: { BS: ['AQ==', 'Ag=='] },
      list: { L: [{ S: 'x' }, { N: '1' }, { M: { deep: { L: [] } } }] },
      map: { M: { 'a b': { S: 'c' }, null: { NULL: true } } },
    };
    const enc = dynamoIonEncoder([{ name: 'item', kind: 'dynamodb-item' }], 'test');
    const line = enc.encode([JSON.stringify(item)]);
    expect(line).toContain('tags:$dynamodb_SS::["a","b","🎉"]');
    expect(line).toContain('nums:$dynamodb_NS::[1.,2.5,-0.0001]');
    const read = load(line)!.get('Item')!;
    expect(read.get('nums')!.elements().every((v) => v.getType() === IonTypes.DECIMAL)).toBe(true);
    expect(native(read)).toEqual({
      pk: 'user#1',
      n: { N: '12345678901234567890123456789012345678e0' },
      f: { N: '-15e-8' },
      ok: false,
      nothing: null,
      bin: { B: 'AP8=' },
      tags: { annotations: ['$dynamodb_SS'], value: ['a', 'b', '🎉'] },
      nums: { annotations: ['$dynamodb_NS'], value: [{ N: '1e0' }, { N: '25e-1' }, { N: '-1e-4' }] },
      blobs: { annotations: ['$dynamodb_BS'], value: [{ B: 'AQ==' }, { B: 'Ag==' }] },
      list: ['x', { N: '1e0' }, { deep: [] }],
      map: { 'a b': 'c', null: null },
    });
  });

  it('builds Keys/NewImage/OldImage structs for incremental records', () => {
    const keyColumns = all.slice(0, 1);
    const keys = ionItem(keyColumns, ionFieldNames(keyColumns), ['7'], 'test');
    const image = ionItem(all, ionFieldNames(all), ['7', '1.25', 't', 'y', null, null, null, null], 'test');
    const old = dynamoJsonItemToIon('{"Id":{"N":"7"},"price":{"N":"1"}}', 'test');
    const record = load(`$ion_1_0 {Keys:${keys},NewImage:${image},OldImage:${old}}`)!;
    expect(native(record)).toEqual({
      Keys: { Id: { N: '7e0' } },
      NewImage: { Id: { N: '7e0' }, price: { N: '125e-2' }, title: 't', ok: true, raw: null, doc: null, day: null, at: null },
      OldImage: { Id: { N: '7e0' }, price: { N: '1e0' } },
    });
  });

  it('refuses cells their kind cannot read, naming the column', () => {
    const cases: [RecordColumn, string, RegExp][] = [
      [{ name: 'qty', kind: 'integer' }, 'twelve', /column qty.*not a number/],
      [{ name: 'qty', kind: 'number' }, 'NaN', /column qty.*NaN/],
      [{ name: 'doc', kind: 'json' }, '{nope', /column doc is not valid JSON/],
      [{ name: 'item', kind: 'dynamodb-item' }, '{"a":{"X":"1"}}', /column item does not hold a DynamoDB item: unknown attribute type X/],
      [{ name: 'item', kind: 'dynamodb-item' }, '{"a":{"SS":"1"}}', /column item .*SS is not a list/],
      [{ name: 'item', kind: 'dynamodb-item' }, '{"a":{"N":"1e"}}', /column item.*not a number/],
      [{ name: 'item', kind: 'dynamodb-item' }, '[1]', /column item does not hold a DynamoDB item/],
      [{ name: 'item', kind: 'dynamodb-item' }, 'x', /column item does not hold a DynamoDB item: not valid JSON/],
    ];
    for (const [column, cell, message] of cases) {
      const enc = dynamoIonEncoder([column], 'in.c-main.t');
      let error: unknown;
      try {
        enc.encode([cell]);
      } catch (e) {
        error = e;
      }
      expect(error, cell).toBeInstanceOf(TakeoutError);
      expect((error as TakeoutError).code).toBe('INVALID_INPUT');
      expect((error as TakeoutError).message).toMatch(message);
      expect((error as TakeoutError).message).toMatch(/^in\.c-main\.t: /);
    }
    expect(() => dynamoIonEncoder([{ name: 'item', kind: 'dynamodb-item' }], 't').encode([null])).toThrow(/column item does not hold a DynamoDB item/);
  });
});
