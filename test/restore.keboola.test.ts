/**
 * `takeout restore --to keboola+http://…` through the built CLI: the fixture project A taken out with
 * `takeout run`, restored into an empty project B (the Storage API test server, `emptyProject`), then B
 * taken out again: buckets, tables (columns, primary keys, metadata), configurations (bodies, rows, state,
 * `#` ciphertexts unchanged) and every table's rows identical as multisets. A second restore is refused
 * (exit 9) with nothing changed, and the token is never printed. The same from takeouts on s3://, azure://
 * and gs://.
 */
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { removeTempFolders, runCli, tempFolder, type CliResult } from './helpers/cli.js';
import { call, configShape, env, expectCode, FIXTURE, json, MISSING_COMPONENT, rowsOf, s3Endpoint, tableShape, TOKEN_A, TOKEN_B, type Json } from './helpers/keboola-restore.js';
import { OTHER_BUCKET, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { startGcsServer, type GcsServer } from './gcs/server.js';
import { rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { startStorageApi, type Provider, type StorageApiServer } from './keboola/server.js';

afterAll(removeTempFolders);

describe.each(['aws', 'azure', 'gcp'] as const)('takeout restore into a Keboola project on a %s stack', (provider: Provider) => {
  let a: StorageApiServer;
  let b: StorageApiServer;
  let takeoutA: string;
  let takeoutB: string;
  let restored: CliResult;
  let dryRun: CliResult;
  let bucketsAfterDryRun: Json[];

  beforeAll(async () => {
    const common = { s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 } };
    a = await startStorageApi({ ...common, token: TOKEN_A });
    const components = (JSON.parse(await readFile(join(FIXTURE, 'components.json'), 'utf8')) as Json[]).map((c) => String(c.id)).filter((id) => id !== MISSING_COMPONENT);
    b = await startStorageApi({ ...common, token: TOKEN_B, emptyProject: true, provider, azureConnectionString: inject('azureConnectionString'), stackComponents: components });
    // A bucket holding only an alias: takeout run skips the alias (Storage keeps no data for it), the bucket is restored.
    await call(a, TOKEN_A, 'buckets', { name: 'reports', stage: 'out', description: 'views' });
    await call(a, TOKEN_A, 'buckets/out.c-reports/table-aliases', { sourceTable: 'in.c-main.customers', name: 'customers_view' });
    takeoutA = join(await tempFolder(`kbrestore-${provider}`), 'a');
    expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', takeoutA, '--no-progress'], { env: env(TOKEN_A) }), 0);
    dryRun = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--dry-run'], { env: env(TOKEN_B, b) });
    bucketsAfterDryRun = (await (await fetch(`${b.url}/v2/storage/buckets`, { headers: { 'X-StorageApi-Token': TOKEN_B } })).json()) as Json[];
    restored = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--debug', '--json'], { env: env(TOKEN_B, b) });
    expectCode(restored, 0);
    takeoutB = join(await tempFolder(`kbrestore-${provider}`), 'b');
    expectCode(await runCli(['run', '--source', `keboola+${b.url}`, '--dest', takeoutB, '--no-progress'], { env: env(TOKEN_B, b) }), 0);
  }, 120_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('restores the buckets, a bucket without tables too, skipping the system bucket and naming it', async () => {
    const bucketsA = (await json(takeoutA, 'buckets.json')) as unknown as Json[];
    const bucketsB = (await json(takeoutB, 'buckets.json')) as unknown as Json[];
    const shape = (x: Json): Json => ({ id: x.id, name: x.name, stage: x.stage, description: x.description, metadata: (x.metadata as Json[]).map((m) => ({ key: m.key, value: m.value, provider: m.provider })) });
    expect(bucketsB.map((x) => x.id)).toContain('out.c-reports');
    expect(bucketsB.map(shape)).toEqual(bucketsA.filter((x) => x.stage !== 'sys').map(shape));
    expect(restored.stdout + restored.stderr).toMatch(/bucket sys\.c-keboola is not restored: a system bucket/);
  });

  it('restores the tables with columns, primary keys, typed definitions, metadata and the same rows', async () => {
    const tablesA = ((await json(takeoutA, 'tables.json')) as unknown as Json[]).filter((t) => !String(t.id).startsWith('sys.') && t.isAlias !== true);
    const tablesB = (await json(takeoutB, 'tables.json')) as unknown as Json[];
    expect(tablesB.map(tableShape).sort((x, y) => String(x.id).localeCompare(String(y.id)))).toEqual(tablesA.map(tableShape).sort((x, y) => String(x.id).localeCompare(String(y.id))));
    expect(tablesB.map((t) => t.id).sort()).toEqual(['in.c-main.customers', 'in.c-main.empty', 'in.c-main.orders']);
    expect((await rowsOf(takeoutB, 'in.c-main.orders')).length).toBeGreaterThan(0);
    expect(tablesB.find((t) => t.id === 'in.c-main.customers')!.metadata).not.toEqual([]);
    expect(tablesB.find((t) => t.id === 'in.c-main.orders')).toMatchObject({ isTyped: true, definition: { primaryKeysNames: ['id'] } });
    for (const t of tablesA) expect(await rowsOf(takeoutB, String(t.id)), String(t.id)).toEqual(await rowsOf(takeoutA, String(t.id)));
  });

  it('restores configurations with rows and state, ciphertexts unchanged and listed to re-enter', async () => {
    const configsA = (await json(takeoutA, 'configurations.json')) as unknown as Json[];
    expect(configsA.map((c) => c.id)).toContain(MISSING_COMPONENT);
    expect(((await json(takeoutB, 'configurations.json')) as unknown as Json[]).map((c) => c.id)).not.toContain(MISSING_COMPONENT);
    expect(restored.stdout + restored.stderr).toMatch(new RegExp(`component ${MISSING_COMPONENT.replace(/\./g, '\\.')} does not exist`));
    for (const component of configsA.filter((c) => c.id !== MISSING_COMPONENT)) {
      for (const config of component.configurations as Json[]) {
        const key = `configurations/${String(component.id)}/${String(config.id)}.json`;
        expect(configShape(await json(takeoutB, key)), key).toEqual(configShape(await json(takeoutA, key)));
      }
    }
    expect(JSON.stringify(await json(takeoutB, 'configurations/keboola.ex-db-mysql/1001.json'))).toContain('KBC::ProjectSecure::');
    expect(restored.stdout + restored.stderr).toMatch(/to re-enter.*keboola\.ex-db-mysql\/1001: parameters\.db\.#password/);
  });

  it('--dry-run lists the plan and writes nothing into the project', () => {
    expectCode(dryRun, 0);
    expect(dryRun.stdout + dryRun.stderr).toMatch(/create\s+in\.c-main\.orders → in\.c-main\.orders/);
    expect(dryRun.stdout + dryRun.stderr).toContain('nothing was written');
    expect(bucketsAfterDryRun).toEqual([]);
  });

  it('restores the project metadata of the default branch', async () => {
    const shape = (list: Json): Json[] => (list as unknown as Json[]).map((m) => ({ key: m.key, value: m.value }));
    expect(shape(await json(takeoutB, 'defaultBranchMetadata.json'))).toEqual(shape(await json(takeoutA, 'defaultBranchMetadata.json')));
    expect(shape(await json(takeoutB, 'defaultBranchMetadata.json'))).not.toEqual([]);
  });

  it('never prints the tokens or the upload credentials', () => {
    for (const secret of [TOKEN_A, TOKEN_B, ...b.secretsHandedOut()]) {
      expect(restored.stdout).not.toContain(secret);
      expect(restored.stderr).not.toContain(secret);
    }
  });

  it('a second restore is refused with exit 9, naming the bucket, and changes nothing', async () => {
    const before = JSON.stringify(await (await fetch(`${b.url}/v2/storage/tables`, { headers: { 'X-StorageApi-Token': TOKEN_B } })).json());
    // The token given with --token this time: refused all the same, and not printed either.
    const again = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--token', TOKEN_B, '--debug'], { env: { TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint, ...b.storageEnv } });
    expectCode(again, 9);
    expect(again.stdout + again.stderr).not.toContain(TOKEN_B);
    expect(again.stderr).toMatch(/bucket in\.c-main already exists/);
    const after = JSON.stringify(await (await fetch(`${b.url}/v2/storage/tables`, { headers: { 'X-StorageApi-Token': TOKEN_B } })).json());
    expect(after).toBe(before);
  });
});

describe('takeout restore into a Keboola project: a corrupt slice', () => {
  it('exits 6 before its table is created: the tables before it are restored, that one is not', async () => {
    const common = { s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 } };
    const a = await startStorageApi({ ...common, token: TOKEN_A });
    const b = await startStorageApi({ ...common, token: TOKEN_B, emptyProject: true });
    try {
      const takeout = join(await tempFolder('kbrestore-corrupt'), 'a');
      expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', takeout, '--no-progress'], { env: env(TOKEN_A) }), 0);
      const copy = join(await tempFolder('kbrestore-corrupt'), 'copy');
      await cp(takeout, copy, { recursive: true });
      const manifest = await json(copy, 'takeout-manifest.json');
      const slice = join(copy, String(((manifest.tables as Json[]).find((t) => t.id === 'in.c-main.orders')!.slices as Json[])[0]!.key));
      const bytes = await readFile(slice);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      await writeFile(slice, bytes);
      const failed = await runCli(['restore', copy, '--to', `keboola+${b.url}`], { env: env(TOKEN_B, b) });
      expectCode(failed, 6);
      expect(failed.stderr).toContain('orders.part_0.csv.gz');
      const tables = (await (await fetch(`${b.url}/v2/storage/tables`, { headers: { 'X-StorageApi-Token': TOKEN_B } })).json()) as Json[];
      expect(tables.map((t) => t.id)).toContain('in.c-main.customers');
      expect(tables.map((t) => t.id)).not.toContain('in.c-main.orders');
    } finally {
      await a.stop();
      await b.stop();
    }
  }, 120_000);
});

describe('takeout restore into a Keboola project from a takeout on S3, Azure Blob Storage and GCS', () => {
  const connectionString = inject('azureConnectionString');
  let gcs: GcsServer;
  let a: StorageApiServer;
  let local: string;
  const stores = (): Record<'s3' | 'azure' | 'gs', { url: string; args: string[]; env: Record<string, string> }> => ({
    s3: { url: `s3://${TEST_BUCKET}/${uniquePrefix('kbrestore-s3')}`, args: s3CliArgs(s3Endpoint), env: {} },
    azure: { url: `azure://${TEST_CONTAINER}/${uniquePrefix('kbrestore-azure')}`, args: [], env: { AZURE_STORAGE_CONNECTION_STRING: connectionString } },
    gs: { url: `gs://${GCS_BUCKET}/${uniquePrefix('kbrestore-gs')}`, args: [], env: { STORAGE_EMULATOR_HOST: gcs.url } },
  });
  const GCS_BUCKET = 'takeout-test';

  beforeAll(async () => {
    gcs = await startGcsServer({ buckets: [GCS_BUCKET] });
    await rawContainer(connectionString);
    a = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 }, token: TOKEN_A });
    local = join(await tempFolder('kbrestore-stores'), 'a');
    expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', local, '--no-progress'], { env: env(TOKEN_A) }), 0);
  }, 60_000);
  afterAll(async () => {
    await a?.stop();
    await gcs?.close();
  });

  it.each(['s3', 'azure', 'gs'] as const)('%s: project B holds the tables, metadata and rows of project A', async (kind) => {
    const store = stores()[kind];
    const b = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 }, token: TOKEN_B, emptyProject: true });
    try {
      expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', store.url, '--no-progress', ...store.args], { env: { ...env(TOKEN_A), ...store.env } }), 0);
      expectCode(await runCli(['restore', store.url, '--to', `keboola+${b.url}`, '-q', ...store.args], { env: { ...env(TOKEN_B, b), ...store.env } }), 0);
      const back = join(await tempFolder('kbrestore-stores'), `b-${kind}`);
      expectCode(await runCli(['run', '--source', `keboola+${b.url}`, '--dest', back, '--no-progress'], { env: env(TOKEN_B, b) }), 0);
      const restorable = ((await json(local, 'tables.json')) as unknown as Json[]).filter((t) => String(t.id).startsWith('in.'));
      const shapes = (list: Json[]) => list.map(tableShape).sort((x, y) => String(x.id).localeCompare(String(y.id)));
      expect(shapes(((await json(back, 'tables.json')) as unknown as Json[]).filter((t) => String(t.id).startsWith('in.')))).toEqual(shapes(restorable));
      for (const t of restorable) expect(await rowsOf(back, String(t.id)), String(t.id)).toEqual(await rowsOf(local, String(t.id)));
    } finally {
      await b.stop();
    }
  }, 120_000);
});

