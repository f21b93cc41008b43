import { readFileSync } from 'node:fs';
import { rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ProgressTracker } from '../src/reporting/progress.js';
import { exportIdOf, removeTempFolders, runCli, startCli, tempFolder, type CliResult } from './helpers/cli.js';
import { demoWithBigTable, expectOk } from './helpers/projects.js';
import { OTHER_BUCKET, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { startStorageApi, type StorageApiServer } from './keboola/server.js';

/**
 * Every line `--json` prints, for every command, validated against docs/events.schema.json (the documented
 * interface); and progress that measures the source against the source's size, for each kind of source.
 */

const SCHEMA_FILE = fileURLToPath(new URL('../docs/events.schema.json', import.meta.url));
const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { properties: { type: { enum: string[] } } };
const validate = new Ajv({ allErrors: true }).compile(schema);
const s3Endpoint = inject('s3Endpoint');
const pgUrl = inject('pgUrl');
const S3_ARGS = s3CliArgs(s3Endpoint);
const KBC_FIXTURE = fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url));
const KBC_TOKEN = 'kbc-test-token-events';
/** Progress events every few ms, so runs of a fraction of a second show them. */
const FAST_PROGRESS = { TAKEOUT_PROGRESS_INTERVAL_MS: '2' };

type Event = Record<string, unknown> & { type: string };
/** Every event type seen across the tests: each one the schema names must be seen at least once. */
const seen = new Set<string>();

/** Every stdout line: a JSON object valid against the schema (the failure names the line and what is wrong). */
function events(result: CliResult): Event[] {
  return result.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const value = JSON.parse(line) as Event;
      const ok = validate(value);
      expect(ok, `${line}\n${JSON.stringify(validate.errors, null, 2)}`).toBe(true);
      seen.add(value.type);
      return value;
    });
}

async function takeout(args: string[], env: Record<string, string> = {}): Promise<{ result: CliResult; events: Event[] }> {
  const result = await runCli([...args, '--json'], { env: { ...FAST_PROGRESS, ...env } });
  return { result, events: events(result) };
}

const ofType = (list: Event[], type: string): Event[] => list.filter((e) => e.type === type);

afterAll(removeTempFolders);

