/**
 * `takeout restore --to keboola+…` interrupted and resumed. A Keboola project has no transaction around a
 * restore, so the restore marks the project (one item of the default branch's metadata) from its first change
 * to its last: a restore killed with SIGKILL mid-way and resumed with --resume ends with the project an
 * uninterrupted restore makes, and the mark gone; a fresh restore into a project left half-made is refused,
 * as is a --resume of another takeout; what the interrupted restore left partial (a typed table defined but
 * not filled, a configuration without all its rows) is made whole.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, removeTempFolders, runCli, startCli, tempFolder } from './helpers/cli.js';
import { call, configShape, env, expectCode, FIXTURE, json, list, rowsOf, s3Endpoint, tableShape, TOKEN_A, TOKEN_B, type Json } from './helpers/keboola-restore.js';
import { OTHER_BUCKET } from './helpers/s3.js';
import { startStorageApi, type StorageApiServer } from './keboola/server.js';

const MARKER = 'takeout.restore.runId';
const common = { s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 } };

let a: StorageApiServer;
let takeoutA: string;
/** A takeout of a project the uninterrupted restore made: what every resumed restore must end equal to. */
let reference: string;
const servers: StorageApiServer[] = [];

async function emptyProject(): Promise<StorageApiServer> {
  const server = await startStorageApi({ ...common, token: TOKEN_B, emptyProject: true });
  servers.push(server);
  return server;
}

async function takeOut(server: StorageApiServer, name: string): Promise<string> {
  const dir = join(await tempFolder('kbresume'), name);
  expectCode(await runCli(['run', '--source', `keboola+${server.url}`, '--dest', dir, '--no-progress'], { env: env(TOKEN_B) }), 0);
  return dir;
}

/** Two takeouts of restored projects hold the same buckets, tables, rows, configurations and branch metadata. */
async function expectSameProject(dir: string, expected: string): Promise<void> {
  const shapes = async (d: string) => ((await json(d, 'tables.json')) as unknown as Json[]).map(tableShape).sort((x, y) => String(x.id).localeCompare(String(y.id)));
  expect(await shapes(dir)).toEqual(await shapes(expected));
  const buckets = async (d: string) => ((await json(d, 'buckets.json')) as unknown as Json[]).map((b) => [b.id, b.description, b.metadata?.map((m: Json) => [m.key, m.value])]).sort();
  expect(await buckets(dir)).toEqual(await buckets(expected));
  for (const t of (await json(expected, 'takeout-manifest.json')).tables as Json[]) expect(await rowsOf(dir, String(t.id)), String(t.id)).toEqual(await rowsOf(expected, String(t.id)));
  const configs = async (d: string) => ((await json(d, 'configurations.json')) as unknown as Json[]).flatMap((c) => (c.configurations as Json[]).map((x) => `${String(c.id)}/${String(x.id)}`)).sort();
  expect(await configs(dir)).toEqual(await configs(expected));
  for (const id of await configs(expected)) expect(configShape(await json(dir, `configurations/${id}.json`)), id).toEqual(configShape(await json(expected, `configurations/${id}.json`)));
  const branch = async (d: string) => ((await json(d, 'defaultBranchMetadata.json')) as unknown as Json[]).map((m) => [m.key, m.value]).sort();
  expect(await branch(dir)).toEqual(await branch(expected));
  expect((await branch(dir)).some(([key]) => key === MARKER)).toBe(false);
}

beforeAll(async () => {
  a = await startStorageApi({ ...common, token: TOKEN_A });
  servers.push(a);
  takeoutA = join(await tempFolder('kbresume'), 'a');
  expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', takeoutA, '--no-progress'], { env: env(TOKEN_A) }), 0);
  const whole = await emptyProject();
  expectCode(await runCli(['restore', takeoutA, '--to', `keboola+${whole.url}`, '-q'], { env: env(TOKEN_B, whole) }), 0);
  reference = await takeOut(whole, 'reference');
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await removeTempFolders();
});

