/**
 * `takeout restore --to keboola+http://…`: what a project gets after its tables, in the order of Keboola's restore
 * engine (triggers, notification subscriptions, permanent files). Project A (the fixture, with an orchestrator
 * configuration for its trigger to run and a Snowflake writer's configuration, which the engine leaves to its
 * Migrate app) taken out, restored into an empty project B, and B read back: its triggers, subscriptions (the
 * branch filter on B's default branch) and permanent files (name, tags, bytes) are A's, modulo ids, tokens and
 * times. A trigger on a table left out with --exclude is named and not created; the tokens made for triggers are
 * never printed; a corrupt `files/<id>` exits 6 before anything is written.
 */
import { readFileSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { removeTempFolders, runCli, tempFolder, type CliResult } from './helpers/cli.js';
import { OTHER_BUCKET } from './helpers/s3.js';
import { startStorageApi, type Provider, type StorageApiServer } from './keboola/server.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url));
const TOKEN_A = 'kbc-source-token-x9y8z7-SECRET';
const TOKEN_B = 'kbc-target-token-w6v5u4-SECRET';
const s3Endpoint = inject('s3Endpoint');
const validate = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync(fileURLToPath(new URL('../docs/events.schema.json', import.meta.url)), 'utf8')) as object);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const env = (token: string, api?: StorageApiServer): Record<string, string> => ({ KBC_STORAGE_TOKEN: token, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint, ...(api?.storageEnv ?? {}) });

function expectCode(result: CliResult, code: number): void {
  expect(result.code, `stdout: ${result.stdout.slice(-3000)}\nstderr: ${result.stderr}`).toBe(code);
}

async function json(dir: string, key: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(await readFile(join(dir, key), 'utf8'));
}

async function get(api: StorageApiServer, token: string, path: string): Promise<Json[]> {
  const answer = await fetch(path.startsWith('/') ? `${api.url}${path}` : `${api.url}/v2/storage/${path}`, { headers: { 'X-StorageApi-Token': token } });
  expect(answer.status).toBe(200);
  return (await answer.json()) as Json[];
}

/**
 * The fixture with what a trigger needs: the flow it runs (keboola.orchestrator 5501, its triggers.json entry's
 * configuration) and a Snowflake writer configuration, one of the components Keboola's engine does not restore.
 */
async function fixtureWithFlow(): Promise<string> {
  const dir = join(await tempFolder('kbextras-fixture'), 'project');
  await cp(FIXTURE, dir, { recursive: true });
  const components = (await json(dir, 'components.json')) as Json[];
  const config = (id: string, name: string, configuration: Json): Json => ({
    id, name, description: '', created: '2024-05-01T10:00:00+0200', creatorToken: { id: 112233, description: 'takeout-test@example.com' },
    version: 1, changeDescription: '', isDeleted: false, isDisabled: false, configuration, rowsSortOrder: [], rows: [], state: {},
    currentVersion: { created: '2024-05-01T10:00:00+0200', creatorToken: { id: 112233, description: 'takeout-test@example.com' }, changeDescription: '' },
  });
  const component = (id: string, name: string, configurations: Json[]): Json => ({ id, type: 'other', name, description: '', flags: [], categories: [], configurations });
  components.push(component('keboola.orchestrator', 'Flow', [config('5501', 'Nightly', { phases: [], tasks: [] })]));
  components.push(component('keboola.wr-db-snowflake', 'Snowflake', [config('7701', 'Warehouse', { parameters: { db: { host: 'x.snowflakecomputing.com' } } })]));
  await writeFile(join(dir, 'components.json'), JSON.stringify(components, null, 2));
  // The permanent file as bytes that are not text (no UTF-8), larger than one stream chunk.
  await writeFile(join(dir, 'file-data-800000001.txt'), Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0xc3]), randomBytes(300_000)]));
  return dir;
}

afterAll(removeTempFolders);

