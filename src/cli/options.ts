import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import { TakeoutError, type Validation } from '../errors.js';
import type { StoreOptions } from '../stores/store.js';
import type { NetworkOptions } from '../stores/network.js';
import type { SourceOptions } from '../sources/registry.js';
import { parseDuration, parseInteger, parseSize } from '../pipeline/units.js';
import { registerSecret } from '../secrets.js';
import { closest } from '../pipeline/suggest.js';

/**
 * Every option has one definition here. Its value comes from, in order: the flag, the
 * `TAKEOUT_<NAME>` environment variable, the YAML config file (`--config`), the default.
 */
export type OptionType = 'string' | 'boolean' | 'list' | 'size' | 'int' | 'duration';

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
  destination: 'Store',
  format: 'Slicing and format',
  own: 'Options',
  cloud: 'S3 and cloud',
  output: 'Output',
  config: 'Config and help',
} as const;

const GROUP_ORDER: readonly string[] = Object.values(GROUP);

/** Where a heading sorts: a heading of its own (a layout's) comes with the command's own options. */
function groupRank(group: string | undefined): number {
  const index = GROUP_ORDER.indexOf(group ?? GROUP.own);
  return index === -1 ? GROUP_ORDER.indexOf(GROUP.own) : index;
}

/** The same options under another heading, unless they name one themselves. */
export function inGroup(group: string, specs: readonly OptionSpec[]): OptionSpec[] {
  return specs.map((spec) => (spec.group === undefined ? { ...spec, group } : spec));
}

const MiB = 1024 * 1024;

/** S3 refuses parts under 5 MiB (except the last); lib-storage enforces it too. */
export const MIN_PART_BYTES = 5 * MiB;
/** S3's largest part. */
export const MAX_PART_BYTES = 5 * 1024 * MiB;

export const COMMON_OPTIONS: OptionSpec[] = [
  { key: 'config', flags: '--config <file>', description: 'YAML file with option values (flags and TAKEOUT_* variables win over it)', type: 'string', group: GROUP.config },
  { key: 'json', flags: '--json', description: 'JSON lines on stdout: one object per event (docs/events.md), a progress event every second, the summary last', type: 'boolean', default: false, group: GROUP.output },
  { key: 'quiet', flags: '-q, --quiet', description: 'print errors only', type: 'boolean', default: false, group: GROUP.output },
  { key: 'progress', flags: '--no-progress', description: 'plain log lines (a progress line every 10 s) instead of progress bars on a terminal', type: 'boolean', default: true, group: GROUP.output },
  { key: 'debug', flags: '--debug', description: 'log each HTTP request (method, URL, status, time, attempt) and the stack traces of errors, to stderr or --log-file; secrets stay redacted', type: 'boolean', default: false, group: GROUP.output },
  { key: 'logFile', flags: '--log-file <file>', description: 'write the --debug log to FILE instead of stderr (appended, created 0600); errors are copied there too', type: 'string', group: GROUP.output },
  { key: 'bwlimit', flags: '--bwlimit <rate>', description: 'limit the bytes per second read and written, all transfers together, as rclone: 512k, 10M (binary units, 10M = 10 MiB/s; a bare number is KiB/s); 0 or off: no limit', type: 'string', group: GROUP.cloud },
];

/** S3 options of every command that reaches a bucket: where it is and who asks. */
export const S3_ACCESS_OPTIONS: OptionSpec[] = inGroup(GROUP.cloud, [
  { key: 'region', flags: '--region <region>', description: 'S3 region (default: AWS_REGION, the profile, or us-east-1)', type: 'string' },
  { key: 'profile', flags: '--profile <name>', description: 'AWS shared-config profile', type: 'string' },
  { key: 'endpointUrl', flags: '--endpoint-url <url>', description: 'S3-compatible endpoint (MinIO, R2, Ceph…): path-style addressing, checksums only when required', type: 'string' },
  { key: 'accessKeyId', flags: '--access-key-id <id>', description: 'access key id (default: the AWS credential chain)', type: 'string', secret: true },
  { key: 'secretAccessKey', flags: '--secret-access-key <key>', description: 'secret access key (prefer AWS_SECRET_ACCESS_KEY)', type: 'string', secret: true },
  { key: 'sessionToken', flags: '--session-token <token>', description: 'session token for temporary credentials', type: 'string', secret: true },
  { key: 'expectedBucketOwner', flags: '--expected-bucket-owner <account>', description: 'fail unless the bucket belongs to this account id', type: 'string' },
  { key: 'requestTimeout', flags: '--request-timeout <duration>', description: 'give up on an S3 or DynamoDB request (and retry it) after this long without an answer: 30s, 2m (a bare number is ms; default: 2m for S3, 30s for DynamoDB)', type: 'duration', bareUnitMs: 1, min: 100 },
]);

