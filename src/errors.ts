/**
 * The closed set of failures takeout reports, each with its documented exit code.
 * Every error that reaches the user is a TakeoutError: one line, naming the culprit.
 */
export const ERROR_CODES = {
  /** Something unexpected; a bug or an unclassified failure. */
  FAILED: 1,
  /** Bad flags, bad config file, bad option values. */
  USAGE: 2,
  /** Some tables failed and others completed; the manifest lists which. */
  PARTIAL: 3,
  /** 401/403, invalid or expired credentials, access denied. */
  AUTH: 4,
  /** A source folder, bucket, table, manifest or file that does not exist. */
  NOT_FOUND: 5,
  /** Size, row count or checksum mismatch; corrupt gzip; a manifest that does not add up. */
  INTEGRITY: 6,
  /** Source data that cannot be read: unterminated quote, ragged row, oversized record. */
  INVALID_INPUT: 7,
  /** An endpoint that cannot be reached, or that stopped answering (timeouts). */
  NETWORK: 8,
  /** The destination already holds a takeout and --overwrite was not given, or another run holds its lease. */
  EXISTS: 9,
  /** SIGINT/SIGTERM: open uploads aborted, temp files removed. */
  INTERRUPTED: 130,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface TakeoutErrorOptions {
  cause?: unknown;
  /** A short hint on what to do next, printed after the message. */
  hint?: string;
  /** Structured context (table id, key, …) for --json output. Never put secrets here. */
  details?: Record<string, unknown>;
}

export class TakeoutError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: TakeoutErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TakeoutError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  get exitCode(): number {
    return ERROR_CODES[this.code];
  }
}

export function isTakeoutError(error: unknown): error is TakeoutError {
  return error instanceof TakeoutError;
}

/**
 * Node system error codes (nodejs.org/api/errors.html#common-system-errors) for an endpoint that could not
 * be reached at all: failing at once beats retrying.
 */
export const UNREACHABLE_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);
/** The connection went away mid-request: worth another attempt. */
export const DROPPED_ERRNOS: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** Whether a Node errno means the other side could not be reached, or dropped the connection. */
export function isNetworkErrno(errno: string | undefined): boolean {
  return errno !== undefined && (UNREACHABLE_ERRNOS.has(errno) || DROPPED_ERRNOS.has(errno));
}

/**
 * The errno of a failure: a Node system error's `code`, else the first of an AggregateError's `errors`
 * that has one (a connect to every address of a host failed), else its cause's.
 */
export function errnoOf(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const shape = error as { code?: unknown; errors?: unknown; cause?: unknown };
  if (typeof shape.code === 'string') return shape.code;
  if (Array.isArray(shape.errors)) {
    for (const inner of shape.errors as { code?: unknown }[]) if (inner && typeof inner.code === 'string') return inner.code;
  }
  const cause = shape.cause as { code?: unknown } | null | undefined;
  return cause && typeof cause === 'object' && typeof cause.code === 'string' ? cause.code : undefined;
}

/** A message on one line: line breaks (from a server's text, a stack) and the blanks around them become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Best-effort classification of a foreign error; adapters should prefer throwing TakeoutError themselves. */
export function toTakeoutError(error: unknown, context?: string): TakeoutError {
  if (isTakeoutError(error)) return error;
  const prefix = context ? `${context}: ` : '';
  if (error instanceof Error) {
    const errno = (error as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT') return new TakeoutError('NOT_FOUND', `${prefix}${error.message}`, { cause: error });
    if (errno === 'EACCES' || errno === 'EPERM') return new TakeoutError('AUTH', `${prefix}${error.message}`, { cause: error });
    if (errno === 'ETIMEDOUT' || isNetworkErrno(errno)) return new TakeoutError('NETWORK', `${prefix}${error.message}`, { cause: error });
    if (error.name === 'AbortError') return new TakeoutError('INTERRUPTED', `${prefix}interrupted`, { cause: error });
    return new TakeoutError('FAILED', `${prefix}${error.message}`, { cause: error });
  }
  return new TakeoutError('FAILED', `${prefix}${String(error)}`);
}

/** Validation returns problems instead of throwing, so callers can report all of them at once. */
export type Validation<T> = { ok: true; value: T } | { ok: false; error: TakeoutError };

export function ok<T>(value: T): Validation<T> {
  return { ok: true, value };
}

export function invalid<T = never>(message: string, hint?: string): Validation<T> {
  return { ok: false, error: new TakeoutError('USAGE', message, hint === undefined ? {} : { hint }) };
}