describe('takeout restore into a Keboola project: triggers, notifications, permanent files', () => {
  let fixture: string;
  let a: StorageApiServer;
  let b: StorageApiServer;
  let takeoutA: string;
  let restored: CliResult;
  let dryRun: CliResult;
  let dryRunJson: CliResult;

  const common = async (): Promise<Json> => ({ s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: fixture, jobPolls: { waiting: 0, processing: 1 } });
  const emptyProject = async (): Promise<StorageApiServer> => startStorageApi({ ...(await common()), token: TOKEN_B, emptyProject: true } as Parameters<typeof startStorageApi>[0]);

  beforeAll(async () => {
    fixture = await fixtureWithFlow();
    a = await startStorageApi({ ...(await common()), token: TOKEN_A } as Parameters<typeof startStorageApi>[0]);
    b = await emptyProject();
    takeoutA = join(await tempFolder('kbextras'), 'a');
    expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', takeoutA, '--no-progress'], { env: env(TOKEN_A) }), 0);
    dryRun = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--dry-run'], { env: env(TOKEN_B, b) });
    dryRunJson = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--dry-run', '--json'], { env: env(TOKEN_B, b) });
    restored = await runCli(['restore', takeoutA, '--to', `keboola+${b.url}`, '--debug', '--json'], { env: env(TOKEN_B, b) });
    expectCode(restored, 0);
  }, 120_000);
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('restores a flow disabled, as the engine does, and says so', async () => {
    const flow = await get(b, TOKEN_B, 'branch/default/components/keboola.orchestrator/configs/5501');
    expect((flow as unknown as Json).isDisabled).toBe(true);
    expect(restored.stdout).toMatch(/configuration keboola\.orchestrator\/5501: restored disabled: enable it when the project is ready/);
  });

  it('restores the triggers with their configuration, cooldown and tables, each running with a token of its own', async () => {
    const triggersA = (await json(takeoutA, 'triggers.json')) as Json[];
    const triggersB = await get(b, TOKEN_B, 'triggers');
    const shape = (t: Json): Json => ({ component: t.component, configurationId: t.configurationId, coolDownPeriodMinutes: t.coolDownPeriodMinutes, tables: t.tables });
    expect(triggersA.length).toBeGreaterThan(0);
    expect(triggersB.map(shape)).toEqual(triggersA.map(shape));
    const tokens = await get(b, TOKEN_B, 'tokens');
    expect(tokens.map((t) => t.description)).toEqual(['[_internal] Token for triggering 5501']);
    expect(tokens[0]).toMatchObject({ canManageBuckets: true, canReadAllFileUploads: true });
    expect(triggersB[0]!.runWithTokenId).toBe(Number(tokens[0]!.id));
  });

  it("restores the notification subscriptions, the branch filter on the project's own default branch", async () => {
    const subscriptionsA = (await json(takeoutA, 'notifications.json')) as Json[];
    const subscriptionsB = await get(b, TOKEN_B, '/notification/project-subscriptions');
    const branchB = String((await get(b, TOKEN_B, 'dev-branches')).find((x) => x.isDefault === true)!.id);
    const shape = (s: Json, branch?: string): Json => ({
      event: s.event,
      recipient: s.recipient,
      filters: (s.filters as Json[]).map((f) => ({ field: f.field, operator: f.operator, value: f.field === 'branch.id' && branch ? branch : f.value })),
    });
    expect(subscriptionsA.length).toBeGreaterThan(0);
    expect(subscriptionsB.map((s) => shape(s))).toEqual(subscriptionsA.map((s) => shape(s, branchB)));
    expect(subscriptionsB[0]!.filters).toContainEqual({ field: 'branch.id', value: branchB, operator: '==' });
  });

  it('restores the permanent files with their names, tags and bytes', async () => {
    const takeoutB = join(await tempFolder('kbextras'), 'b');
    expectCode(await runCli(['run', '--source', `keboola+${b.url}`, '--dest', takeoutB, '--no-progress'], { env: env(TOKEN_B, b) }), 0);
    const filesA = (await json(takeoutA, 'permanentFiles.json')) as Json[];
    const filesB = (await json(takeoutB, 'permanentFiles.json')) as Json[];
    expect(filesA.length).toBeGreaterThan(0);
    expect(filesB.map((f) => ({ name: f.name, tags: f.tags }))).toEqual(filesA.map((f) => ({ name: f.name, tags: f.tags })));
    for (const [i, f] of filesA.entries()) {
      const bytesA = await readFile(join(takeoutA, 'files', String(f.id)));
      expect(await readFile(join(takeoutB, 'files', String(filesB[i]!.id)))).toEqual(bytesA);
    }
    // B taken out again has the same triggers and subscriptions (what B's backup would give a restore again).
    expect(((await json(takeoutB, 'triggers.json')) as Json[]).map((t) => t.configurationId)).toEqual(['5501']);
    expect(((await json(takeoutB, 'notifications.json')) as Json[]).map((s) => s.event)).toEqual(['job-failed']);
  });

  it("leaves the Snowflake writer's configuration to its Migrate app, as Keboola's engine does, named and counted as left out", async () => {
    const out = restored.stdout + restored.stderr;
    expect(out).toMatch(/configuration keboola\.wr-db-snowflake\/7701 is not restored: Keboola's restore engine leaves keboola\.wr-db-snowflake configurations to the Snowflake Writer Migrate App/);
    const componentsB = await get(b, TOKEN_B, 'components');
    expect(componentsB.map((c) => c.id)).not.toContain('keboola.wr-db-snowflake');
    expect(componentsB.map((c) => c.id)).toContain('keboola.orchestrator');
    const done = restored.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json).find((e) => e.type === 'restore:done')!;
    const total = ((await json(takeoutA, 'configurations.json')) as Json[]).reduce((n, c) => n + (c.configurations as Json[]).length, 0);
    expect(done.summary.configurations).toBe(total - 1);
    expect(done.summary.extras).toContainEqual(expect.objectContaining({ kind: 'configuration', name: 'keboola.wr-db-snowflake/7701', action: 'skip' }));
    expect(done.summary.extras.filter((e: Json) => e.action === 'create').map((e: Json) => e.kind).sort()).toEqual(['notification', 'permanent file', 'trigger']);
  });

  it('--dry-run lists the triggers, subscriptions and permanent files, and the configuration left out', () => {
    expectCode(dryRun, 0);
    const out = dryRun.stdout + dryRun.stderr;
    expect(out).toMatch(/create {2}trigger 301 \(keboola\.orchestrator\/5501\)/);
    expect(out).toMatch(/create {2}notification job-failed → ops@example\.com/);
    expect(out).toMatch(/create {2}permanent file 800000001 \(contacts\.txt\)/);
    expect(out).toMatch(/configurations: 5, 1 left out \(below\)/);
    expect(out).toMatch(/leave out {2}configuration keboola\.wr-db-snowflake\/7701: Keboola's restore engine leaves/);
  });

  it('every --json event, the plan and the summary with their extras, is the documented one (docs/events.schema.json)', () => {
    expectCode(dryRunJson, 0);
    const events = [...restored.stdout.split('\n'), ...dryRunJson.stdout.split('\n')].filter(Boolean).map((l) => JSON.parse(l) as Json);
    for (const event of events) expect(validate(event), `${JSON.stringify(event)}: ${JSON.stringify(validate.errors)}`).toBe(true);
    const plan = events.find((e) => e.type === 'restore:plan')!.plan as Json;
    expect(plan.extras.map((e: Json) => `${e.action} ${e.kind}`)).toEqual(['skip configuration', 'create trigger', 'create notification', 'create permanent file']);
  });

  it('never prints the tokens made for the triggers, nor the project tokens (--debug, --json)', async () => {
    const secrets = (await get(b, TOKEN_B, 'tokens')).map((t) => String(t.token));
    expect(secrets.length).toBe(1);
    for (const secret of [...secrets, TOKEN_A, TOKEN_B]) {
      expect(restored.stdout).not.toContain(secret);
      expect(restored.stderr).not.toContain(secret);
    }
  });

  it('a trigger on a table left out with --exclude is named and not created; its token is not made', async () => {
    const other = await emptyProject();
    try {
      const result = await runCli(['restore', takeoutA, '--to', `keboola+${other.url}`, '--exclude', 'in.c-main.orders'], { env: env(TOKEN_B, other) });
      expectCode(result, 0);
      expect(result.stdout + result.stderr).toMatch(/trigger 301 \(keboola\.orchestrator\/5501\) is not restored: its table in\.c-main\.orders is not restored/);
      expect(await get(other, TOKEN_B, 'triggers')).toEqual([]);
      expect(await get(other, TOKEN_B, 'tokens')).toEqual([]);
      expect((await get(other, TOKEN_B, '/notification/project-subscriptions')).length).toBe(1);
    } finally {
      await other.stop();
    }
  });

  it('a trigger the project refuses (4xx) and a stack without a notification service are named warnings; the permanent files still come', async () => {
    const other = await startStorageApi({ ...(await common()), token: TOKEN_B, emptyProject: true, notificationService: false, faults: { forbidden: ['POST triggers'] } } as Parameters<typeof startStorageApi>[0]);
    try {
      const result = await runCli(['restore', takeoutA, '--to', `keboola+${other.url}`], { env: env(TOKEN_B, other) });
      expectCode(result, 0);
      const out = result.stdout + result.stderr;
      expect(out).toMatch(/trigger 301 \(keboola\.orchestrator\/5501\) is not restored: Storage API POST triggers: HTTP 403/);
      expect(out).toMatch(/notification job-failed → ops@example\.com is not restored: the stack lists no notification service/);
      expect(out).toMatch(/4 configurations with buckets and metadata, 0 triggers, 0 notifications, 1 permanent file, 3 left out \(named above\)/);
      expect(await get(other, TOKEN_B, 'triggers')).toEqual([]);
      expect(await get(other, TOKEN_B, 'tokens')).toEqual([]);
      expect((await get(other, TOKEN_B, 'files')).filter((f) => f.maxAgeDays === null).map((f) => f.name)).toEqual(['contacts.txt']);
    } finally {
      await other.stop();
    }
  });

  it('a takeout with a permanent file that is not text restores into a database too (its bytes are checked, not read as text)', async () => {
    const db = join(await tempFolder('kbextras'), 'restored.sqlite');
    const result = await runCli(['restore', takeoutA, '--to', `sqlite:${db}`]);
    expectCode(result, 0);
  });

  it('a corrupt files/<id> exits 6 before anything is written into the project', async () => {
    const corrupt = join(await tempFolder('kbextras'), 'corrupt');
    await cp(takeoutA, corrupt, { recursive: true });
    const [file] = (await json(corrupt, 'permanentFiles.json')) as Json[];
    const path = join(corrupt, 'files', String(file!.id));
    const bytes = await readFile(path);
    bytes[0] = bytes[0]! ^ 0xff;
    await writeFile(path, bytes);
    const other = await emptyProject();
    try {
      const result = await runCli(['restore', corrupt, '--to', `keboola+${other.url}`], { env: env(TOKEN_B, other) });
      expectCode(result, 6);
      expect(result.stderr).toMatch(new RegExp(`files/${String(file!.id)}`));
      expect(await get(other, TOKEN_B, 'buckets')).toEqual([]);
      expect(await get(other, TOKEN_B, 'files')).toEqual([]);
    } finally {
      await other.stop();
    }
  });
});

describe.each(['azure', 'gcp'] as const)('takeout restore into a Keboola project on a %s stack: permanent files', (provider: Provider) => {
  it('uploads each permanent file to the stack\'s file storage with its name, tags and bytes', async () => {
    const fixture = await fixtureWithFlow();
    const common = { s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: fixture, jobPolls: { waiting: 0, processing: 1 } };
    const a = await startStorageApi({ ...common, token: TOKEN_A });
    const b = await startStorageApi({ ...common, token: TOKEN_B, emptyProject: true, provider, azureConnectionString: inject('azureConnectionString') });
    try {
      const root = await tempFolder(`kbextras-${provider}`);
      expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', join(root, 'a'), '--no-progress'], { env: env(TOKEN_A) }), 0);
      expectCode(await runCli(['restore', join(root, 'a'), '--to', `keboola+${b.url}`, '--include', 'in.c-main.*'], { env: env(TOKEN_B, b) }), 0);
      expectCode(await runCli(['run', '--source', `keboola+${b.url}`, '--dest', join(root, 'b'), '--no-progress'], { env: env(TOKEN_B, b) }), 0);
      const [fileA] = (await json(join(root, 'a'), 'permanentFiles.json')) as Json[];
      const [fileB] = (await json(join(root, 'b'), 'permanentFiles.json')) as Json[];
      expect({ name: fileB!.name, tags: fileB!.tags }).toEqual({ name: fileA!.name, tags: fileA!.tags });
      expect(await readFile(join(root, 'b', 'files', String(fileB!.id)))).toEqual(await readFile(join(root, 'a', 'files', String(fileA!.id))));
    } finally {
      await a.stop();
      await b.stop();
    }
  }, 120_000);
});
