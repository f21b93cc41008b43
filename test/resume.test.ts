import { appendFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import type { Journal } from '../src/manifests/journal.js';
import type { TakeoutManifest } from '../src/manifests/takeout.js';
import { DEMO_PROJECT, errorLines, jsonLines, readTakeout, removeTempFolders, runCli, s3Store, startCli, tempFolder, walkFiles, type CliResult } from './helpers/cli.js';
import { demoWithBigTable, expectOk } from './helpers/projects.js';
import { startFaultProxy } from './faults/proxy.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * Resume: a run that is interrupted (SIGINT) or killed (SIGKILL) leaves its journal and the slices that
 * landed, never a manifest; `--resume` writes only what is missing and ends with the same slices, byte for
 * byte, as a run that was never interrupted.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const JOURNAL = 'takeout-journal.json';
const MANIFEST = 'takeout-manifest.json';
/** Level 9 and 1 MB slices: slow enough to stop mid-table, with slices landed before and after. */
const SLOW = ['--compression-level', '9', '--slice-size', '1MB', '--concurrency', '1'];

let project: string;
const bigProject = (name: string): Promise<string> => demoWithBigTable(name, 24, (i) => `"note ${i}, ""quoted"""`);
let reference: TakeoutManifest;

const s3Args = s3CliArgs(endpoint);

const slicesOf = (m: TakeoutManifest): Record<string, { key: string; sha256: string; bytes: number; rows: number }[]> =>
  Object.fromEntries(m.tables.map((t) => [t.id, t.slices.map((s) => ({ key: s.key, sha256: s.sha256, bytes: s.bytes, rows: s.rows }))]));

async function readJournal(root: string): Promise<Journal> {
  return JSON.parse(await readFile(path.join(root, JOURNAL), 'utf8')) as Journal;
}

/** Starts a slow run and stops it with `signal` once `slices` slices have landed. */
async function interrupted(args: string[], signal: NodeJS.Signals, slices = 2): Promise<CliResult> {
  const cli = startCli(['run', '--source', project, ...SLOW, '--json', ...args]);
  await cli.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > slices);
  cli.child.kill(signal);
  return cli.done;
}

beforeAll(async () => {
  project = await bigProject('resume');
  const out = path.join(await tempFolder('resume-ref'), 'out');
  expectOk(await runCli(['run', '--source', project, ...SLOW, '--dest', out]));
  reference = (await readTakeout(out)).manifest;
  expect(reference.tables.find((t) => t.id === 'in.c-big.events')!.slices.length).toBeGreaterThan(4);
}, 120_000);

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

