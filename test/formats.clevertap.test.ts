import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { clevertapText, clevertapTs } from '../src/formats/clevertap.js';
import { clevertapXmlEncoder, xmlText, type ClevertapXmlOptions } from '../src/formats/clevertap-xml.js';
import type { Row } from '../src/model.js';
import type { RecordColumn } from '../src/formats/typed-records.js';
import { TakeoutError } from '../src/errors.js';

const codePoints = (s: string): number => [...s].length;

describe('CleverTap character rules', () => {
  it('turns whitespace, tab, slash and NUL into -, other controls into ?, and keeps emoji and other UTF-8', () => {
    expect(clevertapText('App Launched')).toBe('App-Launched');
    expect(clevertapText('a\tb/c\0d\ne\r\u00a0\u3000')).toBe('a-b-c-d-e---');
    expect(clevertapText('x\u0001\u001f\u007f\u0085\u009fy')).toBe('x?????y');
    expect(clevertapText('Nákup 🎉👩‍💻 日本')).toBe('Nákup-🎉👩‍💻-日本');
    expect(clevertapText('lone\ud800')).toBe('lone?');
    expect(clevertapText('Charged')).toBe('Charged');
  });

  it('never leaves whitespace, /, NUL or C0/C1 controls and keeps the number of code points (property)', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.constantFrom(' ', '\t', '/', '\0', '\n', '\u0001', '\u007f', '\u0085', '\u009f', '\u00a0', '\u2028', 'a', '🎉', 'ž', '\ud800') }),
    );
    fc.assert(
      fc.property(text, (s) => {
        const out = clevertapText(s);
        // eslint-disable-next-line no-control-regex -- what must never appear
        expect(out).not.toMatch(/[\s/\x00-\x1f\x7f-\x9f]/);
        expect(codePoints(out)).toBe(codePoints(s));
        expect(clevertapText(out)).toBe(out);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads event times as CleverTap ts (yyyyMMddHHmmss, UTC)', () => {
    expect(clevertapTs('20240501103000', 'ts')).toBe('20240501103000');
    expect(clevertapTs('2024-05-01 10:30:00+02', 'ts')).toBe('20240501083000');
    expect(clevertapTs('2024-05-01T10:30:00Z', 'ts')).toBe('20240501103000');
    expect(clevertapTs('2024-05-01 10:30:00', 'ts')).toBe('20240501103000');
    expect(clevertapTs('2024-05-01', 'ts')).toBe('20240501000000');
    expect(clevertapTs('1714559400', 'ts')).toBe('20240501103000');
    expect(clevertapTs('1714559400123', 'ts')).toBe('20240501103000');
    expect(() => clevertapTs('yesterday', 'in.c-main.events: column ts')).toThrow(/in\.c-main\.events: column ts: 'yesterday' is not a time/);
  });
});

const columns: RecordColumn[] = [
  { name: 'event', kind: 'string' },
  { name: 'ts', kind: 'timestamp' },
  { name: 'identity', kind: 'string' },
  { name: 'email', kind: 'string' },
  { name: 'os', kind: 'string' },
  { name: 'amount', kind: 'number' },
  { name: 'paid', kind: 'boolean' },
  { name: 'cart', kind: 'json' },
  { name: 'note', kind: 'string' },
  { name: 'a b & <c>', kind: 'string' },
];
const options: ClevertapXmlOptions = { eventColumn: 'event', tsColumn: 'ts', profileColumns: ['identity', 'email'], deviceColumns: ['os'] };

/** The whole file as the encoder's user writes it, parsed by fast-xml-parser (validated first). */
function parseFile(rows: Row[], cols = columns, opts = options): { ts: string; eventName: string; profile: unknown; deviceInfo: unknown; eventProps: unknown }[] {
  const enc = clevertapXmlEncoder(cols, opts, 'in.c-main.events');
  const xml = `${enc.header ?? ''}${rows.map((r) => enc.encode(r)).join('')}${enc.footer ?? ''}`;
  expect(XMLValidator.validate(xml)).toBe(true);
  const parser = new XMLParser({
    parseTagValue: false,
    trimValues: false,
    htmlEntities: true,
    isArray: (name) => name === 'Event' || name === 'entry',
  });
  const doc = parser.parse(xml) as { Events: { Event?: { ts: string; eventName: string; profile: unknown; deviceInfo: unknown; eventProps: unknown }[] } | '' };
  return doc.Events === '' ? [] : (doc.Events.Event ?? []);
}

