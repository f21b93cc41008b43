/** The DynamoDB client: the shared AWS builder (src/aws/) with the settings a parallel Scan needs. */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { buildAwsClient } from '../../aws/client.js';
import { logSdkRequests } from '../../stores/network.js';
import { MAX_SEGMENTS, type DynamoDbSourceOptions } from './options.js';

/** 30 s: a Scan page is at most 1 MB, which DynamoDB sends in well under a second; silence this long is a dead request. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Our retries are the only ones: the SDK's own would multiply them and hide them from the count. */
export const SDK_MAX_ATTEMPTS = 1;
/** One socket per segment, so no segment's Scan waits in the agent's queue while its request timeout runs. */
export const MAX_SOCKETS = MAX_SEGMENTS;
/** What messages suggest when --dynamodb-endpoint-url is not a URL (DynamoDB Local's and dynalite's usual port). */
export const ENDPOINT_EXAMPLE = 'http://127.0.0.1:8000';

export function buildClient(options: DynamoDbSourceOptions, endpoint: string | undefined): DynamoDBClient {
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
  const client = buildAwsClient(
    DynamoDBClient,
    {
      ...(options.accessKeyId === undefined ? {} : { accessKeyId: options.accessKeyId }),
      ...(options.secretAccessKey === undefined ? {} : { secretAccessKey: options.secretAccessKey }),
      ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }),
      ...(options.profile === undefined ? {} : { profile: options.profile }),
      // Otherwise the SDK looks in the profile; a local emulator does not care which region it is told.
      ...(region ? { region } : endpoint !== undefined ? { region: 'us-east-1' } : {}),
      ...(endpoint === undefined ? {} : { endpoint }),
      requestTimeoutMs,
      socketTimeoutMs: requestTimeoutMs,
      maxSockets: MAX_SOCKETS,
      credentialChain: 'sdk',
    },
    { maxAttempts: SDK_MAX_ATTEMPTS },
  );
  logSdkRequests(client, options.onRequest);
  return client;
}
