/**
 * The read side's helpers of the Storage API test server (server.ts): the fixture project, `include=`,
 * paging, version lists, Snowflake-style CSV lines, export filters and alias rows.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { HttpError } from './http.js';
import type { Json } from './http.js';
import type { Project, TableData } from './write-context.js';


export type Fixture = Project;

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

export async function loadFixture(dir: string): Promise<Fixture> {
  // What Keboola's backup engine reads besides buckets, tables and configurations; a fixture may lack them.
  const optional = <T>(name: string, empty: T): Promise<T> => readJson<T>(path.join(dir, name)).catch(() => empty);
  const [branchMetadata, configurationMetadata, triggers, notifications, files] = await Promise.all([
    optional<Json[]>('branch-metadata.json', []),
    optional<Record<string, Json[]>>('configuration-metadata.json', {}),
    optional<Json[]>('triggers.json', []),
    optional<Json[]>('notifications.json', []),
    optional<Json[]>('files.json', []),
  ]);
  const [token, buckets, tables, components, devBranches] = await Promise.all([
    readJson<Json>(path.join(dir, 'token.json')),
    readJson<Json[]>(path.join(dir, 'buckets.json')),
    readJson<Json[]>(path.join(dir, 'tables.json')),
    readJson<Json[]>(path.join(dir, 'components.json')),
    readJson<Json[]>(path.join(dir, 'dev-branches.json')),
  ]);
  return { token, buckets, tables, components, devBranches, branchMetadata, configurationMetadata, triggers, notifications, files };
}

// ---------------------------------------------------------------- helpers

export function includes(url: URL): Set<string> {
  return new Set(
    (url.searchParams.get('include') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

export function pick<T extends Json>(item: T, drop: string[]): Json {
  const out: Json = { ...item };
  for (const key of drop) delete out[key];
  return out;
}

export function tableForList(table: Json, inc: Set<string>): Json {
  const drop: string[] = [];
  if (!inc.has('columns')) drop.push('columns');
  if (!inc.has('buckets')) drop.push('bucket');
  if (!inc.has('metadata')) drop.push('metadata');
  if (!inc.has('columnMetadata')) drop.push('columnMetadata');
  return pick(table, drop);
}

export function page<T>(list: T[], url: URL): T[] {
  const limit = Number(url.searchParams.get('limit') ?? 100);
  const offset = Number(url.searchParams.get('offset') ?? 0);
  if (!Number.isInteger(limit) || limit < 0 || !Number.isInteger(offset) || offset < 0) {
    throw new HttpError(400, 'Invalid limit or offset', 'storage.validation');
  }
  return list.slice(offset, offset + limit);
}

export const VERSION_BASE = ['version', 'created', 'versionIdentifier', 'creatorToken', 'changeDescription', 'isDeleted'];
export const VERSION_INCLUDABLE = ['name', 'description', 'configuration', 'state', 'isDisabled'];

export function versionForList(version: Json, inc: Set<string>): Json {
  const out: Json = {};
  for (const key of VERSION_BASE) if (key in version) out[key] = version[key];
  for (const key of VERSION_INCLUDABLE) if (inc.has(key) && key in version) out[key] = version[key];
  return out;
}

/** A value quoted the way Snowflake unloads it: always in `"`, inner `"` doubled. */
export const quote = (value: string): string => `"${value.replace(/"/g, '""')}"`;
export const csvLine = (values: string[]): string => `${values.map(quote).join(',')}\n`;

export function toTime(value: string | number): number {
  if (typeof value === 'number' || /^\d+$/.test(value)) return Number(value) * 1000;
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new HttpError(400, `Invalid date "${value}"`, 'storage.validation');
  return time;
}

/** Numbers compare as numbers (or when `dataType` is numeric), everything else as strings. */
export function compare(a: string, b: string, dataType?: string): number {
  const numericType = dataType !== undefined && /^(INTEGER|DOUBLE|NUMERIC|REAL|DECIMAL|BIGINT|FLOAT)$/i.test(dataType);
  const looksNumeric = (v: string): boolean => v.trim() !== '' && !Number.isNaN(Number(v));
  if (numericType || (dataType === undefined && looksNumeric(a) && looksNumeric(b))) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * An alias serves its source's rows: only those passing its filter (storage-api-php-client
 * tests/Backend/CommonPart2/SimpleAliasTest.php, testTableAliasFilterModifications: column, values, eq|ne),
 * and only its columns when they do not follow the source's (aliasColumnsAutoSync false).
 */
export function aliasRows(table: Json, data: TableData): TableData {
  let { header, rows } = data;
  const filter = table.aliasFilter as { column: string; values: string[]; operator?: string } | null | undefined;
  if (filter) {
    const index = header.indexOf(filter.column);
    const keep = (row: string[]): boolean => filter.values.includes(row[index] ?? '') === (filter.operator !== 'ne');
    rows = rows.filter(keep);
  }
  if (table.aliasColumnsAutoSync === false) {
    const columns = table.columns as string[];
    const indexes = columns.map((c) => header.indexOf(c));
    rows = rows.map((row) => indexes.map((i) => row[i] ?? ''));
    header = columns;
  }
  return { header, rows };
}
