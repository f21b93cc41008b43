import { TakeoutError } from '../errors.js';
import { recordBatches } from '../formats/record-batches.js';
import type { OpenTableOptions, Source } from './source.js';
import type { ProjectDescriptor, Row, TableBody, TableDescriptor } from '../model.js';

/**
 * One table read from several tables of a source, one after another, with a column naming the part each
 * row came from: Amazon Personalize's records imported in bulk and put one by one, kept in a project
 * folder as `bulk/<name>.csv` and `put/<name>.csv`. The parts must have the same columns.
 */
export function unionTable(parts: readonly { label: string; table: TableDescriptor }[], originColumn: string): TableDescriptor {
  const first = parts[0];
  if (!first) throw new TakeoutError('USAGE', 'no tables to read as one');
  for (const part of parts.slice(1)) {
    if (part.table.columns.join('\u0000') !== first.table.columns.join('\u0000')) {
      throw new TakeoutError('INVALID_INPUT', `${part.table.id} and ${first.table.id} have different columns (${part.table.columns.join(', ')} vs ${first.table.columns.join(', ')}): they cannot be read as one table`);
    }
  }
  if (first.table.columns.includes(originColumn)) throw new TakeoutError('USAGE', `${first.table.id} already has a column ${originColumn}`);
  // Read as rows, the union has no bytes read to measure against its parts' file sizes.
  const { dataSizeIsRead: _read, ...table } = first.table;
  return {
    ...table,
    columns: [...first.table.columns, originColumn],
    ...(first.table.dataSizeBytes !== undefined ? { dataSizeBytes: parts.reduce((n, p) => n + (p.table.dataSizeBytes ?? 0), 0) } : {}),
    ...(first.table.rowsCount !== undefined ? { rowsCount: parts.reduce((n, p) => n + (p.table.rowsCount ?? 0), 0) } : {}),
  };
}

/** A source whose `openTable` of the union table reads every part in turn, each row with its part's label. */
export function unionSource(source: Source, project: ProjectDescriptor, union: TableDescriptor, parts: readonly { label: string; table: TableDescriptor }[]): Source {
  return {
    description: source.description,
    ...(source.localPath !== undefined ? { localPath: source.localPath } : {}),
    project: async () => project,
    async openTable(table: TableDescriptor, options: OpenTableOptions): Promise<TableBody> {
      if (table.id !== union.id) return source.openTable(table, options);
      // Column projection happens after the union: each part is read whole, the origin appended.
      const { columns: _projection, ...query } = options.query ?? {};
      async function* rows(): AsyncIterable<Row> {
        for (const part of parts) {
          const body = await source.openTable(part.table, { ...options, ...(Object.keys(query).length > 0 ? { query } : {}) });
          for await (const batch of recordBatches(body, part.table.columns.length, options.signal)) {
            for (const row of batch) yield [...row, part.label];
          }
        }
      }
      const projection = options.query?.columns;
      if (!projection) return { kind: 'rows', rows: rows() };
      const indexes = projection.map((name) => union.columns.indexOf(name));
      return {
        kind: 'rows',
        rows: (async function* () {
          for await (const row of rows()) yield indexes.map((i) => row[i] ?? null);
        })(),
      };
    },
    ...(source.close ? { close: () => source.close!() } : {}),
  };
}