/** S3 options of the commands that upload: verify, cleanup and the listings never write an object of data. */
export const S3_UPLOAD_OPTIONS: OptionSpec[] = inGroup(GROUP.cloud, [
  { key: 'sse', flags: '--sse <algorithm>', description: 'server-side encryption: AES256 or aws:kms', type: 'string', choices: ['AES256', 'aws:kms'] },
  { key: 'sseKmsKeyId', flags: '--sse-kms-key-id <id>', description: 'KMS key for --sse aws:kms', type: 'string' },
  { key: 'partSize', flags: '--part-size <size>', description: 'multipart part size', type: 'size', default: '8MB', min: MIN_PART_BYTES, max: MAX_PART_BYTES },
  { key: 'partConcurrency', flags: '--part-concurrency <n>', description: 'parts of one upload in flight', type: 'int', default: 4, min: 1, max: 64 },
]);

/** Every S3 option: for the commands that upload. */
export const S3_OPTIONS: OptionSpec[] = [...S3_ACCESS_OPTIONS, ...S3_UPLOAD_OPTIONS];

/** The most parallel scan segments per table: each holds a socket and up to one 1 MB page in memory. */
const MAX_SCAN_SEGMENTS = 1000;

export const DYNAMODB_OPTIONS: OptionSpec[] = inGroup(GROUP.cloud, [
  {
    key: 'dynamodbEndpointUrl',
    flags: '--dynamodb-endpoint-url <url>',
    description: 'dynamodb: sources: a DynamoDB-compatible endpoint (default: AWS_ENDPOINT_URL_DYNAMODB; --endpoint-url when the destination is not S3)',
    type: 'string',
  },
  { key: 'segments', flags: '--segments <n>', description: 'dynamodb: sources: parallel scan segments per table', type: 'int', default: 4, min: 1, max: MAX_SCAN_SEGMENTS },
  { key: 'consistentRead', flags: '--consistent-read', description: 'dynamodb: sources: strongly consistent scans (twice the read capacity)', type: 'boolean', default: false },
]);

/** The help option of every command that has options of its own, listed with them. */
export function helpOption(): Option {
  return new Option('-h, --help', 'show this help').helpGroup(`${GROUP.config}:`);
}

/** The spec each registered option came from, so shell completion offers its choices (read from the program, never a copy). */
const SPECS = new WeakMap<Option, OptionSpec>();

export function optionSpec(option: Option): OptionSpec | undefined {
  return SPECS.get(option);
}

/**
 * Register options on a command without defaults, so the source of each value can be told apart. They are
 * registered in the order of their --help heading (a stable sort: within a heading, as given).
 */
