import { TakeoutError } from '../errors.js';
import { clevertapText, clevertapTs } from '../formats/clevertap.js';
import { clevertapXmlEncoder } from '../formats/clevertap-xml.js';
import { jsonValue, textOfCell } from '../formats/jsonl.js';
import type { ParquetFileBuilder } from '../formats/parquet.js';
import { parseTimestamp, type LineEncoder, type RecordColumn } from '../formats/typed-records.js';
import type { Row } from '../model.js';
import type { FileBuilder } from './dataset-layout.js';
import type { ClevertapLayoutOptions } from './clevertap-options.js';

/**
 * CleverTap events out of table rows (see clevertap.ts for the layout): which column goes where in an event
 * (its shape), the event's name, time and identity, and the JSON, CSV, XML and Parquet encodings of it.
 */

/** CleverTap's ts of 14 digits, yyyyMMddHHmmss (UTC). */
const TS_DIGITS = 14;
/** Epoch times of up to 11 digits are seconds, 12–13 digits milliseconds (as clevertapTs reads them). */
const EPOCH_SECONDS_MAX_DIGITS = 11;
const EPOCH_MILLIS_MAX_DIGITS = 13;

/**
 * An event time cell in epoch milliseconds, read as `clevertapTs` reads it (so the window and the written ts
 * agree), but to the millisecond: the window's bounds are, and a row must fall on one side of each.
 */
export function eventMillis(text: string, where: string): number {
  const t = text.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(t) && t.length === TS_DIGITS) {
    ms = Date.UTC(Number(t.slice(0, 4)), Number(t.slice(4, 6)) - 1, Number(t.slice(6, 8)), Number(t.slice(8, 10)), Number(t.slice(10, 12)), Number(t.slice(12, 14)));
    // Date.UTC maps years 0–99 to 1900–1999.
    if (Number(t.slice(0, 4)) < 100) ms = new Date(ms).setUTCFullYear(Number(t.slice(0, 4)));
  } else if (/^\d+$/.test(t) && t.length <= EPOCH_MILLIS_MAX_DIGITS) {
    ms = t.length <= EPOCH_SECONDS_MAX_DIGITS ? Number(t) * 1000 : Number(t);
  } else {
    ms = parseTimestamp(/^\d{4}-\d\d-\d\d$/.test(t) ? `${t}T00:00:00Z` : t)?.getTime();
  }
  if (ms === undefined || Number.isNaN(ms)) throw new TakeoutError('INVALID_INPUT', `${where}: '${text.slice(0, 40)}' is not a time CleverTap's ts can hold`);
  return ms;
}

export interface Field {
  /** Index in the exported columns. */
  index: number;
  column: RecordColumn;
}

/** Where each exported column goes in an event: the derived row is `eventName, ts, identity, profile…, device…, props…`. */
export interface Shape {
  event: number;
  ts: number;
  identity: number[];
  profile: Field[];
  device: Field[];
  props: Field[];
  /** The derived row's columns, flat (CSV and Parquet): `eventName`, `ts`, `profile.identity`, `profile.email`, … */
  flat: RecordColumn[];
}

export function shapeOf(columns: readonly RecordColumn[], o: ClevertapLayoutOptions, origin: string): Shape {
  const index = (name: string, flag: string): number => {
    const i = columns.findIndex((c) => c.name === name);
    if (i === -1) throw new TakeoutError('USAGE', `${flag} ${name} is not among the exported columns of ${origin} (${columns.map((c) => c.name).join(', ')})`);
    return i;
  };
  const event = index(o.eventColumn, '--event-column');
  const ts = index(o.tsColumn, '--ts-column');
  if (event === ts) throw new TakeoutError('USAGE', `--event-column and --ts-column are both ${o.eventColumn}`);
  const claimed = new Map<number, string>([
    [event, '--event-column'],
    [ts, '--ts-column'],
  ]);
  const claim = (name: string, flag: string, shared?: string): number => {
    const i = index(name, flag);
    const by = claimed.get(i);
    if (by !== undefined && by !== shared) throw new TakeoutError('USAGE', `${flag} ${name}: the column is already taken by ${by}`);
    claimed.set(i, by ?? flag);
    return i;
  };
  const identity = o.identityPriority.map((name) => claim(name, '--identity-priority'));
  // profile.identity is the layout's: a column of that name elsewhere would shadow it (and XML names elements by column).
  for (const name of [...o.profileColumns, ...o.deviceColumns]) {
    if (name === 'identity' && !o.identityPriority.includes(name)) throw new TakeoutError('USAGE', `column ${name}: profile.identity comes from --identity-priority; add ${name} there`);
  }
  // The priority columns are profile fields too (CleverTap's profile.email, profile.phone); one named identity only fills identity.
  const profileIndexes: number[] = [];
  for (const [k, name] of o.identityPriority.entries()) if (name.toLowerCase() !== 'identity') profileIndexes.push(identity[k]!);
  for (const name of o.profileColumns) {
    const i = claim(name, '--profile-columns', '--identity-priority');
    if (!profileIndexes.includes(i)) profileIndexes.push(i);
  }
  const device = o.deviceColumns.map((name) => claim(name, '--device-columns'));
  const field = (i: number): Field => ({ index: i, column: columns[i]! });
  const profile = profileIndexes.map(field);
  const props = columns.flatMap((_, i) => (claimed.has(i) ? [] : [field(i)]));
  const flat: RecordColumn[] = [
    { name: 'eventName', kind: 'string' },
    { name: 'ts', kind: 'integer' },
    { name: 'profile.identity', kind: 'string' },
    ...profile.map((f) => ({ name: `profile.${f.column.name}`, kind: f.column.kind })),
    ...device.map((i) => ({ name: `deviceInfo.${columns[i]!.name}`, kind: columns[i]!.kind })),
    ...props.map((f) => ({ name: `eventProps.${f.column.name}`, kind: f.column.kind })),
  ];
  return { event, ts, identity, profile, device: device.map(field), props, flat };
}

