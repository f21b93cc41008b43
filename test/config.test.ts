import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { addOptions, configKey, resolveOptions } from '../src/cli/options.js';
import { COMMON_OPTIONS, S3_OPTIONS, type OptionSpec } from '../src/commands/options.js';
import { RUN_OPTIONS } from '../src/commands/run.js';
import { TakeoutError } from '../src/errors.js';
import { errorLines, readTakeout, removeTempFolders, runCli, tempFolder, type CliResult } from './helpers/cli.js';

/** YAML config files: key spellings, typos, syntax and type errors, and discovery (./takeout.yaml, the user config). */

afterAll(removeTempFolders);

const SPECS: OptionSpec[] = [...RUN_OPTIONS, ...S3_OPTIONS, ...COMMON_OPTIONS];

/** A program with `run` and a second command, as main.ts builds it, and `run`'s options resolved from `args`. */
function resolve(args: string[], env: NodeJS.ProcessEnv): Record<string, unknown> {
  const program = new Command('takeout').exitOverride();
  const run = addOptions(new Command('run'), SPECS).exitOverride();
  // Another command's own option: a config key for it is not a typo for `run`.
  const other = addOptions(new Command('other'), [{ key: 'outputFile', flags: '--output-file <file>', description: 'x', type: 'string' }]);
  program.addCommand(run);
  program.addCommand(other);
  let resolved: Record<string, unknown> | undefined;
  run.action(() => {
    resolved = resolveOptions(run, SPECS, env);
  });
  program.parse(['run', ...args], { from: 'user' });
  return resolved!;
}

async function yamlFile(text: string, name = 'takeout.yaml'): Promise<string> {
  const file = path.join(await tempFolder('config'), name);
  await writeFile(file, text);
  return file;
}

/** The error `fn` throws, as a TakeoutError. */
function failure(fn: () => unknown): TakeoutError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TakeoutError);
    return error as TakeoutError;
  }
  throw new Error('did not throw');
}

const NO_DISCOVERY = { TAKEOUT_NO_CONFIG: '1' };

