import { isIPv4 } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { TakeoutError, type ErrorCode } from '../../errors.js';
import { registerSecret } from '../../secrets.js';
import type { RequestLogger } from '../../stores/network.js';

/**
 * A small Storage API client: `X-StorageApi-Token`, request timeouts, retries with exponential backoff
 * on network errors, 5xx, 429 and the 503 maintenance answer (honouring `Retry-After`), and errors
 * `{error, code, exceptionId}` turned into one line with the code.
 */

/** One request may take this long; the PHP client uses 120 s too. */
export const REQUEST_TIMEOUT_MS = 120_000;
/** Attempts per request, the first included. */
export const MAX_ATTEMPTS = 8;
/** First backoff; doubled each retry. */
const BACKOFF_BASE_MS = 250;
/** No single wait is longer, whatever Retry-After says (maintenance can take long: the run then fails clearly). */
const BACKOFF_CAP_MS = 30_000;
/**
 * Same-origin redirects followed per request. The Storage API answers without redirects; a few hops
 * cover a proxy or a load balancer moving a path, and a loop ends here instead of at fetch's 20.
 */
export const MAX_REDIRECTS = 5;
/** Statuses that redirect (RFC 9110 §15.4); 300 and 304 are not followed by fetch either. */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface StorageClientOptions {
  /** `https://connection.keboola.com` (the stack), no path. */
  baseUrl: string;
  token: string;
  /** For tests: the clock of backoff waits. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  maxAttempts?: number;
  /** Hears each HTTP exchange, redirects and retries included (`--debug`). */
  onRequest?: RequestLogger;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal;
}

/** `keboola+https://connection.keboola.com` → `https://connection.keboola.com`. */
export function stackUrl(uri: string): string {
  const url = new URL(uri.replace(/^keboola\+/, ''));
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TakeoutError('USAGE', `--source ${uri}: expected keboola+https://<stack host>`);
  return `${url.protocol}//${url.host}`;
}

/**
 * Where a redirect answer points, checked before anything is sent there. fetch's own `redirect: 'follow'`
 * goes to any host and keeps custom headers such as `X-StorageApi-Token` (only `Authorization` and cookies
 * are dropped across origins, WHATWG fetch §4.4 "HTTP-redirect fetch"), so takeout follows redirects
 * itself: to the same origin only (scheme, host and port, RFC 6454), a bounded number of times.
 * Origins are printed without user info, paths or queries, which may hold secrets.
 */
export function redirectTarget(from: string, location: string | null, status: number, hops: number, shown: string): URL {
  const origin = new URL(from).origin;
  if (!location) throw new TakeoutError('FAILED', `${shown}: HTTP ${status} redirect from ${origin} without a Location`);
  let target: URL;
  try {
    target = new URL(location, from);
  } catch {
    throw new TakeoutError('FAILED', `${shown}: HTTP ${status} redirect from ${origin} to an invalid Location`);
  }
  if (target.origin !== origin) {
    throw new TakeoutError('USAGE', `${shown}: ${origin} redirects to another origin, ${target.origin === 'null' ? target.protocol : target.origin}; the token is not sent there`, {
      hint: `if ${target.origin === 'null' ? 'that' : target.origin} is the stack you mean, name it in --source`,
      details: { from: origin, to: target.origin, status },
    });
  }
  if (hops >= MAX_REDIRECTS) throw new TakeoutError('FAILED', `${shown}: more than ${MAX_REDIRECTS} redirects within ${origin}`);
  return target;
}

/** Loopback hosts, where a token in clear text never leaves the machine: localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/** The warning for a stack reached over plain http on another machine, or undefined. */
export function cleartextWarning(baseUrl: string): string | undefined {
  const url = new URL(baseUrl);
  if (url.protocol !== 'http:' || isLoopbackHost(url.hostname)) return undefined;
  return `keboola+${url.origin}: the Storage API token travels in clear text over http to ${url.host}; use keboola+https://`;
}