describe('resume after SIGINT (local folder)', () => {
  it('keeps the landed slices and the journal, refuses a plain rerun, and --resume completes byte-identical', async () => {
    const out = path.join(await tempFolder('resume-sigint'), 'out');
    const stopped = await interrupted(['--dest', out], 'SIGINT');
    expect(stopped.code, stopped.stderr).toBe(ERROR_CODES.INTERRUPTED);
    expect(errorLines(stopped.stderr)[0]).toContain('interrupted');
    expect(stopped.stderr).toContain('--resume');

    const files = await walkFiles(out);
    expect(files).not.toContain(MANIFEST);
    expect(files.filter((f) => f.endsWith('.takeout-tmp'))).toEqual([]);
    const journal = await readJournal(out);
    const landed = Object.values(journal.tables).flatMap((t) => t.slices.map((s) => s.key));
    expect(landed.length).toBeGreaterThanOrEqual(2);
    // Every part file present is one the journal records: nothing unaccounted for.
    expect(files.filter((f) => f.includes('.part_')).sort()).toEqual([...landed].sort());

    const plain = await runCli(['run', '--source', project, ...SLOW, '--dest', out]);
    expect(plain.code).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(plain.stderr)[0]).toMatch(/holds an unfinished takeout \(run .*, \d+ slices? landed\)/);
    expect(plain.stderr).toMatch(/--resume to continue it, or --overwrite to start over/);

    const resumed = await runCli(['run', '--source', project, ...SLOW, '--dest', out, '--resume', '--json']);
    expectOk(resumed);
    const done = jsonLines(resumed.stdout).find((e) => e.type === 'run:done')!.summary as { reused: { slices: number } };
    expect(done.reused.slices).toBeGreaterThanOrEqual(landed.length);
    const written = jsonLines(resumed.stdout).filter((e) => e.type === 'table:slice').map((e) => (e.slice as { key: string }).key);
    for (const key of landed) expect(written).not.toContain(key);

    const result = await readTakeout(out);
    expect(slicesOf(result.manifest)).toEqual(slicesOf(reference));
    expect(result.manifest.status).toBe('complete');
    expect(result.manifest.resumed?.reusedSlices).toBe(done.reused.slices);
    expect(result.keys).not.toContain(JOURNAL);
    const verify = await runCli(['verify', out]);
    expectOk(verify);
  }, 120_000);

  it('a landed slice that was removed or damaged since is written again', async () => {
    const out = path.join(await tempFolder('resume-damaged'), 'out');
    const stopped = await interrupted(['--dest', out], 'SIGINT', 3);
    expect(stopped.code).toBe(ERROR_CODES.INTERRUPTED);
    const landed = Object.values((await readJournal(out)).tables).flatMap((t) => t.slices.map((s) => s.key));
    await rm(path.join(out, landed[0]!));
    await appendFile(path.join(out, landed[1]!), 'x');
    const resumed = await runCli(['run', '--source', project, ...SLOW, '--dest', out, '--resume']);
    expectOk(resumed);
    expect(resumed.stderr).toMatch(/2 slices the journal lists are missing or changed/);
    expect(slicesOf((await readTakeout(out)).manifest)).toEqual(slicesOf(reference));
  }, 120_000);

  it('a table that changed since the interruption is taken out again from its first slice', async () => {
    const changed = await bigProject('resume-changed');
    const out = path.join(await tempFolder('resume-changed-out'), 'out');
    const cli = startCli(['run', '--source', changed, ...SLOW, '--json', '--dest', out]);
    await cli.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > 3);
    cli.child.kill('SIGKILL');
    await cli.done;
    // Rewrite the first row of the big table: the first landed slice no longer matches.
    const file = path.join(changed, 'in.c-big', 'events.csv');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/\n0,[0-9a-f]+,/, '\n0,changed,'));
    const resumed = await runCli(['run', '--source', changed, ...SLOW, '--dest', out, '--resume']);
    expectOk(resumed);
    expect(resumed.stderr).toMatch(/in\.c-big\.events changed since the interrupted run/);
    const fresh = path.join(await tempFolder('resume-changed-ref'), 'out');
    expectOk(await runCli(['run', '--source', changed, ...SLOW, '--dest', fresh]));
    expect(slicesOf((await readTakeout(out)).manifest)).toEqual(slicesOf((await readTakeout(fresh)).manifest));
    expect((await walkFiles(out)).filter((f) => f.endsWith('.takeout-tmp'))).toEqual([]);
  }, 120_000);
});

describe('resume after SIGKILL mid-upload (S3)', () => {
  it('leaves no manifest; --resume aborts the dead multipart uploads and writes only what is missing', async () => {
    const prefix = uniquePrefix('resume-kill');
    const dest = `s3://${TEST_BUCKET}/${prefix}`;
    const args = ['--dest', dest, ...s3Args];
    const stopped = await interrupted(args, 'SIGKILL', 3);
    expect(stopped.code).toBe(137);
    const store = s3Store(client, TEST_BUCKET, prefix);
    const keys = await store.list();
    expect(keys).not.toContain(MANIFEST);
    expect(keys).toContain(JOURNAL);

    const plain = await runCli(['run', '--source', project, ...SLOW, ...args]);
    expect(plain.code).toBe(ERROR_CODES.EXISTS);

    const resumed = await runCli(['run', '--source', project, ...SLOW, '--json', '--resume', ...args]);
    expectOk(resumed);
    // s3rver cannot list multipart uploads (501): the resumed run says so instead of failing.
    expect(jsonLines(resumed.stdout).some((e) => e.type === 'warning' && /cannot list unfinished multipart uploads/.test(String(e.message)))).toBe(true);
    const summary = jsonLines(resumed.stdout).find((e) => e.type === 'run:done')!.summary as { reused: { slices: number } };
    const landed = keys.filter((k) => k.includes('.part_'));
    expect(summary.reused.slices).toBeGreaterThanOrEqual(landed.length - 1);
    const result = await readTakeout(store);
    expect(slicesOf(result.manifest)).toEqual(slicesOf(reference));
    expect(result.keys).not.toContain(JOURNAL);
    expectOk(await runCli(['verify', dest, ...s3Args]));
  }, 120_000);
});

