import { TakeoutError } from '../errors.js';
import type { Row } from '../model.js';
import { numberText, parseBinary, parseBoolean, parseJsonCell, type LineEncoder, type RecordColumn } from './typed-records.js';

/**
 * DynamoDB JSON, as DynamoDB's export to S3 writes it: one `{"Item":{…}}` per line, every attribute
 * as its typed wire form (`{"S":…}`, `{"N":"…"}` with the number's own digits, `{"BOOL":…}`, `{"B":base64}`,
 * `{"M":…}`, `{"L":…}`, `{"NULL":true}`). Built as text directly: 5 M items/s of objects would not keep up.
 */

/** The attribute value of one JSON value (a json/jsonb cell): objects → M, arrays → L. */
function jsonValue(value: unknown): string {
  if (value === null) return '{"NULL":true}';
  switch (typeof value) {
    case 'string':
      return `{"S":${JSON.stringify(value)}}`;
    case 'number':
      return `{"N":"${String(value)}"}`;
    case 'boolean':
      return `{"BOOL":${value}}`;
    case 'object':
      if (Array.isArray(value)) return `{"L":[${value.map(jsonValue).join(',')}]}`;
      return `{"M":{${Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `${JSON.stringify(k)}:${jsonValue(v)}`)
        .join(',')}}}`;
    default:
      return '{"NULL":true}';
  }
}

/** One cell as a DynamoDB JSON attribute value. */
export function attributeValue(column: RecordColumn, cell: string | null, origin: string): string {
  if (cell === null) return '{"NULL":true}';
  switch (column.kind) {
    case 'integer':
    case 'number':
      return `{"N":"${numberText(cell, `${origin}: column ${column.name}`)}"}`;
    case 'boolean':
      return `{"BOOL":${parseBoolean(cell)}}`;
    case 'binary':
      return `{"B":"${parseBinary(cell).toString('base64')}"}`;
    case 'json': {
      return jsonValue(parseJsonCell(cell, origin, column));
    }
    default:
      return `{"S":${JSON.stringify(cell)}}`;
  }
}

/** The item of a row: a DynamoDB source's whole `item` cell when there is one, otherwise every column. */
export function itemMap(columns: readonly RecordColumn[], names: readonly string[], row: Row, origin: string): string {
  let text = '';
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i]!;
    const cell = row[i] ?? null;
    if (column.kind === 'dynamodb-item') {
      if (cell === null || !cell.startsWith('{')) throw new TakeoutError('INVALID_INPUT', `${origin}: column ${column.name} does not hold a DynamoDB item`);
      return cell;
    }
    text += `${i === 0 ? '' : ','}${names[i]}:${attributeValue(column, cell, origin)}`;
  }
  return `{${text}}`;
}

export function dynamoJsonEncoder(columns: readonly RecordColumn[], origin: string): LineEncoder {
  const names = columns.map((c) => JSON.stringify(c.name));
  return {
    extension: 'json',
    encode: (row) => `{"Item":${itemMap(columns, names, row, origin)}}\n`,
  };
}

/** JSON-quoted column names, computed once per export. */
export function quotedNames(columns: readonly RecordColumn[]): string[] {
  return columns.map((c) => JSON.stringify(c.name));
}

export interface ChangeColumns {
  /** Indexes of the key attributes (the primary key). */
  keys: readonly number[];
  /** The column whose time is the change's time (WriteTimestampMicros). */
  changed: number;
  /** A soft-delete marker: a row where it is set (not NULL, not false) is a delete. */
  deleted?: number;
  view: 'NEW_IMAGE' | 'NEW_AND_OLD_IMAGES';
}

/** Microseconds since the epoch of a timestamp cell, for `WriteTimestampMicros`. */
export function writeMicros(cell: string | null, parse: (text: string) => Date | undefined): string {
  const date = cell === null ? undefined : parse(cell);
  return date ? `${BigInt(date.getTime()) * 1000n}` : '0';
}

/** How a change record is spelled: DynamoDB JSON, or Ion (with `$ion_1_0` lines and decimals). */
export interface ChangeCodec {
  extension: string;
  /** Field names of the columns, quoted for the format. */
  names: readonly string[];
  value(column: RecordColumn, cell: string | null, origin: string): string;
  /** `Metadata` with the change's time in microseconds. */
  metadata(micros: string): string;
  field(name: 'Metadata' | 'Keys' | 'NewImage' | 'OldImage'): string;
  line(body: string): string;
}

export function jsonChangeCodec(columns: readonly RecordColumn[]): ChangeCodec {
  return {
    extension: 'json',
    names: quotedNames(columns),
    value: attributeValue,
    metadata: (micros) => `{"WriteTimestampMicros":{"N":"${micros}"}}`,
    field: (name) => `"${name}"`,
    line: (body) => `{${body}}\n`,
  };
}

/**
 * DynamoDB incremental export records, one change per line:
 * an insert or update is `Keys` + `NewImage`; a delete (the soft-delete column set) is `Keys` + `OldImage`
 * (`Keys` alone with NEW_IMAGE), as the real format has them. An update's old image needs the row's
 * history, which a change-timestamp source does not keep: updates carry `NewImage` only.
 */
export function dynamoChangeEncoder(
  columns: readonly RecordColumn[],
  change: ChangeColumns,
  parseTime: (text: string) => Date | undefined,
  origin: string,
  codec: ChangeCodec = jsonChangeCodec(columns),
): LineEncoder {
  const { names } = codec;
  const imageIndexes = columns.map((_, i) => i).filter((i) => i !== change.deleted);
  const map = (indexes: readonly number[], row: Row): string => `{${indexes.map((i) => `${names[i]}:${codec.value(columns[i]!, row[i] ?? null, origin)}`).join(',')}}`;
  const [metadata, keys, newImage, oldImage] = [codec.field('Metadata'), codec.field('Keys'), codec.field('NewImage'), codec.field('OldImage')];
  return {
    extension: codec.extension,
    encode: (row) => {
      const head = `${metadata}:${codec.metadata(writeMicros(row[change.changed] ?? null, parseTime))},${keys}:${map(change.keys, row)}`;
      const marker = change.deleted === undefined ? null : (row[change.deleted] ?? null);
      const deleted = marker !== null && !/^(f|false|0|no|n)$/i.test(marker.trim());
      if (!deleted) return codec.line(`${head},${newImage}:${map(imageIndexes, row)}`);
      return codec.line(change.view === 'NEW_AND_OLD_IMAGES' ? `${head},${oldImage}:${map(imageIndexes, row)}` : head);
    },
  };
}
