import { fileURLToPath } from 'node:url';
import { TakeoutError } from '../errors.js';
import type { DynamoDbSourceOptions } from './dynamodb.js';
import type { Source } from './source.js';

/** The bundled demo project: `takeout run` with no --source takes it out, with no credentials and no network. */
export const DEMO_PROJECT_DIR = fileURLToPath(new URL('../../fixtures/demo-project', import.meta.url));

export interface SourceOptions {
  token?: string;
  /** Database sources: only these schemas. */
  schemas?: readonly string[];
  /** `dynamodb:` sources: region, endpoint, credentials, scan segments. */
  dynamodb?: DynamoDbSourceOptions;
  /** Warnings a source gives when it is opened (e.g. a Keboola token over plain http), for the reporter. */
  onWarning?: (message: string) => void;
}

/** A source by URI scheme; an adapter's module is loaded only when a source of its kind is opened. */
export async function openSource(uri: string | undefined, options: SourceOptions = {}): Promise<Source> {
  if (uri === undefined || uri === '' || uri === 'demo') {
    const { createDirSource } = await import('./dir.js');
    return createDirSource(DEMO_PROJECT_DIR, 'demo-project');
  }
  const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === 'dir:' || scheme === 'file:' || scheme === undefined || /^[a-z]:[\\/]/i.test(uri)) {
    const path = scheme === 'dir:' ? uri.slice(4) : scheme === 'file:' ? fileURLToPath(uri) : uri;
    const { createDirSource } = await import('./dir.js');
    return createDirSource(path, path);
  }
  if (scheme === 'postgres:' || scheme === 'postgresql:') {
    const { createPostgresSource } = await import('./postgres.js');
    return createPostgresSource(uri, options.schemas ? { schemas: options.schemas } : {});
  }
  if (scheme === 'sqlite:') {
    const { createSqliteSource, sqlitePath } = await import('./sqlite.js');
    return createSqliteSource(sqlitePath(uri), options.schemas ? { schemas: options.schemas } : {});
  }
  if (scheme === 'keboola+https:' || scheme === 'keboola+http:') {
    const { createKeboolaSource } = await import('./keboola/source.js');
    return createKeboolaSource(uri, { ...(options.token ? { token: options.token } : {}), ...(options.onWarning ? { onWarning: options.onWarning } : {}) });
  }
  if (scheme === 'dynamodb:') {
    const { createDynamoDbSource } = await import('./dynamodb.js');
    return createDynamoDbSource(uri, options.dynamodb ?? {});
  }
  throw new TakeoutError('USAGE', `--source '${uri}': unknown source kind '${scheme}'`, {
    hint: 'use a folder path (or dir:PATH); see takeout run --help',
  });
}
