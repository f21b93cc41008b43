import { TakeoutError } from '../errors.js';
import { KEBOOLA_S3_ENDPOINT_ENV } from '../sources/keboola/env.js';
import type { RequestLogger } from '../stores/network.js';
import type { Target } from './target.js';

/**
 * TARGET forms → targets, each module imported only when used, so `takeout --help` (and a restore into
 * SQLite) loads no PostgreSQL or DuckDB driver, and a restore into a database no cloud SDK.
 */
export const TARGET_FORMS = 'sqlite:PATH, duckdb:PATH, postgres://user@host:5432/db or keboola+https://STACK';

export type TargetKind = 'sqlite' | 'postgres' | 'duckdb' | 'keboola';

export function targetKind(target: string): { kind: TargetKind; location: string } {
  if (/^postgres(ql)?:\/\//i.test(target)) return { kind: 'postgres', location: target };
  if (/^keboola\+https?:\/\//i.test(target)) return { kind: 'keboola', location: target };
  const match = /^(sqlite|duckdb):(.+)$/i.exec(target);
  if (match) return { kind: match[1]!.toLowerCase() as TargetKind, location: match[2]! };
  throw new TakeoutError('USAGE', `--to ${JSON.stringify(target)} is not a restore target`, { hint: `give ${TARGET_FORMS}` });
}

export interface TargetOptions {
  /** Keboola: the Storage API token (else KBC_STORAGE_TOKEN). */
  token?: string;
  /** What the run goes on with but the user must hear (skipped buckets, values to re-enter). */
  warn?: (message: string) => void;
  /** Keboola: Ctrl-C stops waiting for a Storage job (--resume goes on from what it left). */
  signal?: AbortSignal;
  /** Keboola: each Storage API exchange, for --debug. */
  onRequest?: RequestLogger;
}

export async function openTarget(target: string, options: TargetOptions = {}): Promise<Target> {
  const { kind, location } = targetKind(target);
  switch (kind) {
    case 'sqlite':
      return (await import('./sqlite.js')).createSqliteTarget(location);
    case 'postgres':
      return (await import('./postgres.js')).createPostgresTarget(location);
    case 'duckdb':
      return (await import('./duckdb.js')).createDuckdbTarget(location);
    case 'keboola': {
      const s3Endpoint = process.env[KEBOOLA_S3_ENDPOINT_ENV];
      return (await import('./keboola/target.js')).createKeboolaTarget(location, {
        ...(options.token ? { token: options.token } : {}),
        ...(s3Endpoint ? { s3Endpoint } : {}),
        warn: options.warn ?? (() => undefined),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      });
    }
  }
}