function errorCodeFor(status: number): ErrorCode {
  if (status === 401 || status === 403) return 'AUTH';
  if (status === 404) return 'NOT_FOUND';
  if (status === 400 || status === 422) return 'USAGE';
  if (status >= 500 || status === 429) return 'NETWORK';
  return 'FAILED';
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export class StorageClient {
  readonly baseUrl: string;
  private readonly token: string;
  /** Waits between attempts and between job polls; abortable. */
  readonly wait: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly maxAttempts: number;
  private readonly onRequest: RequestLogger | undefined;
  /** Retries made so far (reported in the summary, checked in tests). */
  retries = 0;

  constructor(options: StorageClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    registerSecret(options.token);
    this.wait = options.sleep ?? ((ms, signal) => sleep(ms, undefined, signal ? { signal } : undefined));
    this.maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS;
    this.onRequest = options.onRequest;
  }

  get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('POST', path, options);
  }

  /**
   * A GET to another service of the stack (its URL from the service index, `GET /v2/storage/`), with the
   * same token, retries and error lines, as Keboola's own clients call them (keboola/notification-client).
   */
  getService<T>(serviceUrl: string, path: string, options: RequestOptions = {}): Promise<T> {
    return this.requestService<T>('GET', serviceUrl, path, options);
  }

  /** Any method to another service of the stack (a restore creates notification subscriptions: `POST project-subscriptions`). */
  requestService<T>(method: string, serviceUrl: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(`${serviceUrl.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`);
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    return this.send(method, path, options, async (response) => (response.status === 204 ? undefined : await response.json()) as T, url.toString());
  }

  /** Raw response text (configurations.json is kept byte for byte). */
  async getText(path: string, options: RequestOptions = {}): Promise<string> {
    return this.send('GET', path, options, (response) => response.text());
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    return this.send(method, path, options, async (response) => (response.status === 204 ? undefined : await response.json()) as T);
  }

  private url(path: string, query: RequestOptions['query']): string {
    const url = new URL(`${this.baseUrl}/v2/storage/${path.replace(/^\/+/, '')}`);
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    return url.toString();
  }

  /** One exchange, following same-origin redirects only (see redirectTarget). */
  private async exchange(url: string, method: string, options: RequestOptions, shown: string, attempt: number): Promise<Response> {
    let target = url;
    let verb = method;
    let body = options.body === undefined ? undefined : JSON.stringify(options.body);
    for (let hops = 0; ; hops++) {
      const signals = [AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...(options.signal ? [options.signal] : [])];
      const response = await this.logged(verb, target, attempt, () => fetch(target, {
        method: verb,
        redirect: 'manual',
        headers: {
          'X-StorageApi-Token': this.token,
          Accept: 'application/json',
          ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.any(signals),
      }));
      if (!REDIRECT_STATUSES.has(response.status)) return response;
      await response.body?.cancel().catch(() => undefined);
      target = redirectTarget(target, response.headers.get('location'), response.status, hops, `Storage API ${shown}`).toString();
      // 303, and 301/302 after a POST, continue as a GET without a body (RFC 9110 §15.4.2-4, as fetch does).
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && verb === 'POST')) {
        verb = 'GET';
        body = undefined;
      }
    }
  }

  /** One fetch, told to onRequest when it answers (the status) or fails (why). Headers are never logged. */
  private async logged(method: string, url: string, attempt: number, go: () => Promise<Response>): Promise<Response> {
    if (!this.onRequest) return go();
    const started = performance.now();
    try {
      const response = await go();
      this.onRequest({ method, url, status: response.status, ms: performance.now() - started, attempt });
      return response;
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      this.onRequest({ method, url, error: cause ?? (error as Error).name, ms: performance.now() - started, attempt });
      throw error;
    }
  }

  private async send<T>(method: string, path: string, options: RequestOptions, read: (response: Response) => Promise<T>, url = this.url(path, options.query)): Promise<T> {
    const shown = `${method} ${path.split('?')[0]}`;
    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted();
      let response: Response;
      try {
        response = await this.exchange(url, method, options, shown, attempt);
      } catch (error) {
        if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', 'interrupted');
        if (error instanceof TakeoutError) throw error;
        if (attempt >= this.maxAttempts) {
          throw new TakeoutError('NETWORK', `Storage API ${shown}: ${(error as Error).message} (${this.baseUrl}, ${attempt} attempts)`, { cause: error });
        }
        await this.backoff(attempt, undefined, options.signal);
        continue;
      }
      if (response.ok) {
        try {
          return await read(response);
        } catch (error) {
          if (attempt >= this.maxAttempts) throw new TakeoutError('NETWORK', `Storage API ${shown}: the answer broke off (${(error as Error).message})`);
          await this.backoff(attempt, undefined, options.signal);
          continue;
        }
      }
      const retryable = response.status === 429 || (response.status >= 500 && response.status !== 501);
      const text = await response.text().catch(() => '');
      if (retryable && attempt < this.maxAttempts) {
        await this.backoff(attempt, retryAfterMs(response.headers.get('retry-after')), options.signal);
        continue;
      }
      throw this.failure(shown, response.status, text, attempt);
    }
  }

  private async backoff(attempt: number, retryAfter: number | undefined, signal?: AbortSignal): Promise<void> {
    this.retries++;
    const exponential = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
    const jitter = Math.random() * exponential * 0.2;
    await this.wait(Math.min(BACKOFF_CAP_MS, retryAfter ?? exponential + jitter), signal);
  }

  private failure(shown: string, status: number, text: string, attempts: number): TakeoutError {
    let detail = text.slice(0, 300);
    try {
      const body = JSON.parse(text) as { error?: string; code?: string | number; exceptionId?: string; status?: string; reason?: string };
      if (body.status === 'maintenance') detail = `the stack is in maintenance${body.reason ? `: ${body.reason}` : ''}`;
      else if (body.error) detail = `${body.error}${body.code !== undefined ? ` (${body.code}` : ''}${body.exceptionId ? `, exception ${body.exceptionId}` : ''}${body.code !== undefined ? ')' : ''}`;
    } catch {
      // Not JSON: keep the text.
    }
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    return new TakeoutError(errorCodeFor(status), `Storage API ${shown}: HTTP ${status}: ${detail}${tries}`, {
      details: { status },
      ...(status === 401 ? { hint: 'check the token (KBC_STORAGE_TOKEN or --token) and the stack URL' } : {}),
    });
  }
}
