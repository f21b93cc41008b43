/**
 * The AWS plumbing of the DynamoDB source, moved here unchanged from the source's one file: the silent
 * logger, the SDK error shape and its errno, the redacted cause, the endpoint shown in messages, the
 * client builder (handler and timeouts; static keys, profile or the default chain) and the lists of
 * auth and network error codes. The S3 store holds copies of the same pieces; both are to import them
 * from one shared AWS module instead, and this file then goes away.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { TakeoutError } from '../../errors.js';
import { redact, registerSecret } from '../../secrets.js';
import { logSdkRequests } from '../../stores/network.js';
import { MAX_SEGMENTS, type DynamoDbSourceOptions } from './options.js';

/** 10 s: a TCP (+TLS) handshake slower than this means the endpoint is unreachable, not slow. */
export const CONNECTION_TIMEOUT_MS = 10_000;
/** 30 s: a Scan page is at most 1 MB, which DynamoDB sends in well under a second; silence this long is a dead request. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Our retries are the only ones: the SDK's own would multiply them and hide them from the count. */
export const SDK_MAX_ATTEMPTS = 1;
/** One socket per segment, so no segment's Scan waits in the agent's queue while its request timeout runs. */
export const MAX_SOCKETS = MAX_SEGMENTS;

/**
 * The SDK must never print. No `info` on purpose: the SDK's logger middleware builds a redacted copy of
 * every answer for `logger.info?.(…)`, a deep walk of each Scan page (~15% of a scan's CPU) for nothing.
 */
export const SILENT_LOGGER = {
  trace: (): void => undefined,
  debug: (): void => undefined,
  warn: (): void => undefined,
  error: (): void => undefined,
} as unknown as NonNullable<DynamoDBClientConfig['logger']>;

export const AUTH_CODES = new Set([
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
export const UNREACHABLE_ERRNOS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_SOCKET_CONNECTION_TIMEOUT']);
/** The connection went away mid-request: worth another attempt. */
export const DROPPED_ERRNOS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
export const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

export interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  errors?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

export function shapeOf(error: unknown): SdkErrorShape {
  return error !== null && typeof error === 'object' ? (error as SdkErrorShape) : {};
}

export function errnoOf(shape: SdkErrorShape): string | undefined {
  if (typeof shape.code === 'string') return shape.code;
  if (Array.isArray(shape.errors)) {
    for (const inner of shape.errors as SdkErrorShape[]) if (inner && typeof inner.code === 'string') return inner.code;
  }
  const cause = shapeOf(shape.cause);
  return typeof cause.code === 'string' ? cause.code : undefined;
}

/** SDK errors carry the request, Authorization header included: keep a plain, redacted Error as the cause. */
export function sanitizedCause(error: unknown, shape: SdkErrorShape, name: string, errno: string | undefined): Error {
  const cause = new Error(redact(typeof shape.message === 'string' ? shape.message : String(error)));
  if (name) cause.name = name;
  if (error instanceof Error && error.stack) cause.stack = redact(error.stack);
  Object.assign(cause, {
    ...(errno === undefined ? {} : { code: errno }),
    ...(shape.$metadata ? { $metadata: { ...shape.$metadata } } : {}),
  });
  return cause;
}

/** An endpoint URL fit for messages: no user info, no trailing slash. */
export function displayEndpoint(endpointUrl: string, what: string): string {
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

export function buildClient(options: DynamoDbSourceOptions, endpoint: string | undefined): DynamoDBClient {
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

