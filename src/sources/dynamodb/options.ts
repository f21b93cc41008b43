/** What a `dynamodb:` source takes, and the limits of its scans and retries. */
import type { RequestLogger } from '../../stores/network.js';

/** Throttling and 5xx answers: the first retry waits up to this long (full jitter)… */
export const RETRY_BASE_MS = 100;
/** …doubling per attempt up to this cap… */
export const RETRY_CAP_MS = 10_000;
/** …for at most this many attempts in all (up to ~13 s of waiting, ~6 s on average), then the table fails. */
export const RETRY_MAX_ATTEMPTS = 8;
/** A dropped connection or a timed-out request is retried fewer times: a silent endpoint should fail in minutes, not hours. */
export const NETWORK_MAX_ATTEMPTS = 3;
/** Default parallel scan segments per table. */
export const DEFAULT_SEGMENTS = 4;
/** The most segments --segments takes: each holds a socket and up to one 1 MB page in memory. */
export const MAX_SEGMENTS = 1000;
/**
 * Each segment scans at most this many pages ahead of the reader: memory stays within
 * (segments × this + 1) pages of at most 1 MB each (DynamoDB's page limit), however large the table.
 */
export const PAGES_AHEAD_PER_SEGMENT = 1;

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