describe('--json: every line of every command matches docs/events.schema.json', () => {
  let project: string;
  let root: string;
  let api: StorageApiServer;

  beforeAll(async () => {
    root = await tempFolder('events');
    project = await demoWithBigTable('events-project', 2);
    // Tables in the shapes the personalize and clevertap layouts take.
    await writeFile(path.join(project, 'in.c-main', 'interactions.csv'), 'USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\nu1,i1,1700000000,click\nu2,i2,1700000100,view\n');
    await writeFile(path.join(project, 'in.c-main', 'app_events.csv'), 'identity,eventName,ts,os\nu1,Charged,2024-01-01T00:00:00Z,ios\nu2,App Launched,2024-01-02T00:00:00Z,android\n');
    api = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, token: KBC_TOKEN, fixtureDir: KBC_FIXTURE, faults: { failingTables: ['in.c-main.customers'] } });
  });
  afterAll(async () => api.stop());

  it('run, its dry run, files download, files merge, verify, copy, restore and cleanup', async () => {
    const dest = path.join(root, 'run');
    const run = await takeout(['run', '--source', project, '--dest', dest]);
    expectOk(run.result);
    expect(run.events[0]!.type).toBe('run:start');
    expect(run.events.at(-1)!.type).toBe('run:done');
    expect(ofType(run.events, 'progress').length).toBeGreaterThan(0);
    for (const type of ['table:start', 'table:progress', 'table:slice', 'table:done', 'file:written']) expect(ofType(run.events, type).length, type).toBeGreaterThan(0);
    // A gzipped CSV file: its compressed bytes read, against its size on disk; it inflates to more.
    const gz = (await stat(path.join(project, 'out.c-reports', 'daily_revenue.csv.gz'))).size;
    const revenue = (e: Event): boolean => e.table === 'out.c-reports.daily_revenue';
    expect(run.events.find((e) => e.type === 'table:start' && revenue(e))).toMatchObject({ estimatedBytes: gz, measure: 'bytes' });
    expect(ofType(run.events, 'table:progress').filter(revenue).at(-1)).toMatchObject({ readBytes: gz });
    expect(run.events.find((e) => e.type === 'table:done' && revenue(e))!.rawBytes as number).toBeGreaterThan(gz);

    expect((await takeout(['run', '--source', project, '--dest', path.join(root, 'plan'), '--dry-run'])).result.code).toBe(0);

    const download = await takeout(['files', 'download', path.join(dest, 'manifests', 'in.c-big.events.manifest'), '-o', path.join(root, 'events.csv')]);
    expectOk(download.result);
    expect(ofType(download.events, 'merge:start')[0]).toMatchObject({ totalBytes: expect.any(Number) as number });
    expect(download.events.at(-1)!.type).toBe('merge:done');

    const merge = await takeout(['files', 'merge', path.join(dest, 'in', 'c-main', 'orders.part_0.csv.gz'), '-o', path.join(root, 'orders.csv')]);
    expectOk(merge.result);
    expect(merge.events.at(-1)!.type).toBe('merge:done');

    const verify = await takeout(['verify', dest]);
    expectOk(verify.result);
    expect(verify.events.map((e) => e.type)).toEqual(['verify']);

    const copy = await takeout(['copy', dest, path.join(root, 'copied')]);
    expectOk(copy.result);
    expect(copy.events[0]!.type).toBe('copy:start');
    expect(ofType(copy.events, 'copy:progress').at(-1)).toMatchObject({ objectsDone: copy.events[0]!.objects as number });
    expect(copy.events.at(-1)!.type).toBe('copy:done');

    const restorePlan = await takeout(['restore', dest, '--to', `sqlite:${path.join(root, 'restored.sqlite')}`, '--dry-run']);
    expectOk(restorePlan.result);
    expect(restorePlan.events.map((e) => e.type)).toEqual(['restore:start', 'restore:plan', 'restore:done']);
    const restored = await takeout(['restore', dest, '--to', `sqlite:${path.join(root, 'restored.sqlite')}`]);
    expectOk(restored.result);
    expect(restored.events[0]!.type).toBe('restore:start');
    for (const type of ['table:start', 'table:progress', 'table:done']) expect(ofType(restored.events, type).length, type).toBeGreaterThan(0);
    expect(restored.events.at(-1)!.type).toBe('restore:done');

    await writeFile(path.join(dest, '.orders.csv.abc123.takeout-tmp'), 'left by a killed run');
    const cleanup = await takeout(['cleanup', dest, '--older-than', '0']);
    expectOk(cleanup.result);
    expect(cleanup.events.map((e) => e.type)).toEqual(['cleanup:item', 'cleanup:summary']);
  });

  it('table export to a file and to a destination', async () => {
    const file = await takeout(['table', 'export', 'in.c-big.events', '--source', project, '-o', path.join(root, 'table.csv')]);
    expectOk(file.result);
    expect(file.events.at(-1)).toMatchObject({ type: 'table:done', table: 'in.c-big.events' });
    const dest = await takeout(['table', 'export', 'in.c-main.orders', '--source', project, '--dest', path.join(root, 'table-dest')]);
    expectOk(dest.result);
    expect(dest.events.at(-1)!.type).toBe('run:done');
  });

  it('dataset export in each layout, to a folder and to S3, then exports list, describe and verify', async () => {
    const dest = path.join(root, 'datasets');
    const layouts: [string, string[]][] = [
      ['in.c-big.events', ['--layout', 'dynamodb']],
      ['in.c-main.orders', ['--layout', 'plain', '--export-format', 'PARQUET']],
      ['in.c-main.interactions', ['--layout', 'personalize', '--dataset-type', 'interactions', '--ingestion-mode', 'ALL']],
      ['in.c-main.app_events', ['--layout', 'clevertap', '--ts-column', 'ts']],
    ];
    for (const [table, args] of layouts) {
      const out = await takeout(['dataset', 'export', table, '--source', project, '--dest', dest, ...args, '--client-token', `token-${args[1]!}`]);
      expectOk(out.result);
      expect(out.events[0]!.type).toBe('dataset:start');
      expect(out.events.at(-1)!.type).toBe('dataset:done');
    }
    // The same client token again: a warning, and the finished export's record.
    const again = await takeout(['dataset', 'export', 'in.c-main.orders', '--source', project, '--dest', dest, '--layout', 'plain', '--export-format', 'PARQUET', '--client-token', 'token-plain']);
    expectOk(again.result);
    expect(again.events.map((e) => e.type)).toEqual(['warning', 'dataset:done']);

    const s3 = await takeout(['dataset', 'export', 'in.c-main.orders', '--source', project, '--dest', `s3://${TEST_BUCKET}/${uniquePrefix('events')}`, '--layout', 'dynamodb', ...S3_ARGS]);
    expectOk(s3.result);

    const list = await takeout(['dataset', 'exports', 'list', '--dest', dest]);
    expectOk(list.result);
    expect(list.events.map((e) => e.type)).toEqual(['dataset:exports']);
    const describeOne = await takeout(['dataset', 'exports', 'describe', exportIdOf(s3.result.stdout), '--dest', dest]);
    // Recorded at S3, not here: an error line.
    expect(describeOne.result.code).toBe(5);
    expect(describeOne.events.map((e) => e.type)).toEqual(['error']);
    const first = (list.events[0]!.ExportSummaries as { Takeout: { exportId: string } }[])[0]!.Takeout.exportId;
    const described = await takeout(['dataset', 'exports', 'describe', first, '--dest', dest]);
    expectOk(described.result);
    expect(described.events.map((e) => e.type)).toEqual(['dataset:export']);

    const verify = await takeout(['verify', dest]);
    expectOk(verify.result);
    expect(verify.events.map((e) => e.type)).toEqual(['verify']);
  });

  it('a failing run ends with one error line; a partial run with table:error and a partial summary', async () => {
    const failing = await takeout(['run', '--source', path.join(root, 'no-such-project'), '--dest', path.join(root, 'failing')]);
    expect(failing.result.code).toBe(5);
    expect(failing.events.map((e) => e.type)).toEqual(['error']);
    // Refused while the options are read, before anything else is set up: still one error line.
    const badOption = await takeout(['run', '--source', project, '--dest', path.join(root, 'failing'), '--slice-size', 'huge']);
    expect(badOption.result.code).toBe(2);
    expect(badOption.events).toEqual([expect.objectContaining({ type: 'error', code: 'USAGE', exitCode: 2 })]);

    const partial = await takeout(['run', '--source', `keboola+${api.url}`, '--dest', path.join(root, 'partial')], { KBC_STORAGE_TOKEN: KBC_TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint });
    expect(partial.result.code, partial.result.stderr).toBe(3);
    expect(ofType(partial.events, 'table:error')).toEqual([expect.objectContaining({ table: 'in.c-main.customers' })]);
    expect(ofType(partial.events, 'table:skip').length).toBeGreaterThan(0);
    expect(partial.events.at(-1)).toMatchObject({ type: 'run:done', summary: { status: 'partial' } });
  });

  // Last in this file's order: the tests above saw every type the schema lists, and no other.
  it('sees every event type the schema lists', () => {
    expect([...seen].sort()).toEqual([...schema.properties.type.enum].sort());
  });
});