describe('takeout restore into a Keboola project that holds one of the configurations', () => {
  it('exits 9 naming it, before any bucket is created', async () => {
    const common = { s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 } };
    const a = await startStorageApi({ ...common, token: TOKEN_A });
    const b = await startStorageApi({ ...common, token: TOKEN_B, emptyProject: true });
    try {
      const takeout = join(await tempFolder('kbrestore-config'), 'a');
      expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', takeout, '--no-progress'], { env: env(TOKEN_A) }), 0);
      await call(b, TOKEN_B, 'branch/default/components/keboola.ex-db-mysql/configs', { name: 'mine', configurationId: '1001' });
      const refused = await runCli(['restore', takeout, '--to', `keboola+${b.url}`], { env: env(TOKEN_B, b) });
      expectCode(refused, 9);
      expect(refused.stderr).toMatch(/configuration keboola\.ex-db-mysql\/1001 already exists/);
      expect(await (await fetch(`${b.url}/v2/storage/buckets`, { headers: { 'X-StorageApi-Token': TOKEN_B } })).json()).toEqual([]);
    } finally {
      await a.stop();
      await b.stop();
    }
  }, 120_000);
});

describe('takeout restore into a Keboola project of a takeout whose column names Storage does not take', () => {
  it('exits 7 naming the table and the column, before anything is written', async () => {
    const b = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 }, token: TOKEN_B, emptyProject: true });
    try {
      const root = join(await tempFolder('kbrestore-columns'), 'project');
      await mkdir(join(root, 'in.c-ok'), { recursive: true });
      await mkdir(join(root, 'in.c-db'), { recursive: true });
      await writeFile(join(root, 'in.c-ok', 'fine.csv'), 'id,name\n1,a\n');
      await writeFile(join(root, 'in.c-db', 'events.csv'), 'id,_timestamp\n1,2026-01-01\n');
      const takeout = join(await tempFolder('kbrestore-columns'), 'takeout');
      expectCode(await runCli(['run', root, takeout, '-q']), 0);
      const refused = await runCli(['restore', takeout, '--to', `keboola+${b.url}`], { env: env(TOKEN_B, b) });
      expectCode(refused, 7);
      expect(refused.stderr).toMatch(/table in\.c-db\.events: column "_timestamp" is not a name Keboola Storage takes/);
      expect(refused.stderr).toMatch(/--exclude in\.c-db\.events/);
      expect(await (await fetch(`${b.url}/v2/storage/buckets`, { headers: { 'X-StorageApi-Token': TOKEN_B } })).json()).toEqual([]);
      expectCode(await runCli(['restore', takeout, '--to', `keboola+${b.url}`, '--exclude', 'in.c-db.events', '-q'], { env: env(TOKEN_B, b) }), 0);
    } finally {
      await b.stop();
    }
  }, 60_000);
});