/** Names for the XML encoder's event and ts columns that no table column can take (they name no element). */
const XML_EVENT = '\u0000event';
const XML_TS = '\u0000ts';


/** One CSV field: NULL as nothing, every value quoted (so NULL and '' stay apart), quotes doubled. */
const csvField = (value: string | null): string => (value === null ? '' : `"${value.includes('"') ? value.replaceAll('"', '""') : value}"`);

/** Reads events out of source rows: the name, the time, the identity, and the whole event as a flat row. */
export class Events {
  constructor(
    private readonly columns: readonly RecordColumn[],
    readonly shape: Shape,
    private readonly origin: string,
  ) {}

  private required(row: Row, index: number): string {
    const cell = row[index] ?? null;
    if (cell === null || cell === '') throw new TakeoutError('INVALID_INPUT', `${this.origin}: column ${this.columns[index]!.name} is empty; every CleverTap event has one`);
    return cell;
  }

  name(row: Row): string {
    return clevertapText(this.required(row, this.shape.event));
  }

  ts(row: Row): string {
    const column = this.shape.ts;
    return clevertapTs(this.required(row, column), `${this.origin}: column ${this.columns[column]!.name}`);
  }

  millis(row: Row): number {
    const column = this.shape.ts;
    return eventMillis(this.required(row, column), `${this.origin}: column ${this.columns[column]!.name}`);
  }

  identity(row: Row): string | null {
    for (const i of this.shape.identity) {
      const cell = row[i] ?? null;
      if (cell !== null && cell.trim() !== '') return cell;
    }
    return null;
  }

  /** `eventName, ts, identity, profile…, deviceInfo…, eventProps…`: the columns of `shape.flat`. */
  flat(row: Row): Row {
    const out: (string | null)[] = [this.name(row), this.ts(row), this.identity(row)];
    for (const group of [this.shape.profile, this.shape.device, this.shape.props]) for (const f of group) out.push(row[f.index] ?? null);
    return out;
  }
}

export function jsonEncoder(events: Events, origin: string): LineEncoder {
  const { shape } = events;
  const members = (fields: readonly Field[]): ((row: Row) => string) => {
    const keys = fields.map((f) => `${JSON.stringify(f.column.name)}:`);
    return (row) => {
      let text = '';
      for (let i = 0; i < fields.length; i++) text += `${i === 0 ? '' : ','}${keys[i]}${jsonValue(fields[i]!.column, row[fields[i]!.index] ?? null, origin)}`;
      return text;
    };
  };
  const profile = members(shape.profile);
  const props = members(shape.props);
  const device = members(shape.device);
  const more = shape.profile.length > 0 ? ',' : '';
  return {
    extension: 'json',
    encode: (row) => {
      const identity = events.identity(row);
      return (
        `{"profile":{"identity":${identity === null ? 'null' : JSON.stringify(identity)}${more}${profile(row)}},` +
        `"ts":${Number(events.ts(row))},"eventName":${JSON.stringify(events.name(row))},` +
        `"eventProps":{${props(row)}},"deviceInfo":{${device(row)}}}\n`
      );
    },
  };
}

export function csvEncoder(events: Events, origin: string): LineEncoder {
  const flat = events.shape.flat;
  return {
    extension: 'csv',
    header: `${flat.map((c) => csvField(c.name)).join(',')}\n`,
    encode: (row) => {
      const values = events.flat(row);
      let line = '';
      for (let i = 0; i < flat.length; i++) {
        const cell = values[i] ?? null;
        line += `${i === 0 ? '' : ','}${csvField(cell === null ? null : textOfCell(flat[i]!, cell, origin))}`;
      }
      return `${line}\n`;
    },
  };
}

export function xmlEncoder(events: Events, origin: string): LineEncoder {
  const { shape } = events;
  // The flat row in the encoder's terms: elements named by the source's column names, as CleverTap's are.
  const columns: RecordColumn[] = [
    { name: XML_EVENT, kind: 'string' },
    { name: XML_TS, kind: 'string' },
    { name: 'identity', kind: 'string' },
    ...[...shape.profile, ...shape.device, ...shape.props].map((f) => f.column),
  ];
  const xml = clevertapXmlEncoder(
    columns,
    { eventColumn: XML_EVENT, tsColumn: XML_TS, profileColumns: ['identity', ...shape.profile.map((f) => f.column.name)], deviceColumns: shape.device.map((f) => f.column.name) },
    origin,
  );
  return { extension: 'xml', encode: (row) => xml.encode(events.flat(row)) };
}

/** A Parquet file of events, flattened as the CSV form; the runner keeps it under --max-file-size (see FileBuilder). */
export class EventParquet implements FileBuilder {
  /** The last row measured and its flat form, so a row is flattened once for rowBytes and add. */
  private measured: { row: Row; flat: Row } | undefined;

  constructor(
    private readonly builder: ParquetFileBuilder,
    private readonly events: Events,
  ) {}

  add(rows: readonly Row[]): void {
    this.builder.add(rows.map((row) => this.flat(row)));
    this.measured = undefined;
  }

  get boundBytes(): number {
    return this.builder.boundBytes;
  }

  rowBytes(row: Row): number {
    return this.builder.rowBytes(this.flat(row));
  }

  settle(): void {
    this.builder.settle();
  }

  finish(): Uint8Array {
    return this.builder.finish();
  }

  private flat(row: Row): Row {
    if (this.measured?.row !== row) this.measured = { row, flat: this.events.flat(row) };
    return this.measured.flat;
  }
}
