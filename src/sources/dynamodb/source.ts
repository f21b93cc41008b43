/**
 * DynamoDB tables as a source: `dynamodb:TABLE` (one table) or `dynamodb:` (every table of the account
 * in the region, listed with ListTables). All tables go into bucket `in.c-dynamodb`; a table's columns are
 * its key attributes (partition key, then sort key) and `item`, the whole item in DynamoDB JSON (the wire
 * format: `{"pk":{"S":"a"},"n":{"N":"1"},"b":{"B":"<base64>"}}`), so nothing is lost and the items can be
 * written back exactly.
 *
 * Data comes from a parallel scan: `segments` Scan calls (Segment/TotalSegments), each paging with
 * ExclusiveStartKey, interleaved into one stream of rows. Rows come in no particular order. A scan is not
 * a point-in-time snapshot: an item written while the scan runs may or may not be seen, but every item that
 * exists for the whole scan is seen exactly once.
 *
 * Like src/stores/s3.ts this folder imports `@aws-sdk/*`; the registry loads it with a dynamic
 * import, so the CLI pays for the SDK only when a dynamodb: source is used.
 */
import { TakeoutError } from '../../errors.js';
import { registerSecret } from '../../secrets.js';
import { configuredEndpoint, displayEndpoint } from '../../aws/endpoints.js';
import { ENDPOINT_EXAMPLE } from './client.js';
import { listProject } from './listing.js';
import { DEFAULT_SEGMENTS, MAX_SEGMENTS, RETRY_BASE_MS, RETRY_CAP_MS, RETRY_MAX_ATTEMPTS, type DynamoDbSourceOptions } from './options.js';
import { scanRows } from './scan.js';
import type { DynamoDbState } from './state.js';
import { dynamodbTableName, plannedColumns } from './table.js';
import type { OpenTableOptions, ProjectOptions, Source } from '../source.js';
import type { ProjectDescriptor, TableBody, TableDescriptor } from '../../model.js';

/** The source's settings checked and its state made; nothing is sent until the project is listed. */
function initialState(uri: string, options: DynamoDbSourceOptions): DynamoDbState {
  const only = dynamodbTableName(uri);
  const description = only === undefined ? 'dynamodb:' : `dynamodb:${only}`;
  const segments = options.segments ?? DEFAULT_SEGMENTS;
  if (!Number.isInteger(segments) || segments < 1 || segments > MAX_SEGMENTS) {
    throw new TakeoutError('USAGE', `--segments ${segments}: give a whole number from 1 to ${MAX_SEGMENTS}`);
  }
  const consistentRead = options.consistentRead === true;
  const retry = {
    baseMs: options.retry?.baseMs ?? RETRY_BASE_MS,
    capMs: options.retry?.capMs ?? RETRY_CAP_MS,
    maxAttempts: options.retry?.maxAttempts ?? RETRY_MAX_ATTEMPTS,
  };
  registerSecret(options.secretAccessKey);
  registerSecret(options.sessionToken);
  // AWS_ENDPOINT_URL(_DYNAMODB) and the profile's endpoint_url (services section first), as the aws CLI reads them.
  const configured = options.endpointUrl === undefined ? configuredEndpoint('dynamodb', options.profile) : undefined;
  const endpointUrl = options.endpointUrl ?? configured?.url;
  const endpoint = endpointUrl === undefined ? undefined : displayEndpoint(endpointUrl, configured ? `endpoint_url from ${configured.origin}` : '--dynamodb-endpoint-url', ENDPOINT_EXAMPLE);
  return { description, only, options, segments, consistentRead, retry, endpoint, region: '', client: undefined, closed: false, tables: new Map(), scans: new Set() };
}

async function openTable(state: DynamoDbState, table: TableDescriptor, open: OpenTableOptions): Promise<TableBody> {
  if (state.closed) throw new TakeoutError('FAILED', `${state.description}: the source is closed`);
  const found = state.tables.get(table.id);
  if (!found || !state.client) throw new TakeoutError('NOT_FOUND', `${state.description}: no table ${table.id}`);
  const columns = plannedColumns(state.description, found, open.query);
  return { kind: 'rows', rows: scanRows(state, state.client, found, columns, open.query?.limit, open.signal) };
}

async function close(state: DynamoDbState): Promise<void> {
  if (state.closed) return;
  state.closed = true;
  for (const scan of state.scans) scan.abort();
  state.client?.destroy();
  state.client = undefined;
}

export function createDynamoDbSource(uri: string, options: DynamoDbSourceOptions = {}): Source {
  const state = initialState(uri, options);
  return {
    description: state.description,
    project: (projectOptions: ProjectOptions = {}): Promise<ProjectDescriptor> => listProject(state, projectOptions.signal),
    openTable: (table: TableDescriptor, open: OpenTableOptions): Promise<TableBody> => openTable(state, table, open),
    close: (): Promise<void> => close(state),
  };
}
