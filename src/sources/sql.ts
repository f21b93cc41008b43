import { TakeoutError } from '../errors.js';
import type { TableDescriptor } from './source.js';

/** Helpers shared by the SQL sources: identifiers enter SQL only through these. */

/** `"name"` with quotes doubled: the only way an identifier enters SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
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
