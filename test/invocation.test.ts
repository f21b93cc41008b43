import { PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdir, statfs, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { closest, editDistance } from '../src/pipeline/suggest.js';
import { mistypedUrl } from '../src/stores/registry.js';
import { faultProxyForTests } from './faults/proxy.js';
import { DEMO_PROJECT, errorLines, jsonLines, removeTempFolders, runCli, s3Store, tempFolder, walkFiles, type CliResult } from './helpers/cli.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * Risky invocations are refused (exit 2) before anything is written, and `--dry-run` is a preflight:
 * it checks the destination as the real run would, with the real run's exit codes, and writes nothing.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const S3_ARGS = s3CliArgs(endpoint);
/** One small table keeps the runs that must write something quick. */
const SMALL = ['--include', 'in.c-crm.products'];
// Each test that sets rules clears them itself.
const proxy = faultProxyForTests(endpoint, { clearAfterEach: false });

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

function expectExit(result: CliResult, code: number): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr}`).toBe(code);
}

/** The keys under a prefix of the test bucket, read with the SDK (not through takeout). */
function s3Keys(prefix: string): Promise<string[]> {
  return s3Store(client, TEST_BUCKET, prefix).list();
}

describe('mistyped URLs and names (units)', () => {
  it('mistypedUrl: URL-like typos and drive letters on POSIX, plain paths and Windows paths on Windows', () => {
    for (const typo of ['s3:/b/x', 's3:b', 'S3:/b', 's3//b', 'gs//b', 'foo:bar', 'C:\\x', 'c:/x']) expect(mistypedUrl(typo, '--dest', 'linux'), typo).toBeDefined();
    for (const plain of ['./s3:odd', '/abs/s3:x', 'out', 'a/b:c', 's3://b/x', 'file:///x', 'weird://x']) expect(mistypedUrl(plain, '--dest', 'linux'), plain).toBeUndefined();
    expect(mistypedUrl('C:\\backups', '--dest', 'win32')).toBeUndefined();
    expect(mistypedUrl('s3:/b/x', '--dest', 'win32')?.hint).toContain('did you mean "s3://b/x"');
  });

  it('closest: a did-you-mean only for a name a few edits away', () => {
    const known = ['TAKEOUT_SOURCE', 'TAKEOUT_DEST', 'TAKEOUT_DRY_RUN', 'TAKEOUT_SSE'];
    expect(editDistance('SOUCRE', 'SOURCE')).toBe(1);
    expect(closest('TAKEOUT_SORCE', known)).toBe('TAKEOUT_SOURCE');
    expect(closest('TAKEOUT_DRYRUN', known)).toBe('TAKEOUT_DRY_RUN');
    expect(closest('TAKEOUT_DESR', known)).toBe('TAKEOUT_DEST');
    expect(closest('TAKEOUT_ZZZ', known)).toBeUndefined();
    expect(closest('TAKEOUT_SOMETHING_ELSE', known)).toBeUndefined();
  });
});

describe('refused invocations', () => {
  it('--dest without --source exits 2 with a hint and puts nothing in the bucket (the demo is not a default)', async () => {
    const prefix = uniquePrefix('no-source');
    const result = await runCli(['run', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...S3_ARGS]);
    expectExit(result, 2);
    expect(errorLines(result.stderr)).toEqual(['takeout: error: --dest without --source: nothing says what to take out [USAGE, exit 2]']);
    expect(result.stderr).toContain('--source demo');
    expect(await s3Keys(prefix)).toEqual([]);
  });

  it('a misspelled TAKEOUT_SORCE is warned about with a did-you-mean, and the run is refused', async () => {
    const prefix = uniquePrefix('sorce');
    const result = await runCli(['run', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...S3_ARGS], { env: { TAKEOUT_SORCE: DEMO_PROJECT } });
    expectExit(result, 2);
    expect(result.stderr).toContain('takeout: warning: TAKEOUT_SORCE is not a takeout setting and is ignored (did you mean TAKEOUT_SOURCE?)');
    expect(await s3Keys(prefix)).toEqual([]);
  });

  it('--source demo and a bare `takeout run` still take out the demo project', async () => {
    const prefix = uniquePrefix('demo');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...SMALL, '-q', ...S3_ARGS]), 0);
    expect(await s3Keys(prefix)).toContain('takeout-manifest.json');
    const cwd = await tempFolder('bare');
    expectExit(await runCli(['run', '-q'], { cwd }), 0);
    const made = await walkFiles(cwd);
    expect(made.some((key) => /^takeout-\d{8}-\d{6}\/takeout-manifest\.json$/.test(key)), made.join('\n')).toBe(true);
  });

  const mistyped: [string, RegExp][] = [
    [`s3:/${TEST_BUCKET}/PREFIX`, /looks like a mistyped URL/],
    [`s3:${TEST_BUCKET}/PREFIX`, /looks like a mistyped URL/],
    [`S3:/${TEST_BUCKET}/PREFIX`, /looks like a mistyped URL/],
    [`s3//${TEST_BUCKET}/PREFIX`, /looks like a URL with its ':' left out/],
    ['s3:', /looks like a mistyped URL/],
    [`gcs://${TEST_BUCKET}/PREFIX`, /Google Cloud Storage is written gs:\/\//],
    [`wasbs://container/PREFIX`, /Azure Blob Storage \(wasbs:\/\/\) is not supported yet/],
    ['foo://x/PREFIX', /unsupported destination/],
    ['C:\\backups\\PREFIX', /looks like a Windows path/],
  ];
  it.each(mistyped)('--dest %s exits 2 and creates no folder and no object', async (given, message) => {
    const prefix = uniquePrefix('typo');
    const dest = given.replace('PREFIX', prefix);
    const cwd = await tempFolder('typo');
    const result = await runCli(['run', '--source', 'demo', '--dest', dest, ...S3_ARGS], { cwd });
    expectExit(result, 2);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    if (given.includes(TEST_BUCKET) && /^s3/i.test(given)) {
      expect(result.stderr).toContain(`hint: did you mean "s3://${TEST_BUCKET}/${prefix}"? Or write ./${dest} for a local path of that name`);
    }
    expect(await walkFiles(cwd)).toEqual([]);
    expect(await s3Keys(prefix)).toEqual([]);
  });

  it('an explicit ./s3:odd folder is still a folder, and S3:// is s3://', async () => {
    const cwd = await tempFolder('odd');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', './s3:odd', ...SMALL, '-q'], { cwd }), 0);
    expect(await walkFiles(path.join(cwd, 's3:odd'))).toContain('takeout-manifest.json');
    const prefix = uniquePrefix('upper');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', `S3://${TEST_BUCKET}/${prefix}`, '--path', 'sub', ...SMALL, '-q', ...S3_ARGS], { cwd }), 0);
    expect(await s3Keys(prefix)).toContain('sub/takeout-manifest.json');
    expect(await walkFiles(cwd)).not.toContain(expect.stringMatching(/^S3:/));
  });

  const sources: [string, RegExp][] = [
    ['postgres:/shop', /--source "postgres:\/shop" looks like a mistyped URL[\s\S]*did you mean "postgres:\/\/shop"/],
    ['sqlite://shop.db', /give sqlite:PATH/],
    ['', /--source is empty/],
    ['s3//bucket/x', /left out/],
    ['postgres:/reader:CANARY-PW@db/shop', /did you mean "postgres:\/\/\*\*\*@db\/shop"/],
    ['ftp://reader:CANARY-PW@host/x', /unknown source kind 'ftp:'/],
  ];
  it.each(sources)('--source %j exits 2', async (given, message) => {
    const cwd = await tempFolder('src');
    const result = await runCli(['run', '--source', given, '--dest', path.join(cwd, 'out')], { cwd });
    expectExit(result, 2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toContain('CANARY-PW');
    expect(await walkFiles(cwd)).toEqual([]);
  });

  it('table export and dataset export have no default source either', async () => {
    const cwd = await tempFolder('exports');
    const table = await runCli(['table', 'export', 'in.c-main.orders', '-o', 'orders.csv'], { cwd });
    expectExit(table, 2);
    expect(table.stderr).toContain('no --source given');
    const prefix = uniquePrefix('dataset');
    const dataset = await runCli(['dataset', 'export', 'in.c-main.orders', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...S3_ARGS], { cwd });
    expectExit(dataset, 2);
    expect(dataset.stderr).toContain('no --source given');
    expect(await walkFiles(cwd)).toEqual([]);
    expect(await s3Keys(prefix)).toEqual([]);
  });

  it('every command that takes a store refuses a mistyped URL', async () => {
    const cwd = await tempFolder('stores');
    for (const args of [
      ['verify', `s3:/${TEST_BUCKET}/x`],
      ['cleanup', `s3:/${TEST_BUCKET}/x`],
      ['files', 'download', `s3:/${TEST_BUCKET}/x.manifest`, '-o', 'out.csv'],
      ['dataset', 'exports', 'list', '--dest', `s3:/${TEST_BUCKET}/x`],
      ['table', 'export', 'in.c-main.orders', '--source', 'demo', '--dest', `gs:/${TEST_BUCKET}/x`],
      ['table', 'export', 'in.c-main.orders', '--source', 'demo', '-o', `s3://${TEST_BUCKET}/x.csv`],
    ]) {
      const result = await runCli([...args, ...S3_ARGS], { cwd });
      expectExit(result, 2);
      expect(errorLines(result.stderr), args.join(' ')).toHaveLength(1);
    }
    expect(await walkFiles(cwd)).toEqual([]);
  });
});

