import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import { TakeoutError, type Validation } from '../errors.js';
import { GROUP, type OptionSpec, type OptionType, type OptionValues } from '../commands/options.js';
import { parseDuration, parseInteger, parseSize } from '../units.js';
import { registerSecret } from '../secrets.js';
import { closest } from '../pipeline/suggest.js';

/*
 * The options as commander sees them (registered from the specs each command declares in src/commands/) and as
 * each command gets them: resolved from the flag, the TAKEOUT_<NAME> variable, the config files or the default,
 * checked against the spec, and typed by it (OptionValues).
 */

const GROUP_ORDER: readonly string[] = Object.values(GROUP);

/** Where a heading sorts: a heading of its own (a layout's) comes with the command's own options. */
function groupRank(group: string | undefined): number {
  const index = GROUP_ORDER.indexOf(group ?? GROUP.own);
  return index === -1 ? GROUP_ORDER.indexOf(GROUP.own) : index;
}

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

/** One resolved value, before it is read through its command's OptionValues. */
type Value = string | boolean | number | string[];

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
const debugNotes = new WeakMap<object, readonly string[]>();

/** The lines `--debug` prints about how the options were resolved (`config: read ./takeout.yaml`). */
export function resolutionNotes(o: object): readonly string[] {
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

function configValue(spec: OptionSpec, value: ConfigValue): Value {
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

function fromText(spec: OptionSpec, text: string, origin: string): Validation<Value> {
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
export function resolveOptions<const S extends readonly OptionSpec[]>(command: Command, specs: S, env: NodeJS.ProcessEnv = process.env): OptionValues<S> {
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

  const resolved: Record<string, Value | undefined> = {};
  for (const spec of specs) {
    let value: Value | undefined;
    const source = command.getOptionValueSource(spec.key);
    const fromConfig = config.get(spec.key);
    if (source === 'cli') {
      const given = flags[spec.key];
      // Commander hands over a string, a list (argParser) or a boolean (a switch, or its --no- form).
      value = typeof given === 'string' ? check(fromText(spec, given, `--${kebab(spec.key)}`)) : given === undefined ? undefined : parsedFlag(given);
    } else if (env[envName(spec.key)] !== undefined) {
      value = check(fromText(spec, env[envName(spec.key)]!, envName(spec.key)));
    } else if (fromConfig !== undefined && spec.key !== 'config') {
      value = configValue(spec, fromConfig);
    } else if (spec.default !== undefined) {
      const fallback = spec.default;
      // A list default is copied: the spec's own array is shared by every resolution.
      value = typeof fallback === 'string' && spec.type !== 'string' ? check(fromText(spec, fallback, `default ${spec.key}`)) : typeof fallback === 'object' ? [...fallback] : fallback;
    }
    if (spec.secret && typeof value === 'string') registerSecret(value);
    resolved[spec.key] = value;
  }
  debugNotes.set(resolved, notes);
  // Each value was checked against its spec's type above (fromText, configValue); the record is what its specs say.
  return resolved as OptionValues<S>;
}

/** A flag's value that is no text: commander's list (argParser) or boolean (a switch or its --no- form). */
function parsedFlag(given: unknown): Value {
  if (typeof given === 'boolean' || typeof given === 'number') return given;
  if (Array.isArray(given)) return given.map(String);
  throw new TakeoutError('USAGE', `unexpected option value ${JSON.stringify(given)}`);
}

function check<T>(validation: Validation<T>): T {
  if (!validation.ok) throw validation.error;
  return validation.value;
}
