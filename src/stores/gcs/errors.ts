/** Google Cloud Storage failures as TakeoutErrors. */
import { errnoOf, isNetworkErrno, oneLine, TakeoutError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import { redact } from '../../secrets.js';

export interface GcsErrorContext {
  bucket: string;
  /** The full object name (prefix included), when the operation is about one object. */
  key?: string;
  /** What was being done, e.g. `upload`, `download`, `list`. */
  operation: string;
  /** Where the bucket lives, for messages: `Google Cloud Storage` or `http://127.0.0.1:4443`. */
  where: string;
}

/**
 * The error shapes the client throws: `ApiError` (nodejs-common) with the HTTP status in `code` and the JSON
 * error body's `errors[].reason` (https://cloud.google.com/storage/docs/json_api/v1/status-codes), a
 * `GaxiosError` with `response.status`, or a Node network error with an errno `code`.
 */
interface GcsErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  errors?: Array<{ reason?: unknown; message?: unknown }>;
  response?: { status?: unknown };
}

/** The HTTP status of a client error, if it came from an answer. */
export function statusOf(error: unknown): number | undefined {
  const shape = (error ?? {}) as GcsErrorShape;
  if (typeof shape.code === 'number') return shape.code;
  if (typeof shape.response?.status === 'number') return shape.response.status;
  const text = typeof shape.message === 'string' ? shape.message : '';
  // The resumable upload reports some answers only in its message: "Retry limit exceeded - {status: 412 …}".
  const embedded = /\b(?:status|code)["']?:\s*(\d{3})\b/.exec(text);
  return embedded ? Number(embedded[1]) : undefined;
}

export function isNotFound(error: unknown): boolean {
  return statusOf(error) === 404;
}

/** The one place GCS failures become TakeoutErrors: one line naming the object, every SDK text redacted. */
export function mapGcsError(error: unknown, context: GcsErrorContext): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const shape = (error ?? {}) as GcsErrorShape;
  const status = statusOf(error);
  const reason = typeof shape.errors?.[0]?.reason === 'string' ? shape.errors[0].reason : undefined;
  const errno = errnoOf(error);
  const rawMessage = typeof shape.message === 'string' ? shape.message : String(error);
  const target = context.key === undefined ? `bucket ${context.bucket}` : `gs://${context.bucket}/${context.key}`;
  const details: Record<string, unknown> = {
    bucket: context.bucket,
    operation: context.operation,
    ...(context.key === undefined ? {} : { key: context.key }),
    ...(status === undefined ? {} : { status }),
    ...(reason === undefined ? {} : { reason }),
    ...(errno === undefined ? {} : { errno }),
  };
  const make = (code: ErrorCode, message: string, hint?: string): TakeoutError =>
    new TakeoutError(code, redact(oneLine(message)), { details, ...(hint === undefined ? {} : { hint }) });

  if (shape.name === 'AbortError') return make('INTERRUPTED', `${context.operation} ${target} was aborted`);
  if (errno === 'ETIMEDOUT' || /timeout/i.test(String(shape.name ?? '')) || (status === undefined && /timed? ?out/i.test(rawMessage))) {
    return make('NETWORK', `no answer from ${context.where} in time (${context.operation} ${target})`);
  }
  if (isNetworkErrno(errno)) return make('NETWORK', `cannot reach ${context.where} (${errno}) for ${target}`);
  if (/Could not load the default credentials|invalid_grant|Could not refresh access token/i.test(rawMessage)) {
    return make('AUTH', `no usable Google credentials for ${target}: ${rawMessage}`, 'run gcloud auth application-default login, set GOOGLE_APPLICATION_CREDENTIALS, or GOOGLE_OAUTH_ACCESS_TOKEN');
  }
  if (status === 401 || status === 403) {
    return make('AUTH', `access denied (HTTP ${status}${reason ? ` ${reason}` : ''}) for ${context.operation} ${target}`, 'check the Google credentials and their roles on the bucket (storage.objects.*)');
  }
  if (status === 404) {
    if (context.key === undefined || /bucket/i.test(rawMessage)) return make('NOT_FOUND', `${target} does not exist (${context.where})`);
    return make('NOT_FOUND', `${target} does not exist`);
  }
  if (status === 416) return make('USAGE', `the requested byte range is outside ${target}`);
  // ifGenerationMatch: 0 failed: the object exists (https://cloud.google.com/storage/docs/request-preconditions).
  if (status === 412) return make('EXISTS', `${target} already exists at the destination`);
  // The server answered, every retry: a failure (exit 1) as on S3 and Azure, not an endpoint that cannot be reached.
  if (status === 429 || (status !== undefined && status >= 500)) {
    return make('FAILED', `${context.where} kept failing (HTTP ${status}) for ${context.operation} ${target}: ${rawMessage}`);
  }
  if (/checksum|mismatch/i.test(rawMessage) && status === undefined) {
    return make('INTEGRITY', `${target}: the bytes received do not match the hash the server sent`, 'fetch it again; if it fails again, the stored object is corrupt');
  }
  return make('FAILED', `${context.operation} ${target} failed${status ? ` (HTTP ${status})` : ''}: ${rawMessage}`);
}
