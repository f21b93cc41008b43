/**
 * The container client of one store: credentials from `resolveAzureAuth`, retries and timeouts bounded so a
 * dead or silent endpoint fails in bounded time. `@azure/identity` is imported only for the default chain.
 */
import { AnonymousCredential, ContainerClient, newPipeline, RestError, StorageSharedKeyCredential } from '@azure/storage-blob';
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
 * Places our policies inside the SDK's retry loop, and makes a try that outlived its timeout a retriable error.
 * @azure/storage-blob 12.32.0 runs the request policies a caller adds before its retry policy, unless one of them
 * is an `InjectorPolicyFactory` (by class name: Pipeline.js processDownlevelPipeline, `afterRetry`); before it, a
 * timeout would cover all tries together and be logged once. Inside, each try has its own timeout and its own
 * `--debug` line. The HTTP client ends a timed-out try with an AbortError, which StorageRetryPolicy does not retry
 * (it retries RestErrors coded ETIMEDOUT, ECONNRESET…): a try that timed out while the caller's own signal did not
 * abort becomes one, so a silent server is tried MAX_TRIES times, as S3 and GCS requests are, each bounded.
 */
class InjectorPolicyFactory implements RequestPolicyFactory {
  create(next: RequestPolicy): RequestPolicy {
    return {
      async sendRequest(request: WebResource) {
        try {
          return await next.sendRequest(request);
        } catch (error) {
          const name = (error as { name?: unknown } | null)?.name;
          if (name !== 'AbortError' || request.abortSignal?.aborted === true || !(request.timeout > 0)) throw error;
          // A RestError: StorageRetryPolicyV2 (@azure/storage-common) rethrows anything else at once.
          throw new RestError(`no answer within ${request.timeout} ms`, { code: 'ETIMEDOUT' });
        }
      },
    };
  }
}

/**
 * A request policy that hands each try to `--debug` (the URL raw: the log redacts its `sig=`): inside the retry
 * loop (InjectorPolicyFactory), one line per try, as for S3.
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
  pipeline.factories.unshift(new InjectorPolicyFactory());
  return new ContainerClient(url, pipeline);
}
