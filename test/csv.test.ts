import { describe, expect, it } from 'vitest';
import { CsvRowEncoder, encodeCsvRow, encodeHeader } from '../src/formats/csv/encode.js';
import { parseHeader } from '../src/formats/csv/header.js';
import { CsvPassThrough } from '../src/formats/csv/pass-through.js';
import { RecordCounter } from '../src/formats/csv/record-counter.js';
import { CsvScanner } from '../src/formats/csv/scanner.js';
import { TakeoutError } from '../src/errors.js';
import { failure, joined, minimalCsv, records, scan, type Scanner } from './helpers/csv.js';

describe('CSV scanners', () => {
  const makers: [string, (columns: number, hasHeader?: boolean, extra?: object) => Scanner][] = [
    ['pass-through', (columns, hasHeader = true, extra = {}) => new CsvPassThrough({ columns, hasHeader, origin: 'test.csv', ...extra })],
    ['re-quoting', (columns, hasHeader = true, extra = {}) => new CsvScanner({ columns, hasHeader, origin: 'test.csv', ...extra })],
  ];

  for (const [name, make] of makers) {
    describe(name, () => {
      it('cuts blocks at the same rows whatever the chunking (deterministic slices)', () => {
        const rows = Array.from({ length: 500 }, (_, i) => [String(i), `name ${i}, "q"`, i % 7 === 0 ? 'multi\nline' : 'x']);
        const text = Buffer.from(minimalCsv([['id', 'name', 'note'], ...rows], '\n'));
        const reference = scan(() => make(3, true, { blockBytes: 1000 }), text).map((b) => b.data.toString('hex'));
        expect(reference.length).toBeGreaterThan(5);
        for (const pieces of [[1], [7, 3], [999], [64, 1, 2048]]) {
          expect(scan(() => make(3, true, { blockBytes: 1000 }), text, pieces).map((b) => b.data.toString('hex'))).toEqual(reference);
        }
      });

      it('honours blockRows', () => {
        const text = Buffer.from('a\n1\n2\n3\n4\n5\n');
        const blocks = scan(() => make(1, true, { blockRows: 2 }), text);
        expect(blocks.map((b) => b.rows)).toEqual([2, 2, 1]);
      });

      it('adds a final newline that the file lacks', () => {
        expect(records(joined(scan(() => make(2), Buffer.from('a,b\n1,2\n3,4'))))).toEqual([
          ['1', '2'],
          ['3', '4'],
        ]);
      });

      it('drops blank lines at the very end, refuses them in the middle', () => {
        expect(records(joined(scan(() => make(2), Buffer.from('a,b\n1,2\n\n\r\n'))))).toEqual([['1', '2']]);
        expect(() => scan(() => make(2), Buffer.from('a,b\n1,2\n\n3,4\n'))).toThrow(/ragged row: record 2/);
      });

      it('names the record of a ragged row', () => {
        const error = (() => {
          try {
            scan(() => make(3), Buffer.from('id,name,amount\n1,a,2\n2,b,3\n3,c,4\n4,d,5,6\n'));
          } catch (e) {
            return e;
          }
        })();
        expect(error).toBeInstanceOf(TakeoutError);
        expect((error as TakeoutError).code).toBe('INVALID_INPUT');
        expect((error as TakeoutError).message).toBe('test.csv:5 (byte 33): ragged row: record 4 has 4 fields, the header has 3');
      });

      it('refuses an unterminated quote', () => {
        expect(() => scan(() => make(2), Buffer.from('id,text\n1,"never closed\n2,x\n'))).toThrow(/unterminated quoted field/);
      });

      it('refuses text after a closing quote', () => {
        expect(() => scan(() => make(2), Buffer.from('a,b\n"x"y,1\n'))).toThrow(/after a closing quote/);
      });

      it('refuses a record larger than the limit', () => {
        const big = Buffer.concat([Buffer.from('a,b\n1,"'), Buffer.alloc(300_000, 0x61)]);
        expect(() => scan(() => make(2, true, { maxRecordBytes: 100_000 }), big, [65_536])).toThrow(/larger than 100000 bytes/);
      });
    });
  }

  it('pass-through leaves bytes as they are, but for \\r\\n row ends, however chunked', () => {
    const input = Buffer.from('a,b,c\r\n1,plain,"quoted, with comma"\r\n2,,"x\r\ny"\n3,"",z\r\n');
    for (const pieces of [[input.length], [1], [2, 3], [5, 1, 7]]) {
      expect(joined(scan(() => new CsvPassThrough({ columns: 3, hasHeader: true, origin: 't' }), input, pieces))).toBe(
        '1,plain,"quoted, with comma"\n2,,"x\r\ny"\n3,"",z\n',
      );
    }
  });

  it('pass-through refuses a stray quote inside an unquoted field', () => {
    expect(() => scan(() => new CsvPassThrough({ columns: 2, hasHeader: true, origin: 't' }), Buffer.from('a,b\n5" screen,1\n'))).toThrow(
      /stray quote/,
    );
  });

  it('re-quoting quotes every value and keeps a stray quote as a literal', () => {
    const out = joined(scan(() => new CsvScanner({ columns: 3, hasHeader: true, origin: 't', lineEnding: '\r\n' }), Buffer.from('a,b,c\n5" screen,,"x"\n')));
    expect(out).toBe('"5"" screen","","x"\r\n');
  });
});

