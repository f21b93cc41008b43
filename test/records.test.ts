import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { encodeCsvRow } from '../src/formats/csv/encode.js';
import { CsvRecordParser } from '../src/formats/csv/record-parser.js';
import { numberText, parseTimestamp, recordColumns } from '../src/formats/typed-records.js';
import { parseInPieces } from './helpers/csv.js';

describe('CsvRecordParser', () => {
  it('keeps NULL (an empty unquoted field) apart from the empty string ("")', () => {
    expect(parseInPieces('"a",,""\n,"",x\n', 3)).toEqual([
      ['a', null, ''],
      [null, '', 'x'],
    ]);
  });

  it('reads quotes, commas, CR/LF inside quoted fields, CRLF row ends, a BOM, a header and a missing last newline', () => {
    const text = '\ufeff"id","note"\r\n"1","say ""hi"", then\r\nleave"\r\n2,plain';
    expect(parseInPieces(text, 2, [], true)).toEqual([
      ['1', 'say "hi", then\r\nleave'],
      ['2', 'plain'],
    ]);
  });

  it('agrees with csv-parse on quoted CSV as takeout writes it', () => {
    const rows = [['a', 'b,c', 'd"e'], ['', 'x\ny', 'ž🙂']];
    const text = rows.map((r) => encodeCsvRow(r)).join('');
    expect(parseInPieces(text, 3)).toEqual(parse(text));
  });

  it('fails on ragged rows, unterminated quotes, stray quotes and text after a closing quote, naming the record', () => {
    expect(() => parseInPieces('a,b\nc\n', 2)).toThrow(/^t\.csv:2 \(byte 4\): ragged row: record 2 has 1 field, the table has 2 columns/);
    expect(() => parseInPieces('"a,b\n', 2)).toThrow(/^t\.csv:1 \(byte 0\): unterminated quoted field in record 1/);
    expect(() => parseInPieces('a,b"c\n', 2)).toThrow(/^t\.csv:1 \(byte 3\): stray quote in record 1/);
    expect(() => parseInPieces('"a"x,b\n', 2)).toThrow(/^t\.csv:1 \(byte 3\): text after a closing quote in record 1/);
  });

  it('refuses a record larger than the bound (an unterminated quote streaming on)', () => {
    const parser = new CsvRecordParser({ columns: 1, hasHeader: false, origin: 'big.csv', maxRecordBytes: 1024 });
    expect(() => parser.push(Buffer.from(`"${'x'.repeat(2048)}`))).toThrow(/record 1 is larger than 1024 bytes/);
  });
});

describe('cell readers', () => {
  it('parseTimestamp: PostgreSQL and ISO forms, a zone or UTC, and a date alone as midnight UTC', () => {
    expect(parseTimestamp('2024-05-01 10:00:00+00')?.toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect(parseTimestamp('2024-05-01 12:00:00+02')?.toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect(parseTimestamp('2024-05-01T10:00:00.123Z')?.toISOString()).toBe('2024-05-01T10:00:00.123Z');
    expect(parseTimestamp('2024-05-01 10:00:00')?.toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect(parseTimestamp('2024-05-01')?.toISOString()).toBe('2024-05-01T00:00:00.000Z');
    expect(parseTimestamp('yesterday')).toBeUndefined();
  });

  it('numberText keeps the digits and refuses what is not a number', () => {
    expect(numberText('+12.50', 'c')).toBe('12.50');
    expect(numberText('12345678901234567890123456789012345678', 'c')).toBe('12345678901234567890123456789012345678');
    expect(numberText('1e-7', 'c')).toBe('1e-7');
    expect(() => numberText('NaN', 'c')).toThrow(/not a number DynamoDB or Ion can hold/);
    expect(() => numberText('12a', 'c')).toThrow(/'12a' is not a number/);
  });

  it('recordColumns reads the kinds from the column metadata', () => {
    const meta = (type: string, base: string): { key: string; value: string }[] => [
      { key: 'KBC.datatype.type', value: type },
      { key: 'KBC.datatype.basetype', value: base },
    ];
    const table = {
      id: 'in.c-x.t',
      bucketId: 'in.c-x',
      name: 't',
      columns: ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
      primaryKey: [],
      columnMetadata: { a: meta('integer', 'INTEGER'), b: meta('numeric', 'NUMERIC'), c: meta('boolean', 'BOOLEAN'), d: meta('jsonb', 'STRING'), e: meta('bytea', 'STRING'), f: meta('timestamptz', 'TIMESTAMP') },
    };
    expect(recordColumns(table).map((c) => c.kind)).toEqual(['integer', 'number', 'boolean', 'json', 'binary', 'timestamp', 'string']);
  });
});
