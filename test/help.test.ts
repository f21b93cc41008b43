import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plural } from '../src/units.js';
import { codeTag } from '../src/reporting/lines.js';
import { helpWidth, MAX_HELP_WIDTH } from '../src/cli/help.js';
import { DEMO_PROJECT, errorLines, jsonLines, REPO_ROOT, runCli, tempFolder, walkFiles, type CliResult } from './helpers/cli.js';

/**
 * The command line surface: `--help` of every command (snapshots, at a fixed width), commander's own errors in
 * the house format, `takeout run SOURCE DEST`, and counts said in the singular when there is one.
 */

/** Every command and subcommand, as typed. */
const COMMANDS = [
  [],
  ['run'],
  ['files'],
  ['files', 'download'],
  ['files', 'merge'],
  ['table'],
  ['table', 'export'],
  ['dataset'],
  ['dataset', 'export'],
  ['dataset', 'exports'],
  ['dataset', 'exports', 'list'],
  ['dataset', 'exports', 'describe'],
  ['verify'],
  ['cleanup'],
] as const;

/** Help is wrapped to COLUMNS when stdout is not a terminal: fixed here, so snapshots do not depend on the machine. */
const help = (args: readonly string[], columns = '100'): Promise<CliResult> => runCli([...args, '--help'], { env: { COLUMNS: columns } });

