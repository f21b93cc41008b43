/**
 * The S3 client of one store: the shared AWS client (src/aws) with S3's own settings, and a middleware that
 * sends a request once more after expired credentials are refreshed, or without `If-None-Match` where the
 * store does not implement it.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { buildAwsClient } from '../../aws/client.js';
import type { SdkErrorShape } from '../../aws/errors.js';
import type { S3Options } from '../store.js';
import { isBareHead400, isNotImplemented } from './errors.js';

/**
 * 120 s: from the first byte sent to the response headers, including the body of one part
 * (8 MiB in 120 s is ~70 KB/s, slower than any link we support). Without it a silent server hangs forever.
 */
export const REQUEST_TIMEOUT_MS = 120_000;
/** 60 s: a socket idle this long in either direction (e.g. mid-download) means the server went silent. */
export const SOCKET_TIMEOUT_MS = 60_000;

/** The shared AWS client with S3's settings: a custom endpoint is addressed path-style, checksums only when required. */
export function buildS3Client(s3: S3Options, region: string, endpoint: string | undefined): S3Client {
  const requestTimeoutMs = s3.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const extra: Partial<S3ClientConfig> = {};
  if (endpoint !== undefined) {
    extra.forcePathStyle = true;
    // The default (WHEN_SUPPORTED) streams aws-chunked bodies with trailing checksums; servers that do
    // not speak it (s3rver, some versions of others) store the chunk framing as object bytes.
    extra.requestChecksumCalculation = 'WHEN_REQUIRED';
    extra.responseChecksumValidation = 'WHEN_REQUIRED';
  } else {
    if (s3.forcePathStyle) extra.forcePathStyle = true;
    // A bucket in another region answers 301; let the SDK follow it instead of failing. This never
    // follows a Location: the SDK re-signs for the region in x-amz-bucket-region and builds the AWS
    // endpoint of that region itself (@aws-sdk/middleware-sdk-s3, region-redirect-middleware).
    // Any other 3xx is an error: node-http-handler uses http.request, which does not follow redirects.
    extra.followRegionRedirects = true;
  }
  return buildAwsClient(
    S3Client,
    {
      ...(s3.profile === undefined ? {} : { profile: s3.profile }),
      ...(s3.accessKeyId === undefined ? {} : { accessKeyId: s3.accessKeyId }),
      ...(s3.secretAccessKey === undefined ? {} : { secretAccessKey: s3.secretAccessKey }),
      ...(s3.sessionToken === undefined ? {} : { sessionToken: s3.sessionToken }),
      region,
      ...(endpoint === undefined ? {} : { endpoint }),
      requestTimeoutMs,
      // An idle socket never outlives a shorter request timeout.
      socketTimeoutMs: Math.min(SOCKET_TIMEOUT_MS, requestTimeoutMs),
      credentialChain: 'takeout',
    },
    extra,
  );
}

/** S3 error codes for credentials that were good when the client took them and are not any more. */
const EXPIRED_CREDENTIAL_CODES = new Set(['ExpiredToken', 'RequestExpired', 'TokenRefreshRequired']);

function isExpiredCredentials(error: unknown, commandName: string | undefined): boolean {
  const shape = (error ?? {}) as SdkErrorShape;
  const name = typeof shape.name === 'string' ? shape.name : '';
  const awsCode = typeof shape.Code === 'string' ? shape.Code : name;
  if (EXPIRED_CREDENTIAL_CODES.has(awsCode)) return true;
  return isBareHead400((commandName ?? '').replace(/Command$/, ''), awsCode, shape.$metadata?.httpStatusCode);
}

/** A body that can be sent again as it is: none, bytes or text. A stream is used up by the first attempt. */
function isResendable(body: unknown): boolean {
  return body === undefined || typeof body === 'string' || body instanceof Uint8Array;
}

/** What one destination's client has learnt about resending; shared by all its requests. */
export interface ResendPolicy {
  /** Cleared for good when the store answers 501 to `If-None-Match`: later writes go without it. */
  conditionalWrites: boolean;
  /** False for static keys given as flags: there is nothing to refresh them from. */
  refreshable: boolean;
}

/**
 * Sends a failed request once more in two cases the SDK's retries leave alone, and only when its body can
 * be sent again (our puts and lib-storage's parts are Buffers):
 * - Expired credentials that can be refreshed (profile, SSO, role, credential_process): the SDK renews them
 *   only within 5 minutes of the expiration it was given, so a token that dies earlier keeps failing.
 *   One forced refresh is shared by every request that failed on the old token. Static keys (no expiration)
 *   and a refresh that brings back the same keys are not retried: the expiry message tells the user what to do.
 * - A store that answers 501 NotImplemented to `If-None-Match`: remembered, and the request sent again
 *   without it, with no message. The create-only guard then rests on the HEAD made before a run.
 */
export function installResendOnce(client: S3Client, policy: ResendPolicy): void {
  let generation = 0;
  let refreshed: Promise<boolean> = Promise.resolve(false);
  const refresh = (seen: number): Promise<boolean> => {
    // Refreshed since this request was signed: the new credentials are already there.
    if (seen !== generation) return refreshed;
    generation += 1;
    refreshed = (async () => {
      const before = await client.config.credentials();
      if (before.expiration === undefined) return false;
      const after = await client.config.credentials({ forceRefresh: true });
      return after.accessKeyId !== before.accessKeyId || after.sessionToken !== before.sessionToken;
    })().catch(() => false);
    return refreshed;
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const seen = generation;
      try {
        return await next(args);
      } catch (error) {
        const input = args.input as Record<string, unknown>;
        if (!isResendable(input.Body)) throw error;
        if (input.IfNoneMatch !== undefined && isNotImplemented(error)) {
          policy.conditionalWrites = false;
          const without = { ...input };
          delete without.IfNoneMatch;
          return next({ ...args, input: without as typeof args.input });
        }
        if (policy.refreshable && isExpiredCredentials(error, context.commandName) && (await refresh(seen))) {
          return next(args);
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'takeoutResendOnce', override: true },
  );
}
