/** The Storage client of one gs:// store: endpoint, credentials, retries and timeouts. */
import { IdempotencyStrategy, RETRYABLE_ERR_FN_DEFAULT, Storage } from '@google-cloud/storage';
import type { StorageOptions } from '@google-cloud/storage';
import { OAuth2Client } from 'google-auth-library';
import { registerSecret } from '../../secrets.js';
import type { RequestLogger } from '../network.js';

/** Attempts after the first for a retryable request (429, 5xx, dropped connection), as the client's own default. */
export const MAX_RETRIES = 3;
/** 120 s: from sending a request (one chunk at most) to its answer; a silent server must not hang a run. */
export const REQUEST_TIMEOUT_MS = 120_000;
/** 10 min: all attempts of one request together, retries and their back-off included. */
export const TOTAL_RETRY_MS = 600_000;
/** 32 s: the longest back-off between attempts (Google's recommended cap, https://cloud.google.com/storage/docs/retry-strategy). */
export const MAX_RETRY_DELAY_MS = 32_000;

/** `STORAGE_EMULATOR_HOST` as Google's libraries read it (`host:port` or a URL), for messages. */
export function emulatorHost(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const host = env.STORAGE_EMULATOR_HOST?.trim();
  if (!host) return undefined;
  return /^https?:\/\//i.test(host) ? host.replace(/\/+$/, '') : `http://${host}`;
}

/**
 * The client's own rule (429, 5xx, a reset or closed connection), plus a try that got no answer within the
 * request timeout: node-fetch ends it with a FetchError of type `request-timeout`, which 7.22.0's default does not
 * retry, so one silent answer ended the run where S3 and Azure try again.
 */
function retryable(error: Parameters<typeof RETRYABLE_ERR_FN_DEFAULT>[0]): boolean {
  if (RETRYABLE_ERR_FN_DEFAULT(error)) return true;
  const shape = error as unknown as { type?: unknown; code?: unknown } | undefined;
  return shape?.type === 'request-timeout' || shape?.code === 'ETIMEDOUT';
}

/**
 * A client for one store. The endpoint: `STORAGE_EMULATOR_HOST` when set, which the client itself reads
 * (as every Google Cloud client library does), else Google's.
 * Credentials: `accessToken` when given (a token handed out for one use, e.g. a Keboola file's), else
 * `GOOGLE_OAUTH_ACCESS_TOKEN` when set (a bearer token, registered as a secret), else the
 * application default credentials (https://cloud.google.com/docs/authentication/application-default-credentials),
 * looked up only when the first request needs them.
 */
export function buildGcsClient(env: NodeJS.ProcessEnv = process.env, accessToken?: string, requestTimeoutMs = REQUEST_TIMEOUT_MS): Storage {
  const token = (accessToken ?? env.GOOGLE_OAUTH_ACCESS_TOKEN)?.trim();
  const options: StorageOptions = {
    retryOptions: {
      autoRetry: true,
      maxRetries: MAX_RETRIES,
      totalTimeout: TOTAL_RETRY_MS / 1000,
      maxRetryDelay: MAX_RETRY_DELAY_MS / 1000,
      // The client's default retries an upload only under a precondition. Every write of a store is whole,
      // known bytes under one name (last writer wins), so sending it again is safe: manifests and overwrites
      // are retried too. Create-only writes keep their ifGenerationMatch: 0.
      idempotencyStrategy: IdempotencyStrategy.RetryAlways,
      retryableErrorFn: retryable,
    },
    timeout: requestTimeoutMs,
  };
  if (token) {
    registerSecret(token);
    // A bare token needs no key file: the client sends it as it is. With an emulator, the client sends no
    // Authorization at all unless told to (test/emulators/GCS.md).
    const auth = new OAuth2Client();
    // No expiry and no refresh token: sent as it is until the server refuses it (401 → AUTH).
    auth.setCredentials({ access_token: token });
    options.authClient = auth;
    if (emulatorHost(env) !== undefined) options.useAuthWithCustomEndpoint = true;
  }
  const storage = new Storage(options);
  // Interceptors shape every request, resumable uploads included (their options are built from them).
  // 7.22.0 hands neither `timeout` nor `useAuthWithCustomEndpoint` to resumable uploads
  // (File#startResumableUpload_): without this a silent server hangs a chunk forever, and a token never
  // reaches an emulator's upload sessions.
  const withToken = token !== undefined && token !== '' && emulatorHost(env) !== undefined;
  storage.interceptors.push({
    request: ((request: { headers?: Record<string, string>; timeout?: number }) => {
      request.timeout ??= requestTimeoutMs;
      if (withToken) request.headers = { ...request.headers, Authorization: `Bearer ${token}` };
      return request;
    }) as unknown as RequestInterceptor,
  });
  return storage;
}