export function addOptions(command: Command, specs: readonly OptionSpec[]): Command {
  const ordered = specs.map((spec, index) => ({ spec, index })).sort((a, b) => groupRank(a.spec.group) - groupRank(b.spec.group) || a.index - b.index);
  for (const { spec } of ordered) {
    const before = command.options.length;
    const heading = `${spec.group ?? GROUP.own}:`;
    const suffix = spec.default !== undefined && spec.type !== 'boolean' ? ` (default: ${spec.defaultText ?? String(spec.default)})` : '';
    if (spec.type === 'list') {
      const option = new Option(spec.flags, spec.commaSeparated ? spec.description : `${spec.description}; repeatable`).argParser((value: string, previous: string[] | undefined) => [
        ...(previous ?? []),
        ...(spec.commaSeparated ? value.split(',').map((v) => v.trim()).filter(Boolean) : [value]),
      ]);
      command.addOption(option.helpGroup(heading));
    } else {
      command.addOption(new Option(spec.flags, spec.description + suffix).helpGroup(heading));
      if (spec.negatable) {
        const name = /--([\w-]+)/.exec(spec.flags)?.[1] ?? spec.key;
        command.addOption(new Option(`--no-${name}`, spec.negatedDescription ?? `the opposite of --${name}`).helpGroup(heading));
      }
    }
    for (const option of command.options.slice(before)) SPECS.set(option, spec);
  }
  command.addHelpOption(helpOption());
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

/** Set (to anything but 0/false/empty) to read no discovered config file: for tests and CI that want none of a machine's. */
export const NO_CONFIG_ENV = 'TAKEOUT_NO_CONFIG';
/** The project config file, looked for in the working folder (as .npmrc, .editorconfig…); both at once are refused as ambiguous. */
export const PROJECT_CONFIG_FILES = ['takeout.yaml', 'takeout.yml'] as const;

/** A config key as written, and where: for errors that name it. */
interface ConfigValue {
  raw: unknown;
  /** The key as the file spells it (`slice_size`). */
  key: string;
  /** `takeout.yaml:3`: the file and the line of the key. */
  where: string;
}

/** One config file read: its values by camelCase key. */
interface ConfigFile {
  file: string;
  values: Map<string, ConfigValue>;
}

/** `slice-size`, `slice_size`, `sliceSize` (and `SLICE_SIZE`) are one key: `sliceSize`, as commander names the option. */
export function configKey(key: string): string {
  const words = /^[A-Z0-9_]+$/.test(key) ? key.toLowerCase() : key;
  return words.replace(/[-_]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

function loadYaml(): typeof YamlModule {
  // Loaded only when a config file is read: yaml is ~70 modules that `takeout --help` need not load.
  return createRequire(import.meta.url)('yaml') as typeof YamlModule;
}

function loadConfig(file: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TakeoutError(code === 'ENOENT' ? 'NOT_FOUND' : 'USAGE', `config file ${file}: ${code === 'ENOENT' ? 'does not exist' : (error as Error).message}`);
  }
  const yaml = loadYaml();
  const lines = new yaml.LineCounter();
  const document = yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const failure = document.errors[0];
  if (failure) {
    // `file:line:column: message`, as compilers and yamllint say it; the parser's message without its own position.
    const at = lines.linePos(failure.pos[0]);
    const message = failure.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new TakeoutError('USAGE', `${file}:${at.line}:${at.col}: not valid YAML: ${message}`);
  }
  const values = new Map<string, ConfigValue>();
  const contents = document.contents;
  if (contents === null || (yaml.isScalar(contents) && (contents.value === null || contents.value === undefined))) return { file, values };
  if (!yaml.isMap(contents)) throw new TakeoutError('USAGE', `${file}: expected a mapping of option names to values (slice-size: 64MB)`);
  for (const pair of contents.items) {
    const keyNode = pair.key;
    const line = yaml.isNode(keyNode) && keyNode.range ? `:${lines.linePos(keyNode.range[0]).line}` : '';
    const key = yaml.isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const camel = configKey(key);
    const earlier = values.get(camel);
    if (earlier) throw new TakeoutError('USAGE', `${file}${line}: ${key} is given twice (also as ${earlier.key} at ${earlier.where})`);
    values.set(camel, { raw: yaml.isNode(pair.value) ? pair.value.toJS(document) : pair.value, key, where: `${file}${line}` });
  }
  return { file, values };
}

function truthy(text: string | undefined): boolean {
  return text !== undefined && !FALSE.has(text.trim().toLowerCase());
}

/** The first of `names` that exists in `folder`, as `folder/name`. */
function existing(folder: string, names: readonly string[]): string | undefined {
  return names.map((name) => path.join(folder, name)).find((file) => existsSync(file));
}

/**
 * The user config: `$XDG_CONFIG_HOME/takeout/config.yaml`, else `~/.config/takeout/config.yaml` (the XDG Base
 * Directory specification, as gh, rclone and git use; a relative XDG_CONFIG_HOME is invalid there and ignored).
 */
export function userConfigFile(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(env.HOME || homedir(), '.config');
  return path.join(base, 'takeout', 'config.yaml');
}

/**
 * The config files to read, lowest precedence first. An explicit --config/TAKEOUT_CONFIG file is the only one
 * read (as AWS_CONFIG_FILE, GH_CONFIG_DIR and docker --config replace the default, never add to it); otherwise
 * the user config, then ./takeout.yaml over it key by key (as a project .npmrc or .git/config over the user's).
 */
function configFiles(explicit: string | undefined, env: NodeJS.ProcessEnv, notes: string[]): string[] {
  if (explicit !== undefined) return [explicit];
  if (truthy(env[NO_CONFIG_ENV])) {
    notes.push(`config: none read (${NO_CONFIG_ENV} is set)`);
    return [];
  }
  const user = userConfigFile(env);
  const files = [existsSync(user) ? user : existing(path.dirname(user), ['config.yml'])].filter((f): f is string => f !== undefined);
  const found = PROJECT_CONFIG_FILES.filter((name) => existsSync(name));
  if (found.length > 1) throw new TakeoutError('USAGE', `both ./${found.join(' and ./')} exist: which one holds the settings?`, { hint: 'remove one' });
  if (found[0]) files.push(`./${found[0]}`);
  if (files.length === 0) notes.push(`config: none found (looked for ./${PROJECT_CONFIG_FILES.join(', ./')}, ${user})`);
  return files;
}

/** What resolveOptions did that --debug tells: the config files it read. */
const debugNotes = new WeakMap<Resolved, readonly string[]>();

/** The lines `--debug` prints about how the options were resolved (`config: read ./takeout.yaml`). */
export function resolutionNotes(o: Resolved): readonly string[] {
  return debugNotes.get(o) ?? [];
}

/** Every option key of every command of the program `command` belongs to: a config key known to none is a typo. */
function programKeys(command: Command): Set<string> {
  let root = command;
  while (root.parent) root = root.parent;
  const keys = new Set<string>();
  const walk = (c: Command): void => {
    for (const option of c.options) keys.add(option.attributeName());
    for (const sub of c.commands) walk(sub);
  };
  walk(root);
  keys.delete('help');
  keys.delete('version');
  return keys;
}

/** The type a config value should have, for an error that says what was wrong with it. */
const EXPECTED: Record<OptionType, string> = {
  string: 'a string',
  boolean: 'true or false',
  list: 'a list (or a comma-separated string)',
  size: 'a size (64MB)',
  int: 'a whole number',
  duration: 'a duration (30s)',
};

function configValue(spec: OptionSpec, value: ConfigValue): string | boolean | number | string[] {
  const raw = value.raw;
  const where = `${value.where}: ${value.key}`;
  if (spec.type === 'list' && Array.isArray(raw) && raw.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) return raw.map(String);
  if (spec.type === 'boolean' && typeof raw === 'boolean') return raw;
  if (typeof raw === 'string' || typeof raw === 'number' || (typeof raw === 'boolean' && (spec.type === 'boolean' || spec.type === 'string'))) {
    return check(fromText(spec, String(raw), where));
  }
  const got = raw === null ? 'nothing (null)' : Array.isArray(raw) ? 'a list' : typeof raw === 'object' ? 'a mapping' : `${typeof raw} ${JSON.stringify(raw)}`;
  throw new TakeoutError('USAGE', `${where}: expected ${EXPECTED[spec.type]}, got ${got}`);
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
    case 'duration':
      return parseDuration(text, name, { ...(spec.bareUnitMs === undefined ? {} : { bareUnitMs: spec.bareUnitMs }), ...(spec.min === undefined ? {} : { min: spec.min }), ...(spec.max === undefined ? {} : { max: spec.max }) });
    case 'string':
      if (spec.choices && !spec.choices.includes(text)) {
        return { ok: false, error: new TakeoutError('USAGE', `${name}: '${text}' is not one of ${spec.choices.join(', ')}`) };
      }
      return { ok: true, value: text };
  }
}

/**
 * Resolve every option with the precedence flags > TAKEOUT_* environment > config files > defaults (the config
 * files: --config/TAKEOUT_CONFIG alone when given, else ./takeout.yaml over the user config). A config key that
 * is no option of any command is an error with a did-you-mean (a typo must not silently do nothing); one that is
 * an option of another command is left for that command, so one file serves them all.
 */
export function resolveOptions(command: Command, specs: readonly OptionSpec[], env: NodeJS.ProcessEnv = process.env): Resolved {
  const flags = command.opts<Record<string, unknown>>();
  const explicit = (command.getOptionValueSource('config') === 'cli' ? flags.config : undefined) ?? env.TAKEOUT_CONFIG;
  const notes: string[] = [];
  // TAKEOUT_CONFIG= (empty) is unset, as an empty AWS_CONFIG_FILE is.
  const files = configFiles(typeof explicit === 'string' && explicit !== '' ? explicit : undefined, env, notes).map(loadConfig);
  const anyCommand = programKeys(command);
  const config = new Map<string, ConfigValue>();
  for (const { file, values } of files) {
    notes.push(`config: read ${file}`);
    for (const [key, value] of values) {
      if (key === 'config') throw new TakeoutError('USAGE', `${value.where}: ${value.key}: a config file cannot name another`);
      if (!anyCommand.has(key)) {
        // Spelled as the flags are (slice-size), whatever the file's style.
        const suggestion = closest(kebab(key), [...anyCommand].filter((k) => k !== 'config').map(kebab));
        throw new TakeoutError('USAGE', `${value.where}: unknown option '${value.key}'${suggestion ? ` (did you mean ${suggestion}?)` : ''}`, {
          hint: 'keys are option names without the dashes, in kebab-case, snake_case or camelCase: slice-size, slice_size, sliceSize',
        });
      }
      if (!specs.some((spec) => spec.key === key)) notes.push(`config: ${value.where}: ${value.key} is no option of takeout ${command.name()}: left for the commands that have it`);
      config.set(key, value);
    }
  }

  const resolved: Resolved = {};
  for (const spec of specs) {
    let value: unknown;
    const source = command.getOptionValueSource(spec.key);
    const fromConfig = config.get(spec.key);
    if (source === 'cli') {
      value = flags[spec.key];
      if (typeof value === 'string') value = check(fromText(spec, value, `--${kebab(spec.key)}`));
    } else if (env[envName(spec.key)] !== undefined) {
      value = check(fromText(spec, env[envName(spec.key)]!, envName(spec.key)));
    } else if (fromConfig !== undefined && spec.key !== 'config') {
      value = configValue(spec, fromConfig);
    } else if (spec.default !== undefined) {
      value = typeof spec.default === 'string' && spec.type !== 'string' ? check(fromText(spec, spec.default, `default ${spec.key}`)) : spec.default;
    }
    if (spec.secret && typeof value === 'string') registerSecret(value);
    resolved[spec.key] = value as Resolved[string];
  }
  debugNotes.set(resolved, notes);
  return resolved;
}

function check<T>(validation: Validation<T>): T {
  if (!validation.ok) throw validation.error;
  return validation.value;
}

/** What `openStore` takes; `network` (the request log, the bandwidth limit) comes from the command's context. */
export function destinationOptions(o: Resolved, network: NetworkOptions = {}): StoreOptions {
  const s3: NonNullable<StoreOptions['s3']> = {};
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
  return { s3, ...network };
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
export function sourceOptions(o: Resolved, network: NetworkOptions = {}): SourceOptions {
  const str = (k: string): string | undefined => (typeof o[k] === 'string' && o[k] !== '' ? (o[k] as string) : undefined);
  const options: SourceOptions = { ...network };
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
  if (network.onRequest) dynamodb.onRequest = network.onRequest;
  options.dynamodb = dynamodb;
  return options;
}
