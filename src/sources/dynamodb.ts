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
 * Like src/stores/s3.ts this module imports `@aws-sdk/*`; the registry loads it with a dynamic
 * import, so the CLI pays for the SDK only when a dynamodb: source is used.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeTableCommand, DynamoDBClient, ListTablesCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { AttributeValue, DynamoDBClientConfig, ScanCommandInput, ScanCommandOutput, TableDescription } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { TakeoutError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { redact, registerSecret } from '../secrets.js';
import { configuredEndpoint } from '../aws/endpoints.js';
import { logSdkRequests, type RequestLogger } from '../stores/network.js';
import type { OpenTableOptions, ProjectOptions, Source } from './source.js';
import type { BucketDescriptor, MetadataEntry, ProjectDescriptor, Row, TableBody, TableDescriptor, TableQuery } from '../model.js';

/** 10 s: a TCP (+TLS) handshake slower than this means the endpoint is unreachable, not slow. */
export const CONNECTION_TIMEOUT_MS = 10_000;
/** 30 s: a Scan page is at most 1 MB, which DynamoDB sends in well under a second; silence this long is a dead request. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Throttling and 5xx answers: the first retry waits up to this long (full jitter)… */
export const RETRY_BASE_MS = 100;
/** …doubling per attempt up to this cap… */
export const RETRY_CAP_MS = 10_000;
/** …for at most this many attempts in all (up to ~13 s of waiting, ~6 s on average), then the table fails. */
export const RETRY_MAX_ATTEMPTS = 8;
/** A dropped connection or a timed-out request is retried fewer times: a silent endpoint should fail in minutes, not hours. */
export const NETWORK_MAX_ATTEMPTS = 3;
/** Our retries are the only ones: the SDK's own would multiply them and hide them from the count. */
const SDK_MAX_ATTEMPTS = 1;
/** Default parallel scan segments per table. */
export const DEFAULT_SEGMENTS = 4;
/** The most segments --segments takes: each holds a socket and up to one 1 MB page in memory. */
export const MAX_SEGMENTS = 1000;
/**
 * Each segment scans at most this many pages ahead of the reader: memory stays within
 * (segments × this + 1) pages of at most 1 MB each (DynamoDB's page limit), however large the table.
 */
export const PAGES_AHEAD_PER_SEGMENT = 1;
/** ListTables returns at most 100 names per page. */
const LIST_PAGE_SIZE = 100;
/** DescribeTable calls in flight while listing every table of an account. */
const DESCRIBE_CONCURRENCY = 8;
/** One socket per segment, so no segment's Scan waits in the agent's queue while its request timeout runs. */
const MAX_SOCKETS = MAX_SEGMENTS;
/** The name of the column that holds the whole item (a key attribute of that name pushes it to `_item`). */
const ITEM_COLUMN = 'item';
const BUCKET: BucketDescriptor = { id: 'in.c-dynamodb', stage: 'in', name: 'c-dynamodb', displayName: 'dynamodb' };
/** DynamoDB's table names: 3–255 of these characters. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
/** Table states a Scan can read. */
const SCANNABLE = new Set(['ACTIVE', 'UPDATING']);

/**
 * The SDK must never print. No `info` on purpose: the SDK's logger middleware builds a redacted copy of
 * every answer for `logger.info?.(…)`, a deep walk of each Scan page (~15% of a scan's CPU) for nothing.
 */
const SILENT_LOGGER = {
  trace: (): void => undefined,
  debug: (): void => undefined,
  warn: (): void => undefined,
  error: (): void => undefined,
} as unknown as NonNullable<DynamoDBClientConfig['logger']>;

export interface DynamoDbRetryOptions {
  baseMs?: number;
  capMs?: number;
  maxAttempts?: number;
}

export interface DynamoDbSourceOptions {
  region?: string;
  profile?: string;
  /** A DynamoDB-compatible endpoint (dynalite, DynamoDB Local); else AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL or the profile's endpoint_url. */
  endpointUrl?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Parallel scan segments per table (default 4, 1–1000). */
  segments?: number;
  /** Strongly consistent scans (twice the read capacity). */
  consistentRead?: boolean;
  requestTimeoutMs?: number;
  /** Backoff of throttled calls; the defaults are the named constants above (tests shorten them). */
  retry?: DynamoDbRetryOptions;
  /** Hears each HTTP request (`--debug`). */
  onRequest?: RequestLogger;
}

interface KeyAttribute {
  name: string;
  /** S, N or B. */
  type: string;
}

interface DynamoTable extends TableDescriptor {
  tableName: string;
  keys: KeyAttribute[];
  itemColumn: string;
}

/** `dynamodb:orders` → `orders`; `dynamodb:` → undefined (every table). */
export function dynamodbTableName(uri: string): string | undefined {
  const name = uri.replace(/^dynamodb:/i, '');
  if (name === '') return undefined;
  if (!TABLE_NAME.test(name)) {
    // Not echoed: a mistyped URI may carry anything, credentials included.
    throw new TakeoutError('USAGE', '--source dynamodb:TABLE: not a DynamoDB table name (3 to 255 letters, digits, _ . -)', {
      hint: 'use dynamodb:TABLE for one table, or dynamodb: for every table of the region',
    });
  }
  return name;
}

/** A table's id part: DynamoDB allows `.` in names, Keboola ids do not. */
export function dynamodbTableId(tableName: string): string {
  return `${BUCKET.id}.${tableName.replaceAll('.', '_')}`;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** For values the SDK does not model (`$unknown`): bytes as base64, as the wire has them. */
function wireReplacer(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  return raw instanceof Uint8Array ? base64(raw) : value;
}

function valueJson(value: AttributeValue): string {
  if (value.S !== undefined) return `{"S":${JSON.stringify(value.S)}}`;
  if (value.N !== undefined) return `{"N":${JSON.stringify(value.N)}}`;
  if (value.B !== undefined) return `{"B":"${base64(value.B)}"}`;
  if (value.BOOL !== undefined) return value.BOOL ? '{"BOOL":true}' : '{"BOOL":false}';
  if (value.NULL !== undefined) return `{"NULL":${value.NULL ? 'true' : 'false'}}`;
  if (value.M !== undefined) return `{"M":${dynamodbJson(value.M)}}`;
  if (value.L !== undefined) return `{"L":[${value.L.map(valueJson).join(',')}]}`;
  if (value.SS !== undefined) return `{"SS":${JSON.stringify(value.SS)}}`;
  if (value.NS !== undefined) return `{"NS":${JSON.stringify(value.NS)}}`;
  if (value.BS !== undefined) return `{"BS":[${value.BS.map((b) => `"${base64(b)}"`).join(',')}]}`;
  if (value.$unknown !== undefined) return `{${JSON.stringify(value.$unknown[0])}:${JSON.stringify(value.$unknown[1], wireReplacer) ?? 'null'}}`;
  return JSON.stringify(value, wireReplacer);
}

/** An item (or a map) in DynamoDB JSON, exactly as the wire has it: binary as base64, numbers as their text. */
export function dynamodbJson(item: Record<string, AttributeValue>): string {
  const parts: string[] = [];
  for (const name of Object.keys(item)) {
    const value = item[name];
    if (value !== undefined) parts.push(`${JSON.stringify(name)}:${valueJson(value)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A key attribute's cell: S as it is, N as its number text, B as base64. */
function keyCell(value: AttributeValue | undefined): string | null {
  if (value === undefined) return null;
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return value.N;
  if (value.B !== undefined) return base64(value.B);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Errors

const THROTTLE_CODES = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'LimitExceededException']);
const SERVER_CODES = new Set(['InternalServerError', 'InternalFailure', 'ServiceUnavailable', 'ServiceUnavailableException']);
const AUTH_CODES = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'AccessDeniedException',
  'AccessDenied',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnauthorizedOperation',
]);
/** The endpoint could not be reached at all: failing at once beats retrying. */
const UNREACHABLE_ERRNOS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_SOCKET_CONNECTION_TIMEOUT']);
/** The connection went away mid-request: worth another attempt. */
const DROPPED_ERRNOS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  errors?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

function shapeOf(error: unknown): SdkErrorShape {
  return error !== null && typeof error === 'object' ? (error as SdkErrorShape) : {};
}

function errnoOf(shape: SdkErrorShape): string | undefined {
  if (typeof shape.code === 'string') return shape.code;
  if (Array.isArray(shape.errors)) {
    for (const inner of shape.errors as SdkErrorShape[]) if (inner && typeof inner.code === 'string') return inner.code;
  }
  const cause = shapeOf(shape.cause);
  return typeof cause.code === 'string' ? cause.code : undefined;
}

type Failure = 'throttle' | 'server' | 'dropped' | 'timeout' | 'other';

function classify(error: unknown): Failure {
  const shape = shapeOf(error);
  const name = typeof shape.name === 'string' ? shape.name : '';
  const status = shape.$metadata?.httpStatusCode;
  const errno = errnoOf(shape);
  if (THROTTLE_CODES.has(name)) return 'throttle';
  if (TIMEOUT_NAMES.has(name) || errno === 'ETIMEDOUT') return 'timeout';
  if (SERVER_CODES.has(name) || status === 500 || status === 503) return 'server';
  if (errno !== undefined && DROPPED_ERRNOS.has(errno)) return 'dropped';
  return 'other';
}

/** SDK errors carry the request, Authorization header included: keep a plain, redacted Error as the cause. */
function sanitizedCause(error: unknown, shape: SdkErrorShape, name: string, errno: string | undefined): Error {
  const cause = new Error(redact(typeof shape.message === 'string' ? shape.message : String(error)));
  if (name) cause.name = name;
  if (error instanceof Error && error.stack) cause.stack = redact(error.stack);
  Object.assign(cause, {
    ...(errno === undefined ? {} : { code: errno }),
    ...(shape.$metadata ? { $metadata: { ...shape.$metadata } } : {}),
  });
  return cause;
}

interface CallContext {
  operation: string;
  /** The DynamoDB table name, when the call is about one. */
  table?: string;
  /** Attempts made, for the message of a call that ran out of them. */
  attempts?: number;
}

// ---------------------------------------------------------------------------------------------
// The source

export function createDynamoDbSource(uri: string, options: DynamoDbSourceOptions = {}): Source {
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
  const endpoint = endpointUrl === undefined ? undefined : displayEndpoint(endpointUrl, configured ? `endpoint_url from ${configured.origin}` : '--dynamodb-endpoint-url');
  const shownEndpoint = endpoint;
  let client: DynamoDBClient | undefined;
  let region = '';
  let closed = false;
  const tables = new Map<string, DynamoTable>();
  const scans = new Set<AbortController>();

  const where = (): string => (shownEndpoint ? `${redact(shownEndpoint)} (region ${region})` : `DynamoDB in ${region || 'the default region'}`);

  function mapError(error: unknown, context: CallContext): TakeoutError {
    if (error instanceof TakeoutError) return error;
    const shape = shapeOf(error);
    const name = typeof shape.name === 'string' ? shape.name : '';
    const status = shape.$metadata?.httpStatusCode;
    const errno = errnoOf(shape);
    const rawMessage = typeof shape.message === 'string' ? shape.message : String(error);
    const target = context.table === undefined ? 'DynamoDB' : `dynamodb table ${context.table}`;
    const details: Record<string, unknown> = {
      operation: context.operation,
      ...(context.table === undefined ? {} : { table: context.table }),
      ...(status === undefined ? {} : { status }),
      ...(name ? { awsCode: name } : {}),
      ...(errno === undefined ? {} : { errno }),
      ...(shape.$metadata?.requestId ? { requestId: shape.$metadata.requestId } : {}),
    };
    const cause = sanitizedCause(error, shape, name, errno);
    const make = (code: ErrorCode, message: string, hint?: string): TakeoutError =>
      new TakeoutError(code, redact(message.replace(/\s*[\r\n]+\s*/g, ' ').trim()), { cause, details, ...(hint === undefined ? {} : { hint }) });
    const tries = context.attempts !== undefined && context.attempts > 1 ? ` after ${context.attempts} attempts` : '';

    if (name === 'AbortError') return make('INTERRUPTED', `${context.operation} ${target} was interrupted`);
    if (/region is missing/i.test(rawMessage)) {
      return make('USAGE', `no AWS region for ${target}`, 'give --region, or set AWS_REGION or a region in the AWS profile');
    }
    if (name === 'CredentialsProviderError') {
      return make('AUTH', `no usable AWS credentials for ${target}: ${rawMessage}`, 'set --profile, --access-key-id/--secret-access-key, or the standard AWS environment');
    }
    if (errno !== undefined && UNREACHABLE_ERRNOS.has(errno)) return make('NETWORK', `cannot reach ${where()} (${errno}) for ${target}`);
    const kind = classify(error);
    if (kind === 'throttle') {
      return make('NETWORK', `${target}: ${context.operation} was still throttled${tries} (${name}) at ${where()}`, 'lower --segments or --concurrency, or give the table more read capacity');
    }
    if (kind === 'timeout') return make('NETWORK', `no answer from ${where()} in time${tries} (${context.operation} ${target})`);
    if (kind === 'dropped') return make('NETWORK', `${where()} dropped the connection${tries} (${errno}) for ${context.operation} ${target}`);
    if (kind === 'server') return make('NETWORK', `${where()} failed${tries} (${name || `HTTP ${status}`}) for ${context.operation} ${target}`);
    if (name === 'ResourceNotFoundException') {
      return make('NOT_FOUND', `${target} does not exist in ${region}${shownEndpoint ? ` (${redact(shownEndpoint)})` : ''}`);
    }
    if (AUTH_CODES.has(name) || status === 401 || status === 403) {
      return make(
        'AUTH',
        `${context.operation} on ${target} was refused (${name || `HTTP ${status}`}) by ${where()}`,
        'check the credentials, --region, and that the policy allows dynamodb:DescribeTable, dynamodb:Scan and dynamodb:ListTables',
      );
    }
    if (name === 'ValidationException') return make('USAGE', `${context.operation} ${target}: ${rawMessage}`);
    const what = name && name !== 'Error' ? `${name}: ${rawMessage}` : rawMessage;
    return make('FAILED', `${context.operation} ${target} failed${status ? ` (HTTP ${status})` : ''}: ${what}`);
  }

  const interrupted = (context: CallContext, error: unknown): TakeoutError => {
    const shape = shapeOf(error);
    const cause = sanitizedCause(error, shape, typeof shape.name === 'string' ? shape.name : '', errnoOf(shape));
    return new TakeoutError('INTERRUPTED', `${context.operation} ${context.table === undefined ? 'DynamoDB' : `dynamodb table ${context.table}`} was interrupted`, { cause });
  };

  /** One call with our retries: throttling and 5xx with full-jitter backoff, dropped connections a few times. */
  async function call<T>(context: CallContext, send: (abortSignal: AbortSignal | undefined) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    let networkFailures = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        signal?.throwIfAborted();
        return await send(signal);
      } catch (error) {
        if (signal?.aborted) throw interrupted(context, error);
        const kind = classify(error);
        if (kind === 'dropped' || kind === 'timeout') networkFailures++;
        if (kind === 'other' || attempt >= retry.maxAttempts || networkFailures >= NETWORK_MAX_ATTEMPTS) throw mapError(error, { ...context, attempts: attempt });
        const ceiling = Math.min(retry.capMs, retry.baseMs * 2 ** (attempt - 1));
        try {
          await sleep(Math.random() * ceiling, undefined, signal ? { signal } : undefined);
        } catch (abort) {
          throw interrupted(context, abort);
        }
      }
    }
  }

  async function connect(): Promise<DynamoDBClient> {
    if (closed) throw new TakeoutError('FAILED', `${description}: the source is closed`);
    if (client) return client;
    const made = buildClient(options, endpoint);
    try {
      region = await made.config.region();
    } catch (error) {
      made.destroy();
      throw mapError(error, { operation: 'configuration' });
    }
    client = made;
    return made;
  }

  async function describe(c: DynamoDBClient, tableName: string, signal: AbortSignal | undefined): Promise<TableDescription> {
    const answer = await call({ operation: 'DescribeTable', table: tableName }, (abortSignal) => c.send(new DescribeTableCommand({ TableName: tableName }), abortSignal ? { abortSignal } : {}), signal);
    if (!answer.Table) throw new TakeoutError('FAILED', `DescribeTable dynamodb table ${tableName} answered without a table (${where()})`);
    return answer.Table;
  }

  async function listTableNames(c: DynamoDBClient, signal: AbortSignal | undefined): Promise<string[]> {
    const names: string[] = [];
    let start: string | undefined;
    do {
      const page = await call(
        { operation: 'ListTables' },
        (abortSignal) => c.send(new ListTablesCommand({ Limit: LIST_PAGE_SIZE, ...(start ? { ExclusiveStartTableName: start } : {}) }), abortSignal ? { abortSignal } : {}),
        signal,
      );
      names.push(...(page.TableNames ?? []));
      start = page.LastEvaluatedTableName;
    } while (start);
    return names;
  }

  function descriptor(table: TableDescription, tableName: string): DynamoTable {
    const types = new Map((table.AttributeDefinitions ?? []).map((a) => [a.AttributeName ?? '', a.AttributeType ?? 'S']));
    const schema = table.KeySchema ?? [];
    const keys: KeyAttribute[] = ['HASH', 'RANGE']
      .map((kind) => schema.find((k) => k.KeyType === kind)?.AttributeName)
      .filter((name): name is string => name !== undefined)
      .map((name) => ({ name, type: types.get(name) ?? 'S' }));
    if (keys.length === 0) throw new TakeoutError('FAILED', `DescribeTable dynamodb table ${tableName} answered without a key schema (${where()})`);
    let itemColumn = ITEM_COLUMN;
    while (keys.some((k) => k.name === itemColumn)) itemColumn = `_${itemColumn}`;
    const columnMetadata: Record<string, MetadataEntry[]> = {};
    for (const key of keys) {
      columnMetadata[key.name] = [
        { key: 'KBC.datatype.type', value: key.type, provider: 'takeout' },
        { key: 'KBC.datatype.nullable', value: '0', provider: 'takeout' },
        { key: 'KBC.datatype.basetype', value: key.type === 'N' ? 'NUMERIC' : 'STRING', provider: 'takeout' },
      ];
    }
    columnMetadata[itemColumn] = [
      { key: 'KBC.datatype.type', value: 'dynamodb-item', provider: 'takeout' },
      { key: 'KBC.datatype.nullable', value: '0', provider: 'takeout' },
      { key: 'KBC.datatype.basetype', value: 'STRING', provider: 'takeout' },
    ];
    const id = dynamodbTableId(tableName);
    return {
      id,
      bucketId: BUCKET.id,
      name: id.slice(BUCKET.id.length + 1),
      displayName: tableName,
      tableName,
      keys,
      itemColumn,
      columns: [...keys.map((k) => k.name), itemColumn],
      primaryKey: keys.map((k) => k.name),
      ...(table.CreationDateTime ? { created: table.CreationDateTime.toISOString() } : {}),
      // DynamoDB refreshes both about every six hours: estimates for --dry-run, not counts.
      ...(table.ItemCount !== undefined ? { rowsCount: Number(table.ItemCount) } : {}),
      ...(table.TableSizeBytes !== undefined ? { dataSizeBytes: Number(table.TableSizeBytes) } : {}),
      columnMetadata,
    };
  }

  function plannedColumns(table: DynamoTable, query: TableQuery | undefined): string[] {
    if (query?.where?.length || query?.changedSince || query?.changedUntil || query?.changedColumn || query?.orderBy?.length) {
      throw new TakeoutError('USAGE', `${description}: a DynamoDB scan takes --columns and --limit only; --where, --changed-* and --order-by need a database source`);
    }
    if (!query?.columns?.length) return table.columns;
    for (const column of query.columns) {
      if (!table.columns.includes(column)) {
        throw new TakeoutError('USAGE', `--columns: table ${table.id} has no column "${column}"`, { hint: `columns: ${table.columns.join(', ')}` });
      }
    }
    return query.columns;
  }

  async function* scanRows(c: DynamoDBClient, table: DynamoTable, columns: string[], limit: number | undefined, signal: AbortSignal | undefined): AsyncGenerator<Row> {
    if (limit === 0) return;

    const withItem = columns.includes(table.itemColumn);
    const keyIndex = new Map(table.keys.map((k) => [k.name, k]));
    // Without the item column only the keys travel: less to transfer (the read cost is the same).
    const projection: Partial<ScanCommandInput> = withItem
      ? {}
      : {
          ProjectionExpression: table.keys.map((_, i) => `#k${i}`).join(', '),
          ExpressionAttributeNames: Object.fromEntries(table.keys.map((k, i) => [`#k${i}`, k.name])),
        };
    const toRow = (item: Record<string, AttributeValue>): Row => columns.map((column) => (keyIndex.has(column) ? keyCell(item[column]) : dynamodbJson(item)));

    interface Page {
      items: Record<string, AttributeValue>[];
      taken: () => void;
    }
    const ready: Page[] = [];
    let failure: TakeoutError | undefined;
    let running = segments;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const waiting = wake;
      wake = undefined;
      waiting?.();
    };
    const stop = new AbortController();
    scans.add(stop);
    const onAbort = (): void => {
      stop.abort();
      notify();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) stop.abort();

    const scanSegment = async (segment: number): Promise<void> => {
      let startKey: Record<string, AttributeValue> | undefined;
      let queued = 0;
      let resume: (() => void) | undefined;
      try {
        do {
          const input: ScanCommandInput = {
            TableName: table.tableName,
            ...(segments > 1 ? { Segment: segment, TotalSegments: segments } : {}),
            ...(consistentRead ? { ConsistentRead: true } : {}),
            ...(limit !== undefined ? { Limit: Math.min(limit, 2 ** 31 - 1) } : {}),
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            ...projection,
          };
          const page: ScanCommandOutput = await call(
            { operation: 'Scan', table: table.tableName },
            (abortSignal) => c.send(new ScanCommand(input), abortSignal ? { abortSignal } : {}),
            stop.signal,
          );
          startKey = page.LastEvaluatedKey;
          const items = page.Items ?? [];
          if (items.length === 0) continue;
          queued++;
          ready.push({
            items,
            taken: () => {
              queued--;
              const go = resume;
              resume = undefined;
              go?.();
            },
          });
          notify();
          // The next Scan waits until the reader has taken enough of this segment's pages.
          if (queued >= PAGES_AHEAD_PER_SEGMENT) await new Promise<void>((go) => (resume = go));
        } while (startKey && !stop.signal.aborted);
      } catch (error) {
        failure ??= mapError(error, { operation: 'Scan', table: table.tableName });
        stop.abort();
      } finally {
        running--;
        notify();
      }
    };

    const check = (): void => {
      if (signal?.aborted) throw new TakeoutError('INTERRUPTED', `Scan dynamodb table ${table.tableName} was interrupted`);
      if (closed) throw new TakeoutError('INTERRUPTED', `Scan dynamodb table ${table.tableName}: the source was closed while reading`);
      if (failure) throw failure;
    };
    const workers = Array.from({ length: segments }, (_, segment) => scanSegment(segment));
    let emitted = 0;
    try {
      for (;;) {
        check();
        const page = ready.shift();
        if (page) {
          page.taken();
          for (const item of page.items) {
            // A failed segment or an abort ends the table at once, not after the rest of this page.
            check();
            yield toRow(item);
            emitted++;
            if (limit !== undefined && emitted >= limit) return;
          }
          continue;
        }
        if (running === 0) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      stop.abort();
      for (const page of ready.splice(0)) page.taken();
      signal?.removeEventListener('abort', onAbort);
      await Promise.allSettled(workers);
      scans.delete(stop);
    }
  }

  return {
    description,

    async project(projectOptions: ProjectOptions = {}): Promise<ProjectDescriptor> {
      const signal = projectOptions.signal;
      const c = await connect();
      const names = only === undefined ? await listTableNames(c, signal) : [only];
      const described: (TableDescription | undefined)[] = new Array<TableDescription | undefined>(names.length);
      let next = 0;
      const describeNext = async (): Promise<void> => {
        while (next < names.length) {
          const index = next++;
          described[index] = await describe(c, names[index]!, signal);
        }
      };
      await Promise.all(Array.from({ length: Math.min(DESCRIBE_CONCURRENCY, names.length) }, describeNext));

      tables.clear();
      const skipped: { id: string; reason: string }[] = [];
      for (const [index, tableName] of names.entries()) {
        const table = described[index]!;
        const status = table.TableStatus ?? 'ACTIVE';
        if (!SCANNABLE.has(status)) {
          if (only !== undefined) {
            throw new TakeoutError('FAILED', `dynamodb table ${tableName} is ${status} and cannot be scanned (${where()})`, { hint: 'run again when the table is ACTIVE' });
          }
          skipped.push({ id: dynamodbTableId(tableName), reason: `table status ${status}` });
          continue;
        }
        const made = descriptor(table, tableName);
        const other = tables.get(made.id);
        if (other) throw new TakeoutError('INVALID_INPUT', `${description}: tables ${tableName} and ${other.tableName} both map to ${made.id}`);
        tables.set(made.id, made);
      }
      return {
        name: `DynamoDB ${region}`,
        buckets: [{ ...BUCKET, description: `DynamoDB tables in ${region}` }],
        tables: [...tables.values()],
        components: [],
        ...(skipped.length ? { skipped } : {}),
        meta: {
          region,
          ...(shownEndpoint ? { endpoint: redact(shownEndpoint) } : {}),
          listedAt: new Date().toISOString(),
          segments,
          consistentRead,
          isolation: 'none: a parallel scan, not a point-in-time snapshot; items written during the scan may or may not be included',
        },
      };
    },

    async openTable(table: TableDescriptor, open: OpenTableOptions): Promise<TableBody> {
      if (closed) throw new TakeoutError('FAILED', `${description}: the source is closed`);
      const found = tables.get(table.id);
      if (!found || !client) throw new TakeoutError('NOT_FOUND', `${description}: no table ${table.id}`);
      const columns = plannedColumns(found, open.query);
      return { kind: 'rows', rows: scanRows(client, found, columns, open.query?.limit, open.signal) };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const scan of scans) scan.abort();
      client?.destroy();
      client = undefined;
    },
  };
}

/** An endpoint URL fit for messages: no user info, no trailing slash. */
function displayEndpoint(endpointUrl: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(endpointUrl);
  } catch {
    throw new TakeoutError('USAGE', `invalid ${what} ${JSON.stringify(redact(endpointUrl))}`, { hint: 'use a URL such as http://127.0.0.1:8000' });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TakeoutError('USAGE', `invalid ${what} ${redact(endpointUrl)}: only http and https are supported`);
  }
  registerSecret(decodeURIComponent(parsed.password));
  parsed.username = '';
  parsed.password = '';
  return parsed.toString().replace(/\/+$/, '');
}

