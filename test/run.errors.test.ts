import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  BAD_FIXTURES,
  DEMO_PROJECT,
  closedPort,
  errorLines,
  jsonLines,
  readTakeout,
  removeTempFolders,
  runCli,
  s3Store,
  startCli,
  tempFolder,
  walkFiles,
  type CliResult,
} from './helpers/cli.js';
import { writeRepeatedCsv } from './helpers/projects.js';
import { rawS3Client, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * Every bad input ends with one clear error line naming the culprit, its documented exit code, and
 * nothing at the destination that looks like a finished takeout: no takeout-manifest.json, no temp files.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const MANIFEST = 'takeout-manifest.json';
const TEMP = /\.takeout-tmp$/;

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

function s3Args(overrides: { endpoint?: string; accessKeyId?: string; secretAccessKey?: string } = {}): string[] {
  return [
    '--endpoint-url', overrides.endpoint ?? endpoint,
    '--access-key-id', overrides.accessKeyId ?? S3RVER_ACCESS_KEY_ID,
    '--secret-access-key', overrides.secretAccessKey ?? S3RVER_SECRET_ACCESS_KEY,
    '--region', 'us-east-1',
  ];
}

async function dest(name: string): Promise<string> {
  return path.join(await tempFolder(name), 'out');
}

/** The exit code, exactly one error line on stderr that matches `culprit`, and the line itself. */
function expectFailure(result: CliResult, code: number, culprit: RegExp | string): string {
  const context = `exit ${result.code}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr}`;
  expect(result.code, context).toBe(code);
  const errors = errorLines(result.stderr);
  expect(errors, context).toHaveLength(1);
  if (typeof culprit === 'string') expect(errors[0], context).toContain(culprit);
  else expect(errors[0], context).toMatch(culprit);
  return errors[0]!;
}

/** Nothing that looks complete: no manifest anywhere under `root`, and no temp files. */
async function expectNothingComplete(root: string): Promise<void> {
  const files = await walkFiles(root);
  expect(files.filter((f) => f.endsWith(MANIFEST)), files.join('\n')).toEqual([]);
  expect(files.filter((f) => TEMP.test(f)), files.join('\n')).toEqual([]);
}

describe('bad sources', () => {
  it('a missing source folder exits 5 naming it', async () => {
    const out = await dest('missing');
    const missing = path.join(path.dirname(out), 'no-such-project');
    const result = await runCli(['run', '--source', missing, '--dest', out]);
    expectFailure(result, 5, missing);
    await expectNothingComplete(path.dirname(out));
    expect(await walkFiles(path.dirname(out))).toEqual([]);
  });

  it('an unterminated quote exits 7 naming the file and the record', async () => {
    const out = await dest('unterminated');
    const result = await runCli(['run', '--source', path.join(BAD_FIXTURES, 'unterminated-quote'), '--dest', out]);
    expectFailure(result, 7, /in\.c-main\/broken\.csv:3 \(byte 15\): unterminated quoted field in record 2/);
    await expectNothingComplete(out);
    // Not even the layout files: a rerun after fixing the input must not be refused as EXISTS.
    expect(await walkFiles(out)).toEqual([]);
  });

  it('a ragged row exits 7 naming the file and the record', async () => {
    const out = await dest('ragged');
    const result = await runCli(['run', '--source', path.join(BAD_FIXTURES, 'ragged-row'), '--dest', out]);
    const line = expectFailure(result, 7, 'in.c-main/ragged.csv');
    expect(line).toContain('in.c-main/ragged.csv:5 (byte 54): ragged row: record 4 has 4 fields, the header has 3');
    await expectNothingComplete(out);
    expect(await walkFiles(out)).toEqual([]);
  });

  it('a ragged row with --quote-all (the re-encoding scanner) exits 7 the same way', async () => {
    const out = await dest('ragged-quote-all');
    const result = await runCli(['run', '--source', path.join(BAD_FIXTURES, 'ragged-row'), '--dest', out, '--quote-all']);
    const line = expectFailure(result, 7, 'in.c-main/ragged.csv');
    expect(line).toContain('record 4');
    await expectNothingComplete(out);
  });

  it('a stray quote exits 7 naming its line and byte, with a hint at --quote-all, which takes the file', async () => {
    const project = path.join(await tempFolder('stray-quote'), 'project');
    await mkdir(path.join(project, 'in.c-main'), { recursive: true });
    await writeFile(path.join(project, 'in.c-main', 'tv.csv'), 'id,size\n1,5 in\n2,5" screen\n');
    const out = await dest('stray-quote');
    const result = await runCli(['run', '--source', project, '--dest', out]);
    expectFailure(result, 7, `${path.join(project, 'in.c-main', 'tv.csv')}:3 (byte 18): stray quote inside an unquoted field in record 2`);
    expect(result.stderr).toContain('hint: a quote inside an unquoted value is not RFC 4180 CSV; --quote-all reads it as a literal quote');
    const json = await runCli(['run', '--source', project, '--dest', await dest('stray-quote-json'), '--json']);
    expect(jsonLines(json.stdout).find((e) => e.type === 'table:error')).toMatchObject({ hint: expect.stringContaining('--quote-all') });
    const quoted = await runCli(['run', '--source', project, '--dest', await dest('stray-quote-all'), '--quote-all']);
    expect(quoted.code, quoted.stderr).toBe(0);
  });

  it('a CSV file without a header exits 7 naming the file', async () => {
    const out = await dest('no-header');
    const result = await runCli(['run', '--source', path.join(BAD_FIXTURES, 'no-header'), '--dest', out]);
    expectFailure(result, 7, /in\.c-main\/blank\.csv: no header row/);
    await expectNothingComplete(path.dirname(out));
  });

  it('a file outside the working folder is named by its absolute path', async () => {
    const project = path.join(await tempFolder('ragged-abs'), 'project');
    await cp(path.join(BAD_FIXTURES, 'ragged-row'), project, { recursive: true });
    const result = await runCli(['run', '--source', project, '--dest', await dest('ragged-abs-out')]);
    expectFailure(result, 7, `table in.c-main.ragged: ${path.join(project, 'in.c-main', 'ragged.csv')}:5 (byte 54): ragged row`);
  });
});

describe('bad options', () => {
  it.each([
    [['--slice-size', '12XB'], "--slice-size: '12XB' is not a size"],
    [['--slice-size', '1'], "--slice-size: '1' is out of range"],
    [['--compression-level', '11'], "--compression-level: '11' is out of range (0 to 9)"],
    [['--concurrency', '0'], "--concurrency: '0' is out of range"],
    [['--line-ending', 'cr'], "--line-ending: 'cr' is not one of lf, crlf"],
  ])('%j exits 2 naming the option', async (args, message) => {
    const out = await dest('options');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, ...args]);
    expectFailure(result, 2, message);
    expect(await walkFiles(path.dirname(out))).toEqual([]);
  });

  it('an unknown flag exits 2', async () => {
    const result = await runCli(['run', '--source', 'demo', '--slice-szie', '64KB']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown option '--slice-szie'");
  });
});

