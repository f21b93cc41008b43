/**
 * What every AWS SDK v3 client takeout builds shares: a logger that never prints, one HTTP handler with
 * connection, request and socket timeouts, credentials from flags, a profile or the default chain (their
 * secrets registered for redaction), and the endpoint takeout resolved itself. S3 and DynamoDB add their own
 * settings on top (`buildAwsClient`'s `extra`).
 */
import { fromIni, fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { NodeHttpHandlerOptions } from '@smithy/node-http-handler';
import { TakeoutError } from '../errors.js';
import { registerSecret } from '../secrets.js';

/** 10 s: a TCP (+TLS) handshake slower than this means the endpoint is unreachable, not slow. */
export const CONNECTION_TIMEOUT_MS = 10_000;

type Logger = NonNullable<NodeHttpHandlerOptions['logger']>;

/**
 * The SDK must never print: no console logger, not even for the handler's socket warnings. No `info` on
 * purpose: the SDK's logger middleware builds a redacted copy of every answer for `logger.info?.(…)`
 * (@aws-sdk/core, loggerMiddleware), a deep walk of each answer (~15% of a DynamoDB scan's CPU) for nothing.
 */
export const SILENT_LOGGER = {
  trace: (): void => undefined,
  debug: (): void => undefined,
  warn: (): void => undefined,
  error: (): void => undefined,
} as unknown as Logger;

/** Keys given as flags or environment variables, or a profile to read them from. */
export interface AwsCredentialOptions {
  profile?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
}

/** How a user points takeout at an AWS service: the options every AWS-backed store or source takes. */
export interface AwsConnectionOptions extends AwsCredentialOptions {
  region?: string;
  /** A compatible endpoint (MinIO, dynalite, …); else the one configured for the service, else AWS's own. */
  endpointUrl?: string;
  /** Per-request timeout in ms. */
  requestTimeoutMs?: number;
}

type CredentialProvider = ReturnType<typeof fromNodeProviderChain>;

/**
 * Keys found by the SDK (a profile, the shared credentials file, SSO, a container or instance role) are
 * registered with the redactor as they are resolved, like the keys given as flags or environment variables.
 */
export function registeringSecrets(provider: CredentialProvider): CredentialProvider {
  return async (...args) => {
    const identity = await provider(...args);
    registerSecret(identity.secretAccessKey);
    registerSecret(identity.sessionToken);
    return identity;
  };
}

/** Static keys when given (both halves, or a usage error), else undefined. */
export function staticCredentials(options: AwsCredentialOptions): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined {
  if (options.accessKeyId === undefined && options.secretAccessKey === undefined) return undefined;
  if (!options.accessKeyId || !options.secretAccessKey) {
    throw new TakeoutError('USAGE', 'an access key id needs its secret access key, and the other way round', {
      hint: 'give both --access-key-id and --secret-access-key, or neither',
    });
  }
  return {
    accessKeyId: options.accessKeyId,
    secretAccessKey: options.secretAccessKey,
    ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
  };
}

export interface AwsHandlerOptions {
  /** From the first byte sent to the response headers. */
  requestTimeoutMs: number;
  /** A socket idle this long in either direction means the server went silent. */
  socketTimeoutMs: number;
  /** Sockets per host, when the default (Infinity in Node 20's agent, 50 in the SDK's) does not suit. */
  maxSockets?: number;
}

/** The one HTTP handler: a request past its timeout fails instead of hanging, and nothing is logged. */
export function awsRequestHandler(options: AwsHandlerOptions): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    requestTimeout: options.requestTimeoutMs,
    // Without this a request past requestTimeout only logs a warning and keeps waiting.
    throwOnRequestTimeout: true,
    socketTimeout: options.socketTimeoutMs,
    ...(options.maxSockets === undefined ? {} : { httpAgent: { maxSockets: options.maxSockets }, httpsAgent: { maxSockets: options.maxSockets } }),
    logger: SILENT_LOGGER,
  });
}

export interface AwsClientOptions extends AwsCredentialOptions, AwsHandlerOptions {
  /** Undefined lets the SDK find it (AWS_REGION, the profile). */
  region?: string;
  /** The endpoint takeout resolved (a flag, or `configuredEndpoint`), already checked by `displayEndpoint`. */
  endpoint?: string;
  /**
   * Who resolves credentials when no static keys are given:
   * - 'takeout': the profile (fromIni) or the default chain, each key registered for redaction as it arrives;
   * - 'sdk': the client's own default chain, told the profile (which also gives it the profile's region).
   */
  credentialChain: 'takeout' | 'sdk';
}

/** The settings every client shares; the service's own come in `extra`. */
interface SharedConfig {
  region?: string;
  profile?: string;
  logger: Logger;
  ignoreConfiguredEndpointUrls: boolean;
  requestHandler: NodeHttpHandler;
  credentials?: ReturnType<typeof staticCredentials> | CredentialProvider;
  endpoint?: string;
}

/** The shared part of a client's configuration. */
export function awsClientConfig(options: AwsClientOptions): SharedConfig {
  // Node 20 would otherwise print a support warning on the first client.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config: SharedConfig = {
    logger: SILENT_LOGGER,
    // The endpoint takeout resolved (configuredEndpoint, with --profile) is the one: the SDK must not find another by itself.
    ignoreConfiguredEndpointUrls: true,
    requestHandler: awsRequestHandler(options),
  };
  if (options.region !== undefined) config.region = options.region;
  const keys = staticCredentials(options);
  if (options.credentialChain === 'sdk') {
    if (options.profile) config.profile = options.profile;
    if (keys) config.credentials = keys;
  } else if (keys) {
    config.credentials = keys;
  } else if (options.profile) {
    config.credentials = registeringSecrets(fromIni({ profile: options.profile }));
  } else {
    config.credentials = registeringSecrets(fromNodeProviderChain());
  }
  if (options.endpoint !== undefined) config.endpoint = options.endpoint;
  return config;
}

/**
 * A client of any AWS service (S3Client, DynamoDBClient): the shared configuration, then the service's own
 * settings in `extra` (path style, checksums, retries), which win.
 */
export function buildAwsClient<Make extends new (...args: never[]) => unknown>(
  make: Make,
  options: AwsClientOptions,
  extra: Partial<ClientConfig<Make>> = {},
): InstanceType<Make> {
  const config = { ...awsClientConfig(options), ...extra };
  return new make(...([config] as unknown as ConstructorParameters<Make>)) as InstanceType<Make>;
}

/** The configuration a client class takes (its constructor's optional argument). */
type ClientConfig<Make extends new (...args: never[]) => unknown> = NonNullable<ConstructorParameters<Make>[0]>;