describe('progress measures the source against its size, for each kind of source', () => {
  /** The last cumulative table:progress of a table and the whole-command progress events. */
  function progressOf(list: Event[], table: string): { start: Event; last: Event; overall: Event[]; done: Event } {
    const start = list.find((e) => e.type === 'table:start' && e.table === table)!;
    const last = ofType(list, 'table:progress').filter((e) => e.table === table).at(-1)!;
    const done = list.find((e) => e.type === 'table:done' && e.table === table) ?? list.find((e) => e.type === 'dataset:done')!;
    return { start, last, overall: ofType(list, 'progress'), done };
  }

  function expectSane(overall: Event[]): void {
    expect(overall.length).toBeGreaterThan(0);
    let percent = 0;
    for (const p of overall) {
      if (p.totalBytes !== undefined) expect(p.doneBytes as number).toBeLessThanOrEqual(p.totalBytes as number);
      // ETA only with a percent; the percent never goes back.
      if (p.etaMs !== undefined) expect(p.percent).toBeDefined();
      if (p.percent !== undefined) {
        expect(p.percent as number).toBeGreaterThanOrEqual(percent);
        percent = p.percent as number;
      }
    }
  }

  it('a folder: bytes read against the file size, however large the encoded output (dataset export to DynamoDB JSON)', async () => {
    const project = await demoWithBigTable('events-units', 2);
    const size = (await stat(path.join(project, 'in.c-big', 'events.csv'))).size;
    const { result, events: list } = await takeout(['dataset', 'export', 'in.c-big.events', '--source', project, '--dest', path.join(await tempFolder('events-units'), 'out'), '--layout', 'dynamodb']);
    expectOk(result);
    const { start, last, overall } = progressOf(list, 'in.c-big.events');
    expect(start).toMatchObject({ estimatedBytes: size, measure: 'bytes' });
    expect(start.estimatedRows).toBeUndefined();
    expect(last.readBytes).toBe(size);
    // The encoded output is larger than the source: it is not what the progress measures.
    expect(last.rawBytes as number).toBeGreaterThan(size);
    expectSane(overall);
    for (const p of overall) expect(p.totalBytes).toBe(size);
  });

  it('the last table:progress before the end carries the final counts, however the events were thinned', async () => {
    const project = await demoWithBigTable('events-last', 1);
    const size = (await stat(path.join(project, 'in.c-big', 'events.csv'))).size;
    // The default interval (1 s): most progress is held back, not the last.
    const result = await runCli(['dataset', 'export', 'in.c-big.events', '--source', project, '--dest', path.join(await tempFolder('events-last'), 'out'), '--layout', 'dynamodb', '--json']);
    expectOk(result);
    const list = events(result);
    const last = ofType(list, 'table:progress').at(-1)!;
    const job = (list.at(-1)!.job as { itemCount: number; billedSizeBytes: number });
    expect(last).toMatchObject({ readBytes: size, rows: job.itemCount, bytes: job.billedSizeBytes });
  });

  it('a resumed run counts only the tables it still has to take in its total', async () => {
    // The big table sorts last: with one table at a time, the others are done when it is stopped.
    const project = await demoWithBigTable('events-resume', 8);
    await rename(path.join(project, 'in.c-big'), path.join(project, 'sys.c-zz'));
    const out = path.join(await tempFolder('events-resume'), 'out');
    const slow = ['--compression-level', '9', '--slice-size', '1MB', '--concurrency', '1'];
    const cli = startCli(['run', '--source', project, ...slow, '--dest', out, '--json']);
    await cli.waitForStdout((stdout) => stdout.includes('"type":"table:slice","table":"sys.c-zz.events"'));
    cli.child.kill('SIGINT');
    expect((await cli.done).code).toBe(130);
    const { result, events: list } = await takeout(['run', '--source', project, ...slow, '--dest', out, '--resume']);
    expectOk(result);
    expect(ofType(list, 'table:skip').map((e) => e.reason)).toContain('taken out before the interruption');
    const started = ofType(list, 'table:start').reduce((n, e) => n + (e.estimatedBytes as number), 0);
    expect(list[0]).toMatchObject({ type: 'run:start', estimatedBytes: started });
    const overall = ofType(list, 'progress');
    expectSane(overall);
    for (const p of overall) expect(p.totalBytes).toBe(started);
  });

  it('plain mode (CI): a progress line with the source read against its size, bytes written apart', async () => {
    const project = await demoWithBigTable('events-plain', 2);
    const size = (await stat(path.join(project, 'in.c-big', 'events.csv'))).size;
    const result = await runCli(['dataset', 'export', 'in.c-big.events', '--source', project, '--dest', path.join(await tempFolder('events-plain'), 'out'), '--layout', 'dynamodb'], { env: FAST_PROGRESS });
    expectOk(result);
    const lines = result.stderr.split('\n').filter((l) => l.startsWith('progress: '));
    expect(lines.length).toBeGreaterThan(0);
    const total = `${(size / 1024 ** 2).toFixed(2)} MiB`;
    for (const line of lines) {
      expect(line).toMatch(new RegExp(`^progress: \\d+\\.\\d% .+ of ${total.replace('.', '\\.')} read, [\\d,]+ rows?, .+/s, .+ written, .+ elapsed(, ETA .+)?$`));
    }
  });

  it('plain mode: files download has progress lines (slice bytes fetched against the manifest\'s sizes, no rows); -q has none', async () => {
    const project = await demoWithBigTable('events-download', 2);
    const root = await tempFolder('events-download');
    const dest = path.join(root, 'takeout');
    expectOk(await runCli(['run', '--source', project, '--dest', dest, '--slice-size', '256KB', '-q']));
    const manifest = path.join(dest, 'manifests', 'in.c-big.events.manifest');
    const download = await runCli(['files', 'download', manifest, '-o', path.join(root, 'a.csv')], { env: FAST_PROGRESS });
    expectOk(download);
    const lines = download.stderr.split('\n').filter((l) => l.startsWith('progress: '));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/^progress: \d+\.\d% .+ of .+ read, [^,]+\/s, .+ written, .+ elapsed(, ETA .+)?$/);
    const quiet = await runCli(['files', 'download', manifest, '-o', path.join(root, 'b.csv'), '-q'], { env: FAST_PROGRESS });
    expectOk(quiet);
    expect(quiet.stderr).toBe('');
  });

  it('SQLite: rows against its exact row count', async () => {
    const file = path.join(await tempFolder('events-sqlite'), 'shop.db');
    const db = new Database(file);
    db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)');
    const insert = db.prepare('INSERT INTO orders (note) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 20_000; i++) insert.run(`note number ${i} ${'x'.repeat(40)}`);
    })();
    db.close();
    const { result, events: list } = await takeout(['run', '--source', `sqlite:${file}`, '--dest', path.join(await tempFolder('events-sqlite-out'), 'out')]);
    expectOk(result);
    const start = ofType(list, 'table:start')[0]!;
    expect(start).toMatchObject({ estimatedRows: 20_000, measure: 'rows' });
    const table = start.table as string;
    expect(progressOf(list, table).last.rows).toBe(20_000);
    expectSane(ofType(list, 'progress'));
    expect(ofType(list, 'progress').at(-1)!.percent).toBe(100);
  });

  it('PostgreSQL: rows against its analysed row count (its size on disk is not its CSV size)', async () => {
    const database = `events_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: pgUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    const url = pgUrl.replace(/\/postgres$/, `/${database}`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query("CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items SELECT i, repeat('y', 50) FROM generate_series(1, 10000) i; ANALYZE items;");
    await client.end();
    const { result, events: list } = await takeout(['dataset', 'export', 'public.items', '--source', url, '--dest', path.join(await tempFolder('events-pg'), 'out'), '--layout', 'dynamodb']);
    expectOk(result);
    const start = ofType(list, 'table:start')[0]!;
    expect(start).toMatchObject({ estimatedRows: 10_000, measure: 'rows', estimatedBytes: expect.any(Number) as number });
    expect(progressOf(list, start.table as string).last.rows).toBe(10_000);
    expectSane(ofType(list, 'progress'));
  });

  it('the Storage API: rows against rowsCount; table export -o of its slices: stored bytes fetched, no percent without listed sizes', async () => {
    const api = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, token: KBC_TOKEN, fixtureDir: KBC_FIXTURE });
    try {
      const env = { KBC_STORAGE_TOKEN: KBC_TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint };
      const { result, events: list } = await takeout(['run', '--source', `keboola+${api.url}`, '--dest', path.join(await tempFolder('events-kbc'), 'out')], env);
      expectOk(result);
      const tables = JSON.parse(readFileSync(path.join(KBC_FIXTURE, 'tables.json'), 'utf8')) as { id: string; rowsCount: number }[];
      const orders = tables.find((t) => t.id === 'in.c-main.orders')!;
      expect(list.find((e) => e.type === 'table:start' && e.table === orders.id)).toMatchObject({ estimatedRows: orders.rowsCount, measure: 'rows' });
      expect(list.find((e) => e.type === 'table:done' && e.table === orders.id)).toMatchObject({ rows: orders.rowsCount });
      expectSane(ofType(list, 'progress'));

      const file = await takeout(['table', 'export', orders.id, '--source', `keboola+${api.url}`, '-o', path.join(await tempFolder('events-kbc-o'), 'orders.csv')], env);
      expectOk(file.result);
      // The slices are merged as they are, their rows not counted: no row count to measure against. The
      // Storage API's manifest lists no slice sizes either, so there is no percent, rather than a wrong one.
      const start = ofType(file.events, 'table:start')[0]!;
      expect(start.estimatedRows).toBeUndefined();
      expect(start.estimatedBytes).toBeUndefined();
      expect(start.measure).toBeUndefined();
      expect(progressOf(file.events, orders.id).last.readBytes as number).toBeGreaterThan(0);
      for (const p of ofType(file.events, 'progress')) expect(p.percent).toBeUndefined();
    } finally {
      await api.stop();
    }
  });
});

describe('ProgressTracker', () => {
  it('weights a table measured in rows by its size, and gives no percent or ETA while a size is unknown', () => {
    let now = 0;
    const tracker = new ProgressTracker(() => now);
    tracker.observe({ type: 'table:start', table: 'a', estimatedBytes: 1000, estimatedRows: 100, measure: 'rows' });
    tracker.observe({ type: 'table:start', table: 'b', estimatedBytes: 3000, measure: 'bytes' });
    now = 1000;
    tracker.observe({ type: 'table:progress', table: 'a', readBytes: 5000, rawBytes: 9000, bytes: 10, rows: 50 });
    tracker.observe({ type: 'table:progress', table: 'b', readBytes: 1500, rawBytes: 8000, bytes: 20, rows: 7 });
    expect(tracker.snapshot()).toEqual({ type: 'progress', elapsedMs: 1000, rows: 57, doneBytes: 2000, totalBytes: 4000, writtenBytes: 30, percent: 50, bytesPerSecond: 2000, etaMs: 1000 });
    // A relation's size on disk, no row count: a size, but nothing to measure against it.
    tracker.observe({ type: 'table:start', table: 'c', estimatedBytes: 8192 });
    const unknown = tracker.snapshot();
    expect(unknown.totalBytes).toBeUndefined();
    expect(unknown.percent).toBeUndefined();
    expect(unknown.etaMs).toBeUndefined();
  });

  it('a run counts the tables it has not started yet in its total', () => {
    let now = 0;
    const tracker = new ProgressTracker(() => now);
    tracker.observe({ type: 'run:start', runId: 'r', source: 's', destination: 'd', tables: 2, dryRun: false, estimatedBytes: 2000 });
    tracker.observe({ type: 'table:start', table: 'a', estimatedBytes: 1000, measure: 'bytes' });
    now = 500;
    tracker.observe({ type: 'table:progress', table: 'a', readBytes: 1000, rawBytes: 1000, bytes: 100, rows: 10 });
    expect(tracker.snapshot()).toMatchObject({ doneBytes: 1000, totalBytes: 2000, percent: 50, etaMs: 500 });
  });

  it('a merge: slice bytes fetched against the manifest\'s sizes, no rows', () => {
    let now = 0;
    const tracker = new ProgressTracker(() => now);
    tracker.observe({ type: 'merge:start', slices: 2, output: 'x', totalBytes: 400 });
    now = 2000;
    tracker.observe({ type: 'merge:progress', slices: 2, slicesDone: 1, bytes: 100, outputBytes: 900 });
    expect(tracker.snapshot()).toEqual({ type: 'progress', elapsedMs: 2000, doneBytes: 100, totalBytes: 400, writtenBytes: 900, percent: 25, bytesPerSecond: 50, etaMs: 6000 });
  });
});

