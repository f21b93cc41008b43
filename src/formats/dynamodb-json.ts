import { TakeoutError } from '../errors.js';
import type { Row } from '../sources/source.js';
import { numberText, parseBinary, parseBoolean, type LineEncoder, type RecordColumn } from './records.js';

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
      let parsed: unknown;
      try {
        parsed = JSON.parse(cell);
      } catch {
        throw new TakeoutError('INVALID_INPUT', `${origin}: column ${column.name} is not valid JSON`);
      }
      return jsonValue(parsed);
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
