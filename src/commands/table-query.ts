import { TakeoutError } from '../errors.js';
import { nearest } from '../pipeline/suggest.js';
import { DURATION_FORMS, parseDuration } from '../units.js';
import type { ProjectDescriptor, TableDescriptor, TableQuery } from '../model.js';
import { GROUP, type OptionSpec, type OptionValues } from './options.js';

const OPERATORS: Record<string, NonNullable<TableQuery['where']>[number]['operator']> = {
  eq: 'eq', '=': 'eq', '==': 'eq',
  ne: 'ne', '!=': 'ne', '<>': 'ne',
  gt: 'gt', '>': 'gt',
  ge: 'ge', '>=': 'ge',
  lt: 'lt', '<': 'lt',
  le: 'le', '<=': 'le',
};

/** The Storage API's export options: a subset of a table (also taken by dataset exports). */
export const TABLE_QUERY_OPTIONS = [
  { key: 'columns', flags: '--columns <a,b,c>', description: 'only these columns, in this order', type: 'list', commaSeparated: true, group: GROUP.rows },
  { key: 'where', flags: '-w, --where <filter>', description: 'a filter "column op value[,value…]" with op eq ne gt ge lt le (eq/ne take several values); values are bound as parameters', type: 'list', group: GROUP.rows },
  { key: 'changedSince', flags: '--changed-since <time>', description: 'rows whose --changed-column is at or after this time (ISO 8601, unix seconds, or -2h / -3d)', type: 'string', group: GROUP.rows },
  { key: 'changedUntil', flags: '--changed-until <time>', description: 'rows whose --changed-column is before this time', type: 'string', group: GROUP.rows },
  { key: 'changedColumn', flags: '--changed-column <column>', description: 'the timestamp column --changed-since/--changed-until compare', type: 'string', group: GROUP.rows },
  { key: 'limit', flags: '--limit <n>', description: 'at most n rows', type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, group: GROUP.rows },
  { key: 'orderBy', flags: '--order-by <column[:desc]>', description: 'sort by a column (asc unless :desc)', type: 'list', group: GROUP.rows },
] as const satisfies readonly OptionSpec[];

/** The subset of a table the query options ask for. */
export type TableQueryValues = OptionValues<typeof TABLE_QUERY_OPTIONS>;

/** `col op v1,v2` → a where filter. A value list may also be a JSON array, for values with commas. */
export function parseWhere(text: string): NonNullable<TableQuery['where']>[number] {
  const match = /^\s*("(?:[^"]|"")+"|[^\s=!<>]+)\s*(eq|ne|gt|ge|lt|le|==|=|!=|<>|>=|<=|>|<)\s*(.*)$/i.exec(text);
  const operator = match ? OPERATORS[match[2]!.toLowerCase()] : undefined;
  if (!match || !operator) {
    throw new TakeoutError('USAGE', `--where '${text}': expected "column op value[,value…]" with op eq, ne, gt, ge, lt or le`);
  }
  const rawColumn = match[1]!;
  const column = rawColumn.startsWith('"') ? rawColumn.slice(1, -1).replaceAll('""', '"') : rawColumn;
  const rest = match[3]!.trim();
  let values: string[];
  if (rest.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(rest);
      if (!Array.isArray(parsed)) throw new Error('not an array');
      values = parsed.map((v) => String(v));
    } catch {
      throw new TakeoutError('USAGE', `--where '${text}': the value list is not a JSON array of strings`);
    }
  } else {
    values = rest === '' ? [''] : rest.split(',');
  }
  return { column, operator, values };
}

/** ISO 8601, unix seconds, or a time that long ago: `-` and a duration (-2h, -3d, -1w, -3 days; see parseDuration). */
export function parseTime(text: string, flag: string, now = Date.now()): Date {
  const t = text.trim();
  if (/^-\s*\d/.test(t)) {
    const ago = parseDuration(t.slice(1), flag);
    if (!ago.ok || ago.value === 0) throw new TakeoutError('USAGE', `${flag} '${text}' is not a time (ISO 8601, unix seconds, or -2h / -3d)`, { hint: `after the -, ${DURATION_FORMS}` });
    return new Date(now - ago.value);
  }
  if (/^\d{9,11}$/.test(t)) return new Date(Number(t) * 1000);
  const date = /^\d{4}-\d{2}-\d{2}/.test(t) ? new Date(t) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new TakeoutError('USAGE', `${flag} '${text}' is not a time (ISO 8601, unix seconds, or -2h / -3d)`);
  return date;
}

export function buildQuery(o: TableQueryValues): TableQuery {
  const query: TableQuery = {};
  const columns = o.columns;
  if (columns?.length) {
    if (new Set(columns).size !== columns.length) throw new TakeoutError('USAGE', '--columns names a column twice');
    query.columns = columns;
  }
  const where = o.where ?? [];
  if (where.length) query.where = where.map(parseWhere);
  if (typeof o.changedSince === 'string') query.changedSince = parseTime(o.changedSince, '--changed-since');
  if (typeof o.changedUntil === 'string') query.changedUntil = parseTime(o.changedUntil, '--changed-until');
  if (typeof o.changedColumn === 'string') query.changedColumn = o.changedColumn;
  if (typeof o.limit === 'number') query.limit = o.limit;
  const orderBy = o.orderBy ?? [];
  if (orderBy.length) {
    query.orderBy = orderBy.map((spec) => {
      const m = /^(.+?)(?:[:\s]+(asc|desc))?$/i.exec(spec.trim());
      if (!m) throw new TakeoutError('USAGE', `--order-by '${spec}': expected column or column:desc`);
      return { column: m[1]!, order: m[2]?.toLowerCase() === 'desc' ? 'desc' : 'asc' };
    });
  }
  return query;
}

/** A table by its id (`in.c-main.orders`) or, for database sources, `schema.table`. */
export function findTable(project: ProjectDescriptor, id: string): TableDescriptor {
  const exact = project.tables.find((t) => t.id === id) ?? project.exportableSkipped?.find((t) => t.id === id);
  if (exact) return exact;
  const skipped = project.skipped?.find((s) => s.id === id);
  if (skipped) throw new TakeoutError('NOT_FOUND', `${id} is left out by the source (${skipped.reason}): it is not a table that can be exported`);
  const dot = id.indexOf('.');
  if (dot > 0 && id.indexOf('.', dot + 1) === -1) {
    const [schema, name] = [id.slice(0, dot), id.slice(dot + 1)];
    const byName = project.tables.filter((t) => {
      const bucket = project.buckets.find((b) => b.id === t.bucketId);
      return (t.displayName ?? t.name) === name && (bucket?.displayName === schema || t.bucketId === `in.c-${schema}`);
    });
    if (byName.length === 1) return byName[0]!;
  }
  // The ids a few edits away (a typo), else those that hold the table name (it in another bucket or schema).
  const ids = project.tables.map((t) => t.id);
  const typos = nearest(id, ids);
  const near = typos.length > 0 ? typos : ids.filter((t) => t.includes(id.split('.').pop() ?? id)).slice(0, 3);
  throw new TakeoutError('NOT_FOUND', `table ${id} does not exist in the source`, near.length ? { hint: `did you mean ${near.join(', ')}?` } : {});
}

