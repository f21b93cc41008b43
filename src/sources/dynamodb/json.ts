/** DynamoDB items as text: the whole item in DynamoDB JSON (the wire format), a key attribute as its cell. */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** For values the SDK does not model (`$unknown`): bytes as base64, as the wire has them. */
function wireReplacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  return raw instanceof Uint8Array ? base64(raw) : value;
}

function valueJson(value: AttributeValue): string {
  if (value.S !== undefined) return `{"S":${JSON.stringify(value.S)}}`;
  if (value.N !== undefined) return `{"N":${JSON.stringify(value.N)}}`;
  if (value.B !== undefined) return `{"B":"${base64(value.B)}"}`;
  if (value.BOOL !== undefined) return value.BOOL ? '{"BOOL":true}' : '{"BOOL":false}';
  if (value.NULL !== undefined) return `{"NULL":${value.NULL ? 'true' : 'false'}}`;
  if (value.M !== undefined) return `{"M":${dynamodbJson(value.M)}}`;
  if (value.L !== undefined) return `{"L":[${value.L.map(valueJson).join(',')}]}`;
  if (value.SS !== undefined) return `{"SS":${JSON.stringify(value.SS)}}`;
  if (value.NS !== undefined) return `{"NS":${JSON.stringify(value.NS)}}`;
  if (value.BS !== undefined) return `{"BS":[${value.BS.map((b) => `"${base64(b)}"`).join(',')}]}`;
  if (value.$unknown !== undefined) return `{${JSON.stringify(value.$unknown[0])}:${JSON.stringify(value.$unknown[1], wireReplacer) ?? 'null'}}`;
  return JSON.stringify(value, wireReplacer);
}

/** An item (or a map) in DynamoDB JSON, exactly as the wire has it: binary as base64, numbers as their text. */
export function dynamodbJson(item: Record<string, AttributeValue>): string {
  const parts: string[] = [];
  for (const name of Object.keys(item)) {
    const value = item[name];
    if (value !== undefined) parts.push(`${JSON.stringify(name)}:${valueJson(value)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A key attribute's cell: S as it is, N as its number text, B as base64. */
export function keyCell(value: AttributeValue | undefined): string | null {
  if (value === undefined) return null;
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return value.N;
  if (value.B !== undefined) return base64(value.B);
  return null;
}
