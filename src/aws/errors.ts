/**
 * What every AWS SDK v3 error holds, read the same way for S3, DynamoDB and any later client: the shape of
 * a service exception and a cause fit to keep (the Node errno underneath a network failure is `errnoOf` in
 * errors.ts, with the network errno sets).
 */
import { redact } from '../secrets.js';

/** The fields of an SDK error takeout reads (a ServiceException, or a Node error under a TimeoutError). */
export interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  /** S3's error code from the XML body, when there is one. */
  Code?: unknown;
  message?: unknown;
  errors?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

export function shapeOf(error: unknown): SdkErrorShape {
  return error !== null && typeof error === 'object' ? (error as SdkErrorShape) : {};
}

/**
 * SDK errors carry `$response`, whose request holds the Authorization header and
 * x-amz-security-token: anything that inspects `cause` (a --debug dump, a test reporter) would
 * print them. Keep a plain Error with the redacted message, name, code and status only.
 */
export function sanitizedCause(error: unknown, shape: SdkErrorShape, name: string, errno: string | undefined): Error {
  const message = typeof shape.message === 'string' ? shape.message : String(error);
  const cause = new Error(redact(message));
  if (name) cause.name = name;
  if (error instanceof Error && error.stack) cause.stack = redact(error.stack);
  Object.assign(cause, {
    ...(errno === undefined ? {} : { code: errno }),
    ...(shape.$metadata ? { $metadata: { ...shape.$metadata } } : {}),
  });
  return cause;
}

/** Error names of a request that got no answer in time (the handler's TimeoutError, S3's RequestTimeout, DynamoDB's RequestTimeoutException). */
export const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

/**
 * Error codes that mean the credentials or the policy refused the call, whichever service said it: S3's
 * (docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html) and the JSON services' such as DynamoDB's
 * (docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
 */
export const AUTH_CODES = new Set([
  // S3
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidToken',
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'Forbidden',
  'Unauthorized',
  'InvalidClientTokenId',
  // DynamoDB and the other JSON-protocol services
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'AccessDeniedException',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
  'ExpiredTokenException',
  'UnauthorizedOperation',
]);

/** The subset of AUTH_CODES that blame the keys themselves (wrong, expired), not a policy that denies the call. */
export const BAD_CREDENTIAL_CODES: ReadonlySet<string> = new Set(['InvalidAccessKeyId', 'InvalidClientTokenId', 'SignatureDoesNotMatch', 'ExpiredToken', 'TokenRefreshRequired']);
