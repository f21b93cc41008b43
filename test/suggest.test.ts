import { describe, expect, it } from 'vitest';
import { findTable } from '../src/commands/table-query.js';
import type { TakeoutError } from '../src/errors.js';
import { selectTables } from '../src/pipeline/run/select.js';
import { editDistance, nearest } from '../src/pipeline/suggest.js';
import type { ProjectDescriptor, TableDescriptor } from '../src/model.js';
import { DEMO_TABLES, errorLines, runCli } from './helpers/cli.js';

/** Did-you-mean for names that match nothing: --include patterns, table ids. */

const table = (id: string): TableDescriptor => ({ id, bucketId: id.slice(0, id.lastIndexOf('.')), name: id.slice(id.lastIndexOf('.') + 1), columns: ['a'], primaryKey: [] });
const TABLES = Object.keys(DEMO_TABLES).map(table);
const IDS = TABLES.map((t) => t.id);

function thrown(fn: () => unknown): TakeoutError {
  try {
    fn();
  } catch (error) {
    return error as TakeoutError;
  }
  throw new Error('did not throw');
}

describe('nearest', () => {
  it('edit distance counts a transposition as one edit', () => {
    expect(editDistance('in.c-mian', 'in.c-main')).toBe(1);
    expect(editDistance('orders', 'ordres')).toBe(1);
  });

  it('globs: * and ? match at no cost, braces are tried one by one; at most 3, nearest first', () => {
    expect(nearest('in.c-mian.*', [...IDS, 'in.c-main'], { glob: true })).toEqual(['in.c-main.customers', 'in.c-main.orders', 'in.c-main']);
    expect(nearest('in.c-{main,crn}.prodcts', IDS, { glob: true })).toEqual(['in.c-crm.products']);
    expect(nearest('in.c-main.custo?ers', IDS, { glob: true })).toEqual(['in.c-main.customers']);
    expect(nearest('*.daily_revnue', IDS, { glob: true })).toEqual(['out.c-reports.daily_revenue']);
  });

  it('names nothing that is not nearly the name', () => {
    expect(nearest('zzz', IDS, { glob: true })).toEqual([]);
    expect(nearest('in.c-sales.*', IDS, { glob: true })).toEqual([]);
  });
});

describe('--include that matches nothing', () => {
  it('lists the closest real table and bucket ids', () => {
    const error = thrown(() => selectTables(TABLES, ['in.c-mian.*'], []));
    expect(error.message).toBe("--include 'in.c-mian.*' matches no table");
    expect(error.hint).toBe('closest ids: in.c-main.customers, in.c-main.orders, in.c-main');
    expect(thrown(() => selectTables(TABLES, ['in.c-crm.prodcuts'], [])).hint).toBe('closest ids: in.c-crm.products');
  });

  it('with nothing near, shows what an id looks like', () => {
    expect(thrown(() => selectTables(TABLES, ['sales'], [])).hint).toBe(`table ids look like ${IDS[0]!} (bucket ${TABLES[0]!.bucketId}); --dry-run lists them`);
  });

  it('on the command line: exit 2 and the hint', async () => {
    const result = await runCli(['run', '--source', 'demo', '--include', 'in.c-mian.*', '--dry-run']);
    expect(result.code, result.stderr).toBe(2);
    expect(errorLines(result.stderr)).toEqual(["takeout: error: --include 'in.c-mian.*' matches no table [USAGE, exit 2]"]);
    expect(result.stderr).toContain('hint: closest ids: in.c-main.customers, in.c-main.orders, in.c-main\n');
  });
});

describe('a table id that does not exist (table export, dataset export)', () => {
  const project: ProjectDescriptor = { buckets: [], tables: TABLES, components: [] };

  it('suggests the ids a typo away', () => {
    const error = thrown(() => findTable(project, 'in.c-main.ordres'));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.hint).toBe('did you mean in.c-main.orders?');
  });

  it('else the ids holding the same table name', () => {
    expect(thrown(() => findTable(project, 'in.c-sales.orders')).hint).toBe('did you mean in.c-main.orders?');
    expect(thrown(() => findTable(project, 'in.c-sales.nothing')).hint).toBeUndefined();
  });
});
