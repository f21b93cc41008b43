import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { numberedOrder } from '../src/pipeline/merge.js';
import { DEMO_PROJECT, errorLines, removeTempFolders, runCli, runShell, startCli, tempFolder, walkFiles } from './helpers/cli.js';
import { demoWithBigTable, expectOk } from './helpers/projects.js';
import { s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/** Conventions users bring from cat, shells and other CLIs: glob order, the umask, a closed pipe, Ctrl-C. */

afterAll(removeTempFolders);

const TEMP = /\.takeout-tmp$/;

/** Runs `script` in bash with `$T` the takeout command; returns its stdout (the script echoes what it checks). */
/** takeout's stderr goes to `<cwd>/.stderr-<pid>`; `rc=` is takeout's own exit code (the pipeline's first). */
function bash(script: string, cwd: string): { stdout: string } {
  const stdout = runShell(`${script} 2>"$ERR"; echo "rc=\${PIPESTATUS[0]}"`, { takeoutAs: 'T', cwd, env: { ERR: path.join(cwd, `.stderr-${process.pid}`) } });
  return { stdout };
}

describe('files merge: slices named part_N', () => {
  it('puts a numbered sequence in the order of its numbers; leaves other names as given', () => {
    expect(numberedOrder(['t.part_0.csv.gz', 't.part_1.csv.gz', 't.part_10.csv.gz', 't.part_2.csv.gz'])).toEqual({
      names: ['t.part_0.csv.gz', 't.part_1.csv.gz', 't.part_2.csv.gz', 't.part_10.csv.gz'],
      moved: { first: 't.part_2.csv.gz', second: 't.part_10.csv.gz' },
    });
    expect(numberedOrder(['a/part-1', 'a/part-2'])).toEqual({ names: ['a/part-1', 'a/part-2'] });
    // Redshift UNLOAD: slice, then part within the slice.
    expect(numberedOrder(['0001_part_00', '0000_part_01', '0000_part_00']).names).toEqual(['0000_part_00', '0000_part_01', '0001_part_00']);
    // Different stems, or no numbers: the order given.
    expect(numberedOrder(['b_2.csv', 'a_1.csv']).names).toEqual(['b_2.csv', 'a_1.csv']);
    expect(numberedOrder(['z.csv', 'y.csv']).names).toEqual(['z.csv', 'y.csv']);
    expect(numberedOrder(['x_9', 'x_10', 'x_9']).names).toEqual(['x_9', 'x_9', 'x_10']);
  });

  it('a shell glob (part_10 before part_2) merges rows in slice order, with a warning; --order given keeps the glob order', async () => {
    const folder = await tempFolder('merge-order');
    for (let i = 0; i <= 11; i++) await writeFile(path.join(folder, `t.part_${i}.csv.gz`), gzipSync(`${i}\n`));
    const glob = bash(`cd ${JSON.stringify(folder)} && T files merge t.part_*.csv.gz -o - --no-progress`, folder);
    expect(glob.stdout).toBe(`${Array.from({ length: 12 }, (_, i) => `${i}\n`).join('')}rc=0\n`);
    const merged = await runCli(['files', 'merge', ...['0', '1', '10', '11', '2'].map((n) => path.join(folder, `t.part_${n}.csv.gz`)), '-o', '-', '--no-progress']);
    expectOk(merged);
    expect(merged.stdout).toBe('0\n1\n2\n10\n11\n');
    expect(merged.stderr).toMatch(/in the order of their numbers, not as given: .*t\.part_2\.csv\.gz"? before .*t\.part_10\.csv\.gz"? \(--order given keeps the order given\)/);
    const given = await runCli(['files', 'merge', ...['0', '1', '10', '2'].map((n) => path.join(folder, `t.part_${n}.csv.gz`)), '-o', '-', '--order', 'given']);
    expectOk(given);
    expect(given.stdout).toBe('0\n1\n10\n2\n');
    expect(given.stderr).not.toMatch(/order/);
  });
});

describe('output files the user names follow the umask', () => {
  it('-o FILE and --keep-slices DIR get 0666/0777 less the umask, as cat > file; the takeout keeps 0700/0600', async () => {
    const folder = await tempFolder('umask');
    const takeout = path.join(folder, 'takeout');
    expectOk(await runCli(['run', '--source', DEMO_PROJECT, '--dest', takeout, '--no-progress']));
    const manifest = path.join(takeout, 'manifests', 'in.c-main.orders.manifest');
    const script = (umask: string, suffix: string): string =>
      `umask ${umask}; T files download ${JSON.stringify(manifest)} -o ${JSON.stringify(path.join(folder, `out${suffix}`, 'orders.csv'))} --keep-slices ${JSON.stringify(path.join(folder, `kept${suffix}`))} --no-progress; ` +
      `T table export in.c-main.customers --source ${JSON.stringify(DEMO_PROJECT)} -o ${JSON.stringify(path.join(folder, `customers${suffix}.csv`))} --no-progress; ` +
      `echo 'x' > ${JSON.stringify(path.join(folder, `cat${suffix}`))}`;
    for (const [umask, file, dir] of [['022', 0o644, 0o755], ['027', 0o640, 0o750], ['077', 0o600, 0o700]] as const) {
      runShell(script(umask, umask), { takeoutAs: 'T' });
      const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
      expect(await mode(path.join(folder, `cat${umask}`))).toBe(file);
      expect(await mode(path.join(folder, `out${umask}`, 'orders.csv'))).toBe(file);
      expect(await mode(path.join(folder, `out${umask}`))).toBe(dir);
      expect(await mode(path.join(folder, `customers${umask}.csv`))).toBe(file);
      expect(await mode(path.join(folder, `kept${umask}`))).toBe(dir);
      const kept = await walkFiles(path.join(folder, `kept${umask}`));
      expect(kept.length).toBeGreaterThan(0);
      for (const name of kept) expect(await mode(path.join(folder, `kept${umask}`, name))).toBe(file);
    }
    // The takeout's own files stay private whatever the umask.
    for (const file of await walkFiles(takeout)) expect((await stat(path.join(takeout, file))).mode & 0o777).toBe(0o600);
    expect((await stat(takeout)).mode & 0o777).toBe(0o700);
  });
});

describe('a reader that closes the pipe', () => {
  it('takeout run --json | head -1 ends quietly with exit 0 and leaves no temp file', async () => {
    const project = await demoWithBigTable('epipe-run', 8);
    const folder = await tempFolder('epipe-run');
    const out = path.join(folder, 'out');
    const result = bash(`T run --source ${JSON.stringify(project)} --dest ${JSON.stringify(out)} --json --compression-level 9 --slice-size 1MB | head -1`, folder);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\{"type":"run:start"/);
    expect(lines.at(-1)).toBe('rc=0');
    const stderr = await readFile(path.join(folder, `.stderr-${process.pid}`), 'utf8');
    expect(stderr).toBe('');
    expect((await walkFiles(out).catch(() => [])).filter((f) => TEMP.test(f))).toEqual([]);
  });

  it('takeout files merge … -o - | head ends quietly with exit 0', async () => {
    const folder = await tempFolder('epipe-merge');
    const rows = Array.from({ length: 200_000 }, (_, i) => `${i},${'x'.repeat(40)}\n`).join('');
    for (let i = 0; i < 4; i++) await writeFile(path.join(folder, `s.part_${i}.csv.gz`), gzipSync(rows));
    const result = bash(`T files merge ${JSON.stringify(folder)}/s.part_*.csv.gz -o - | head -2`, folder);
    expect(result.stdout).toBe('0,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n1,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nrc=0\n');
    expect(await readFile(path.join(folder, `.stderr-${process.pid}`), 'utf8')).toBe('');
  });
});

describe('Ctrl-C says what it undoes at this destination', () => {
  async function interrupt(dest: string, extra: string[] = []): Promise<{ code: number; stderr: string }> {
    const project = await demoWithBigTable('interrupt', 8);
    const cli = startCli(['run', '--source', project, '--dest', dest, '--json', '--compression-level', '9', '--slice-size', '1MB', ...extra]);
    await cli.waitForStdout((stdout) => stdout.includes('"table":"in.c-big.events"'));
    cli.child.kill('SIGINT');
    return cli.done;
  }

  it('a local folder: temp files, no uploads', async () => {
    const folder = await tempFolder('interrupt-local');
    await mkdir(folder, { recursive: true });
    const result = await interrupt(path.join(folder, 'out'));
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('takeout: interrupting: removing temp files (press Ctrl-C again to quit at once)');
    expect(errorLines(result.stderr)).toEqual(['takeout: error: interrupted: temp files were removed, no manifest was written [INTERRUPTED, exit 130]']);
    expect(result.stderr).not.toMatch(/upload/);
  });

  it('S3: uploads are aborted', async () => {
    const endpoint = inject('s3Endpoint');
    const result = await interrupt(`s3://${TEST_BUCKET}/${uniquePrefix('interrupt')}`, s3CliArgs(endpoint));
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('takeout: interrupting: aborting uploads and removing temp files');
    expect(errorLines(result.stderr)).toEqual(['takeout: error: interrupted: open uploads were aborted, no manifest was written [INTERRUPTED, exit 130]']);
  });
});

describe('dataset exports list', () => {
  it('prints a header row and aligned columns; --status takes each layout\'s own names in any case and refuses unknown ones', async () => {
    const out = await tempFolder('exports-list');
    for (const args of [['in.c-main.orders'], ['in.c-crm.contacts'], ['in.c-main.orders', '--layout', 'plain']]) {
      expectOk(await runCli(['dataset', 'export', ...args, '--source', DEMO_PROJECT, '--dest', out]));
    }
    // A CleverTap export still running (its record as a live run leaves it), to filter by CleverTap's own name.
    const records = (await walkFiles(path.join(out, 'takeout-exports'))).filter((f) => /^\d{14}-[0-9a-f]{8}\.json$/.test(f));
    const record = JSON.parse(await readFile(path.join(out, 'takeout-exports', records[0]!), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(out, 'takeout-exports', '01000000000000-0000abcd.json'), JSON.stringify({ ...record, exportId: '01000000000000-0000abcd', layout: 'clevertap', exportFormat: 'JSON', status: 'IN_PROGRESS', startTime: '2001-09-09T01:46:40.000Z' }));

    const list = await runCli(['dataset', 'exports', 'list', '--dest', out]);
    expectOk(list);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^EXPORT ID\s+STATUS\s+TYPE\s+LAYOUT\s+TABLE\s+ITEMS\s+STARTED$/);
    // Every column starts where its header does; the item counts end where ITEMS ends.
    for (const header of ['STATUS', 'TYPE', 'LAYOUT', 'TABLE', 'STARTED']) {
      const at = lines[0]!.indexOf(header);
      for (const line of lines.slice(1)) expect(line[at - 1], `${header} in ${line}`).toBe(' ');
      for (const line of lines.slice(1)) expect(line[at], `${header} in ${line}`).not.toBe(' ');
    }
    const itemsEnd = lines[0]!.indexOf('ITEMS') + 'ITEMS'.length;
    expect(lines.slice(1).map((line) => line.slice(0, itemsEnd).trimEnd().split(' ').at(-1))).toEqual(['25,000', '20', '25,000', '25,000']);

    const ids = async (status: string): Promise<string[]> => {
      const result = await runCli(['dataset', 'exports', 'list', '--dest', out, '--status', status, '--json']);
      expectOk(result);
      return (JSON.parse(result.stdout) as { ExportSummaries: { Takeout: { exportId: string } }[] }).ExportSummaries.map((s) => s.Takeout.exportId);
    };
    expect(await ids('running')).toEqual(['01000000000000-0000abcd']);
    expect(await ids('In-Progress')).toEqual(['01000000000000-0000abcd']);
    expect(await ids('create in_progress')).toEqual(['01000000000000-0000abcd']);
    expect(await ids('completed')).toHaveLength(3);
    expect(await ids('ACTIVE')).toHaveLength(3);
    expect(await ids('done')).toHaveLength(3);
    expect(await ids('failed')).toEqual([]);

    const unknown = await runCli(['dataset', 'exports', 'list', '--dest', out, '--status', 'finished']);
    expect(unknown.code).toBe(2);
    expect(errorLines(unknown.stderr)).toEqual(['takeout: error: --status "finished" is not an export status [USAGE, exit 2]']);
    expect(unknown.stderr).toMatch(/hint: give IN_PROGRESS, COMPLETED, FAILED, STOPPED, or a layout's own name \(personalize: CREATE IN_PROGRESS, CREATE PENDING, ACTIVE, CREATE FAILED; clevertap: RUNNING, DONE\)/);
  });
});
