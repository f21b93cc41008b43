/**
 * What the Keboola restore tests share: the fixture project, tokens that must never be printed, calls to the
 * Storage API test server, and the shapes of tables and configurations without what a stack assigns.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { expect, inject } from 'vitest';
import type { CliResult } from './cli.js';
import type { StorageApiServer } from '../keboola/server.js';

export const FIXTURE = fileURLToPath(new URL('../../fixtures/keboola-project', import.meta.url));
export const TOKEN_A = 'kbc-source-token-a1b2c3-SECRET';
export const TOKEN_B = 'kbc-target-token-d4e5f6-SECRET';
export const s3Endpoint = inject('s3Endpoint');
/** A component of project A that stack B does not have: its configurations are named, not restored. */
export const MISSING_COMPONENT = 'keboola.snowflake-transformation';

export async function call(api: StorageApiServer, token: string, path: string, body: unknown): Promise<Json> {
  const answer = await fetch(`${api.url}/v2/storage/${path}`, { method: 'POST', headers: { 'X-StorageApi-Token': token, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  expect(answer.status, await answer.clone().text()).toBeLessThan(300);
  return (await answer.json()) as Json;
}

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const env = (token: string, api?: StorageApiServer): Record<string, string> => ({ KBC_STORAGE_TOKEN: token, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint, ...(api?.storageEnv ?? {}) });

export function expectCode(result: CliResult, code: number): void {
  expect(result.code, `stdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr}`).toBe(code);
}

export async function json(dir: string, key: string): Promise<Json> {
  return JSON.parse(await readFile(join(dir, key), 'utf8')) as Json;
}

/** A takeout's rows of one table, from its slices (headerless gzipped CSV), sorted (a multiset). */
export async function rowsOf(dir: string, tableId: string): Promise<string[]> {
  const manifest = await json(dir, 'takeout-manifest.json');
  const table = (manifest.tables as Json[]).find((t) => t.id === tableId)!;
  const rows: string[] = [];
  for (const slice of table.slices as Json[]) rows.push(...(parse(gunzipSync(await readFile(join(dir, slice.key as string)))) as string[][]).map((r) => JSON.stringify(r)));
  return rows.sort();
}

/** A typed table's definition without what the stack adds (`canBeFiltered`). */
export function definitionShape(d: Json | undefined): Json | undefined {
  if (!d) return undefined;
  return { primaryKeysNames: d.primaryKeysNames, columns: (d.columns as Json[]).map((c) => ({ name: c.name, definition: c.definition, basetype: c.basetype })) };
}

/** What a table is, without what the stack assigns (times, uris, counts of bytes). */
export function tableShape(t: Json): Json {
  const meta = (list: unknown): Json[] => ((list as Json[] | undefined) ?? []).filter((m) => m.provider !== 'storage').map((m) => ({ key: m.key, value: m.value, provider: m.provider }));
  const columnMetadata = Object.fromEntries(Object.entries((t.columnMetadata as Json | undefined) ?? {}).map(([c, l]) => [c, meta(l)]).filter(([, l]) => (l as Json[]).length > 0));
  return { id: t.id, name: t.name, columns: t.columns, primaryKey: t.primaryKey, rowsCount: t.rowsCount, isTyped: t.isTyped, definition: definitionShape(t.definition), metadata: meta(t.metadata), columnMetadata };
}

export function configShape(c: Json): Json {
  const rows = ((c.rows as Json[] | undefined) ?? []).map((r) => ({ id: r.id, name: r.name, description: r.description, configuration: r.configuration, state: r.state, isDisabled: r.isDisabled }));
  return { id: c.id, name: c.name, description: c.description, configuration: c.configuration, state: c.state, rows, rowsSortOrder: c.rowsSortOrder, isDisabled: c.isDisabled };
}

/** GET of the test server's Storage API with a token. */
export async function list(api: StorageApiServer, token: string, path: string): Promise<Json[]> {
  return (await (await fetch(`${api.url}/v2/storage/${path}`, { headers: { 'X-StorageApi-Token': token } })).json()) as Json[];
}
