import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  errorLines,
  jsonLines,
  localStore,
  readTakeout,
  removeTempFolders,
  runCli,
  s3Store,
  snapshot,
  tempFolder,
  walkFiles,
  type CliResult,
  type Store,
} from './helpers/cli.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/** The `takeout run` command line: help, dry run, JSON output, selection, paths, reruns, configuration. */

const endpoint = inject('s3Endpoint');
const S3_ARGS = s3CliArgs(endpoint);
const client = rawS3Client(endpoint);
const ALL_TABLES = [
  'in.c-crm.contacts',
  'in.c-crm.empty_table',
  'in.c-crm.products',
  'in.c-main.customers',
  'in.c-main.orders',
  'out.c-reports.daily_revenue',
  'sys.c-keboola.component_runs',
];
const MANIFEST = 'takeout-manifest.json';

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

function expectExit(result: CliResult, code: number): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr}`).toBe(code);
}

async function dest(name: string): Promise<string> {
  return path.join(await tempFolder(name), 'out');
}

describe('--help', () => {
  it('takeout run --help exits 0 and lists the options', async () => {
    const result = await runCli(['run', '--help']);
    expectExit(result, 0);
    for (const flag of [
      '--source', '--dest', '--path', '--structure-only', '--include', '--exclude', '--dry-run', '--overwrite', '--slice-size',
      '--slice-rows', '--compression-level', '--quote-all', '--concurrency', '--fail-fast', '--region', '--endpoint-url',
      '--access-key-id', '--secret-access-key', '--config', '--json', '--quiet', '--no-progress',
    ]) {
      expect(result.stdout, flag).toContain(flag);
    }
    expect(result.stdout).toContain('Examples:');
  });

  it('takeout --help exits 0, names the run command and the exit codes', async () => {
    const result = await runCli(['--help']);
    expectExit(result, 0);
    expect(result.stdout).toMatch(/^\s*run \[options\]/m);
    expect(result.stdout).toContain('130 interrupted');
  });
});

describe('--dry-run', () => {
  it('prints the plan with the memory bound and writes nothing', async () => {
    const out = await dest('dry');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--dry-run']);
    expectExit(result, 0);
    expect(await walkFiles(path.dirname(out))).toEqual([]);
    expect(result.stdout).toBe('');
    for (const id of ALL_TABLES) expect(result.stderr).toContain(id);
    expect(result.stderr).toMatch(/memory bound: \d+(\.\d+)? (B|KiB|MiB|GiB) = /);
    expect(result.stderr).toContain('in/c-main/orders.part_<N>.csv.gz');
    expect(result.stderr).toContain('nothing was written');
  });

  it('with --json prints one run:plan event and nothing else on stdout', async () => {
    const out = await dest('dry-json');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--dry-run', '--json', '--include', 'in.c-main']);
    expectExit(result, 0);
    const events = jsonLines(result.stdout);
    expect(events).toHaveLength(1);
    const event = events[0] as { type: string; plan: { tables: { id: string }[]; skipped: { id: string }[]; memoryBoundBytes: number; memoryBound: string; configurations: number } };
    expect(event.type).toBe('run:plan');
    expect(event.plan.tables.map((t) => t.id)).toEqual(['in.c-main.customers', 'in.c-main.orders']);
    expect(event.plan.skipped).toHaveLength(5);
    expect(event.plan.memoryBoundBytes).toBeGreaterThan(0);
    expect(event.plan.memoryBound).toMatch(/tables ×/);
    expect(event.plan.configurations).toBe(5);
    expect(await walkFiles(path.dirname(out))).toEqual([]);
  });

  it('against S3 writes nothing', async () => {
    const prefix = uniquePrefix('dry');
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--dry-run', ...S3_ARGS]);
    expectExit(result, 0);
    expect(result.stderr).toContain('memory bound:');
    expect(await s3Store(client, TEST_BUCKET, prefix).list()).toEqual([]);
  });
});

describe('--json', () => {
  it('gives one JSON object per stdout line, run:done with the summary last, nothing human on stdout', async () => {
    const out = await dest('json');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--json', '--slice-size', '64KB']);
    expectExit(result, 0);
    expect(result.stdout.endsWith('\n')).toBe(true);
    const events = jsonLines(result.stdout);
    for (const event of events) expect(typeof event.type, JSON.stringify(event)).toBe('string');
    expect(events[0]!.type).toBe('run:start');
    const last = events.at(-1) as { type: string; summary: Record<string, unknown> };
    expect(last.type).toBe('run:done');
    const manifest = (await readTakeout(out)).manifest;
    expect(last.summary).toMatchObject({
      status: 'complete',
      tables: 7,
      tablesFailed: 0,
      rows: manifest.totals.rows,
      bytes: manifest.totals.bytes,
      slices: manifest.totals.slices,
      manifest: path.join(out, MANIFEST),
      failures: [],
    });
    const types = new Set(events.map((e) => e.type));
    for (const type of ['table:start', 'table:slice', 'table:done', 'file:written']) expect(types, type).toContain(type);
    expect(events.filter((e) => e.type === 'table:done')).toHaveLength(7);
    expect(events.filter((e) => e.type === 'table:slice')).toHaveLength(manifest.totals.slices);
  });
});

describe('--structure-only', () => {
  it('writes metadata and configurations, and table data only for the sys stage (legacy Keboola rule)', async () => {
    const out = await dest('structure');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--structure-only']);
    expectExit(result, 0);
    const takeout = await readTakeout(out);
    expect(takeout.manifest.status).toBe('complete');
    expect(takeout.tables.map((t) => t.id).sort()).toEqual(ALL_TABLES);
    expect(takeout.buckets).toHaveLength(4);
    expect(takeout.keys.filter((k) => k.startsWith('configurations/'))).toHaveLength(5);
    const data = takeout.keys.filter((k) => k.endsWith('.csv.gz'));
    expect(data).toEqual(['sys/c-keboola/component_runs.part_0.csv.gz']);
    expect(takeout.keys.filter((k) => k.startsWith('manifests/'))).toEqual(['manifests/sys.c-keboola.component_runs.manifest']);
    for (const table of takeout.manifest.tables) {
      expect(table.status, table.id).toBe(table.id.startsWith('sys.') ? 'complete' : 'structure-only');
    }
    expect(takeout.manifest.tables.find((t) => t.id.startsWith('sys.'))!.rows).toBe(40);
  });
});

describe('--include / --exclude', () => {
  it('select by bucket id and table id globs; an exclude wins', async () => {
    const out = await dest('select');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--include', 'in.c-main', '--include', '*.c-crm.p*', '--include', 'sys.*', '--exclude', '*.orders']);
    expectExit(result, 0);
    const takeout = await readTakeout(out);
    const ids = ['in.c-crm.products', 'in.c-main.customers', 'sys.c-keboola.component_runs'];
    expect(takeout.manifest.tables.map((t) => t.id)).toEqual(ids);
    expect(takeout.tables.map((t) => t.id).sort()).toEqual(ids);
    expect(takeout.buckets.map((b) => b.id).sort()).toEqual(['in.c-crm', 'in.c-main', 'sys.c-keboola']);
    expect(takeout.keys.filter((k) => k.endsWith('.csv.gz')).sort()).toEqual([
      'in/c-crm/products.part_0.csv.gz',
      'in/c-main/customers.part_0.csv.gz',
      'sys/c-keboola/component_runs.part_0.csv.gz',
    ]);
    expect(takeout.manifest.options).toMatchObject({ include: ['in.c-main', '*.c-crm.p*', 'sys.*'], exclude: ['*.orders'] });
  });

  it('--exclude alone leaves out a whole bucket', async () => {
    const out = await dest('exclude');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', out, '--exclude', 'in.c-main', '--exclude', 'in.c-crm']), 0);
    const takeout = await readTakeout(out);
    expect(takeout.manifest.tables.map((t) => t.id)).toEqual(['out.c-reports.daily_revenue', 'sys.c-keboola.component_runs']);
  });

  it('an --include that matches nothing exits 2, naming the pattern, and writes nothing', async () => {
    const out = await dest('include-none');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--include', 'in.c-main', '--include', 'in.c-nothing.*']);
    expectExit(result, 2);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("'in.c-nothing.*'");
    expect(await walkFiles(path.dirname(out))).toEqual([]);
  });
});

describe('--path normalisation', () => {
  const CASES: [string, string][] = [
    ['', ''],
    ['/', ''],
    ['a/b/', 'a/b/'],
    ['/a//b', 'a/b/'],
  ];

  async function expectUnder(store: Store, expected: string): Promise<void> {
    const keys = await store.list();
    expect(keys).toContain(`${expected}${MANIFEST}`);
    expect(keys).toContain(`${expected}buckets.json`);
    expect(keys).toContain(`${expected}in/c-crm/products.part_0.csv.gz`);
    for (const key of keys) expect(key.startsWith(expected), key).toBe(true);
    for (const key of keys) expect(key, key).not.toMatch(/\/\/|^\//);
  }

  it.each(CASES)('local: --path %j writes under %j', async (given, expected) => {
    const out = await dest('path');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', out, '--path', given, '--include', 'in.c-crm.products']), 0);
    await expectUnder(localStore(out), expected);
  });

  it.each(CASES)('S3: --path %j writes under %j', async (given, expected) => {
    const prefix = uniquePrefix('path');
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--path', given, '--include', 'in.c-crm.products', ...S3_ARGS]);
    expectExit(result, 0);
    const store = s3Store(client, TEST_BUCKET, prefix);
    await expectUnder(store, expected);
    const manifest = JSON.parse((await store.get(`${expected}manifests/in.c-crm.products.manifest`)).toString()) as { entries: { url: string }[] };
    expect(manifest.entries.map((e) => e.url)).toEqual([`s3://${TEST_BUCKET}/${prefix}${expected}in/c-crm/products.part_0.csv.gz`]);
  });
});

