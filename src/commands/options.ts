import { TakeoutError } from '../errors.js';
import type { StoreOptions } from '../stores/store.js';
import type { NetworkOptions } from '../stores/network.js';
import type { SourceOptions } from '../sources/registry.js';

/**
 * Every option has one definition: a spec, in the module of the command that takes it (the shared ones here).
 * Its value comes from, in order: the flag, the `TAKEOUT_<NAME>` environment variable, the YAML config file
 * (`--config`), the default; the CLI resolves it, and the command reads it typed by its specs (OptionValues).
 */
export type OptionType = 'string' | 'boolean' | 'list' | 'size' | 'int' | 'duration';

export interface OptionSpec {
  /** camelCase key, as commander names it. */
  key: string;
  flags: string;
  description: string;
  type: OptionType;
  default?: string | boolean | number | readonly string[];
  /** Values are secrets: registered with the redactor, never echoed. */
  secret?: boolean;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** A boolean that also has a `--no-<name>` form; unset unless one of the two is given. */
  negatable?: boolean;
  /** A list whose flag value is itself comma-separated (`--columns a,b,c`); globs are not split. */
  commaSeparated?: boolean;
  /** A duration: what a number without a unit means, in ms per unit (see parseDuration); unset: only 0. */
  bareUnitMs?: number;
  /** Values shell completion offers when they are not a fixed `choices` list; `given` reads options already on the line. */
  completions?(given: (key: string) => string | undefined): readonly string[];
  /** The `--help` heading it is listed under (GROUP.*, or a heading of its own); none: the command's own "Options". */
  group?: string;
  /** For a negatable boolean: what `--no-<name>` does. */
  negatedDescription?: string;
  /** The default as --help says it, when the value depends on the machine (one per core): help reads the same everywhere. */
  defaultText?: string;
}

/**
 * The headings of `--help`, in the order they are shown (as gh and rclone group their flags). Options without a
 * group are the command's own and come under "Options", after the ones that say what goes where and how.
 */
export const GROUP = {
  source: 'Source',
  rows: 'Rows',
  destination: 'Destination',
  format: 'Slicing and format',
  own: 'Options',
  cloud: 'S3 and cloud',
  output: 'Output',
  config: 'Config and help',
} as const;

/** The same options under another heading, unless they name one themselves; each keeps its own type. */
export function inGroup<const S extends readonly OptionSpec[]>(group: string, specs: S): S {
  // map() widens a tuple to an array of its union: the elements are the same specs, with a heading.
  return specs.map((spec) => (spec.group === undefined ? { ...spec, group } : spec)) as unknown as S;
}

/** Some of `specs`, in their order, each keeping its own type. */
export function pickSpecs<S extends OptionSpec, K extends S['key']>(specs: readonly S[], keys: readonly K[]): Extract<S, { key: K }>[] {
  const wanted = new Set<string>(keys);
  return specs.filter((spec): spec is Extract<S, { key: K }> => wanted.has(spec.key));
}

/** What one option resolves to: a number for sizes, counts and durations; a choice's own names. */
type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'list'
    ? string[]
    : S['type'] extends 'size' | 'int' | 'duration'
      ? number
      : S extends { choices: readonly (infer C extends string)[] }
        ? C
        : string;

/** An option with a default always has a value; one without may be unset. */
type Given<S extends OptionSpec> = S extends { default: unknown } ? ValueOf<S> : ValueOf<S> | undefined;

/**
 * The resolved values of a command's options, computed from its specs (`as const`): `{ sliceSize: number,
 * lineEnding: 'lf' | 'crlf', sliceRows: number | undefined, … }`, so a command reads them without casts.
 */
export type OptionValues<Specs extends readonly OptionSpec[]> = { [S in Specs[number] as S['key']]: Given<S> };

const MiB = 1024 * 1024;

/** S3 refuses parts under 5 MiB (except the last); lib-storage enforces it too. */
export const MIN_PART_BYTES = 5 * MiB;
/** S3's largest part. */
export const MAX_PART_BYTES = 5 * 1024 * MiB;