describe('bad S3 destinations', () => {
  it('a bucket that does not exist exits 5 naming it', async () => {
    const result = await runCli(['run', '--source', 'demo', '--dest', 's3://takeout-no-such-bucket/x/', ...s3Args()]);
    expectFailure(result, 5, /bucket takeout-no-such-bucket does not exist/);
  });

  it('wrong credentials (an access key id other than S3RVER) exit 4 and write nothing', async () => {
    const prefix = uniquePrefix('auth');
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args({ accessKeyId: 'NOT-S3RVER' })]);
    expectFailure(result, 4, TEST_BUCKET);
    expect(await s3Store(client, TEST_BUCKET, prefix).list()).toEqual([]);
  });

  it('an unreachable endpoint (a closed loopback port) exits 8 quickly', async () => {
    const port = await closedPort();
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/x/`, ...s3Args({ endpoint: `http://127.0.0.1:${port}` })]);
    expectFailure(result, 8, `http://127.0.0.1:${port}`);
    expect(result.durationMs).toBeLessThan(8_000);
  });
});

describe('some tables fail', () => {
  async function projectWithRaggedTable(): Promise<string> {
    const project = path.join(await tempFolder('mixed'), 'project');
    await cp(DEMO_PROJECT, project, { recursive: true });
    await writeFile(path.join(project, 'in.c-main', 'ragged.csv'), 'id,name\n1,a\n2,b,c\n3,d\n');
    return project;
  }

  it('exit 3: the manifest is partial, lists the failed table, and the good tables are complete', async () => {
    const project = await projectWithRaggedTable();
    const out = await dest('partial');
    const result = await runCli(['run', '--source', project, '--dest', out]);
    expect(result.code, result.stderr).toBe(3);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(errorLines(result.stderr)[0]).toMatch(/in\.c-main\.ragged: .*ragged\.csv:3 \(byte 12\): ragged row: record 2 has 3 fields, the header has 2/);
    const takeout = await readTakeout(out);
    expect(takeout.manifest.status).toBe('partial');
    expect(takeout.manifest.totals.tablesFailed).toBe(1);
    const failed = takeout.manifest.tables.filter((t) => t.status === 'failed');
    expect(failed.map((t) => t.id)).toEqual(['in.c-main.ragged']);
    expect(failed[0]!.error).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringContaining('ragged.csv') });
    const good = takeout.manifest.tables.filter((t) => t.status !== 'failed');
    expect(good).toHaveLength(7);
    for (const table of good) expect(table.status, table.id).toBe('complete');
    expect(takeout.manifest.totals.rows).toBe(25_515);
    // No part and no slice manifest of the failed table.
    expect(takeout.keys.filter((k) => k.includes('ragged'))).toEqual([]);
    expect(takeout.keys.filter((k) => TEMP.test(k))).toEqual([]);
  });

  it('with --fail-fast: exit 7 and no manifest', async () => {
    const project = await projectWithRaggedTable();
    const out = await dest('fail-fast');
    const result = await runCli(['run', '--source', project, '--dest', out, '--fail-fast']);
    expect(result.code, result.stderr).toBe(7);
    expect(result.stderr).toContain('ragged.csv:3 (byte 12): ragged row: record 2');
    await expectNothingComplete(out);
    const files = await walkFiles(out);
    for (const layout of ['buckets.json', 'tables.json', 'configurations.json']) expect(files).not.toContain(layout);
  });
});

