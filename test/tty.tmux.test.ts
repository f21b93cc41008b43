import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { displayWidth } from '../src/reporting/bars.js';
import { BIN, REPO_ROOT, removeTempFolders, runCli, tempFolder } from './helpers/cli.js';
import { writeRepeatedCsv } from './helpers/projects.js';

/**
 * The progress display in a real terminal: takeout runs in a tmux pane (its own tmux server, so nothing of
 * the user's is touched) at 70 and 160 columns, and the screens are captured as it goes.
 */

const HAS_TMUX = spawnSync('tmux', ['-V']).status === 0;
const SOCKET = `takeout-test-${process.pid}`;
const BAR = /[█░]/;
/** A line ends with a whole field, never a cut one. */
const WHOLE_END = /(\d%|\d (B|KiB|MiB|GiB)|rows?|\/s|ETA (--|\d+s|\d+m\d\ds|\d+h\d\dm))$/;
const SANE_ETA = /^ETA (--|\d+s|\d+m\d\ds|\d+h\d\dm)$/;
const ESC = '\u001b';
/** An SGR colour escape (foreground 30–39). */
const COLOUR = new RegExp(`${ESC}\\[3\\dm`);

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, '-f', '/dev/null', ...args], { encoding: 'utf8' });
}

const quote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;

/** Starts `takeout <args>` in a fresh pane `columns` wide; the pane stays after the process ends, showing EXIT=<code>. */
function startPane(name: string, columns: number, args: readonly string[], env: Record<string, string> = {}): void {
  const vars = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', TERM: 'screen', LANG: 'C.UTF-8', ...env };
  const command =
    `cd ${quote(REPO_ROOT)} && env -i ${Object.entries(vars).map(([k, v]) => quote(`${k}=${v}`)).join(' ')} ` +
    `${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}; echo EXIT=$?; sleep 120`;
  tmux('new-session', '-d', '-s', name, '-x', String(columns), '-y', '30', command);
}

function screen(name: string, escapes = false): string {
  // -J joins lines the terminal wrapped: a line wider than the pane shows as one long line.
  return tmux('capture-pane', '-p', '-J', ...(escapes ? ['-e'] : []), '-t', name);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Screens captured every 250 ms until the pane shows the exit code (or `until` holds); the last one is the end. */
async function watch(name: string, until: (s: string) => boolean = (s) => /^EXIT=\d+$/m.test(s), timeoutMs = 50_000): Promise<string[]> {
  const screens: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = screen(name);
    screens.push(s);
    if (until(s)) return screens;
    if (Date.now() > deadline) throw new Error(`pane ${name} did not get there within ${timeoutMs} ms:\n${s}`);
    await sleep(250);
  }
}

const lines = (s: string): string[] => s.split('\n').map((l) => l.trimEnd());
const barLines = (s: string): string[] => lines(s).filter((l) => BAR.test(l));
const cursorVisible = (name: string): boolean => tmux('display-message', '-p', '-t', name, '#{cursor_flag}').trim() === '1';

/** Two tables, 120 and 80 MiB, of different rows (so they go at different rates): a 1 MiB block written over and over. */
async function bigProject(): Promise<string> {
  const project = path.join(await tempFolder('tty'), 'project');
  const tables: [string, string, number, number][] = [
    ['in.c-very-long-bucket-name-for-testing', 'customers_with_a_really_long_table_name', 24, 120],
    ['in.c-main', 'orders', 4, 80],
  ];
  for (const [bucket, table, hexBytes, blocks] of tables) {
    await mkdir(path.join(project, bucket), { recursive: true });
    await writeRepeatedCsv(path.join(project, bucket, `${table}.csv`), blocks, hexBytes);
  }
  return project;
}