describe('CSV errors name the line and the byte offset in the file', () => {
  const makers: [string, (columns: number) => Scanner][] = [
    ['pass-through', (columns) => new CsvPassThrough({ columns, hasHeader: true, origin: 'in.c-main/t.csv' })],
    ['re-quoting', (columns) => new CsvScanner({ columns, hasHeader: true, origin: 'in.c-main/t.csv' })],
  ];

  for (const [name, make] of makers) {
    it(`${name}: a blank line inside the file is named where it is, not where the next row is`, () => {
      const input = Buffer.from('a,b\n1,2\n\n3,4\n');
      expect(failure(() => make(2), input, [3]).message).toBe('in.c-main/t.csv:3 (byte 8): ragged row: record 2 is a blank line, the header has 2 fields');
    });

    it(`${name}: an oversized record is named at its start`, () => {
      const scanner = name === 'pass-through'
        ? new CsvPassThrough({ columns: 1, hasHeader: true, origin: 'big.csv', maxRecordBytes: 1024 })
        : new CsvScanner({ columns: 1, hasHeader: true, origin: 'big.csv', maxRecordBytes: 1024 });
      scanner.push(Buffer.from('h\nok\n'));
      const push = (): void => {
        scanner.push(Buffer.from('"'));
        for (let i = 0; i < 8; i++) scanner.push(Buffer.from('x'.repeat(500)));
      };
      expect(push).toThrow(/^big\.csv:3 \(byte 5\): record 2 is larger than 1024 bytes/);
    });
  }

  it('pass-through: a stray quote is named where it is, with a hint at --quote-all', () => {
    const input = Buffer.from('id,size\n1,5 in\n2,5" screen\n');
    for (const pieces of [[input.length], [1], [7, 3]]) {
      const error = failure(() => new CsvPassThrough({ columns: 2, hasHeader: true, origin: 'in.c-main/tv.csv' }), input, pieces);
      expect(error.message).toBe('in.c-main/tv.csv:3 (byte 18): stray quote inside an unquoted field in record 2');
      expect(error.hint).toContain('--quote-all reads it as a literal quote');
    }
  });
});

describe('CSV encoding', () => {
  it('encodes rows with every value quoted and NULL as empty', () => {
    expect(encodeCsvRow(['a', null, 'say "hi"', ''])).toBe('"a","","say ""hi""",""\n');
    expect(encodeHeader(['id', 'na"me'])).toBe('"id","na""me"\n');
  });

  it('row encoder refuses a row of the wrong width', () => {
    const encoder = new CsvRowEncoder({ columns: 2, origin: 'in.c-main.t' });
    expect(() => encoder.push(['only one'])).toThrow(/in.c-main.t: row 1 has 1 value, the table has 2 columns/);
  });

  it('parses a header with quotes, BOM and CRLF', () => {
    expect(parseHeader(Buffer.from('\uFEFF"id","na""me",x\r\n1,2,3'))).toEqual({ columns: ['id', 'na"me', 'x'] });
    expect(parseHeader(Buffer.from('no newline yet'))).toBeUndefined();
  });

  it('counts records in canonical CSV, newlines inside quotes excluded', () => {
    const counter = new RecordCounter();
    const text = Buffer.from('"a","multi\nline"\n"b",""""\n"c","x"');
    for (let i = 0; i < text.length; i += 3) counter.push(text.subarray(i, i + 3));
    expect(counter.end()).toBe(3);
  });
});