describe('a second run to the same destination', () => {
  it('local: exits 9 (EXISTS) and changes nothing', async () => {
    const out = await dest('exists');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', out, '--include', 'in.c-crm']), 0);
    const before = await snapshot(out);
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--slice-size', '64KB']);
    expectExit(result, 9);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('already holds a takeout');
    expect(result.stderr).toContain('--overwrite');
    expect(await snapshot(out)).toEqual(before);
  });

  it('S3: exits 9 (EXISTS) and changes nothing', async () => {
    const prefix = uniquePrefix('exists');
    const target = ['--dest', `s3://${TEST_BUCKET}/${prefix}`, ...S3_ARGS];
    expectExit(await runCli(['run', '--source', 'demo', ...target, '--include', 'in.c-crm']), 0);
    const store = s3Store(client, TEST_BUCKET, prefix);
    const keys = await store.list();
    const bodies = await Promise.all(keys.map((k) => store.get(k)));
    const result = await runCli(['run', '--source', 'demo', ...target]);
    expectExit(result, 9);
    expect(await store.list()).toEqual(keys);
    const after = await Promise.all(keys.map((k) => store.get(k)));
    for (const [i, body] of after.entries()) expect(body.equals(bodies[i]!), keys[i]).toBe(true);
  });
});

describe('--overwrite', () => {
  async function expectOverwriteRemovesStale(store: Store, run: (args: string[]) => Promise<CliResult>): Promise<void> {
    expectExit(await run(['--slice-size', '64KB']), 0);
    const first = await store.list();
    const firstParts = first.filter((k) => k.startsWith('in/c-main/orders.part_'));
    expect(firstParts.length).toBeGreaterThanOrEqual(4);

    const result = await run(['--overwrite', '--include', 'in.c-main']);
    expectExit(result, 0);
    const takeout = await readTakeout(store);
    const keys = takeout.keys;
    expect(keys.filter((k) => k.startsWith('in/c-main/orders.part_'))).toEqual(['in/c-main/orders.part_0.csv.gz']);
    // The new manifest lists exactly the files present: no stale parts, slice manifests or configurations of other tables.
    const listed = new Set([MANIFEST, ...takeout.manifest.files.map((f) => f.key), ...takeout.manifest.tables.flatMap((t) => t.slices.map((s) => s.key))]);
    expect(keys.filter((k) => !listed.has(k))).toEqual([]);
    expect([...listed].filter((k) => !keys.includes(k))).toEqual([]);
    expect(keys.some((k) => k.startsWith('in/c-crm/'))).toBe(false);
    expect(takeout.manifest.status).toBe('complete');
    expect(takeout.manifest.tables.map((t) => t.id)).toEqual(['in.c-main.customers', 'in.c-main.orders']);
    expect(result.stderr).toMatch(/removed \d+ files? left by an earlier takeout/);
  }

  it('local: removes the stale part_N files of an earlier run with more slices', async () => {
    const out = await dest('overwrite');
    await expectOverwriteRemovesStale(localStore(out), (args) => runCli(['run', '--source', 'demo', '--dest', out, ...args]));
  });

  it('S3: removes the stale part_N objects of an earlier run with more slices', async () => {
    const prefix = uniquePrefix('overwrite');
    await expectOverwriteRemovesStale(s3Store(client, TEST_BUCKET, prefix), (args) =>
      runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...S3_ARGS, ...args]),
    );
  });
});

