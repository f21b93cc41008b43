import { fileURLToPath } from 'node:url';
import { mistypedUrl, shown } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import type { DynamoDbSourceOptions } from './dynamodb/options.js';
import type { Source } from './source.js';
import type { NetworkOptions } from '../stores/network.js';
import { KEBOOLA_S3_ENDPOINT_ENV } from './keboola/env.js';

/**
 * The bundled demo project, with no credentials and no network: `--source demo`, or a bare `takeout run`
 * (no --source and no --dest, the README's first command). Never a default anywhere else: a takeout of
 * the demo into a real bucket, because a --source was forgotten or misspelled, must not succeed.
 */
export const DEMO_PROJECT_DIR = fileURLToPath(new URL('../../fixtures/demo-project', import.meta.url));
export const DEMO_SOURCE = 'demo';

/** TAKEOUT_* variables read outside the option specs (test stacks), so they are not warned about as unknown. */
export const OTHER_TAKEOUT_ENV: readonly string[] = [KEBOOLA_S3_ENDPOINT_ENV];

const SOURCE_KINDS = 'a folder (or dir:PATH), postgres://…, sqlite:PATH, keboola+https://STACK, dynamodb:TABLE, or demo for the bundled demo project';

/** Sources named by a URL with an authority: `postgres:/db` or `keboola+https:stack` is a typo, not a name. */
const NEEDS_SLASHES = new Set(['postgres:', 'postgresql:', 'keboola+https:', 'keboola+http:']);

export interface SourceOptions extends NetworkOptions {
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
  if (uri === undefined) throw new TakeoutError('USAGE', 'no --source given', { hint: `give --source: ${SOURCE_KINDS}` });
  if (uri.trim() === '') throw new TakeoutError('USAGE', '--source is empty', { hint: `give ${SOURCE_KINDS}` });
  if (uri === DEMO_SOURCE) {
    const { createDirSource } = await import('./dir/source.js');
    return createDirSource(DEMO_PROJECT_DIR, 'demo-project');
  }
  const scheme = /^([a-z][a-z0-9+.-]*:)/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme !== undefined && NEEDS_SLASHES.has(scheme) && !uri.slice(scheme.length).startsWith('//')) {
    throw new TakeoutError('USAGE', `--source ${shown(uri)} looks like a mistyped URL`, {
      hint: `did you mean ${shown(`${scheme}//${uri.slice(scheme.length).replace(/^\/+/, '')}`)}?`,
    });
  }
  if (scheme === 'sqlite:' && /^sqlite:\/\/(?!\/)/i.test(uri)) {
    // sqlite:///abs names /abs; sqlite://x would silently name the absolute //x.
    throw new TakeoutError('USAGE', `--source ${shown(uri)}: give sqlite:PATH (sqlite:./shop.db) or sqlite:///ABSOLUTE/PATH`);
  }
  if (scheme === 'dir:' || scheme === 'file:' || scheme === undefined || (process.platform === 'win32' && /^[a-z]:[\\/]/i.test(uri))) {
    if (scheme === undefined) {
      const mistyped = mistypedUrl(uri, '--source');
      if (mistyped) throw mistyped;
    }
    const path = scheme === 'dir:' ? uri.slice(4) : scheme === 'file:' ? fileURLToPath(uri) : uri;
    const { createDirSource } = await import('./dir/source.js');
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
    return createKeboolaSource(uri, {
      ...(options.token ? { token: options.token } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      ...(options.throttle ? { throttle: options.throttle } : {}),
    });
  }
  if (scheme === 'dynamodb:') {
    const { createDynamoDbSource } = await import('./dynamodb/source.js');
    return createDynamoDbSource(uri, options.dynamodb ?? {});
  }
  // `C:\x` on POSIX: said to be a Windows path rather than an unknown kind 'c:'.
  const windows = scheme.length === 2 ? mistypedUrl(uri, '--source') : undefined;
  if (windows) throw windows;
  throw new TakeoutError('USAGE', `--source ${shown(uri)}: unknown source kind '${scheme}'`, {
    hint: `use ${SOURCE_KINDS}${uri.includes('//') ? '' : `; write ./${uri} for a local folder of that name`}`,
  });
}
