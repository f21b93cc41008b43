import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import { TakeoutError, type Validation } from '../errors.js';
import type { DestinationOptions } from '../destinations/destination.js';
import type { SourceOptions } from '../sources/registry.js';
import { parseInteger, parseSize } from '../pipeline/units.js';
import { registerSecret } from '../reporting/redact.js';

/**
 * Every option has one definition here. Its value comes from, in order: the flag, the
 * `TAKEOUT_<NAME>` environment variable, the YAML config file (`--config`), the default.
 */
export type OptionType = 'string' | 'boolean' | 'list' | 'size' | 'int';

export interface OptionSpec {
  /** camelCase key, as commander names it. */
  key: string;
  flags: string;
  description: string;
  type: OptionType;
  default?: string | boolean | number | string[];
  /** Values are secrets: registered with the redactor, never echoed. */
  secret?: boolean;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** A boolean that also has a `--no-<name>` form; unset unless one of the two is given. */
  negatable?: boolean;
  /** A list whose flag value is itself comma-separated (`--columns a,b,c`); globs are not split. */
  commaSeparated?: boolean;
}

const MiB = 1024 * 1024;

/** S3 refuses parts under 5 MiB (except the last); lib-storage enforces it too. */
export const MIN_PART_BYTES = 5 * MiB;
/** S3's largest part. */
export const MAX_PART_BYTES = 5 * 1024 * MiB;

export const COMMON_OPTIONS: OptionSpec[] = [
  { key: 'config', flags: '--config <file>', description: 'YAML file with option values (flags and TAKEOUT_* variables win over it)', type: 'string' },
  { key: 'json', flags: '--json', description: 'JSON lines on stdout: one object per event (docs/events.md), a progress event every second, the summary last', type: 'boolean', default: false },
  { key: 'quiet', flags: '-q, --quiet', description: 'print errors only', type: 'boolean', default: false },
  { key: 'progress', flags: '--no-progress', description: 'plain log lines (a progress line every 10 s) instead of progress bars on a terminal', type: 'boolean', default: true },
  { key: 'debug', flags: '--debug', description: 'print stack traces of errors (secrets stay redacted)', type: 'boolean', default: false },
];

export const S3_OPTIONS: OptionSpec[] = [
  { key: 'region', flags: '--region <region>', description: 'S3 region (default: AWS_REGION, the profile, or us-east-1)', type: 'string' },
  { key: 'profile', flags: '--profile <name>', description: 'AWS shared-config profile', type: 'string' },
  { key: 'endpointUrl', flags: '--endpoint-url <url>', description: 'S3-compatible endpoint (MinIO, R2, Ceph…): path-style addressing, checksums only when required', type: 'string' },
  { key: 'accessKeyId', flags: '--access-key-id <id>', description: 'access key id (default: the AWS credential chain)', type: 'string', secret: true },
  { key: 'secretAccessKey', flags: '--secret-access-key <key>', description: 'secret access key (prefer AWS_SECRET_ACCESS_KEY)', type: 'string', secret: true },
  { key: 'sessionToken', flags: '--session-token <token>', description: 'session token for temporary credentials', type: 'string', secret: true },
  { key: 'sse', flags: '--sse <algorithm>', description: 'server-side encryption: AES256 or aws:kms', type: 'string', choices: ['AES256', 'aws:kms'] },
  { key: 'sseKmsKeyId', flags: '--sse-kms-key-id <id>', description: 'KMS key for --sse aws:kms', type: 'string' },
  { key: 'expectedBucketOwner', flags: '--expected-bucket-owner <account>', description: 'fail unless the bucket belongs to this account id', type: 'string' },
  { key: 'partSize', flags: '--part-size <size>', description: 'multipart part size', type: 'size', default: '8MB', min: MIN_PART_BYTES, max: MAX_PART_BYTES },
  { key: 'partConcurrency', flags: '--part-concurrency <n>', description: 'parts of one upload in flight', type: 'int', default: 4, min: 1, max: 64 },
  { key: 'requestTimeout', flags: '--request-timeout <ms>', description: 'give up on an S3 or DynamoDB request (and retry it) after this many ms without an answer (default: 120000 for S3, 30000 for DynamoDB)', type: 'int', min: 100 },
];

/** The most parallel scan segments per table: each holds a socket and up to one 1 MB page in memory. */
const MAX_SCAN_SEGMENTS = 1000;