describe('configuration precedence: flags > TAKEOUT_* environment > --config YAML > defaults', () => {
  const SMALL = ['--include', 'in.c-crm.products'];

  async function options(args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
    const out = await dest('config');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, ...SMALL, ...args], { env });
    expectExit(result, 0);
    return (await readTakeout(out)).manifest.options;
  }

  async function yaml(text: string): Promise<string> {
    const file = path.join(await tempFolder('yaml'), 'takeout.yaml');
    await writeFile(file, text);
    return file;
  }

  it('defaults apply when nothing is given', async () => {
    expect(await options([])).toMatchObject({ sliceSize: 256 * 1024 * 1024, compressionLevel: 6, quoteAll: false, lineEnding: 'lf' });
  });

  it('the YAML file beats the defaults (kebab-case and camelCase keys)', async () => {
    const file = await yaml('slice-size: 64KB\ncompressionLevel: 1\nquote-all: true\n');
    expect(await options(['--config', file])).toMatchObject({ sliceSize: 64 * 1024, compressionLevel: 1, quoteAll: true });
  });

  it('TAKEOUT_* variables beat the YAML file', async () => {
    const file = await yaml('slice-size: 64KB\ncompression-level: 1\nquote-all: true\n');
    expect(await options(['--config', file], { TAKEOUT_SLICE_SIZE: '128KB', TAKEOUT_COMPRESSION_LEVEL: '3', TAKEOUT_QUOTE_ALL: 'false' })).toMatchObject({
      sliceSize: 128 * 1024,
      compressionLevel: 3,
      quoteAll: false,
    });
  });

  it('flags beat TAKEOUT_* variables and the YAML file', async () => {
    const file = await yaml('slice-size: 64KB\ncompression-level: 1\n');
    expect(await options(['--config', file, '--slice-size', '32KB', '--compression-level', '9'], { TAKEOUT_SLICE_SIZE: '128KB', TAKEOUT_COMPRESSION_LEVEL: '3' })).toMatchObject({
      sliceSize: 32 * 1024,
      compressionLevel: 9,
    });
  });

  it('TAKEOUT_CONFIG names the YAML file', async () => {
    const file = await yaml('compression-level: 2\n');
    expect(await options([], { TAKEOUT_CONFIG: file })).toMatchObject({ compressionLevel: 2 });
  });

  it('a slice size from the YAML file really cuts the slices', async () => {
    const file = await yaml('slice-size: 64KB\n');
    const out = await dest('config-slices');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', out, '--include', 'in.c-main.orders', '--config', file]), 0);
    const orders = (await readTakeout(out)).manifest.tables[0]!;
    expect(orders.slices.length).toBeGreaterThanOrEqual(4);
  });

  it('TAKEOUT_DRY_RUN=false is false (even over dry-run: true in YAML); TAKEOUT_DRY_RUN=true is true', async () => {
    const file = await yaml('dry-run: true\n');
    const real = await dest('dry-false');
    expectExit(await runCli(['run', '--source', 'demo', '--dest', real, ...SMALL, '--config', file], { env: { TAKEOUT_DRY_RUN: 'false' } }), 0);
    expect(await walkFiles(real)).toContain(MANIFEST);

    const dry = await dest('dry-true');
    const result = await runCli(['run', '--source', 'demo', '--dest', dry, ...SMALL], { env: { TAKEOUT_DRY_RUN: 'true' } });
    expectExit(result, 0);
    expect(result.stderr).toContain('nothing was written');
    expect(await walkFiles(path.dirname(dry))).toEqual([]);
  });

  it('an unknown key in the YAML file exits 2 naming it, and writes nothing', async () => {
    const file = await yaml('slice-size: 64KB\nslcie-rows: 10\n');
    const out = await dest('config-unknown');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--config', file]);
    expectExit(result, 2);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("unknown option 'slcie-rows'");
    expect(await walkFiles(path.dirname(out))).toEqual([]);
  });

  it('a TAKEOUT_* boolean that is not a boolean exits 2 naming the variable', async () => {
    const out = await dest('env-bad');
    const result = await runCli(['run', '--source', 'demo', '--dest', out], { env: { TAKEOUT_DRY_RUN: 'maybe' } });
    expectExit(result, 2);
    expect(errorLines(result.stderr).join('\n')).toContain('TAKEOUT_DRY_RUN');
  });
});

describe('CI=true output', () => {
  it('has no carriage returns: plain lines only, per table start and finish and a summary', async () => {
    const out = await dest('ci');
    const result = await runCli(['run', '--source', 'demo', '--dest', out, '--slice-size', '64KB']);
    expectExit(result, 0);
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toContain('\r');
    expect(result.stderr).not.toContain('\u001b[');
    for (const id of ALL_TABLES) {
      expect(result.stderr).toMatch(new RegExp(`^start ${id.replace(/\./g, '\\.')}`, 'm'));
      expect(result.stderr).toMatch(new RegExp(`^done  ${id.replace(/\./g, '\\.')}: `, 'm'));
    }
    expect(result.stderr).toMatch(/^takeout complete: 7 tables, 25,515 rows/m);
    expect(result.stderr).toContain(`manifest: ${path.join(out, MANIFEST)}`);
  });
});
