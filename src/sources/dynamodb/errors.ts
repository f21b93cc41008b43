/** DynamoDB's answers as takeout's errors: which failures are worth another attempt, and the one message for each. */
import { TakeoutError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import { redact } from '../../secrets.js';
import { AUTH_CODES, sanitizedCause, shapeOf, TIMEOUT_NAMES } from '../../aws/errors.js';
import { DROPPED_ERRNOS, errnoOf, UNREACHABLE_ERRNOS } from '../../errors.js';

const THROTTLE_CODES = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'LimitExceededException']);
const SERVER_CODES = new Set(['InternalServerError', 'InternalFailure', 'ServiceUnavailable', 'ServiceUnavailableException']);

export type Failure = 'throttle' | 'server' | 'dropped' | 'timeout' | 'other';

export function classify(error: unknown): Failure {
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

export interface CallContext {
  operation: string;
  /** The DynamoDB table name, when the call is about one. */
  table?: string;
  /** Attempts made, for the message of a call that ran out of them. */
  attempts?: number;
}

/** Where a source's calls go, for its messages: the endpoint as shown (no user info), and the region once the client knows it. */
export interface Place {
  readonly endpoint: string | undefined;
  region: string;
}

export function where(place: Place): string {
  return place.endpoint ? `${redact(place.endpoint)} (region ${place.region})` : `DynamoDB in ${place.region || 'the default region'}`;
}

export function mapError(place: Place, error: unknown, context: CallContext): TakeoutError {
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
  if (errno !== undefined && UNREACHABLE_ERRNOS.has(errno)) return make('NETWORK', `cannot reach ${where(place)} (${errno}) for ${target}`);
  const kind = classify(error);
  if (kind === 'throttle') {
    return make('NETWORK', `${target}: ${context.operation} was still throttled${tries} (${name}) at ${where(place)}`, 'lower --segments or --concurrency, or give the table more read capacity');
  }
  if (kind === 'timeout') return make('NETWORK', `no answer from ${where(place)} in time${tries} (${context.operation} ${target})`);
  if (kind === 'dropped') return make('NETWORK', `${where(place)} dropped the connection${tries} (${errno}) for ${context.operation} ${target}`);
  if (kind === 'server') return make('NETWORK', `${where(place)} failed${tries} (${name || `HTTP ${status}`}) for ${context.operation} ${target}`);
  if (name === 'ResourceNotFoundException') {
    return make('NOT_FOUND', `${target} does not exist in ${place.region}${place.endpoint ? ` (${redact(place.endpoint)})` : ''}`);
  }
  if (AUTH_CODES.has(name) || status === 401 || status === 403) {
    return make(
      'AUTH',
      `${context.operation} on ${target} was refused (${name || `HTTP ${status}`}) by ${where(place)}`,
      'check the credentials, --region, and that the policy allows dynamodb:DescribeTable, dynamodb:Scan and dynamodb:ListTables',
    );
  }
  if (name === 'ValidationException') return make('USAGE', `${context.operation} ${target}: ${rawMessage}`);
  const what = name && name !== 'Error' ? `${name}: ${rawMessage}` : rawMessage;
  return make('FAILED', `${context.operation} ${target} failed${status ? ` (HTTP ${status})` : ''}: ${what}`);
}

export function interrupted(context: CallContext, error: unknown): TakeoutError {
  const shape = shapeOf(error);
  const cause = sanitizedCause(error, shape, typeof shape.name === 'string' ? shape.name : '', errnoOf(shape));
  return new TakeoutError('INTERRUPTED', `${context.operation} ${context.table === undefined ? 'DynamoDB' : `dynamodb table ${context.table}`} was interrupted`, { cause });
}