describe('config keys', () => {
  it('kebab-case, snake_case and camelCase name the same option', async () => {
    expect(configKey('slice-size')).toBe('sliceSize');
    expect(configKey('slice_size')).toBe('sliceSize');
    expect(configKey('sliceSize')).toBe('sliceSize');
    expect(configKey('SLICE_SIZE')).toBe('sliceSize');
    const file = await yamlFile('slice_size: 64KB\ncompression-level: 1\nquoteAll: true\nrequest_timeout: 30s\ninclude: [in.c-main.orders, in.c-crm]\n');
    expect(resolve([], { TAKEOUT_CONFIG: file })).toMatchObject({ sliceSize: 64 * 1024, compressionLevel: 1, quoteAll: true, requestTimeout: 30_000, include: ['in.c-main.orders', 'in.c-crm'] });
  });

  it('an unknown key is an error naming the file, the line and the nearest option', async () => {
    const file = await yamlFile('# settings\nslice_sise: 1MB\n');
    const error = failure(() => resolve([], { TAKEOUT_CONFIG: file }));
    expect(error.code).toBe('USAGE');
    expect(error.message).toBe(`${file}:2: unknown option 'slice_sise' (did you mean slice-size?)`);
    expect(error.hint).toContain('kebab-case, snake_case or camelCase');
  });

  it('a key far from every option gets no guess', async () => {
    const file = await yamlFile('colour: blue\n');
    expect(failure(() => resolve([], { TAKEOUT_CONFIG: file })).message).toBe(`${file}:1: unknown option 'colour'`);
  });

  it("another command's option is left for that command, so one file serves every command", async () => {
    const file = await yamlFile('output_file: x.csv\nslice-size: 64KB\n');
    expect(resolve([], { TAKEOUT_CONFIG: file })).toMatchObject({ sliceSize: 64 * 1024 });
  });

  it('the same option twice (in two spellings) is an error naming both lines', async () => {
    const file = await yamlFile('slice-size: 1MB\nslice_size: 2MB\n');
    expect(failure(() => resolve([], { TAKEOUT_CONFIG: file })).message).toBe(`${file}:2: slice_size is given twice (also as slice-size at ${file}:1)`);
  });

  it('a YAML syntax error shows file:line:column and the parser message', async () => {
    const file = await yamlFile('slice-size: 1MB\ncompression-level: 1: 2\n');
    const error = failure(() => resolve([], { TAKEOUT_CONFIG: file }));
    expect(error.message).toBe(`${file}:2:20: not valid YAML: Nested mappings are not allowed in compact mappings`);
    const unclosed = await yamlFile('include: [a, b\nslice-size: 1MB\n');
    expect(failure(() => resolve([], { TAKEOUT_CONFIG: unclosed })).message).toMatch(new RegExp(`^${unclosed.replace(/[.\\/]/g, '\\$&')}:\\d+:\\d+: not valid YAML: .+`));
  });

  it('a value of the wrong type names the key, the file and what was expected', async () => {
    const cases: [string, string][] = [
      ['slice-size: [1, 2]\n', 'slice-size: expected a size (64MB), got a list'],
      ['quote_all: {a: 1}\n', 'quote_all: expected true or false, got a mapping'],
      ['compression-level: \n', 'compression-level: expected a whole number, got nothing (null)'],
      ['slice-size: 12XB\n', "slice-size: '12XB' is not a size"],
      ['request-timeout: 5 parsecs\n', "request-timeout: '5 parsecs' is not a duration (unknown unit 'parsecs')"],
      ['compression-level: true\n', 'compression-level: expected a whole number, got boolean true'],
    ];
    for (const [text, message] of cases) {
      const file = await yamlFile(text);
      expect(failure(() => resolve([], { TAKEOUT_CONFIG: file })).message, text).toBe(`${file}:1: ${message}`);
    }
  });

  it('a file that is not a mapping, or names another config file, is refused', async () => {
    const list = await yamlFile('- slice-size\n');
    expect(failure(() => resolve([], { TAKEOUT_CONFIG: list })).message).toContain('expected a mapping of option names to values');
    const nested = await yamlFile('config: other.yaml\n');
    expect(failure(() => resolve([], { TAKEOUT_CONFIG: nested })).message).toBe(`${nested}:1: config: a config file cannot name another`);
    expect(resolve([], { TAKEOUT_CONFIG: await yamlFile('# nothing yet\n') })).toMatchObject({ sliceSize: 256 * 1024 * 1024 });
  });

  it('flags beat TAKEOUT_* variables, which beat the file', async () => {
    const file = await yamlFile('slice-size: 64KB\ncompression-level: 1\nconcurrency: 2\n');
    expect(resolve(['--slice-size', '32KB'], { TAKEOUT_CONFIG: file, TAKEOUT_COMPRESSION_LEVEL: '3' })).toMatchObject({ sliceSize: 32 * 1024, compressionLevel: 3, concurrency: 2 });
    // An empty TAKEOUT_CONFIG is unset.
    expect(resolve([], { TAKEOUT_CONFIG: '', ...NO_DISCOVERY })).toMatchObject({ sliceSize: 256 * 1024 * 1024, concurrency: 4 });
  });
});