const entries = (props: unknown): [string, string][] =>
  props === '' ? [] : ((props as { entry: { key: string; value: string }[] }).entry ?? []).map((e) => [String(e.key), String(e.value)]);

describe('CleverTap XML encoder', () => {
  it('writes <Events> with one <Event> per record: ts, eventName, profile, deviceInfo and eventProps entries', () => {
    const enc = clevertapXmlEncoder(columns, options, 't');
    expect(enc.extension).toBe('xml');
    expect(enc.header).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<Events>\n');
    expect(enc.footer).toBe('</Events>\n');
    const events = parseFile([
      ['Charged', '2024-05-01 10:30:00+00', 'u1', 'u1@example.com', 'iOS', '19.90', 't', '{"items": [1, 2]}', 'Tom & Jerry <3 "quotes" \'apos\'', 'x'],
      ['App Launched', '20240502000000', 'u2', null, null, null, null, null, null, null],
    ]);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ ts: '20240501103000', eventName: 'Charged', profile: { identity: 'u1', email: 'u1@example.com' }, deviceInfo: { os: 'iOS' } });
    expect(entries(events[0]!.eventProps)).toEqual([
      ['amount', '19.90'],
      ['paid', 'true'],
      ['cart', '{"items": [1, 2]}'],
      ['note', 'Tom & Jerry <3 "quotes" \'apos\''],
      ['a b & <c>', 'x'],
    ]);
    // NULL leaves the field or entry out.
    expect(events[1]).toMatchObject({ ts: '20240502000000', eventName: 'App Launched', profile: { identity: 'u2' }, deviceInfo: '' });
    expect(entries(events[1]!.eventProps)).toEqual([]);
  });

  it('writes an empty file as a well-formed document', () => {
    expect(parseFile([])).toEqual([]);
  });

  it('keeps any text, with characters XML 1.0 cannot hold turned into ? (property)', () => {
    const cols: RecordColumn[] = [
      { name: 'event', kind: 'string' },
      { name: 'ts', kind: 'string' },
      { name: 'value', kind: 'string' },
    ];
    // eslint-disable-next-line no-control-regex -- what XML 1.0 cannot hold
    const expected = (s: string): string => s.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '?');
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1 }), fc.string({ unit: 'binary' }), (event, value) => {
        const [e] = parseFile([[event, '20240501103000', value]], cols, { eventColumn: 'event', tsColumn: 'ts' });
        expect(String(e!.eventName)).toBe(expected(event));
        expect(entries(e!.eventProps)).toEqual([['value', expected(value)]]);
      }),
      { numRuns: 500 },
    );
  });

  it('escapes markup and keeps CR, tab and LF', () => {
    expect(xmlText(`<a href="x">&'\r\n\t</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;&#13;\n\t&lt;/a&gt;');
    expect(xmlText('plain 🎉')).toBe('plain 🎉');
  });

  it('refuses options that do not fit the table, and events without a name or time', () => {
    const usage = (opts: ClevertapXmlOptions): unknown => {
      try {
        clevertapXmlEncoder(columns, opts, 't');
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(usage({ eventColumn: 'nope', tsColumn: 'ts' })).toMatchObject({ code: 'USAGE', message: expect.stringMatching(/event column nope/) });
    expect(usage({ eventColumn: 'event', tsColumn: 'ts', profileColumns: ['a b & <c>'] })).toMatchObject({ code: 'USAGE', message: expect.stringMatching(/cannot be an XML element name/) });
    const enc = clevertapXmlEncoder(columns, options, 'in.c-main.events');
    const row = (event: string | null, ts: string | null): Row => [event, ts, null, null, null, null, null, null, null, null];
    expect(() => enc.encode(row(null, '20240501103000'))).toThrow(/in\.c-main\.events: column event is empty/);
    expect(() => enc.encode(row('e', ''))).toThrow(/column ts is empty/);
    expect(() => enc.encode(row('e', 'soon'))).toThrow(TakeoutError);
    const bad = [...row('e', '20240501103000')];
    bad[5] = 'lots';
    expect(() => enc.encode(bad)).toThrow(/column amount: 'lots' is not a number/);
  });
});
