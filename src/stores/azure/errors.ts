/** Azure Blob Storage failures as TakeoutErrors: one line naming the container or blob, never a key or a SAS. */
import { errnoOf, isNetworkErrno, oneLine, TakeoutError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';
import { redact } from '../../secrets.js';

export interface AzureErrorContext {
  container: string;
  /** The full blob name (prefix included), when the operation is about one blob. */
  blob?: string;
  /** REST operation, e.g. PutBlockList, GetBlobProperties. */
  operation: string;
  /** The account's blob endpoint, for messages: `https://ACCOUNT.blob.core.windows.net`. */
  where: string;
  /** The write was create-only (`If-None-Match: *`): 409 BlobAlreadyExists and 412 mean the blob exists. */
  createOnly?: boolean;
  /** The caller's signal was aborted: the failure is the interruption, whatever the SDK says. */
  aborted?: boolean;
}

interface RestErrorShape {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  details?: { errorCode?: unknown; requestId?: unknown } | unknown;
}

/** Service error codes that mean the credentials, not the request, are wrong (Blob service error codes, learn.microsoft.com). */
const AUTH_CODES = new Set(['AuthenticationFailed', 'AuthorizationFailure', 'AuthorizationPermissionMismatch', 'AuthorizationResourceTypeMismatch', 'AuthorizationServiceMismatch', 'AuthorizationProtocolMismatch', 'AuthorizationSourceIPMismatch', 'InvalidAuthenticationInfo', 'KeyBasedAuthenticationNotPermitted', 'NoAuthenticationInformation']);
/** @azure/identity's failures: no credential in the chain, or one that was refused. */
const CREDENTIAL_ERRORS = new Set(['CredentialUnavailableError', 'AuthenticationError', 'AuthenticationRequiredError', 'AggregateAuthenticationError']);

/** The service's error code: the x-ms-error-code header, which the SDK puts in `code` or `details.errorCode`. */
export function azureCode(error: unknown): string | undefined {
  const shape = (error ?? {}) as RestErrorShape;
  const details = shape.details as { errorCode?: unknown } | undefined;
  if (details && typeof details.errorCode === 'string') return details.errorCode;
  return typeof shape.code === 'string' && !/^[A-Z_]+$/.test(shape.code) ? shape.code : undefined;
}

export function statusOf(error: unknown): number | undefined {
  const status = ((error ?? {}) as RestErrorShape).statusCode;
  return typeof status === 'number' ? status : undefined;
}

export function isAzureNotFound(error: unknown): boolean {
  return statusOf(error) === 404;
}

/** The first line of what the service said, redacted (its XML message ends with RequestId and Time lines). */
function serviceMessage(error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  return redact(oneLine(raw.split('\n')[0] ?? raw));
}

export function mapAzureError(error: unknown, context: AzureErrorContext): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const shape = (error ?? {}) as RestErrorShape;
  const name = typeof shape.name === 'string' ? shape.name : '';
  const status = statusOf(error);
  const code = azureCode(error);
  const errno = errnoOf(error);
  const target = context.blob === undefined ? `container ${context.container}` : `azure://${context.container}/${context.blob}`;
  const details: Record<string, unknown> = {
    container: context.container,
    operation: context.operation,
    ...(context.blob === undefined ? {} : { blob: context.blob }),
    ...(status === undefined ? {} : { status }),
    ...(code === undefined ? {} : { azureCode: code }),
    ...(errno === undefined ? {} : { errno }),
  };
  // The SDK's error holds the request (its URL carries a SAS, its headers a signature): only its text is kept.
  const cause = new Error(serviceMessage(error));
  cause.name = name || 'Error';
  const make = (takeoutCode: ErrorCode, message: string, hint?: string): TakeoutError =>
    new TakeoutError(takeoutCode, redact(oneLine(message)), { cause, details, ...(hint === undefined ? {} : { hint }) });

  if (context.aborted) return make('INTERRUPTED', `${context.operation} ${target} was aborted`);
  // The SDK's HTTP client ends a try that outlived its timeout with an AbortError: our own aborts are `aborted`.
  if (name === 'AbortError' || errno === 'ETIMEDOUT' || errno === 'ESOCKETTIMEDOUT' || name === 'TimeoutError') {
    return make('NETWORK', `no answer from ${context.where} in time (${context.operation} ${target})`);
  }
  if (isNetworkErrno(errno) || errno === 'REQUEST_SEND_ERROR') {
    return make('NETWORK', `cannot reach ${context.where} (${errno}) for ${target}`);
  }
  if (CREDENTIAL_ERRORS.has(name)) {
    return make('AUTH', `no usable Azure credentials for ${target}: ${serviceMessage(error)}`, 'set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or sign in with az login');
  }
  if (code === 'ContainerNotFound') return make('NOT_FOUND', `container ${context.container} does not exist (${context.where})`);
  if (code === 'BlobNotFound' || status === 404) return make('NOT_FOUND', `${target} does not exist`);
  if ((code !== undefined && AUTH_CODES.has(code)) || status === 401 || status === 403) {
    return make('AUTH', `access denied (${code ?? status}) for ${context.operation} ${target} (${context.where})`, 'check the account key or SAS (its permissions, expiry and container), or the role assignment');
  }
  if (code === 'InvalidRange' || status === 416) return make('USAGE', `the requested byte range is outside ${target}`);
  if (context.createOnly && (status === 409 || status === 412)) return make('EXISTS', `${target} already exists at the destination`);
  const what = code === undefined ? serviceMessage(error) : `${code}: ${serviceMessage(error)}`;
  return make('FAILED', `${context.operation} ${target} failed${status === undefined ? '' : ` (HTTP ${status})`}: ${what}`);
}
