import { TakeoutError } from '../errors.js';
import type { Target } from './target.js';

/**
 * TARGET forms → targets, each module imported only when used, so `takeout --help` (and a restore into
 * SQLite) loads no PostgreSQL or DuckDB driver. `keboola+https://STACK` joins here with its own module.
 */
export const TARGET_FORMS = 'sqlite:PATH, duckdb:PATH or postgres://user@host:5432/db';

export type TargetKind = 'sqlite' | 'postgres' | 'duckdb';

export function targetKind(target: string): { kind: TargetKind; location: string } {
  if (/^postgres(ql)?:\/\//i.test(target)) return { kind: 'postgres', location: target };
  const match = /^(sqlite|duckdb):(.+)$/i.exec(target);
  if (match) return { kind: match[1]!.toLowerCase() as TargetKind, location: match[2]! };
  throw new TakeoutError('USAGE', `--to ${JSON.stringify(target)} is not a restore target`, { hint: `give ${TARGET_FORMS}` });
}

export async function openTarget(target: string): Promise<Target> {
  const { kind, location } = targetKind(target);
  switch (kind) {
    case 'sqlite':
      return (await import('./sqlite.js')).createSqliteTarget(location);
    case 'postgres':
      return (await import('./postgres.js')).createPostgresTarget(location);
    case 'duckdb':
      return (await import('./duckdb.js')).createDuckdbTarget(location);
  }
}