describe('resume rules', () => {
  it('refuses other slicing options, naming the option', async () => {
    const out = path.join(await tempFolder('resume-options'), 'out');
    const stopped = await interrupted(['--dest', out], 'SIGINT');
    expect(stopped.code).toBe(ERROR_CODES.INTERRUPTED);
    const result = await runCli(['run', '--source', project, '--compression-level', '9', '--slice-size', '2MB', '--dest', out, '--resume']);
    expect(result.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(result.stderr)[0]).toContain('--slice-size differs from the interrupted run');
    // --overwrite starts over instead.
    const over = await runCli(['run', '--source', project, ...SLOW, '--dest', out, '--overwrite']);
    expectOk(over);
    expect(await walkFiles(out)).not.toContain(JOURNAL);
    expect(slicesOf((await readTakeout(out)).manifest)).toEqual(slicesOf(reference));
  }, 120_000);

  it('--resume and --overwrite together are a usage error; --resume on a finished takeout has nothing to do', async () => {
    const out = path.join(await tempFolder('resume-finished'), 'out');
    const both = await runCli(['run', '--source', 'demo', '--dest', out, '--resume', '--overwrite']);
    expect(both.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(both.stderr)[0]).toContain('not both');
    // On an empty destination --resume is a fresh run.
    expectOk(await runCli(['run', '--source', 'demo', '--dest', out, '--resume']));
    const again = await runCli(['run', '--source', 'demo', '--dest', out, '--resume']);
    expect(again.code).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(again.stderr)[0]).toContain('nothing to resume');
  });

  it('a partial run keeps its journal; --resume retries only the failed table', async () => {
    const root = path.join(await tempFolder('resume-partial'), 'project');
    await cp(DEMO_PROJECT, root, { recursive: true });
    const broken = path.join(root, 'in.c-main', 'broken.csv');
    await writeFile(broken, 'id,name\n1,"never closed\n');
    const out = path.join(await tempFolder('resume-partial-out'), 'out');
    const first = await runCli(['run', '--source', root, '--dest', out]);
    expect(first.code).toBe(ERROR_CODES.PARTIAL);
    expect(first.stderr + first.stdout).toContain('--resume to retry only the failed tables');
    expect(await walkFiles(out)).toContain(JOURNAL);
    expect((await readTakeout(out)).manifest.status).toBe('partial');

    await writeFile(broken, 'id,name\n1,"closed"\n');
    const resumed = await runCli(['run', '--source', root, '--dest', out, '--resume', '--json']);
    expectOk(resumed);
    const events = jsonLines(resumed.stdout);
    expect(events.filter((e) => e.type === 'table:start').map((e) => e.table)).toEqual(['in.c-main.broken']);
    const result = await readTakeout(out);
    expect(result.manifest.status).toBe('complete');
    expect(result.keys).not.toContain(JOURNAL);
    expect((await result.tableData('in.c-main.broken')).toString()).toBe('1,"closed"\n');
    expectOk(await runCli(['verify', out]));
  });

  it('table export --dest resumes too; with -o a file is written whole and --resume is refused', async () => {
    const out = path.join(await tempFolder('resume-table'), 'out');
    const cli = startCli(['table', 'export', 'in.c-big.events', '--source', project, ...SLOW.slice(0, 4), '--json', '--dest', out]);
    await cli.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > 2);
    cli.child.kill('SIGKILL');
    await cli.done;
    expect(await walkFiles(out)).toContain(JOURNAL);
    const resumed = await runCli(['table', 'export', 'in.c-big.events', '--source', project, ...SLOW.slice(0, 4), '--dest', out, '--resume']);
    expectOk(resumed);
    const table = (await readTakeout(out)).manifest;
    expect(slicesOf(table)['in.c-big.events']).toEqual(slicesOf(reference)['in.c-big.events']);
    const file = await runCli(['table', 'export', 'in.c-big.events', '--source', project, '-o', path.join(out, 'one.csv'), '--resume']);
    expect(file.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(file.stderr)[0]).toContain('--resume');
  }, 120_000);
});