function expectExit(result: CliResult, code: number): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr}`).toBe(code);
}

describe('--help of every command', () => {
  it.each(COMMANDS.map((c) => [c.join(' ') || '(takeout)', c] as const))('%s: snapshot at 100 columns', async (_name, args) => {
    const result = await help(args);
    expectExit(result, 0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatchSnapshot();
  });

  it.each(COMMANDS.map((c) => [c.join(' ') || '(takeout)', c] as const))('%s: fits 80 columns, has examples, no empty or double-wrapped description', async (_name, args) => {
    const result = await help(args, '80');
    expectExit(result, 0);
    const lines = result.stdout.split('\n');
    for (const line of lines) expect([...line].length, line).toBeLessThanOrEqual(80);
    // Two or three examples, each a comment then a command line.
    const examples = result.stdout.slice(result.stdout.indexOf('\nExamples:\n'));
    expect(result.stdout).toContain('\nExamples:\n');
    const count = examples.split('\n').filter((l) => /^ {2}takeout( |$)/.test(l)).length;
    expect(count).toBeGreaterThanOrEqual(2);
    expect(count).toBeLessThanOrEqual(3);
    // An option line with nothing after its flags has no description (`--no-header` had none).
    for (const line of lines.filter((l) => /^ {2}-/.test(l))) expect(line, line).toMatch(/^ {2}-\S.*? {2,}\S/);
    // A line of a description wrapped twice ends short and the next starts lower-case mid-sentence: paragraphs
    // are written without hard line breaks, so no line of prose stops before 50 columns and goes on.
    const prose = lines.slice(2, lines.findIndex((l) => /^[A-Z][\w ]*:$/.test(l)));
    prose.forEach((line, i) => {
      const next = prose[i + 1];
      if (next && next !== '' && line !== '') expect([...line].length, `${line}\n${next}`).toBeGreaterThan(50);
    });
  });

  it.each(COMMANDS.map((c) => [c.join(' ') || '(takeout)', c] as const))('%s: at 70 columns every line but the example commands fits, descriptions still wrap', async (_name, args) => {
    const result = await help(args, '70');
    expectExit(result, 0);
    const text = result.stdout.slice(0, result.stdout.indexOf('\nExamples:\n'));
    // A word longer than the description column (a key template default) cannot be broken: it is alone on its line.
    for (const line of text.split('\n').filter((l) => l.trim().includes(' '))) expect([...line].length, line).toBeLessThanOrEqual(70);
  });

  it('help wraps at the terminal width, else COLUMNS, else 80; never wider than 100', () => {
    expect(helpWidth({ isTTY: true, columns: 70 }, { COLUMNS: '120' })).toBe(70);
    expect(helpWidth({ isTTY: true, columns: 200 }, {})).toBe(MAX_HELP_WIDTH);
    expect(helpWidth({ isTTY: false }, { COLUMNS: '90' })).toBe(90);
    expect(helpWidth({}, { COLUMNS: 'wide' })).toBe(80);
    expect(helpWidth({}, {})).toBe(80);
  });

  it('groups options under headings, and offers upload options only to commands that upload', async () => {
    const run = await help(['run']);
    const headings = run.stdout.split('\n').filter((l) => /^[A-Z][\w ]*:$/.test(l));
    expect(headings).toEqual(['Arguments:', 'Source:', 'Destination:', 'Slicing and format:', 'Options:', 'S3 and cloud:', 'Output:', 'Config and help:', 'Examples:']);
    for (const args of [['verify'], ['cleanup'], ['dataset', 'exports', 'list'], ['dataset', 'exports', 'describe'], ['files', 'download']]) {
      const result = await help(args);
      expect(result.stdout, args.join(' ')).toContain('--region');
      for (const flag of ['--sse ', '--sse-kms-key-id', '--part-size', '--part-concurrency']) expect(result.stdout, `${args.join(' ')} ${flag}`).not.toContain(flag);
    }
    for (const args of [['run'], ['table', 'export'], ['dataset', 'export']]) {
      expect((await help(args)).stdout, args.join(' ')).toContain('--part-size');
    }
    // A flag no longer offered is refused, not ignored.
    const refused = await runCli(['verify', './x', '--part-size', '8MB']);
    expectExit(refused, 2);
    expect(errorLines(refused.stderr)).toEqual(["takeout: error: unknown option '--part-size' [USAGE, exit 2]"]);
  });

  it('the layouts of dataset export each have a heading of their own', async () => {
    const result = await help(['dataset', 'export']);
    for (const layout of ['dynamodb', 'personalize', 'plain', 'clevertap']) expect(result.stdout).toContain(`\nLayout ${layout}:\n`);
    expect(result.stdout).toMatch(/--no-header +plain CSV: no header row/);
  });
});

describe('help, bare takeout and --version', () => {
  it('bare takeout prints the help on stdout and exits 0, as gh does', async () => {
    const result = await runCli([], { env: { COLUMNS: '100' } });
    expectExit(result, 0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe((await help([])).stdout);
  });

  it('a command group without a subcommand prints its help on stdout and exits 0', async () => {
    const result = await runCli(['dataset', 'exports'], { env: { COLUMNS: '100' } });
    expectExit(result, 0);
    expect(result.stdout).toBe((await help(['dataset', 'exports'])).stdout);
  });

  it('takeout help files download shows that subcommand, at any depth', async () => {
    for (const args of [['files', 'download'], ['dataset', 'exports', 'list'], ['run']]) {
      const result = await runCli(['help', ...args], { env: { COLUMNS: '100' } });
      expectExit(result, 0);
      expect(result.stdout, args.join(' ')).toBe((await help(args)).stdout);
      expect(result.stdout).toContain(`Usage: takeout ${args.join(' ')} `);
    }
    const nested = await runCli(['dataset', 'help', 'exports', 'describe'], { env: { COLUMNS: '100' } });
    expect(nested.stdout).toBe((await help(['dataset', 'exports', 'describe'])).stdout);
  });

  it('takeout help of something that is not a command is a usage error with a did-you-mean', async () => {
    const result = await runCli(['help', 'files', 'downlaod']);
    expectExit(result, 2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe("takeout: error: unknown command 'downlaod' [USAGE, exit 2]\n  hint: did you mean download? (see takeout files --help)\n");
  });

  it('--version and -V print the version of package.json', async () => {
    const { version } = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag]);
      expectExit(result, 0);
      expect(result.stdout).toBe(`${version}\n`);
    }
  });
});

describe("commander's errors in the house format", () => {
  it.each([
    [['rn'], "unknown command 'rn'", 'did you mean run? (see takeout --help)'],
    [['run', '--sorce', 'x'], "unknown option '--sorce'", 'did you mean --source? (see takeout run --help)'],
    [['files', 'dowload'], "unknown command 'dowload'", 'did you mean download? (see takeout files --help)'],
    [['dataset', 'exports', 'list', '--stauts', 'FAILED'], "unknown option '--stauts'", 'did you mean --status? (see takeout dataset exports list --help)'],
    [['verify'], "missing required argument 'dest'", 'usage: takeout verify [options] <dest> (see takeout verify --help)'],
    [['run', '--source'], "option '-s, --source <uri>' argument missing", 'see takeout run --help'],
    [['run', 'a', 'b', 'c'], 'too many arguments for takeout run: it takes at most 2, got 3 ("a" "b" "c")', 'usage: takeout run [options] [source] [dest] (see takeout run --help)'],
    [['cleanup', 'a', 'b'], 'too many arguments for takeout cleanup: it takes at most 1, got 2 ("a" "b")', 'usage: takeout cleanup [options] <dest> (see takeout cleanup --help)'],
    [['frobnicate'], "unknown command 'frobnicate'", 'see takeout --help'],
  ])('%j: one error line with [USAGE, exit 2] and a hint, on stderr, exit 2', async (args, message, hint) => {
    const result = await runCli(args);
    expectExit(result, 2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`takeout: error: ${message} [USAGE, exit 2]\n  hint: ${hint}\n`);
  });

  it('with --json the usage error is a JSON error event on stdout too', async () => {
    const result = await runCli(['run', '--json', '--sorce', 'x']);
    expectExit(result, 2);
    expect(jsonLines(result.stdout)).toEqual([
      { type: 'error', code: 'USAGE', exitCode: 2, message: "unknown option '--sorce'", hint: 'did you mean --source? (see takeout run --help)', details: {}, time: expect.any(String) },
    ]);
    expect(errorLines(result.stderr)).toEqual(["takeout: error: unknown option '--sorce' [USAGE, exit 2]"]);
  });
});

describe('takeout run SOURCE DEST', () => {
  it('takes the source and the destination positionally, as --source and --dest', async () => {
    const out = path.join(await tempFolder('positional'), 'out');
    const result = await runCli(['run', DEMO_PROJECT, out, '--json']);
    expectExit(result, 0);
    const done = jsonLines(result.stdout).find((e) => e.type === 'run:done') as { summary: { status: string; tables: number } } | undefined;
    expect(done?.summary.status).toBe('complete');
    expect(done?.summary.tables).toBe(7);
    expect(await walkFiles(out)).toContain('takeout-manifest.json');
  });

  it('a lone argument is the source; the destination is a new folder as with --source', async () => {
    const cwd = await tempFolder('positional-cwd');
    const result = await runCli(['run', 'demo'], { cwd });
    expectExit(result, 0);
    const files = await walkFiles(cwd);
    expect(files.some((f) => /^takeout-\d{8}-\d{6}\/takeout-manifest\.json$/.test(f))).toBe(true);
  });

  it.each([
    [['run', DEMO_PROJECT, '--source', 'demo'], `--source "demo" and the argument SOURCE ${JSON.stringify(DEMO_PROJECT)} both say what to take out: give one`],
    [['run', 'demo', 'OUT', '--dest', 'OUT2'], '--dest "OUT2" and the argument DEST "OUT" both say the destination: give one'],
    [['run', '--source', 'demo', 'OUT'], '--source "demo" and the argument SOURCE "OUT" both say what to take out: give one'],
  ])('%j: a positional and its flag together is a usage error naming both, nothing written', async (args, message) => {
    const cwd = await tempFolder('positional-both');
    const result = await runCli(args, { cwd });
    expectExit(result, 2);
    expect(errorLines(result.stderr)).toEqual([`takeout: error: ${message} [USAGE, exit 2]`]);
    expect(result.stderr).toContain('hint: takeout run SOURCE DEST, or takeout run --source SOURCE --dest DEST');
    expect(await walkFiles(cwd)).toEqual([]);
  });

  it('--dest without a source is still refused (exit 2), and run --help documents the arguments', async () => {
    const cwd = await tempFolder('positional-dest');
    const result = await runCli(['run', '--dest', 'out'], { cwd });
    expectExit(result, 2);
    expect(errorLines(result.stderr)[0]).toContain('--dest without --source');
    expect(await walkFiles(cwd)).toEqual([]);
    const usage = await help(['run']);
    expect(usage.stdout).toContain('Usage: takeout run [options] [source] [dest]');
    expect(usage.stdout).toContain('takeout run SOURCE DEST');
  });
});

describe('counts are pluralised', () => {
  it('plural(): the singular for exactly one, grouped digits', () => {
    expect(plural(0, 'row')).toBe('0 rows');
    expect(plural(1, 'row')).toBe('1 row');
    expect(plural(2, 'slice')).toBe('2 slices');
    expect(plural(25_000, 'row')).toBe('25,000 rows');
    expect(plural(1, 'entry', 'entries')).toBe('1 entry');
    expect(plural(3, 'entry', 'entries')).toBe('3 entries');
  });

  it('a takeout of one table of one row says 1 table, 1 row, 1 slice, 2 columns; its manifest merges as 1 slice', async () => {
    const root = await tempFolder('one');
    const project = path.join(root, 'project');
    await mkdir(path.join(project, 'in.c-main'), { recursive: true });
    await writeFile(path.join(project, 'in.c-main', 'one.csv'), 'id,name\n1,a\n');
    const out = path.join(root, 'out');
    const result = await runCli(['run', project, out]);
    expectExit(result, 0);
    expect(result.stderr).toContain(', 1 table\n');
    expect(result.stderr).toMatch(/done {2}in\.c-main\.one: 1 row, .* 1 slice, /);
    expect(result.stderr).toMatch(/takeout complete: 1 table, 1 row, .* in 1 slice, /);
    const dry = await runCli(['run', project, path.join(root, 'dry'), '--dry-run']);
    expect(dry.stderr).toMatch(/in\.c-main\.one {2}2 columns/);
    expect(dry.stderr).toMatch(/memory bound: .* = 1 table × /);
    const verify = await runCli(['verify', out]);
    expectExit(verify, 0);
    expect(verify.stderr).toMatch(/^verified \d+ files, .*: all good$/m);
    // The one-slice manifest of that table lists one file of data: merged as 1 slice.
    const merged = await runCli(['files', 'download', path.join(out, 'manifests', 'in.c-main.one.manifest'), '-o', path.join(root, 'one.csv')]);
    expectExit(merged, 0);
    expect(merged.stderr).toMatch(/merged 1 slice: /);
  });

  it("a table's error line carries [CODE, exit N] as the final error line does", async () => {
    const root = await tempFolder('table-error');
    const project = path.join(root, 'project');
    await mkdir(path.join(project, 'in.c-main'), { recursive: true });
    await writeFile(path.join(project, 'in.c-main', 'good.csv'), 'id\n1\n');
    await writeFile(path.join(project, 'in.c-main', 'ragged.csv'), 'id,name\n1,a\n2\n');
    const result = await runCli(['run', project, path.join(root, 'out')]);
    expectExit(result, 3);
    expect(errorLines(result.stderr)).toEqual([
      expect.stringMatching(/^takeout: error: table in\.c-main\.ragged: .*record 2 has 1 field, the header has 2 \[INVALID_INPUT, exit 7\]$/),
    ]);
    expect(result.stderr).toMatch(/^failed: in\.c-main\.ragged: .* \[INVALID_INPUT, exit 7\]$/m);
    expect(codeTag('NOT_A_CODE')).toBe('[NOT_A_CODE]');
  });
});
