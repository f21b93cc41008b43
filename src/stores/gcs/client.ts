/** The Storage client of one gs:// store: endpoint, credentials, retries and timeouts. */
import { IdempotencyStrategy, Storage } from '@google-cloud/storage';
import type { StorageOptions } from '@google-cloud/storage';
import { OAuth2Client } from 'google-auth-library';
import { registerSecret } from '../../secrets.js';

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
 * A client for one store. The endpoint: `STORAGE_EMULATOR_HOST` when set, which the client itself reads
 * (as every Google Cloud client library does), else Google's.
 * Credentials: `GOOGLE_OAUTH_ACCESS_TOKEN` when set (a bearer token, registered as a secret), else the
 * application default credentials (https://cloud.google.com/docs/authentication/application-default-credentials),
 * looked up only when the first request needs them.
 */
export function buildGcsClient(env: NodeJS.ProcessEnv = process.env, requestTimeoutMs = REQUEST_TIMEOUT_MS): Storage {
  const token = env.GOOGLE_OAUTH_ACCESS_TOKEN?.trim();
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