describe('config discovery', () => {
  /** A working folder and an XDG_CONFIG_HOME, each with the given config (or none). */
  async function setup(project?: string, user?: string): Promise<{ cwd: string; xdg: string }> {
    const root = await tempFolder('discovery');
    const cwd = path.join(root, 'work');
    const xdg = path.join(root, 'xdg');
    await mkdir(cwd);
    await mkdir(path.join(xdg, 'takeout'), { recursive: true });
    if (project !== undefined) await writeFile(path.join(cwd, 'takeout.yaml'), project);
    if (user !== undefined) await writeFile(path.join(xdg, 'takeout', 'config.yaml'), user);
    return { cwd, xdg };
  }

  function expectExit(result: CliResult, code: number): void {
    expect(result.code, `stdout: ${result.stdout.slice(0, 1000)}\nstderr: ${result.stderr}`).toBe(code);
  }

  let runs = 0;
  /** `takeout run` of one small demo table in `cwd`; the options its manifest recorded, and its stderr. */
  async function run(where: { cwd: string; xdg: string }, args: string[] = [], env: Record<string, string> = {}): Promise<{ options: Record<string, unknown>; stderr: string }> {
    const out = path.join(where.cwd, `out-${(runs += 1)}`);
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--include', 'in.c-crm.products', '--debug', ...args], { cwd: where.cwd, env: { XDG_CONFIG_HOME: where.xdg, ...env } });
    expectExit(result, 0);
    return { options: (await readTakeout(out)).manifest.options, stderr: result.stderr };
  }

  it('./takeout.yaml is read, over the user config key by key, and --debug says so', async () => {
    const where = await setup('slice_size: 64KB\noutput: x.csv\n', 'slice-size: 128KB\ncompression-level: 2\n');
    const { options, stderr } = await run(where);
    expect(options).toMatchObject({ sliceSize: 64 * 1024, compressionLevel: 2 });
    const user = path.join(where.xdg, 'takeout', 'config.yaml');
    expect(stderr).toContain(`takeout: debug: config: read ${user}\ntakeout: debug: config: read ./takeout.yaml\n`);
    // A key of another command (table export's --output) is no error for run: --debug says it is left alone.
    expect(stderr).toContain('takeout: debug: config: ./takeout.yaml:2: output is no option of takeout run: left for the commands that have it');
  });

  it('the user config is read from $XDG_CONFIG_HOME/takeout/config.yaml, or ~/.config/takeout/config.yaml', async () => {
    const where = await setup(undefined, 'compression-level: 1\n');
    expect((await run(where)).options).toMatchObject({ compressionLevel: 1 });
    // Without XDG_CONFIG_HOME: HOME/.config.
    const home = await setup();
    await mkdir(path.join(home.cwd, 'home', '.config', 'takeout'), { recursive: true });
    await writeFile(path.join(home.cwd, 'home', '.config', 'takeout', 'config.yaml'), 'compression-level: 7\n');
    const out = path.join(home.cwd, 'out');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--include', 'in.c-crm.products'], { cwd: home.cwd, env: { XDG_CONFIG_HOME: undefined, HOME: path.join(home.cwd, 'home') } });
    expectExit(result, 0);
    expect((await readTakeout(out)).manifest.options).toMatchObject({ compressionLevel: 7 });
  });

  it('--config (or TAKEOUT_CONFIG) replaces discovery: the discovered files are not read at all', async () => {
    const where = await setup('slice-size: 64KB\nslcie-rows: 1\n', 'compression-level: 2\n');
    const explicit = await yamlFile('compression-level: 4\n', 'ci.yaml');
    const { options, stderr } = await run(where, ['--config', explicit]);
    expect(options).toMatchObject({ sliceSize: 256 * 1024 * 1024, compressionLevel: 4 });
    expect(stderr).toContain(`takeout: debug: config: read ${explicit}\n`);
    expect(stderr).not.toContain('./takeout.yaml');
    expect((await run(where, [], { TAKEOUT_CONFIG: explicit })).options).toMatchObject({ compressionLevel: 4 });
  });

  it('TAKEOUT_NO_CONFIG=1 reads no discovered file (and is no unknown-variable warning)', async () => {
    const where = await setup('slice-size: 64KB\n', 'compression-level: 2\n');
    const { options, stderr } = await run(where, [], NO_DISCOVERY);
    expect(options).toMatchObject({ sliceSize: 256 * 1024 * 1024, compressionLevel: 6 });
    expect(stderr).toContain('takeout: debug: config: none read (TAKEOUT_NO_CONFIG is set)');
    expect(stderr).not.toContain('is not a takeout setting');
  });

  it('--debug names where it looked when there is no config file', async () => {
    const where = await setup();
    const { stderr } = await run(where);
    expect(stderr).toContain(`takeout: debug: config: none found (looked for ./takeout.yaml, ./takeout.yml, ${path.join(where.xdg, 'takeout', 'config.yaml')})`);
  });

  it('a typo in ./takeout.yaml exits 2 with a did-you-mean; ./takeout.yml is read too; both at once are refused', async () => {
    const typo = await setup('slice_sise: 1MB\n');
    const result = await runCli(['run', '--source', 'demo', '--dest', path.join(typo.cwd, 'out')], { cwd: typo.cwd, env: { XDG_CONFIG_HOME: typo.xdg } });
    expectExit(result, 2);
    expect(errorLines(result.stderr)).toEqual(["takeout: error: ./takeout.yaml:1: unknown option 'slice_sise' (did you mean slice-size?) [USAGE, exit 2]"]);

    const yml = await setup();
    await writeFile(path.join(yml.cwd, 'takeout.yml'), 'compression-level: 3\n');
    expect((await run(yml)).options).toMatchObject({ compressionLevel: 3 });
    await writeFile(path.join(yml.cwd, 'takeout.yaml'), 'compression-level: 4\n');
    const both = await runCli(['run', '--source', 'demo', '--dest', path.join(yml.cwd, 'out2')], { cwd: yml.cwd, env: { XDG_CONFIG_HOME: yml.xdg } });
    expectExit(both, 2);
    expect(errorLines(both.stderr)[0]).toContain('both ./takeout.yaml and ./takeout.yml exist');
  });
});