/** A request interceptor of the client (nodejs-common's `Interceptor#request`). */
type RequestInterceptor = NonNullable<Storage['interceptors'][number]['request']>;

/** What the client hands its one authenticated-request function (nodejs-common's `makeAuthenticatedRequest`). */
interface GcsRequestOptions {
  method?: string;
  uri?: string;
  qs?: Record<string, unknown>;
}
type GcsCallback = (error: { code?: unknown; name?: string } | null, body?: unknown, response?: { statusCode?: number }) => void;
type MakeRequest = (reqOpts: GcsRequestOptions, optionsOrCallback?: GcsCallback | object) => unknown;

function requestUrl(reqOpts: GcsRequestOptions): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(reqOpts.qs ?? {})) if (value !== undefined && value !== null) query.set(key, String(value));
  const text = query.toString();
  return `${reqOpts.uri ?? ''}${text ? `?${text}` : ''}`;
}

/**
 * Hands each JSON-API operation (metadata, listing, download, delete, small uploads) to `--debug`: every one
 * goes through the client's `makeAuthenticatedRequest`, whose retries are inside it, so one line stands for
 * an operation with its retries. Resumable upload chunks take another path and are not logged.
 */
export function logGcsRequests(storage: Storage, onRequest: RequestLogger | undefined): void {
  if (!onRequest) return;
  const holder = storage as unknown as { makeAuthenticatedRequest: MakeRequest };
  const original = holder.makeAuthenticatedRequest;
  const wrapped: MakeRequest = (reqOpts, optionsOrCallback) => {
    const started = performance.now();
    const base = { method: reqOpts.method ?? 'GET', url: requestUrl(reqOpts), attempt: 1 };
    const log = (status: number | undefined, error?: { code?: unknown; name?: string } | null): void => {
      const failed = error ? { error: typeof error.code === 'string' ? error.code : (error.name ?? 'Error') } : {};
      onRequest({ ...base, ...(status === undefined ? {} : { status }), ...failed, ms: performance.now() - started });
    };
    if (typeof optionsOrCallback === 'function') {
      return original(reqOpts, (error, body, response) => {
        log(response?.statusCode ?? (typeof error?.code === 'number' ? error.code : undefined), error);
        optionsOrCallback(error, body, response);
      });
    }
    const result = original(reqOpts, optionsOrCallback);
    if (optionsOrCallback === undefined && result && typeof (result as NodeJS.EventEmitter).once === 'function') {
      const stream = result as NodeJS.EventEmitter;
      let logged = false;
      stream.once('response', (response: { statusCode?: number }) => {
        if (!logged) log(response.statusCode);
        logged = true;
      });
      stream.once('error', (error: { code?: unknown; name?: string }) => {
        if (!logged) log(typeof error.code === 'number' ? error.code : undefined, error);
        logged = true;
      });
    }
    return result;
  };
  // The function carries the client's auth helpers as properties (authClient, getCredentials, …).
  holder.makeAuthenticatedRequest = Object.assign(wrapped, original);
}