describe('unknown TAKEOUT_* variables', () => {
  it('are warned about once each with a did-you-mean, on any command, and known ones are not', async () => {
    const out = path.join(await tempFolder('env'), 'out');
    const env = { TAKEOUT_DRYRUN: 'true', TAKEOUT_XYZZY_PLUGH: '1', TAKEOUT_KEBOOLA_S3_ENDPOINT: endpoint, TAKEOUT_ALLOW_BUCKET: 'x', TAKEOUT_QUIET: 'false' };
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--dry-run', '--json'], { env });
    expectExit(result, 0);
    const warnings = jsonLines(result.stdout).filter((e) => e.type === 'warning').map((e) => e.message);
    expect(warnings).toEqual([
      'TAKEOUT_DRYRUN is not a takeout setting and is ignored (did you mean TAKEOUT_DRY_RUN?)',
      'TAKEOUT_XYZZY_PLUGH is not a takeout setting and is ignored',
    ]);
    const help = await runCli(['verify', '--help'], { env: { TAKEOUT_REGOIN: 'eu-west-1' } });
    expectExit(help, 0);
    expect(help.stderr).toContain('TAKEOUT_REGOIN is not a takeout setting and is ignored (did you mean TAKEOUT_REGION?)');
  });
});

describe('--dry-run is a preflight', () => {
  const dry = (dest: string, ...extra: string[]): Promise<CliResult> => runCli(['run', '--source', 'demo', '--dest', dest, '--dry-run', ...S3_ARGS, ...extra]);

  it('clean: exits 0, says what it checked, writes nothing (S3 and a folder that does not exist yet)', async () => {
    const prefix = uniquePrefix('dry-clean');
    const result = await dry(`s3://${TEST_BUCKET}/${prefix}`, '--json');
    expectExit(result, 0);
    const plan = jsonLines(result.stdout).find((e) => e.type === 'run:plan')?.plan as { checks: string[] };
    const at = `s3://${TEST_BUCKET}/${prefix} at ${endpoint}`;
    expect(plan.checks).toEqual([`${at} can be reached with these credentials`, `${at} is empty`, `no run or export holds ${at}`]);
    expect(await s3Keys(prefix)).toEqual([]);

    const root = await tempFolder('dry-local');
    const local = await dry(path.join(root, 'a', 'b'));
    expectExit(local, 0);
    expect(local.stderr).toContain('checked: source and destination folders do not overlap');
    expect(local.stderr).toMatch(/checked: .* free for an estimated .* before compression/);
    expect(local.stderr).toContain('nothing was written');
    expect(await walkFiles(root)).toEqual([]);
  });

  it('a missing bucket exits 5, as the real run does', async () => {
    const result = await dry('s3://takeout-no-such-bucket/x/');
    expectExit(result, 5);
    expect(result.stderr).toContain('takeout-no-such-bucket does not exist');
  });

  it('bad credentials (403 from the store, through the fault proxy) exit 4', async () => {
    proxy.rules.splice(0, proxy.rules.length, { match: () => true, action: { kind: 'status', status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' } });
    try {
      const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/x/`, '--dry-run', '--endpoint-url', proxy.url, '--access-key-id', 'AKIAWRONG', '--secret-access-key', 'wrong', '--region', 'us-east-1']);
      expectExit(result, 4);
      expect(result.stderr).toContain('InvalidAccessKeyId');
    } finally {
      proxy.rules.splice(0);
    }
  });

  it('an existing takeout exits 9 (with --overwrite: 0, and it is said what would be replaced); nothing changes', async () => {
    const prefix = uniquePrefix('dry-exists');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...SMALL, '-q', ...S3_ARGS]), 0);
    const before = await s3Keys(prefix);
    const refused = await dry(`s3://${TEST_BUCKET}/${prefix}`);
    expectExit(refused, 9);
    expect(errorLines(refused.stderr)[0]).toContain('already holds a takeout');
    const overwrite = await dry(`s3://${TEST_BUCKET}/${prefix}`, '--overwrite');
    expectExit(overwrite, 0);
    expect(overwrite.stderr).toContain('holds a takeout that --overwrite replaces');
    expect(await s3Keys(prefix)).toEqual(before);
  });

  it('other content is said, as the real run says it, and does not stop either', async () => {
    const prefix = uniquePrefix('dry-other');
    await client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}notes/readme.txt`, Body: 'not a takeout' }));
    const result = await dry(`s3://${TEST_BUCKET}/${prefix}`);
    expectExit(result, 0);
    const warning = `takeout: warning: s3://${TEST_BUCKET}/${prefix} at ${endpoint} already holds files that are not a takeout ("notes/readme.txt"): the takeout is written beside them`;
    expect(result.stderr).toContain(warning);
    expect(await s3Keys(prefix)).toEqual(['notes/readme.txt']);
    const real = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...SMALL, ...S3_ARGS]);
    expectExit(real, 0);
    expect(real.stderr).toContain(warning);
  });

  it('a destination inside the source folder, or around it, exits 2 in the dry run and in the real run, table and dataset export too', async () => {
    const root = await tempFolder('overlap');
    const project = path.join(root, 'project');
    await mkdir(path.join(project, 'in.c-main'), { recursive: true });
    await writeFile(path.join(project, 'in.c-main', 'orders.csv'), 'id,total\n1,2\n');
    for (const [dest, message] of [
      [path.join(project, 'out'), 'is inside the source folder'],
      [root, 'is inside the destination'],
      [project, 'is the source folder'],
    ] as const) {
      for (const extra of [['--dry-run'], []]) {
        const result = await runCli(['run', '--source', project, '--dest', dest, ...extra]);
        expectExit(result, 2);
        expect(result.stderr).toContain(message);
      }
    }
    for (const args of [
      ['table', 'export', 'in.c-main.orders', '--source', project, '--dest', path.join(project, 'out')],
      ['dataset', 'export', 'in.c-main.orders', '--source', project, '--dest', path.join(project, 'out')],
    ]) {
      const result = await runCli(args);
      expectExit(result, 2);
      expect(result.stderr, args.join(' ')).toContain('is inside the source folder');
    }
    expect(await walkFiles(root)).toEqual(['project/in.c-main/orders.csv']);
  });

  it('an estimate larger than the free space of a local disk exits 1 (what a full disk gives), writing nothing', async () => {
    const root = await tempFolder('space');
    const project = path.join(root, 'project');
    await mkdir(path.join(project, 'in.c-main'), { recursive: true });
    const table = path.join(project, 'in.c-main', 'huge.csv');
    await writeFile(table, 'id,total\n1,2\n');
    // A sparse file: a header, then holes. Its size is the estimate; it takes no room.
    const fs = await statfs(root);
    await truncate(table, fs.bavail * fs.bsize + 1024 ** 3);
    const out = path.join(root, 'out');
    const result = await runCli(['run', '--source', project, '--dest', out, '--dry-run']);
    expectExit(result, 1);
    expect(errorLines(result.stderr)[0]).toMatch(/has .* free, less than the estimated .* of data before compression/);
    expect(await walkFiles(out)).toEqual([]);
  });
});