export const COMMON_OPTIONS = [
  { key: 'config', flags: '--config <file>', description: 'YAML file with option values (flags and TAKEOUT_* variables win over it)', type: 'string', group: GROUP.config },
  { key: 'json', flags: '--json', description: 'JSON lines on stdout: one object per event (docs/events.md), a progress event every second, the summary last', type: 'boolean', default: false, group: GROUP.output },
  { key: 'quiet', flags: '-q, --quiet', description: 'print errors only', type: 'boolean', default: false, group: GROUP.output },
  { key: 'progress', flags: '--no-progress', description: 'plain log lines (a progress line every 10 s) instead of progress bars on a terminal', type: 'boolean', default: true, group: GROUP.output },
  { key: 'debug', flags: '--debug', description: 'log each HTTP request (method, URL, status, time, attempt) and the stack traces of errors, to stderr or --log-file; secrets stay redacted', type: 'boolean', default: false, group: GROUP.output },
  { key: 'logFile', flags: '--log-file <file>', description: 'write the --debug log to FILE instead of stderr (appended, created 0600); errors are copied there too', type: 'string', group: GROUP.output },
  { key: 'bwlimit', flags: '--bwlimit <rate>', description: 'limit the bytes per second read and written, all transfers together, as rclone: 512k, 10M (binary units, 10M = 10 MiB/s; a bare number is KiB/s); 0 or off: no limit', type: 'string', group: GROUP.cloud },
] as const satisfies readonly OptionSpec[];

/** What every --dest and store argument accepts, for help texts. */
export const STORE_FORMS = 'a local folder, s3://bucket/prefix, azure://container/prefix or gs://bucket/prefix';

/** S3 options of every command that reaches a bucket: where it is and who asks. */
export const S3_ACCESS_OPTIONS = inGroup(GROUP.cloud, [
  { key: 'region', flags: '--region <region>', description: 'S3 region (default: AWS_REGION, the profile, or us-east-1)', type: 'string' },
  { key: 'profile', flags: '--profile <name>', description: 'AWS shared-config profile', type: 'string' },
  { key: 'endpointUrl', flags: '--endpoint-url <url>', description: 'S3-compatible endpoint (MinIO, R2, Ceph…): path-style addressing, checksums only when required', type: 'string' },
  { key: 'accessKeyId', flags: '--access-key-id <id>', description: 'access key id (default: the AWS credential chain)', type: 'string', secret: true },
  { key: 'secretAccessKey', flags: '--secret-access-key <key>', description: 'secret access key (prefer AWS_SECRET_ACCESS_KEY)', type: 'string', secret: true },
  { key: 'sessionToken', flags: '--session-token <token>', description: 'session token for temporary credentials', type: 'string', secret: true },
  { key: 'expectedBucketOwner', flags: '--expected-bucket-owner <account>', description: 'fail unless the bucket belongs to this account id', type: 'string' },
  { key: 'requestTimeout', flags: '--request-timeout <duration>', description: 'give up on an S3, Azure, GCS or DynamoDB request (and retry it) after this long without an answer: 30s, 2m (a bare number is ms; default: 2m for S3, Azure and GCS, 30s for DynamoDB)', type: 'duration', bareUnitMs: 1, min: 100 },
  { key: 'azureAccount', flags: '--azure-account <name>', description: 'azure://: the storage account when AZURE_STORAGE_CONNECTION_STRING does not name it (default: AZURE_STORAGE_ACCOUNT), as az storage --account-name', type: 'string' },
]);

/** S3 options of the commands that upload: verify, cleanup and the listings never write an object of data. */
export const S3_UPLOAD_OPTIONS = inGroup(GROUP.cloud, [
  { key: 'sse', flags: '--sse <algorithm>', description: 'server-side encryption: AES256 or aws:kms', type: 'string', choices: ['AES256', 'aws:kms'] },
  { key: 'sseKmsKeyId', flags: '--sse-kms-key-id <id>', description: 'KMS key for --sse aws:kms', type: 'string' },
  { key: 'partSize', flags: '--part-size <size>', description: 'multipart part size', type: 'size', default: '8MB', min: MIN_PART_BYTES, max: MAX_PART_BYTES },
  { key: 'partConcurrency', flags: '--part-concurrency <n>', description: 'parts of one upload in flight', type: 'int', default: 4, min: 1, max: 64 },
]);

/** Every S3 option: for the commands that upload. */
export const S3_OPTIONS = [...S3_ACCESS_OPTIONS, ...S3_UPLOAD_OPTIONS] as const;

/** The most parallel scan segments per table: each holds a socket and up to one 1 MB page in memory. */
const MAX_SCAN_SEGMENTS = 1000;

export const DYNAMODB_OPTIONS = inGroup(GROUP.cloud, [
  {
    key: 'dynamodbEndpointUrl',
    flags: '--dynamodb-endpoint-url <url>',
    description: 'dynamodb: sources: a DynamoDB-compatible endpoint (default: AWS_ENDPOINT_URL_DYNAMODB; --endpoint-url when the destination is not S3)',
    type: 'string',
  },
  { key: 'segments', flags: '--segments <n>', description: 'dynamodb: sources: parallel scan segments per table', type: 'int', default: 4, min: 1, max: MAX_SCAN_SEGMENTS },
  { key: 'consistentRead', flags: '--consistent-read', description: 'dynamodb: sources: strongly consistent scans (twice the read capacity)', type: 'boolean', default: false },
]);