function buildClient(options: DynamoDbSourceOptions, endpoint: string | undefined): DynamoDBClient {
  // Node 20 would otherwise print a support warning on the first client.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const requestTimeout = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const config: DynamoDBClientConfig = {
    maxAttempts: SDK_MAX_ATTEMPTS,
    logger: SILENT_LOGGER,
    // takeout resolved the configured endpoint itself (configuredEndpoint, with --profile): the SDK must not find another.
    ignoreConfiguredEndpointUrls: true,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      requestTimeout,
      // Without this a request past requestTimeout only logs a warning and keeps waiting.
      throwOnRequestTimeout: true,
      socketTimeout: requestTimeout,
      httpAgent: { maxSockets: MAX_SOCKETS },
      httpsAgent: { maxSockets: MAX_SOCKETS },
      logger: SILENT_LOGGER,
    }),
  };
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  // Otherwise the SDK looks in the profile; a local emulator does not care which region it is told.
  if (region) config.region = region;
  else if (endpoint !== undefined) config.region = 'us-east-1';
  if (options.profile) config.profile = options.profile;
  if (options.accessKeyId !== undefined || options.secretAccessKey !== undefined) {
    if (!options.accessKeyId || !options.secretAccessKey) {
      throw new TakeoutError('USAGE', 'an access key id needs its secret access key, and the other way round', { hint: 'give both --access-key-id and --secret-access-key, or neither' });
    }
    config.credentials = {
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
    };
  }
  if (endpoint !== undefined) config.endpoint = endpoint;
  const client = new DynamoDBClient(config);
  logSdkRequests(client, options.onRequest);
  return client;
}
