/**
 * What every part of the Storage API test server shares: the error it answers with, Keboola's timestamp
 * form, and request bodies read as the API takes them (JSON, or form fields as the older clients send).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type Json = Record<string, unknown>;

/** Answered as `{error, code, exceptionId}` with its status (the API's error body). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export const exceptionId = (): string => `exception-${randomBytes(16).toString('hex')}`;

/** Keboola's timestamp form, e.g. 2024-06-02T11:00:00+0000. */
export const kbcTime = (date = new Date()): string => date.toISOString().replace(/\.\d{3}Z$/, '+0000');

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Form fields as PHP reads them: `a[]=x&a[]=y` is a list, `a[k]=v` (and `a[0][k]=v`) nested objects,
 * everything else a string.
 */
function fromForm(text: string): Json {
  const out: Json = {};
  for (const [name, value] of new URLSearchParams(text)) {
    const parts = name.replace(/\]/g, '').split('[');
    let target: Record<string, unknown> | unknown[] = out;
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      const nextIsList = parts[i + 1] === '';
      const container = target as Record<string, unknown>;
      if (Array.isArray(target) && part === '') {
        if (last) target.push(value);
        else target.push((target = nextIsList ? [] : {}));
        if (last) break;
        continue;
      }
      if (last) {
        container[part] = value;
      } else {
        container[part] ??= nextIsList ? [] : {};
        target = container[part] as Record<string, unknown> | unknown[];
      }
    }
  }
  return out;
}

/** A POST/PUT body as parameters: JSON (`application/json`) or form fields; empty is `{}`. */
export async function readParams(req: IncomingMessage): Promise<Json> {
  const text = await readBody(req);
  if (!text.trim()) return {};
  if ((req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) return fromForm(text);
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Json;
  } catch {
    throw new HttpError(400, 'Invalid JSON body', 'storage.validation');
  }
}

/** `true`, `1`, `"1"`, `"true"` as PHP's filter_var(FILTER_VALIDATE_BOOLEAN) reads them. */
export const truthy = (value: unknown): boolean => value === true || value === 1 || value === '1' || value === 'true';

/** A JSON body field that form clients send as a JSON string (configuration, state). */
export function jsonField(value: unknown, name: string): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    throw new HttpError(400, `Invalid JSON in "${name}"`, 'storage.validation');
  }
}

/** A required non-empty string parameter. */
export function required(params: Json, name: string): string {
  const value = params[name];
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new HttpError(400, `Invalid request: ${name} - This value should not be blank.`, 'storage.validation');
  }
  const text = String(value);
  if (!text) throw new HttpError(400, `Invalid request: ${name} - This value should not be blank.`, 'storage.validation');
  return text;
}