/** ~200 MB of CSV in well under a second: one 1 MiB block of varied rows, written 200 times. */
async function bigProject(): Promise<string> {
  const project = path.join(await tempFolder('big'), 'project');
  await mkdir(path.join(project, 'in.c-big'), { recursive: true });
  await writeRepeatedCsv(path.join(project, 'in.c-big', 'big.csv'), 200);
  return project;
}

describe('Ctrl-C', () => {
  it('SIGINT after the first progress exits 130 and leaves no manifest and no temp files; the parts that landed are journaled for --resume', async () => {
    const project = await bigProject();
    const out = await dest('sigint');
    // Level 9 and small slices: slow enough to interrupt, with finished slices and one in flight.
    const cli = startCli(['run', '--source', project, '--dest', out, '--json', '--compression-level', '9', '--slice-size', '2MB']);
    await cli.waitForStdout((stdout) => stdout.includes('"type":"table:slice"'));
    cli.child.kill('SIGINT');
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(130);
    expect(jsonLines(result.stdout).some((e) => e.type === 'run:done')).toBe(false);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(errorLines(result.stderr)[0]).toContain('interrupted');
    await expectNothingComplete(out);
    const journal = JSON.parse(await readFile(path.join(out, 'takeout-journal.json'), 'utf8')) as { tables: Record<string, { slices: { key: string }[] }> };
    const landed = Object.values(journal.tables).flatMap((t) => t.slices.map((s) => s.key));
    expect((await walkFiles(out)).sort()).toEqual([...landed, 'takeout-journal.json'].sort());
  }, 60_000);
});

describe('secrets', () => {
  const CANARY = 'CANARY-SECRET-123456';

  const unreachable = async (): Promise<string> => `http://127.0.0.1:${await closedPort()}`;
  it.each([
    ['an unreachable endpoint, --json', unreachable, S3RVER_ACCESS_KEY_ID, ['--json'], 8],
    ['an unreachable endpoint, --debug', unreachable, S3RVER_ACCESS_KEY_ID, ['--debug'], 8],
    ['a refused access key, --json --debug', async () => endpoint, 'NOT-S3RVER', ['--json', '--debug'], 4],
  ] as [string, () => Promise<string>, string, string[], number][])('the secret access key never appears in the output: %s', async (_name, where, accessKeyId, extra, code) => {
    const args = ['--endpoint-url', await where(), '--access-key-id', accessKeyId, '--secret-access-key', CANARY, '--region', 'us-east-1', ...extra];
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/canary/`, ...args]);
    expect(result.code, result.stderr).toBe(code);
    expect(result.stderr.length + result.stdout.length).toBeGreaterThan(0);
    expect(result.stdout).not.toContain(CANARY);
    expect(result.stderr).not.toContain(CANARY);
    expect(result.stdout + result.stderr).not.toContain('CANARY');
    if (extra.includes('--json')) {
      const events = jsonLines(result.stdout);
      expect(events.at(-1)).toMatchObject({ type: 'error', exitCode: result.code });
    }
  });

  it('a secret given through TAKEOUT_SECRET_ACCESS_KEY stays out of the output too', async () => {
    const port = await closedPort();
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/canary/`, '--access-key-id', S3RVER_ACCESS_KEY_ID, '--endpoint-url', `http://127.0.0.1:${port}`, '--json', '--debug'], {
      env: { TAKEOUT_SECRET_ACCESS_KEY: CANARY },
    });
    expect(result.code).toBe(8);
    expect(result.stdout + result.stderr).not.toContain('CANARY');
  });
});

describe('a closed stdout', () => {
  // `takeout run --json | head -1`: the reader goes away; takeout stops as on Ctrl-C, cleans up, and ends
  // quietly with exit 0, as cat does when its reader has what it wanted.
  it('stops cleanly with EPIPE: exit 0, no error line, no temp files', async () => {
    const project = await bigProject();
    const out = await dest('epipe');
    const cli = startCli(['run', '--source', project, '--dest', out, '--json', '--compression-level', '9', '--slice-size', '1MB']);
    await cli.waitForStdout((stdout) => stdout.includes('"type":"table:start"'));
    cli.child.stdout!.destroy();
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toContain('EPIPE');
    expect(errorLines(result.stderr)).toEqual([]);
    expect((await walkFiles(out)).filter((f) => TEMP.test(f))).toEqual([]);
  });
});
