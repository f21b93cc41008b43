/**
 * The container client of one store: credentials from `resolveAzureAuth`, retries and timeouts bounded so a
 * dead or silent endpoint fails in bounded time. `@azure/identity` is imported only for the default chain.
 */
import { AnonymousCredential, ContainerClient, newPipeline, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { RequestPolicy, RequestPolicyFactory, StoragePipelineOptions, WebResource } from '@azure/storage-blob';
import type { RequestLogger } from '../network.js';
import type { AzureAuth } from './credentials.js';

/**
 * 120 s per try, from the first byte sent to the response headers (the body of one staged block included:
 * 8 MiB in 120 s is ~70 KB/s, slower than any link we support), as for S3. Without it a silent server hangs.
 */
export const REQUEST_TIMEOUT_MS = 120_000;
/** 60 s: a download's socket idle this long means the server went silent mid-body. */
export const SOCKET_TIMEOUT_MS = 60_000;
/**
 * Tries per request (the first and 3 retries) on network errors, 500 and 503, as the SDK's StorageRetryPolicy
 * decides; exponential delays from 250 ms, at most 4 s apart, so a refused connection fails in about 2 s.
 */
export const MAX_TRIES = 4;
export const RETRY_DELAY_MS = 250;
export const MAX_RETRY_DELAY_MS = 4_000;

/** A request policy that gives every try a client-side timeout (the SDK's tryTimeoutInMs is only sent to the server). */
function timeoutPolicy(timeoutMs: number): RequestPolicyFactory {
  return {
    create(next: RequestPolicy): RequestPolicy {
      return {
        sendRequest(request: WebResource) {
          if (!(request.timeout > 0)) request.timeout = timeoutMs;
          return next.sendRequest(request);
        },
      };
    },
  };
}

/**
 * A request policy that hands each operation to `--debug` (the URL raw: the log redacts its `sig=`). Policies
 * of our own run before the SDK's retry policy (@azure/storage-blob wraps them ahead of the Retry phase), so
 * one line stands for an operation with its retries.
 */
function logPolicy(onRequest: RequestLogger): RequestPolicyFactory {
  return {
    create(next: RequestPolicy): RequestPolicy {
      return {
        async sendRequest(request: WebResource) {
          const started = performance.now();
          const base = { method: request.method, url: request.url, attempt: 1 };
          try {
            const response = await next.sendRequest(request);
            onRequest({ ...base, status: response.status, ms: performance.now() - started });
            return response;
          } catch (error) {
            const shape = (error ?? {}) as { statusCode?: number; code?: string; name?: string };
            const status = typeof shape.statusCode === 'number' ? { status: shape.statusCode } : {};
            onRequest({ ...base, ...status, error: shape.code ?? shape.name ?? 'Error', ms: performance.now() - started });
            throw error;
          }
        },
      };
    },
  };
}

export async function buildContainerClient(auth: AzureAuth, container: string, requestTimeoutMs = REQUEST_TIMEOUT_MS, onRequest?: RequestLogger): Promise<ContainerClient> {
  const options: StoragePipelineOptions = {
    retryOptions: { maxTries: MAX_TRIES, retryDelayInMs: RETRY_DELAY_MS, maxRetryDelayInMs: MAX_RETRY_DELAY_MS },
    userAgentOptions: { userAgentPrefix: 'takeout' },
  };
  let url = `${auth.endpoint}/${encodeURIComponent(container)}`;
  let credential;
  if (auth.kind === 'shared-key') credential = new StorageSharedKeyCredential(auth.account, auth.key);
  else if (auth.kind === 'sas') {
    credential = new AnonymousCredential();
    url += `?${auth.sas}`;
  } else {
    const { DefaultAzureCredential } = await import('@azure/identity');
    credential = new DefaultAzureCredential();
  }
  const pipeline = newPipeline(credential, options);
  pipeline.factories.unshift(timeoutPolicy(requestTimeoutMs));
  if (onRequest) pipeline.factories.unshift(logPolicy(onRequest));
  return new ContainerClient(url, pipeline);
}
