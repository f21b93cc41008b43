import { TakeoutError } from '../errors.js';
import type { Row } from '../model.js';
import { clevertapTs } from './clevertap.js';
import { textOfCell } from './jsonl.js';
import type { LineEncoder, RecordColumn } from './typed-records.js';

/**
 * CleverTap's XML event export: `<Events>` holding one `<Event>` per record, each
 * `<Event><ts/><eventName/><profile/><deviceInfo/><eventProps><entry><key/><value/></entry>…</eventProps></Event>`.
 * - `ts` is CleverTap's yyyyMMddHHmmss (see `clevertapTs`); `eventName` the event column's text.
 * - `profile` and `deviceInfo` hold their columns as child elements named by the column, as CleverTap's
 *   fixed fields are (`<identity>`, `<email>`); a column whose name is not an XML name is refused (USAGE).
 * - `eventProps` holds every other column as `<entry><key>column</key><value>text</value></entry>`.
 * - NULL leaves the field or entry out (XML has no NULL, and an empty element would read as '').
 * Text is escaped (`& < > " '`, and CR as `&#13;` so parsers do not turn it into LF); characters XML 1.0
 * cannot hold (C0 controls other than tab/LF/CR, U+FFFE/U+FFFF, lone surrogates) become `?`, as CleverTap's
 * character rules do for control characters.
 */
export interface ClevertapXmlOptions {
  /** The column with the event name (`eventName`). */
  eventColumn: string;
  /** The column with the event time (`ts`). */
  tsColumn: string;
  /** Columns written under `<profile>` (identity, email, phone, …). */
  profileColumns?: string[];
  /** Columns written under `<deviceInfo>`. */
  deviceColumns?: string[];
}

export const CLEVERTAP_XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<Events>\n';
export const CLEVERTAP_XML_FOOTER = '</Events>\n';

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const XML_SPECIAL = /[&<>"'\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]/;
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' };

/** Text as XML 1.0 character data: markup escaped, characters XML cannot hold as `?`. */
export function xmlText(text: string): string {
  if (!XML_SPECIAL.test(text)) return text;
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let rep: string | undefined;
    if (c < 0x20) {
      if (c === 0x0d) rep = '&#13;';
      else if (c !== 0x09 && c !== 0x0a) rep = '?';
    } else if (c === 0x26 || c === 0x3c || c === 0x3e || c === 0x22 || c === 0x27) {
      rep = ENTITIES[text[i]!];
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair: one code point, kept
        continue;
      }
      rep = '?';
    } else if (c === 0xfffe || c === 0xffff) rep = '?';
    if (rep !== undefined) {
      out += text.slice(from, i) + rep;
      from = i + 1;
    }
  }
  return out + text.slice(from);
}

/** XML 1.0 names without `:` (namespaces) and outside the BMP: NameStartChar, then NameChar (XML 1.0 fifth edition, §2.3). */
const NAME_START = 'A-Z_a-z\\u00c0-\\u00d6\\u00d8-\\u00f6\\u00f8-\\u02ff\\u0370-\\u037d\\u037f-\\u1fff\\u200c\\u200d\\u2070-\\u218f\\u2c00-\\u2fef\\u3001-\\ud7ff\\uf900-\\ufdcf\\ufdf0-\\ufffd';
// eslint-disable-next-line no-misleading-character-class -- the spec's NameChar ranges include combining marks and ZWJ on purpose
const XML_NAME = new RegExp(`^[${NAME_START}][${NAME_START}\\-.0-9\\u00b7\\u0300-\\u036f\\u203f\\u2040]*$`);


function columnIndex(columns: readonly RecordColumn[], name: string, role: string): number {
  const i = columns.findIndex((c) => c.name === name);
  if (i === -1) throw new TakeoutError('USAGE', `the ${role} column ${name} is not a column of the table (${columns.map((c) => c.name).join(', ')})`);
  return i;
}

export function clevertapXmlEncoder(columns: readonly RecordColumn[], options: ClevertapXmlOptions, origin: string): LineEncoder {
  const event = columnIndex(columns, options.eventColumn, 'event');
  const ts = columnIndex(columns, options.tsColumn, 'ts');
  const fields = (names: readonly string[] | undefined, role: string): { index: number; open: string; close: string }[] =>
    (names ?? []).map((name) => {
      if (!XML_NAME.test(name) || /^xml/i.test(name)) throw new TakeoutError('USAGE', `the ${role} column ${name} cannot be an XML element name`);
      return { index: columnIndex(columns, name, role), open: `<${name}>`, close: `</${name}>` };
    });
  const profile = fields(options.profileColumns, 'profile');
  const device = fields(options.deviceColumns, 'deviceInfo');
  const taken = new Set([event, ts, ...profile.map((f) => f.index), ...device.map((f) => f.index)]);
  const props = columns.flatMap((c, index) => (taken.has(index) ? [] : [{ index, key: `<entry><key>${xmlText(c.name)}</key><value>` }]));

  const required = (row: Row, index: number): string => {
    const cell = row[index] ?? null;
    if (cell === null || cell === '') throw new TakeoutError('INVALID_INPUT', `${origin}: column ${columns[index]!.name} is empty; every CleverTap event has one`);
    return cell;
  };
  const group = (row: Row, tag: string, list: readonly { index: number; open: string; close: string }[]): string => {
    if (list.length === 0) return `<${tag}/>`;
    let text = `<${tag}>`;
    for (const f of list) {
      const cell = row[f.index] ?? null;
      if (cell !== null) text += `${f.open}${xmlText(textOfCell(columns[f.index]!, cell, origin))}${f.close}`;
    }
    return `${text}</${tag}>`;
  };

  return {
    extension: 'xml',
    header: CLEVERTAP_XML_HEADER,
    footer: CLEVERTAP_XML_FOOTER,
    encode: (row) => {
      let text = `<Event><ts>${clevertapTs(required(row, ts), `${origin}: column ${columns[ts]!.name}`)}</ts>`;
      text += `<eventName>${xmlText(required(row, event))}</eventName>`;
      text += group(row, 'profile', profile) + group(row, 'deviceInfo', device);
      text += '<eventProps>';
      for (const p of props) {
        const cell = row[p.index] ?? null;
        if (cell !== null) text += `${p.key}${xmlText(textOfCell(columns[p.index]!, cell, origin))}</value></entry>`;
      }
      return `${text}</eventProps></Event>\n`;
    },
  };
}