/** The S3 options a store is opened with: every command that reaches a bucket has the access ones, uploads the rest. */
export type S3Values = Partial<OptionValues<typeof S3_OPTIONS>>;

/** What a source is opened with: its own options, and the AWS ones DynamoDB shares with S3. */
export type SourceValues = Partial<OptionValues<typeof S3_ACCESS_OPTIONS> & OptionValues<typeof DYNAMODB_OPTIONS>> & {
  schema?: string[] | undefined;
  token?: string | undefined;
  dest?: string | undefined;
};

/** What `openStore` takes; `network` (the request log, the bandwidth limit) comes from the command's context. */
export function destinationOptions(o: S3Values, network: NetworkOptions = {}): StoreOptions {
  const s3: NonNullable<StoreOptions['s3']> = {};
  if (o.region) s3.region = o.region;
  if (o.profile) s3.profile = o.profile;
  if (o.endpointUrl) s3.endpointUrl = o.endpointUrl;
  if (o.accessKeyId) s3.accessKeyId = o.accessKeyId;
  if (o.secretAccessKey) s3.secretAccessKey = o.secretAccessKey;
  if (o.sessionToken) s3.sessionToken = o.sessionToken;
  if (o.sse) s3.sse = o.sse;
  if (o.sseKmsKeyId) s3.sseKmsKeyId = o.sseKmsKeyId;
  if (o.expectedBucketOwner) s3.expectedBucketOwner = o.expectedBucketOwner;
  if (typeof o.partSize === 'number') s3.partSize = o.partSize;
  if (typeof o.partConcurrency === 'number') s3.partConcurrency = o.partConcurrency;
  const timeouts = typeof o.requestTimeout === 'number' ? { requestTimeoutMs: o.requestTimeout } : undefined;
  if (timeouts) s3.requestTimeoutMs = timeouts.requestTimeoutMs;
  if (s3.accessKeyId && !s3.secretAccessKey) throw new TakeoutError('USAGE', '--access-key-id needs --secret-access-key');
  if (s3.sseKmsKeyId && s3.sse !== 'aws:kms') throw new TakeoutError('USAGE', '--sse-kms-key-id needs --sse aws:kms');
  const azure = { ...timeouts, ...(o.azureAccount ? { account: o.azureAccount } : {}) };
  return { s3, ...(Object.keys(azure).length > 0 ? { azure } : {}), ...(timeouts ? { gcs: timeouts } : {}), ...network };
}

/**
 * The network options for a source whose bytes are written on to a destination that is limited already:
 * the request log without the bandwidth limit, so each byte is counted once (as rclone counts a transfer).
 */
export function unthrottled(network: NetworkOptions): NetworkOptions {
  return network.onRequest ? { onRequest: network.onRequest } : {};
}

/**
 * What `openSource` takes. DynamoDB uses the same AWS region and credentials as S3; `--endpoint-url`
 * serves DynamoDB too when the destination is not S3 (one local emulator, no second flag).
 */
export function sourceOptions(o: SourceValues, network: NetworkOptions = {}): SourceOptions {
  const str = (value: string | undefined): string | undefined => (value === '' ? undefined : value);
  const options: SourceOptions = { ...network };
  const schemas = o.schema ?? [];
  if (schemas.length) options.schemas = schemas;
  if (o.token) options.token = o.token;
  const dynamodb: NonNullable<SourceOptions['dynamodb']> = {};
  for (const key of ['region', 'profile', 'accessKeyId', 'secretAccessKey', 'sessionToken'] as const) {
    const value = str(o[key]);
    if (value !== undefined) dynamodb[key] = value;
  }
  const endpoint = str(o.dynamodbEndpointUrl) ?? (/^s3:\/\//i.test(str(o.dest) ?? '') ? undefined : str(o.endpointUrl));
  if (endpoint !== undefined) dynamodb.endpointUrl = endpoint;
  if (typeof o.segments === 'number') dynamodb.segments = o.segments;
  if (o.consistentRead === true) dynamodb.consistentRead = true;
  if (typeof o.requestTimeout === 'number') dynamodb.requestTimeoutMs = o.requestTimeout;
  if (network.onRequest) dynamodb.onRequest = network.onRequest;
  options.dynamodb = dynamodb;
  return options;
}
