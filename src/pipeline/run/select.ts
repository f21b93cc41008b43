import picomatch from 'picomatch';
import { TakeoutError } from '../../errors.js';
import type { ProjectDescriptor, TableDescriptor } from '../../model.js';
import { nearest } from '../suggest.js';

/**
 * Table selection: a pattern matches a table when it matches the whole table id or its bucket id
 * (`in.c-main` selects that bucket). `*` matches any run of characters, `?` one, `{a,b}` either.
 * A table is taken when it matches some --include (or none are given) and no --exclude.
 */
export function selectTables(tables: readonly TableDescriptor[], include: readonly string[], exclude: readonly string[]): TableDescriptor[] {
  const compile = (pattern: string): ((t: TableDescriptor) => boolean) => {
    const match = picomatch(pattern, { dot: true, nocase: false });
    return (t) => match(t.id) || match(t.bucketId);
  };
  const includes = include.map((p) => ({ pattern: p, test: compile(p) }));
  const excludes = exclude.map(compile);
  for (const { pattern, test } of includes) {
    if (!tables.some(test)) throw new TakeoutError('USAGE', `--include '${pattern}' matches no table`, { hint: includeHint(pattern, tables) });
  }
  return tables
    .filter((t) => (includes.length === 0 || includes.some((i) => i.test(t))) && !excludes.some((e) => e(t)))
    .sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * What to say about an --include that matches nothing: the real ids (tables and buckets) it nearly matches,
 * its literal characters mistyped (`in.c-mian.*` → in.c-main.customers, in.c-main.orders, in.c-main); else an example id.
 */
export function includeHint(pattern: string, tables: readonly TableDescriptor[]): string {
  const ids = [...tables.map((t) => t.id), ...tables.map((t) => t.bucketId)];
  const near = nearest(pattern, ids, { glob: true });
  if (near.length > 0) return `closest ids: ${near.join(', ')}`;
  const example = tables[0];
  return example ? `table ids look like ${example.id} (bucket ${example.bucketId}); --dry-run lists them` : 'the source has no table';
}

/**
 * A run that takes out nothing is a mistake (an empty folder, a wrong schema, patterns that exclude every
 * table), not a success: it is refused. A project with configurations and no table is a structure-only
 * project, which Keboola allows, and its takeout is its configurations.
 */
export function assertSomethingToTakeOut(source: string, project: ProjectDescriptor, selected: number): void {
  if (selected > 0) return;
  const configurations = project.components.reduce((n, c) => n + c.configurations.length, 0);
  if (project.tables.length === 0) {
    if (configurations > 0) return;
    const skipped = project.skipped ?? [];
    const named = skipped.slice(0, 5).map((s) => `${s.id} (${s.reason})`);
    throw new TakeoutError('USAGE', `${source} has no table and no configuration: nothing to take out`, {
      hint: named.length ? `left out: ${named.join(', ')}${skipped.length > named.length ? ` and ${skipped.length - named.length} more` : ''}` : 'check --source',
    });
  }
  throw new TakeoutError('USAGE', `--include/--exclude leave none of the ${project.tables.length} table${project.tables.length === 1 ? '' : 's'} of ${source}`, {
    hint: `see what they select with --dry-run${configurations > 0 ? '; to take out the configurations alone, use --structure-only' : ''}`,
  });
}
