import { pipeline, Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { TakeoutError } from '../errors.js';

/**
 * What takeout's network and disk traffic shares: the request log behind `--debug` and the one
 * bandwidth limit behind `--bwlimit`. Sources and destinations never print: they hand each finished
 * request to `onRequest`, and the CLI decides where (and whether) it goes.
 */

/** One HTTP exchange, as `--debug` logs it. The URL is raw here: whoever prints it redacts it. */
export interface RequestRecord {
  method: string;
  url: string;
  /** The HTTP status, or undefined when no answer came (a reset, a timeout). */
  status?: number;
  /** Why no answer came, or the error name of a failed one. */
  error?: string;
  ms: number;
  /** 1 for the first try; retries count up (S3 and DynamoDB: the SDK's amz-sdk-request header). */
  attempt: number;
}

export type RequestLogger = (record: RequestRecord) => void;

export interface NetworkOptions {
  /** Called once per HTTP exchange (each retry is its own). */
  onRequest?: RequestLogger;
  /** The process-wide bandwidth limit (`--bwlimit`), shared by every stream. */
  throttle?: Throttle;
}

/**
 * How far ahead of the average rate a burst may run: small, so a short run is limited too, yet large
 * enough that 64 KiB chunks at low rates do not each wait on their own timer round.
 */
const BURST_MS = 100;

/**
 * One token bucket for the whole process (rclone's --bwlimit is one limit for all transfers too,
 * rclone.org/docs/#bwlimit-bandwidth-spec): every byte read or written takes its share of the schedule,
 * in the order asked. A chunk waits before it moves on, so each stream holds at most the one chunk it
 * carries (bounded memory), and the wait is a timer, not a loop. Waits end at once when the signal aborts.
 */
export class Throttle {
  /** When (performance.now() ms) every byte reserved so far has been paid for. */
  private paidUntil = 0;

  constructor(
    readonly bytesPerSecond: number,
    private readonly signal?: AbortSignal,
  ) {
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) throw new TakeoutError('USAGE', `bandwidth limit must be a positive number of bytes per second, got ${bytesPerSecond}`);
  }

  /** Resolves when `bytes` may move; rejects with INTERRUPTED when the signal aborts first. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes <= 0) return;
    const now = performance.now();
    // An idle bucket holds BURST_MS worth of bytes, no more: a pause does not save up for a later rush.
    this.paidUntil = Math.max(this.paidUntil, now - BURST_MS) + (bytes * 1000) / this.bytesPerSecond;
    const wait = this.paidUntil - now;
    if (wait <= 0) return;
    const signals = [this.signal, signal].filter((s): s is AbortSignal => s !== undefined);
    try {
      await sleep(wait, undefined, signals.length ? { signal: AbortSignal.any(signals) } : {});
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw new TakeoutError('INTERRUPTED', 'interrupted while waiting for the bandwidth limit');
      throw error;
    }
  }

  /** A stream that lets bytes through at the limit. */
  transform(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.take(chunk.length).then(
          () => callback(null, chunk),
          (error: unknown) => callback(error as Error),
        );
      },
    });
  }

  /** `source` read at the limit; errors and early destruction go both ways. */
  readable(source: Readable): Readable {
    const limited = this.transform();
    pipeline(source, limited, () => undefined);
    return limited;
  }
}

const BINARY_UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * `--bwlimit` as rclone reads it: a number with an optional binary unit (`512k`, `10M`, `1.5G`, `10MiB`,
 * `10M/s`); a bare number is KiB/s, as in rclone; `0` or `off` is no limit (undefined).
 */
export function parseBandwidth(text: string, name = '--bwlimit'): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([bkmgtp])?(?:i?b)?(?:\/s)?\s*$/i.exec(text);
  if (text.trim().toLowerCase() === 'off') return undefined;
  if (!match) {
    throw new TakeoutError('USAGE', `${name}: ${JSON.stringify(text)} is not a rate`, { hint: 'give bytes per second with a binary unit, as rclone does: 512k, 10M (MiB/s), 1G; 0 or off for no limit' });
  }
  const value = Number(match[1]) * BINARY_UNITS[(match[2] ?? 'k').toLowerCase()]!;
  if (value === 0) return undefined;
  if (value < 1) throw new TakeoutError('USAGE', `${name}: ${JSON.stringify(text)} is less than one byte per second`);
  return Math.floor(value);
}

/** The parts of a smithy HttpRequest the request log reads. */
interface LoggedRequest {
  method?: string;
  protocol?: string;
  hostname?: string;
  port?: number;
  path?: string;
  query?: Record<string, string | (string | null)[] | null>;
  headers?: Record<string, string>;
}

function requestUrl(request: LoggedRequest): string {
  const query = Object.entries(request.query ?? {})
    .flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((v) => (v === null ? encodeURIComponent(key) : `${encodeURIComponent(key)}=${encodeURIComponent(v)}`)))
    .join('&');
  const port = request.port ? `:${request.port}` : '';
  return `${request.protocol ?? 'https:'}//${request.hostname ?? ''}${port}${request.path ?? '/'}${query ? `?${query}` : ''}`;
}

/** The SDK's retry middleware tells each attempt's number in `amz-sdk-request: attempt=2; max=3`. */
function attemptOf(request: LoggedRequest): number {
  const header = Object.entries(request.headers ?? {}).find(([name]) => name.toLowerCase() === 'amz-sdk-request')?.[1];
  const attempt = /attempt=(\d+)/.exec(header ?? '')?.[1];
  return attempt === undefined ? 1 : Number(attempt);
}

/** The deserialize-step form of an AWS SDK v3 middleware stack's add() (S3Client, DynamoDBClient). */
type Handler = (args: { request: unknown }) => Promise<{ response: unknown }>;
type AddDeserializeMiddleware = (middleware: (next: Handler) => Handler, options: { step: 'deserialize'; name: string; priority: 'high' }) => void;

/**
 * Log every HTTP exchange of an AWS SDK client: a deserialize-step middleware sits inside the retry loop
 * (finalizeRequest step), so each attempt is one line, and outside the deserializer, so the status of
 * a failed request is read from the error it throws (`$metadata.httpStatusCode`).
 */
export function logSdkRequests(client: { middlewareStack: { add: unknown } }, onRequest: RequestLogger | undefined): void {
  if (!onRequest) return;
  const add = (client.middlewareStack.add as AddDeserializeMiddleware).bind(client.middlewareStack);
  add(
    (next) => async (args) => {
      const request = args.request as LoggedRequest;
      const started = performance.now();
      const base = (): Pick<RequestRecord, 'method' | 'url' | 'attempt'> => ({ method: request.method ?? 'GET', url: requestUrl(request), attempt: attemptOf(request) });
      try {
        const output = await next(args);
        const status = (output.response as { statusCode?: number } | undefined)?.statusCode;
        onRequest({ ...base(), ...(status !== undefined ? { status } : {}), ms: performance.now() - started });
        return output;
      } catch (error) {
        const shape = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $response?: { statusCode?: number } };
        const status = shape.$metadata?.httpStatusCode ?? shape.$response?.statusCode;
        onRequest({ ...base(), ...(status !== undefined ? { status } : {}), error: shape.code ?? shape.name ?? 'Error', ms: performance.now() - started });
        throw error;
      }
    },
    { step: 'deserialize', name: 'takeoutRequestLog', priority: 'high' },
  );
}