export const DYNAMODB_OPTIONS: OptionSpec[] = [
  {
    key: 'dynamodbEndpointUrl',
    flags: '--dynamodb-endpoint-url <url>',
    description: 'dynamodb: sources: a DynamoDB-compatible endpoint (default: AWS_ENDPOINT_URL_DYNAMODB; --endpoint-url when the destination is not S3)',
    type: 'string',
  },
  { key: 'segments', flags: '--segments <n>', description: 'dynamodb: sources: parallel scan segments per table', type: 'int', default: 4, min: 1, max: MAX_SCAN_SEGMENTS },
  { key: 'consistentRead', flags: '--consistent-read', description: 'dynamodb: sources: strongly consistent scans (twice the read capacity)', type: 'boolean', default: false },
];

/** Register options on a command without defaults, so the source of each value can be told apart. */
export function addOptions(command: Command, specs: readonly OptionSpec[]): Command {
  for (const spec of specs) {
    const suffix = spec.default !== undefined && spec.type !== 'boolean' ? ` (default: ${String(spec.default)})` : '';
    if (spec.type === 'list') {
      command.option(spec.flags, spec.commaSeparated ? spec.description : `${spec.description}; repeatable`, (value: string, previous: string[] | undefined) => [
        ...(previous ?? []),
        ...(spec.commaSeparated ? value.split(',').map((v) => v.trim()).filter(Boolean) : [value]),
      ]);
    } else {
      command.option(spec.flags, spec.description + suffix);
      if (spec.negatable) command.option(spec.flags.replace(/--([\w-]+)/, '--no-$1'), '');
    }
  }
  return command;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** `dryRun` → `TAKEOUT_DRY_RUN`: the variable that sets an option. */
export function envName(key: string): string {
  return `TAKEOUT_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export type Resolved = Record<string, string | boolean | number | string[] | undefined>;

function loadConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TakeoutError(code === 'ENOENT' ? 'NOT_FOUND' : 'USAGE', `config file ${file}: ${code === 'ENOENT' ? 'does not exist' : (error as Error).message}`);
  }
  let parsed: unknown;
  try {
    // Loaded only when a config file is given: yaml is ~70 modules that `takeout --help` need not load.
    const yaml = createRequire(import.meta.url)('yaml') as typeof YamlModule;
    parsed = yaml.parse(text);
  } catch (error) {
    throw new TakeoutError('USAGE', `config file ${file}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new TakeoutError('USAGE', `config file ${file}: expected a mapping of option names to values`);
  return parsed as Record<string, unknown>;
}

function fromText(spec: OptionSpec, text: string, origin: string): Validation<string | boolean | number | string[]> {
  const name = `${origin}`;
  switch (spec.type) {
    case 'boolean': {
      const v = text.trim().toLowerCase();
      if (TRUE.has(v)) return { ok: true, value: true };
      if (FALSE.has(v)) return { ok: true, value: false };
      return { ok: false, error: new TakeoutError('USAGE', `${name}: '${text}' is not true or false`) };
    }
    case 'list':
      return { ok: true, value: text.split(',').map((s) => s.trim()).filter(Boolean) };
    case 'size':
      return parseSize(text, name, spec.min, spec.max);
    case 'int':
      return parseInteger(text, name, spec.min ?? 0, spec.max ?? Number.MAX_SAFE_INTEGER);
    case 'string':
      if (spec.choices && !spec.choices.includes(text)) {
        return { ok: false, error: new TakeoutError('USAGE', `${name}: '${text}' is not one of ${spec.choices.join(', ')}`) };
      }
      return { ok: true, value: text };
  }
}

/**
 * Resolve every option with the precedence flags > TAKEOUT_* environment > YAML config > defaults.
 * Unknown keys in the config file are an error (a typo must not silently do nothing).
 */
export function resolveOptions(command: Command, specs: readonly OptionSpec[], env: NodeJS.ProcessEnv = process.env): Resolved {
  const flags = command.opts<Record<string, unknown>>();
  const configFile = (command.getOptionValueSource('config') === 'cli' ? flags.config : undefined) ?? env.TAKEOUT_CONFIG;
  const config = typeof configFile === 'string' ? loadConfig(configFile) : {};
  const known = new Map<string, OptionSpec>();
  for (const spec of specs) {
    known.set(spec.key, spec);
    known.set(kebab(spec.key), spec);
  }
  for (const key of Object.keys(config)) {
    if (!known.has(key)) throw new TakeoutError('USAGE', `config file ${String(configFile)}: unknown option '${key}'`);
  }

  const resolved: Resolved = {};
  for (const spec of specs) {
    let value: unknown;
    const source = command.getOptionValueSource(spec.key);
    if (source === 'cli') {
      value = flags[spec.key];
      if (typeof value === 'string') value = check(fromText(spec, value, `--${kebab(spec.key)}`));
    } else if (env[envName(spec.key)] !== undefined) {
      value = check(fromText(spec, env[envName(spec.key)]!, envName(spec.key)));
    } else if (config[spec.key] !== undefined || config[kebab(spec.key)] !== undefined) {
      const raw = config[spec.key] ?? config[kebab(spec.key)];
      const where = `config ${kebab(spec.key)}`;
      if (spec.type === 'list' && Array.isArray(raw)) value = raw.map(String);
      else if (spec.type === 'boolean' && typeof raw === 'boolean') value = raw;
      else if ((spec.type === 'int' || spec.type === 'size') && typeof raw === 'number') value = check(fromText(spec, String(raw), where));
      else if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') value = check(fromText(spec, String(raw), where));
      else throw new TakeoutError('USAGE', `${where}: unexpected value ${JSON.stringify(raw)}`);
    } else if (spec.default !== undefined) {
      value = typeof spec.default === 'string' && spec.type !== 'string' ? check(fromText(spec, spec.default, `default ${spec.key}`)) : spec.default;
    }
    if (spec.secret && typeof value === 'string') registerSecret(value);
    resolved[spec.key] = value as Resolved[string];
  }
  return resolved;
}

function check<T>(validation: Validation<T>): T {
  if (!validation.ok) throw validation.error;
  return validation.value;
}

export function destinationOptions(o: Resolved): DestinationOptions {
  const s3: NonNullable<DestinationOptions['s3']> = {};
  const str = (k: string): string | undefined => (typeof o[k] === 'string' ? (o[k] as string) : undefined);
  if (str('region')) s3.region = str('region')!;
  if (str('profile')) s3.profile = str('profile')!;
  if (str('endpointUrl')) s3.endpointUrl = str('endpointUrl')!;
  if (str('accessKeyId')) s3.accessKeyId = str('accessKeyId')!;
  if (str('secretAccessKey')) s3.secretAccessKey = str('secretAccessKey')!;
  if (str('sessionToken')) s3.sessionToken = str('sessionToken')!;
  if (str('sse')) s3.sse = str('sse') as 'AES256' | 'aws:kms';
  if (str('sseKmsKeyId')) s3.sseKmsKeyId = str('sseKmsKeyId')!;
  if (str('expectedBucketOwner')) s3.expectedBucketOwner = str('expectedBucketOwner')!;
  if (typeof o.partSize === 'number') s3.partSize = o.partSize;
  if (typeof o.partConcurrency === 'number') s3.partConcurrency = o.partConcurrency;
  if (typeof o.requestTimeout === 'number') s3.requestTimeoutMs = o.requestTimeout;
  if (s3.accessKeyId && !s3.secretAccessKey) throw new TakeoutError('USAGE', '--access-key-id needs --secret-access-key');
  if (s3.sseKmsKeyId && s3.sse !== 'aws:kms') throw new TakeoutError('USAGE', '--sse-kms-key-id needs --sse aws:kms');
  return { s3 };
}

/**
 * What `openSource` takes. DynamoDB uses the same AWS region and credentials as S3; `--endpoint-url`
 * serves DynamoDB too when the destination is not S3 (one local emulator, no second flag).
 */
export function sourceOptions(o: Resolved): SourceOptions {
  const str = (k: string): string | undefined => (typeof o[k] === 'string' && o[k] !== '' ? (o[k] as string) : undefined);
  const options: SourceOptions = {};
  const schemas = Array.isArray(o.schema) ? o.schema : [];
  if (schemas.length) options.schemas = schemas;
  if (str('token')) options.token = str('token')!;
  const dynamodb: NonNullable<SourceOptions['dynamodb']> = {};
  for (const key of ['region', 'profile', 'accessKeyId', 'secretAccessKey', 'sessionToken'] as const) {
    const value = str(key);
    if (value !== undefined) dynamodb[key] = value;
  }
  const endpoint = str('dynamodbEndpointUrl') ?? (/^s3:\/\//i.test(str('dest') ?? '') ? undefined : str('endpointUrl'));
  if (endpoint !== undefined) dynamodb.endpointUrl = endpoint;
  if (typeof o.segments === 'number') dynamodb.segments = o.segments;
  if (o.consistentRead === true) dynamodb.consistentRead = true;
  if (typeof o.requestTimeout === 'number') dynamodb.requestTimeoutMs = o.requestTimeout;
  options.dynamodb = dynamodb;
  return options;
}