describe('takeout restore into a Keboola project, interrupted', () => {
  it('kill -9 after the first table, then --resume: ends as an uninterrupted restore, and the mark is gone', async () => {
    const b = await emptyProject();
    const cli = startCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--json'], { env: env(TOKEN_B, b) });
    await cli.waitForStdout((out) => out.includes('"type":"table:done","table":"in.c-main.customers"'));
    cli.child.kill('SIGKILL');
    expect((await cli.done).code).toBe(128 + 9);
    expect((await list(b, TOKEN_B, 'branch/default/metadata')).map((m) => m.key)).toContain(MARKER);

    const fresh = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`], { env: env(TOKEN_B, b) });
    expectCode(fresh, 9);
    expect(fresh.stderr).toMatch(/holds an interrupted restore of takeout run .*\n.*--resume/);

    const resumed = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--resume', '--json'], { env: env(TOKEN_B, b) });
    expectCode(resumed, 0);
    const events = jsonLines(resumed.stdout);
    expect(events.some((e) => e.type === 'table:skip' && e.table === 'in.c-main.customers')).toBe(true);
    await expectSameProject(await takeOut(b, 'resumed'), reference);
    // Whole now: the mark is gone, and a restore of it again is refused as any restore into a non-empty project.
    expectCode(await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--resume'], { env: env(TOKEN_B, b) }), 9);
  }, 120_000);

  it('--resume replaces a typed table defined but not filled and adds the rows a configuration lacks', async () => {
    const b = await emptyProject();
    expectCode(await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '-q'], { env: env(TOKEN_B, b) }), 0);
    const manifest = await json(takeoutA, 'takeout-manifest.json');
    // As an interrupted restore leaves it: marked, orders defined (typed) but not filled, a configuration's last row not made.
    // Triggers, subscriptions and permanent files all made: the mark counts them, so --resume makes none twice.
    const extras = (await Promise.all(['triggers.json', 'notifications.json', 'permanentFiles.json'].map(async (f) => ((await json(takeoutA, f)) as unknown as Json[]).length))).reduce((x, y) => x + y, 0);
    const subscriptions = (await list(b, TOKEN_B, '../../notification/project-subscriptions')).length;
    const files = (await list(b, TOKEN_B, 'files')).filter((f) => f.maxAgeDays === null).length;
    expect(subscriptions).toBeGreaterThan(0);
    await call(b, TOKEN_B, 'branch/default/metadata', { metadata: [{ key: MARKER, value: manifest.runId }, { key: 'takeout.restore.extrasDone', value: String(extras) }] });
    const dropped = await fetch(`${b.url}/v2/storage/tables/in.c-main.orders`, { method: 'DELETE', headers: { 'X-StorageApi-Token': TOKEN_B } });
    expect(dropped.status).toBe(204);
    const orders = ((await json(takeoutA, 'tables.json')) as unknown as Json[]).find((t) => t.id === 'in.c-main.orders')!;
    const job = await call(b, TOKEN_B, 'buckets/in.c-main/tables-definition', {
      name: 'orders',
      primaryKeysNames: orders.definition.primaryKeysNames,
      columns: (orders.definition.columns as Json[]).map((c) => ({ name: c.name, definition: c.definition, basetype: c.basetype })),
    });
    // The test server runs a job when it is polled.
    await expect.poll(async () => ((await list(b, TOKEN_B, `jobs/${String(job.id)}`)) as unknown as Json).status).toBe('success');
    expect((await list(b, TOKEN_B, 'tables')).find((t) => t.id === 'in.c-main.orders')?.rowsCount).toBe(0);
    const withRows = b.state.project.components.flatMap((c) => (c.configurations as Json[]).map((config) => ({ c, config }))).find(({ config }) => (config.rows as Json[]).length > 1)!;
    (withRows.config.rows as Json[]).pop();

    const resumed = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--resume', '--json'], { env: env(TOKEN_B, b) });
    expectCode(resumed, 0);
    const events = jsonLines(resumed.stdout);
    expect(events.filter((e) => e.type === 'table:done').map((e) => e.table)).toEqual(['in.c-main.orders']);
    expect((await list(b, TOKEN_B, '../../notification/project-subscriptions')).length).toBe(subscriptions);
    expect((await list(b, TOKEN_B, 'files')).filter((f) => f.maxAgeDays === null).length).toBe(files);
    await expectSameProject(await takeOut(b, 'partial'), reference);
  }, 120_000);

  it('Ctrl-C while a Storage job runs: stops at once with exit 130, says what --resume does, and --resume ends whole', async () => {
    // Jobs that take many polls: the restore is waiting on one when it is interrupted.
    const b = await startStorageApi({ ...common, token: TOKEN_B, emptyProject: true, jobPolls: { waiting: 6, processing: 6 } });
    servers.push(b);
    const cli = startCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--json'], { env: env(TOKEN_B, b) });
    await cli.waitForStdout((out) => out.includes('"type":"table:start","table":"in.c-main.customers"'));
    const interrupted = Date.now();
    cli.child.kill('SIGINT');
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(130);
    expect(Date.now() - interrupted).toBeLessThan(5_000);
    expect(result.stderr).toMatch(/rolled back; --resume goes on/);
    expect(result.stderr).not.toMatch(/temp files/);
    // Tables load five at once: each under way is rolled back, and said so.
    const errors = jsonLines(result.stdout).filter((e) => e.type === 'table:error');
    expect(errors.map((e) => e.table)).toContain('in.c-main.customers');
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['INTERRUPTED']));
    b.state.jobPollsNeeded = { waiting: 1, processing: 1 };
    expectCode(await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--resume', '-q'], { env: env(TOKEN_B, b) }), 0);
    await expectSameProject(await takeOut(b, 'interrupted'), reference);
  }, 120_000);

  it('--structure-only, then --data-only: ends as one restore; --data-only again is refused, naming the table', async () => {
    const b = await emptyProject();
    expectCode(await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--structure-only', '-q'], { env: env(TOKEN_B, b) }), 0);
    expect((await list(b, TOKEN_B, 'tables')).filter((t) => !t.isAlias).map((t) => t.rowsCount)).toEqual([0, 0, 0]);
    const filled = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--data-only', '--json'], { env: env(TOKEN_B, b) });
    expectCode(filled, 0);
    expect(jsonLines(filled.stdout).filter((e) => e.type === 'table:done').length).toBe(3);
    await expectSameProject(await takeOut(b, 'structure-then-data'), reference);
    const again = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--data-only'], { env: env(TOKEN_B, b) });
    expectCode(again, 9);
    expect(again.stderr).toMatch(/in\.c-main\.\w+ already holds \d+ rows/);
  }, 120_000);

  it('--resume of another takeout than the one interrupted is refused, and changes nothing', async () => {
    const b = await emptyProject();
    await call(b, TOKEN_B, 'branch/default/metadata', { metadata: [{ key: MARKER, value: 'run-of-another-takeout' }] });
    const refused = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--resume'], { env: env(TOKEN_B, b) });
    expectCode(refused, 9);
    expect(refused.stderr).toMatch(/interrupted restore of another takeout \(run run-of-another-takeout/);
    expect(await list(b, TOKEN_B, 'buckets')).toEqual([]);
  }, 60_000);
});
