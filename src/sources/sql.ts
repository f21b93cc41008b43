import { TakeoutError } from '../errors.js';
import { NAME_PATTERN } from '../keboola/layout.js';
import type { TableDescriptor, TableQuery } from '../model.js';

/** Helpers shared by the SQL sources: identifiers enter SQL only through these. */

/** `"name"` with quotes doubled: the only way an identifier enters SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A database name (schema, table) as a Keboola name: letters, digits, `_` and `-`; anything else becomes `_`. */
export function keboolaName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_-]/g, '_');
  return NAME_PATTERN.test(cleaned) ? cleaned : '_';
}

/** A quoting function that first checks the name is one of the table's columns (named `flag` in the error). */
export function columnQuoter(table: Pick<TableDescriptor, 'id' | 'columns'>): (name: string, flag: string) => string {
  const known = new Set(table.columns);
  return (name, flag) => {
    if (!known.has(name)) {
      throw new TakeoutError('USAGE', `${flag}: table ${table.id} has no column "${name}"`, { hint: `columns: ${table.columns.join(', ')}` });
    }
    return quoteIdent(name);
  };
}

/** What differs between the SQL sources' SELECTs; the statement's shape is `selectSql`'s alone. */
export interface SqlDialect {
  /** The placeholder of the `n`-th bound value (1-based): `$n` in PostgreSQL, `?` in SQLite. */
  placeholder(n: number): string;
  /** The quoted, qualified table. */
  from: string;
  /** `col` as the text every value is exported as, for `--where col=value` comparisons. */
  asText(col: string): string;
  /** The bound value of a range comparison (`--where col>v`) on `column`: as given, or typed for the column. */
  rangeValue(value: string, column: string): unknown;
  /** `col >= since` for `--changed-since`: the column's instant and the bound time in comparable form. */
  changedAt(col: string): string;
  /** A time as bound, and any cast around its placeholder. */
  boundTime(at: Date): unknown;
  timeCast: string;
  /** `ASC`/`DESC` with the NULL order PostgreSQL uses (last ascending, first descending). */
  order(desc: boolean): string;
}

const RANGE_OPERATORS = { gt: '>', ge: '>=', lt: '<', le: '<=' } as const;

/**
 * The SELECT of a table export with its projection, filters, changed-window, order and limit; every value is
 * bound (pushed onto `params`), every identifier quoted through `columnQuoter`.
 */
export function selectSql(table: Pick<TableDescriptor, 'id' | 'columns'>, query: TableQuery | undefined, params: unknown[], dialect: SqlDialect): string {
  const column = columnQuoter(table);
  const columns = query?.columns?.length ? query.columns.map((c) => column(c, '--columns')) : table.columns.map(quoteIdent);
  const where: string[] = [];
  const bind = (value: unknown): string => {
    params.push(value);
    return dialect.placeholder(params.length);
  };
  for (const filter of query?.where ?? []) {
    const col = column(filter.column, '--where');
    if (filter.operator === 'eq' || filter.operator === 'ne') {
      // Compared as text, the form every value is exported in.
      const list = filter.values.map((v) => bind(v)).join(', ');
      where.push(`${dialect.asText(col)} ${filter.operator === 'eq' ? 'IN' : 'NOT IN'} (${list})`);
    } else {
      if (filter.values.length !== 1) throw new TakeoutError('USAGE', `--where ${filter.column} ${filter.operator}: takes exactly one value`);
      where.push(`${col} ${RANGE_OPERATORS[filter.operator]} ${bind(dialect.rangeValue(filter.values[0]!, filter.column))}`);
    }
  }
  if (query?.changedSince || query?.changedUntil) {
    if (!query.changedColumn) throw new TakeoutError('USAGE', '--changed-since/--changed-until need --changed-column (a timestamp column)');
    const at = dialect.changedAt(column(query.changedColumn, '--changed-column'));
    if (query.changedSince) where.push(`${at} >= ${bind(dialect.boundTime(query.changedSince))}${dialect.timeCast}`);
    if (query.changedUntil) where.push(`${at} < ${bind(dialect.boundTime(query.changedUntil))}${dialect.timeCast}`);
  }
  const order = (query?.orderBy ?? []).map((o) => `${column(o.column, '--order-by')} ${dialect.order(o.order === 'desc')}`);
  const limit = query?.limit !== undefined ? ` LIMIT ${bind(query.limit)}` : '';
  return (
    `SELECT ${columns.join(', ')} FROM ${dialect.from}` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    (order.length ? ` ORDER BY ${order.join(', ')}` : '') +
    limit
  );
}