describe.skipIf(!HAS_TMUX)(`progress in a terminal (tmux)${HAS_TMUX ? '' : ': skipped, tmux is not installed'}`, () => {
  let project = '';
  let sessions = 0;
  // Level 9 keeps a 200 MB run going ~10 s on a busy machine: long enough to watch the bars.
  const runArgs = async (): Promise<string[]> => ['run', '--source', project, '--dest', path.join(await tempFolder('tty-out'), 'out'), '--concurrency', '2', '--compression-level', '9'];

  beforeAll(async () => {
    project = await bigProject();
  }, 30_000);

  afterAll(async () => {
    spawnSync('tmux', ['-L', SOCKET, 'kill-server']);
    await removeTempFolders();
  });

  it.each([70, 160])('at %i columns: bars fit, each table its own rate, a sane ETA, a clean screen after success', async (columns) => {
    const name = `s${++sessions}`;
    startPane(name, columns, await runArgs());
    const screens = await watch(name);
    const end = screens[screens.length - 1]!;
    expect(end, end).toMatch(/^EXIT=0$/m);

    const running = screens.filter((s) => barLines(s).length > 0);
    expect(running.length, 'no screen showed bars').toBeGreaterThan(3);
    let differentRates = false;
    let etaSeen = false;
    for (const s of running) {
      for (const line of barLines(s)) {
        expect(displayWidth(line), `${line}\n(at ${columns} columns)`).toBeLessThan(columns);
        expect(line, line).toMatch(WHOLE_END);
        expect(line).not.toMatch(/NaN|Infinity|undefined|-\d/);
        const eta = /ETA \S+$/.exec(line)?.[0];
        if (eta) {
          expect(eta).toMatch(SANE_ETA);
          if (eta !== 'ETA --') etaSeen = true;
        }
      }
      const rates = barLines(s)
        .filter((l) => !l.startsWith('total'))
        .map((l) => /([\d.]+ (?:B|KiB|MiB|GiB)\/s)/.exec(l)?.[1]);
      if (rates.length >= 2 && rates.every((r) => r !== undefined) && new Set(rates).size === rates.length) differentRates = true;
    }
    expect(differentRates, running.join('\n---\n')).toBe(true);
    if (columns >= 160) expect(etaSeen, running.join('\n---\n')).toBe(true);

    // After success: no bar left anywhere, the summary then only the manifest line, the cursor shown again.
    const after = lines(end).filter((l) => l !== '');
    expect(after.filter((l) => BAR.test(l))).toEqual([]);
    const summary = after.findIndex((l) => l.startsWith('takeout complete: 2 tables'));
    expect(summary, end).toBeGreaterThan(0);
    expect(after.slice(summary + 1)).toEqual([expect.stringMatching(/^manifest: /), 'EXIT=0']);
    expect(after.some((l) => /takeout: dir:.* → .*, 2 tables$/.test(l)), 'the run header').toBe(true);
    expect(after[summary]).toMatch(/ MiB\/s$/);
    expect(cursorVisible(name)).toBe(true);
    // Colour on a terminal: the success summary is green.
    expect(screen(name, true)).toContain(`${ESC}[32mtakeout complete: `);
  }, 60_000);

  it('a resize redraws the bars to the new width; then Ctrl-C: the bars go, one interrupted line, the cursor is back', async () => {
    const name = `s${++sessions}`;
    startPane(name, 160, await runArgs());
    await watch(name, (s) => barLines(s).some((l) => /ETA \d/.test(l)), 30_000);
    tmux('resize-window', '-t', name, '-x', '70');
    await sleep(600);
    const resized = screen(name);
    expect(barLines(resized), resized).toHaveLength(3);
    for (const line of barLines(resized)) expect(displayWidth(line), resized).toBeLessThan(70);
    tmux('send-keys', '-t', name, 'C-c');
    const screens = await watch(name);
    const end = lines(screens[screens.length - 1]!).filter((l) => l !== '');
    expect(end.filter((l) => BAR.test(l)), end.join('\n')).toEqual([]);
    expect(end.filter((l) => /^takeout: error: interrupted/.test(l))).toHaveLength(1);
    expect(end.filter((l) => /^takeout: interrupting/.test(l))).toHaveLength(1);
    expect(end).toContain('EXIT=130');
    expect(cursorVisible(name)).toBe(true);
  }, 60_000);

  it('TERM=dumb: plain lines, no bars, no colour; NO_COLOR: no colour', async () => {
    const dumb = `s${++sessions}`;
    startPane(dumb, 70, ['run', '--source', 'demo', '--dest', path.join(await tempFolder('tty-dumb'), 'out')], { TERM: 'dumb' });
    await watch(dumb);
    const text = screen(dumb, true);
    expect(text).toMatch(/^start in\.c-main\.customers/m);
    expect(text).not.toMatch(BAR);
    expect(text).not.toMatch(COLOUR);
    expect(text).toMatch(/^takeout complete: /m);

    const plain = `s${++sessions}`;
    startPane(plain, 70, ['run', '--source', 'demo', '--dest', path.join(await tempFolder('tty-nocolor'), 'out')], { NO_COLOR: '1' });
    await watch(plain);
    const noColor = screen(plain, true);
    expect(noColor).toMatch(/^takeout complete: /m);
    expect(noColor).not.toMatch(COLOUR);
  }, 60_000);
});

describe('colour never leaves the terminal', () => {
  it('FORCE_COLOR with stderr a pipe: no escape codes in the output', async () => {
    const out = path.join(await tempFolder('tty-pipe'), 'out');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--exclude', 'nothing'], { env: { FORCE_COLOR: '1', CI: undefined } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^takeout complete: /m);
    expect(result.stderr).not.toContain('\u001b');
    const failed = await runCli(['run', '--source', 'demo', '--dest', out], { env: { FORCE_COLOR: '1', CI: undefined } });
    expect(failed.code).toBe(9);
    expect(failed.stderr).toMatch(/^takeout: error: /m);
    expect(failed.stderr).not.toContain('\u001b');
  });

  it('--help says sizes and rates are binary', async () => {
    const result = await runCli(['--help']);
    expect(result.stdout).toContain('Sizes and rates are binary: 1 MiB = 1024 KiB');
  });
});