describe('SIGKILL mid-download', () => {
  it('leaves only a temp file beside the target; a rerun removes it and completes', async () => {
    const prefix = uniquePrefix('resume-download');
    expectOk(await runCli(['run', '--source', project, '--slice-size', '1MB', '--include', 'in.c-big.*', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args]));
    const folder = await tempFolder('resume-download');
    const target = path.join(folder, 'events.csv');
    const manifest = `s3://${TEST_BUCKET}/${prefix}manifests/in.c-big.events.manifest`;
    const proxy = await startFaultProxy(endpoint);
    try {
      // The fourth slice never arrives: the download hangs with three slices written into its temp file.
      proxy.rules.push({ match: (req) => req.method === 'GET' && (req.url ?? '').includes('events.part_3.'), action: { kind: 'stall' } });
      const viaProxy = s3CliArgs(proxy.url);
      const cli = startCli(['files', 'download', manifest, '-o', target, '--json', '--concurrency', '1', ...viaProxy]);
      while (!proxy.requests.some((r) => r.url.includes('events.part_3.'))) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 300));
      cli.child.kill('SIGKILL');
      await cli.done;
    } finally {
      await proxy.stop();
    }
    const left = await walkFiles(folder);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.events\.csv\.\d+-[0-9a-f]+\.takeout-tmp$/);
    expectOk(await runCli(['files', 'download', manifest, '-o', target, ...s3Args]));
    expect(await walkFiles(folder)).toEqual(['events.csv']);
    const data = await readFile(target);
    expect(data.subarray(0, 20).toString()).toContain('"id","hash","note"');
    expect(data.length).toBe(reference.tables.find((t) => t.id === 'in.c-big.events')!.rawBytes + '"id","hash","note"\n'.length);
  }, 120_000);
});

describe('create-only writes', () => {
  it('a fresh run does not replace an object that is already at one of its keys: exit 9 naming it, the object kept', async () => {
    const out = path.join(await tempFolder('create-only'), 'out');
    await mkdir(path.join(out, 'in', 'c-main'), { recursive: true });
    const planted = path.join(out, 'in', 'c-main', 'customers.part_0.csv.gz');
    await writeFile(planted, 'not ours');
    const result = await runCli(['run', '--source', 'demo', '--include', 'in.c-main.customers', '--dest', out]);
    expect(result.code, result.stderr).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(result.stderr)[0]).toContain('customers.part_0.csv.gz already exists');
    expect(await readFile(planted, 'utf8')).toBe('not ours');
    expect(await walkFiles(out)).not.toContain(MANIFEST);
  });
});

describe('tables whose names differ only in case', () => {
  async function caseProject(): Promise<string> {
    const root = path.join(await tempFolder('case'), 'project');
    await mkdir(path.join(root, 'in.c-main'), { recursive: true });
    await writeFile(path.join(root, 'in.c-main', 'Users.csv'), 'id\n1\n');
    await writeFile(path.join(root, 'in.c-main', 'users.csv'), 'id\n2\n');
    return root;
  }

  it('are both written on a case-sensitive folder, with a warning naming them', async () => {
    const out = path.join(await tempFolder('case-out'), 'out');
    const result = await runCli(['run', '--source', await caseProject(), '--dest', out]);
    expectOk(result);
    expect(result.stderr).toMatch(/tables in\.c-main\.(Users and in\.c-main\.users|users and in\.c-main\.Users) differ only in case/);
    const files = await walkFiles(out);
    expect(files).toContain('in/c-main/Users.part_0.csv.gz');
    expect(files).toContain('in/c-main/users.part_0.csv.gz');
  });

  it('are refused before anything is written when the folder ignores case: exit 7 naming both', async () => {
    const { runTakeout } = await import('../src/pipeline/run.js');
    const { createLocalStore } = await import('../src/stores/local/store.js');
    const { openSource } = await import('../src/sources/registry.js');
    const out = path.join(await tempFolder('case-insensitive'), 'out');
    // A real folder that reports itself case-insensitive, as one on macOS does.
    const destination = Object.assign(createLocalStore(out), { caseInsensitive: async () => true });
    const source = await openSource(await caseProject(), {});
    const run = runTakeout({
      source, destination, structureOnly: false, include: [], exclude: [], sliceBytes: 1 << 20, compressionLevel: 6, lineEnding: '\n', requote: false,
      concurrency: 1, overwrite: false, dryRun: false, failFast: false, partBytes: 0, partConcurrency: 0, toolVersion: 'test', recordedOptions: {}, emit: () => undefined,
    });
    await expect(run).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/in\.c-main\.(Users and in\.c-main\.users|users and in\.c-main\.Users) differ only in case/) });
    expect((await walkFiles(out)).filter((f) => !f.includes('case-probe'))).toEqual([]);
  });
});
