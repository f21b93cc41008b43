/** One DynamoDB call with takeout's own retries (the SDK makes none: SDK_MAX_ATTEMPTS). */
import { setTimeout as sleep } from 'node:timers/promises';
import { classify, interrupted, mapError, type CallContext, type Place } from './errors.js';
import { NETWORK_MAX_ATTEMPTS, type DynamoDbRetryOptions } from './options.js';

/** The backoff of one source, its defaults filled in. */
export type RetrySettings = Required<DynamoDbRetryOptions>;

/** What a call needs of its source: where it goes (for messages) and how it backs off. */
export interface RetryPlace extends Place {
  readonly retry: RetrySettings;
}

/** One call with our retries: throttling and 5xx with full-jitter backoff, dropped connections a few times. */
export async function call<T>(at: RetryPlace, context: CallContext, send: (abortSignal: AbortSignal | undefined) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  let networkFailures = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      signal?.throwIfAborted();
      return await send(signal);
    } catch (error) {
      if (signal?.aborted) throw interrupted(context, error);
      const kind = classify(error);
      if (kind === 'dropped' || kind === 'timeout') networkFailures++;
      if (kind === 'other' || attempt >= at.retry.maxAttempts || networkFailures >= NETWORK_MAX_ATTEMPTS) throw mapError(at, error, { ...context, attempts: attempt });
      const ceiling = Math.min(at.retry.capMs, at.retry.baseMs * 2 ** (attempt - 1));
      try {
        await sleep(Math.random() * ceiling, undefined, signal ? { signal } : undefined);
      } catch (abort) {
        throw interrupted(context, abort);
      }
    }
  }
}
