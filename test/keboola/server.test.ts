import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { OTHER_BUCKET } from '../helpers/s3.js';
import { startStorageApi } from './server.js';
import type { StorageApiServer, StorageJob } from './server.js';

const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/keboola-project/', import.meta.url));
const TOKEN = 'test-token-4321';
const endpoint = inject('s3Endpoint');

type Json = Record<string, unknown>;

function fixtureCsv(tableId: string): { header: string[]; rows: string[][] } {
  const [header = [], ...rows] = parse(readFileSync(`${FIXTURE_DIR}data/${tableId}.csv`, 'utf8')) as string[][];
  return { header, rows };
}

function fixtureJson<T>(name: string): T {
  return JSON.parse(readFileSync(`${FIXTURE_DIR}${name}`, 'utf8')) as T;
}

async function api(server: StorageApiServer, path: string, init: RequestInit & { token?: string | null } = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('X-StorageApi-Token', init.token ?? TOKEN);
  const response = await fetch(`${server.url}/v2/storage/${path}`, { ...init, headers });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : null, headers: response.headers };
}

async function exportTable(server: StorageApiServer, tableId: string, params: Json = {}): Promise<StorageJob> {
  const started = await api(server, `tables/${tableId}/export-async`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ gzip: true, format: 'rfc', fileType: 'csv', ...params }),
  });
  expect(started.status).toBe(202);
  let job = started.body as StorageJob;
  for (let i = 0; i < 20 && (job.status === 'waiting' || job.status === 'processing'); i += 1) {
    job = (await api(server, `jobs/${job.id}`)).body as StorageJob;
  }
  return job;
}

/** Reads a file like a client would: file detail → manifest (via credentials) → slices, each gunzipped. */
async function readExport(server: StorageApiServer, fileId: number): Promise<{ file: Json; keys: string[]; rows: string[][] }> {
  const { body } = await api(server, `files/${fileId}?federationToken=1`);
  const file = body as Json & { s3Path: { bucket: string; key: string }; credentials: Record<string, string>; url: string };
  const client = new S3Client({
    endpoint,
    region: String(file.region),
    forcePathStyle: true,
    credentials: {
      accessKeyId: file.credentials.AccessKeyId!,
      secretAccessKey: file.credentials.SecretAccessKey!,
      sessionToken: file.credentials.SessionToken!,
    },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    const get = async (key: string): Promise<Buffer> => {
      const out = await client.send(new GetObjectCommand({ Bucket: file.s3Path.bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    };
    if (!file.isSliced) {
      const rows = parse(gunzipSync(await get(file.s3Path.key)).toString('utf8')) as string[][];
      return { file, keys: [file.s3Path.key], rows };
    }
    const manifest = JSON.parse((await get(`${file.s3Path.key}manifest`)).toString('utf8')) as { entries: Array<{ url: string; mandatory: boolean }> };
    const prefix = `s3://${file.s3Path.bucket}/`;
    const keys = manifest.entries.map((e) => {
      expect(e.mandatory).toBe(true);
      expect(e.url.startsWith(prefix)).toBe(true);
      return e.url.slice(prefix.length);
    });
    const rows: string[][] = [];
    for (const key of keys) {
      const text = gunzipSync(await get(key)).toString('utf8');
      // Every value quoted, no header.
      expect(text.startsWith('"')).toBe(true);
      rows.push(...(parse(text) as string[][]));
    }
    return { file, keys, rows };
  } finally {
    client.destroy();
  }
}

describe('Storage API test server', () => {
  let server: StorageApiServer;

  beforeAll(async () => {
    server = await startStorageApi({ s3Endpoint: endpoint, bucket: OTHER_BUCKET, token: TOKEN, fixtureDir: FIXTURE_DIR });
  });
  afterAll(async () => {
    await server.stop();
  });
  afterEach(() => {
    server.state.faults = {};
  });

  it('verifies the token and rejects a wrong or missing one', async () => {
    const ok = await api(server, 'tokens/verify');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ id: expect.any(String), description: expect.any(String), owner: { id: 4321, name: expect.any(String), region: 'us-east-1' } });
    for (const token of ['wrong', null]) {
      const bad = await api(server, 'tokens/verify', { token });
      expect(bad.status).toBe(401);
      expect(bad.body).toMatchObject({ error: 'Invalid access token', code: 'storage.tokenInvalid', exceptionId: expect.any(String) });
    }
  });

  it('lists buckets with and without metadata', async () => {
    const withMeta = (await api(server, 'buckets?include=metadata')).body as Json[];
    expect(withMeta).toEqual(fixtureJson('buckets.json'));
    expect(withMeta.map((b) => b.stage).sort()).toEqual(['in', 'out', 'sys']);
    expect(withMeta.find((b) => b.sourceBucket)).toMatchObject({ id: 'out.c-shared', isLinkedBucket: true });
    const plain = (await api(server, 'buckets')).body as Json[];
    expect(plain[0]).not.toHaveProperty('metadata');
  });

  it('lists tables, tables per bucket and table detail', async () => {
    const all = (await api(server, 'tables?include=columns,buckets,metadata,columnMetadata')).body as Json[];
    expect(all).toEqual(fixtureJson('tables.json'));
    expect(all).toHaveLength(5);
    expect(all.filter((t) => t.isAlias)).toHaveLength(1);
    const bare = (await api(server, 'tables')).body as Json[];
    expect(bare[0]).not.toHaveProperty('columns');
    expect(bare[0]).not.toHaveProperty('bucket');
    const main = (await api(server, 'buckets/in.c-main/tables?include=columns')).body as Json[];
    expect(main.map((t) => t.id)).toEqual(['in.c-main.customers', 'in.c-main.orders', 'in.c-main.empty']);
    expect(main[0]).toHaveProperty('columns');
    const detail = await api(server, 'tables/in.c-main.orders');
    expect(detail.body).toMatchObject({ id: 'in.c-main.orders', columns: fixtureCsv('in.c-main.orders').header, isTyped: true });
    const missing = await api(server, 'tables/in.c-main.nope');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'storage.tables.notFound' });
    expect((await api(server, 'branch/default/tables')).status).toBe(200);
  });

  it('lists components with configurations only, or with rows and state', async () => {
    const light = (await api(server, 'components?include=configuration')).body as Array<Json & { configurations: Json[] }>;
    expect(light).toHaveLength(2);
    const config = light[0]!.configurations[0]!;
    expect(config).toHaveProperty('configuration');
    expect(config).not.toHaveProperty('rows');
    expect(config).not.toHaveProperty('state');
    const full = (await api(server, 'components?include=configuration,rows,state')).body as Array<Json & { configurations: Array<Json & { rows: Json[] }> }>;
    expect(full).toEqual(fixtureJson('components.json'));
    expect(full[0]!.configurations[0]!.rows).toHaveLength(2);
    expect(full[0]!.configurations[0]!.rows[0]).toHaveProperty('state');
    // {} stays {} (not [])
    expect(full[0]!.configurationSchema).toEqual({});
    expect((await api(server, 'dev-branches')).body).toEqual(fixtureJson('dev-branches.json'));
  });

  it('pages configuration and row versions until an empty page', async () => {
    const all: Json[] = [];
    for (let offset = 0; ; offset += 2) {
      const page = (await api(server, `components/keboola.ex-db-mysql/configs/1001/versions?include=name,description,configuration,state&limit=2&offset=${offset}`)).body as Json[];
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(2);
      all.push(...page);
    }
    expect(all.map((v) => v.version)).toEqual([4, 3, 2, 1]);
    expect(all[0]).toMatchObject({ versionIdentifier: expect.any(String), creatorToken: expect.any(Object), configuration: expect.any(Object), state: expect.any(Object) });
    const bare = (await api(server, 'components/keboola.ex-db-mysql/configs/1001/versions')).body as Json[];
    expect(bare[0]).not.toHaveProperty('configuration');
    const rows = (await api(server, 'components/keboola.ex-db-mysql/configs/1001/rows/2001/versions?include=configuration&limit=2&offset=2')).body as Json[];
    expect(rows.map((v) => v.version)).toEqual([1]);
    expect(rows[0]).toHaveProperty('configuration');
    expect((await api(server, 'components/keboola.ex-db-mysql/configs/9999/versions')).status).toBe(404);
  });

  it('serves the service index, branch and configuration metadata, triggers, notification subscriptions and the files list', async () => {
    const index = (await api(server, '?exclude=components')).body as { services: { id: string; url: string }[] };
    const notification = index.services.find((s) => s.id === 'notification')!;
    const subscriptions = await fetch(`${notification.url}/project-subscriptions`, { headers: { 'X-StorageApi-Token': TOKEN } });
    expect(await subscriptions.json()).toEqual(fixtureJson('notifications.json'));
    expect((await fetch(`${notification.url}/project-subscriptions`)).status).toBe(401);
    expect((await api(server, 'branch/101/metadata')).body).toEqual(fixtureJson('branch-metadata.json'));
    expect((await api(server, 'branch/default/components/keboola.ex-db-mysql/configs/1001/metadata')).body).toEqual(
      fixtureJson<Record<string, unknown>>('configuration-metadata.json')['keboola.ex-db-mysql/1001'],
    );
    expect((await api(server, 'branch/101/components/keboola.ex-db-mysql/configs/1002/metadata')).body).toEqual([]);
    expect((await api(server, 'branch/101/components/keboola.ex-db-mysql/configs/9/metadata')).status).toBe(404);
    expect((await api(server, 'triggers')).body).toEqual(fixtureJson('triggers.json'));
    const files = (await api(server, 'files?limit=1&offset=0')).body as Json[];
    expect(files).toHaveLength(1);
    const all = (await api(server, 'files')).body as Json[];
    const permanent = all.filter((f) => f.maxAgeDays === null);
    expect(permanent.map((f) => [f.id, f.name, f.tags])).toEqual([[800000001, 'contacts.txt', ['docs', 'kept']]]);
    expect(all.some((f) => f.id === 800000002 && f.maxAgeDays === 15)).toBe(true);
  });

  it('exports a large table into 3+ headerless gzipped slices through the job and file API', async () => {
    const before = server.state.requests['GET jobs/{id}'] ?? 0;
    const started = await api(server, 'tables/in.c-main.orders/export-async', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ gzip: true }),
    });
    expect(started.status).toBe(202);
    expect(started.body).toMatchObject({
      status: 'waiting',
      tableId: 'in.c-main.orders',
      operationName: 'tableExport',
      operationParams: { export: { gzip: true } },
      startTime: null,
      endTime: null,
      results: null,
      creatorToken: expect.any(Object),
      metrics: {},
    });
    const id = (started.body as StorageJob).id;
    expect((started.body as StorageJob).url).toBe(`${server.url}/v2/storage/jobs/${id}`);
    const first = (await api(server, `jobs/${id}`)).body as StorageJob;
    expect(first.status).toBe('processing');
    const second = (await api(server, `jobs/${id}`)).body as StorageJob;
    expect(second.status).toBe('success');
    expect(second.results).toEqual({ file: { id: expect.any(Number) }, cacheHit: false });
    expect(server.state.requests['GET jobs/{id}']).toBe(before + 2);

    const { file, keys, rows } = await readExport(server, second.results!.file.id);
    expect(file).toMatchObject({
      provider: 'aws',
      region: 'us-east-1',
      isSliced: true,
      isEncrypted: true,
      fileType: 'csv',
      tags: ['table-export'],
      maxAgeDays: 15,
      s3Path: { bucket: OTHER_BUCKET },
      credentials: { AccessKeyId: 'S3RVER', SecretAccessKey: 'S3RVER', SessionToken: expect.any(String) },
    });
    expect(Date.parse(String((file.credentials as Json).Expiration))).toBeGreaterThan(Date.now() + 3600_000);
    expect(keys.length).toBeGreaterThanOrEqual(3);
    keys.forEach((key, i) => expect(key).toBe(`${(file.s3Path as Json).key as string}_0_0_${i}.csv.gz`));
    expect(rows).toEqual(fixtureCsv('in.c-main.orders').rows);
    // The url is a plain http URL of the manifest.
    const manifest = await fetch(String(file.url));
    expect(((await manifest.json()) as { entries: unknown[] }).entries).toHaveLength(keys.length);

  });

  it('quotes every value and keeps commas, quotes and newlines', async () => {
    const job = await exportTable(server, 'in.c-main.customers');
    expect(job.status).toBe('success');
    const { keys, rows } = await readExport(server, job.results!.file.id);
    expect(keys).toHaveLength(1);
    expect(rows).toEqual(fixtureCsv('in.c-main.customers').rows);
    // An identical export is a cache hit on the same file.
    const again = await exportTable(server, 'in.c-main.customers');
    expect(again.results).toEqual({ file: { id: job.results!.file.id }, cacheHit: true });
  });

  it('applies columns, where filters and limit', async () => {
    const { header, rows } = fixtureCsv('in.c-main.orders');
    const at = (c: string): number => header.indexOf(c);
    const job = await exportTable(server, 'in.c-main.orders', {
      columns: ['id', 'status', 'amount'],
      whereFilters: [
        { column: 'status', operator: 'eq', values: ['paid', 'shipped'] },
        { column: 'amount', operator: 'ge', values: ['500'] },
        { column: 'customer_id', operator: 'ne', values: ['3'] },
      ],
      limit: 50,
    });
    expect(job.status).toBe('success');
    const expected = rows
      .filter((r) => ['paid', 'shipped'].includes(r[at('status')]!) && Number(r[at('amount')]) >= 500 && r[at('customer_id')] !== '3')
      .slice(0, 50)
      .map((r) => [r[at('id')]!, r[at('status')]!, r[at('amount')]!]);
    expect(expected.length).toBe(50);
    expect((await readExport(server, job.results!.file.id)).rows).toEqual(expected);

    const comma = await exportTable(server, 'in.c-main.orders', { columns: 'id,customer_id', whereFilters: [{ column: 'id', operator: 'lt', values: ['4'] }] });
    expect((await readExport(server, comma.results!.file.id)).rows).toEqual(rows.slice(0, 3).map((r) => [r[0]!, r[1]!]));

    const future = await exportTable(server, 'in.c-main.orders', { changedSince: '2030-01-01T00:00:00Z' });
    expect((await readExport(server, future.results!.file.id)).rows).toEqual([]);

    const bad = await api(server, 'tables/in.c-main.orders/export-async', { method: 'POST', body: JSON.stringify({ columns: ['nope'] }), headers: { 'Content-Type': 'application/json' } });
    expect(bad.status).toBe(400);
  });

  it('exports an empty table as a manifest with zero entries, and an alias from its source', async () => {
    const job = await exportTable(server, 'in.c-main.empty');
    expect(job.status).toBe('success');
    const { keys, rows } = await readExport(server, job.results!.file.id);
    expect(keys).toEqual([]);
    expect(rows).toEqual([]);
    const alias = await exportTable(server, 'out.c-shared.customers');
    expect((await readExport(server, alias.results!.file.id)).rows).toEqual(fixtureCsv('in.c-main.customers').rows);
  });

  it('answers 429 with Retry-After for the next N requests', async () => {
    server.state.faults.rateLimit = { count: 2 };
    const before = server.state.requests['GET tokens/verify'] ?? 0;
    const first = await api(server, 'tokens/verify');
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('1');
    expect((await api(server, 'tokens/verify')).status).toBe(429);
    expect((await api(server, 'tokens/verify')).status).toBe(200);
    expect(server.state.requests['GET tokens/verify']).toBe(before + 3);
  });

  it('answers 503 maintenance with Retry-After, optionally for one endpoint', async () => {
    server.state.faults.maintenance = { count: 1, retryAfterSeconds: 2, endpoint: 'GET buckets', reason: 'Upgrade' };
    expect((await api(server, 'tables')).status).toBe(200);
    const down = await api(server, 'buckets');
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('2');
    expect(down.body).toMatchObject({ status: 'maintenance', reason: 'Upgrade', estimatedEndTime: expect.any(String) });
    expect((await api(server, 'buckets')).status).toBe(200);
  });

  it('ends a job in error for a failing table', async () => {
    server.state.faults.failingTables = ['in.c-main.customers'];
    const job = await exportTable(server, 'in.c-main.customers', { limit: 1 });
    expect(job.status).toBe('error');
    expect(job.results).toBeNull();
    expect(job.error).toEqual({ code: 'storage.tableExport.failed', message: expect.any(String), exceptionId: expect.any(String) });
  });

  it('rejects everything with badToken and hands out expired credentials', async () => {
    const job = await exportTable(server, 'sys.c-keboola.runs');
    expect(job.status).toBe('success');
    server.state.faults.expiredCredentials = true;
    const file = (await api(server, `files/${job.results!.file.id}?federationToken=1`)).body as { credentials: { Expiration: string } };
    expect(Date.parse(file.credentials.Expiration)).toBeLessThan(Date.now());
    server.state.faults = { badToken: true };
    expect((await api(server, 'tokens/verify')).status).toBe(401);
  });
});

describe('Storage API test server options', () => {
  it('writes one gzip with a header when not sliced, and honours jobPolls', async () => {
    const server = await startStorageApi({
      s3Endpoint: endpoint,
      bucket: OTHER_BUCKET,
      token: TOKEN,
      fixtureDir: FIXTURE_DIR,
      sliced: false,
      jobPolls: { waiting: 2, processing: 1 },
    });
    try {
      const started = await api(server, 'tables/in.c-main.customers/export-async', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
      const id = (started.body as StorageJob).id;
      const statuses: string[] = [];
      for (let i = 0; i < 4; i += 1) statuses.push(((await api(server, `jobs/${id}`)).body as StorageJob).status);
      expect(statuses).toEqual(['waiting', 'waiting', 'processing', 'success']);
      const fileId = (server.state.jobs.get(id)!.results!).file.id;
      const { file, rows } = await readExport(server, fileId);
      expect(file.isSliced).toBe(false);
      const { header, rows: expected } = fixtureCsv('in.c-main.customers');
      expect(rows).toEqual([header, ...expected]);
    } finally {
      await server.stop();
    }
  });

  it('takes faults from the options and slices by sliceBytes', async () => {
    const server = await startStorageApi({
      s3Endpoint: endpoint,
      bucket: OTHER_BUCKET,
      token: TOKEN,
      fixtureDir: FIXTURE_DIR,
      sliceBytes: 100,
      faults: { rateLimit: { count: 1, endpoint: 'GET jobs/{id}' } },
    });
    try {
      const started = await api(server, 'tables/in.c-main.customers/export-async', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
      expect(started.status).toBe(202);
      const id = (started.body as StorageJob).id;
      expect((await api(server, `jobs/${id}`)).status).toBe(429);
      const job = await exportTable(server, 'in.c-main.customers');
      expect(job.status).toBe('success');
      const { keys, rows } = await readExport(server, job.results!.file.id);
      expect(keys.length).toBeGreaterThanOrEqual(3);
      expect(rows).toEqual(fixtureCsv('in.c-main.customers').rows);
    } finally {
      await server.stop();
    }
  });
});

describe('Storage API test server on Azure and GCP stacks', () => {
  const start = (provider: 'azure' | 'gcp', more: Partial<Parameters<typeof startStorageApi>[0]> = {}): Promise<StorageApiServer> =>
    startStorageApi({ s3Endpoint: endpoint, bucket: OTHER_BUCKET, token: TOKEN, fixtureDir: FIXTURE_DIR, provider, azureConnectionString: inject('azureConnectionString'), ...more });

  it('azure: absPath and absCredentials as the API gives them, a read+list container SAS that Azurite enforces', async () => {
    const server = await start('azure', { credentialsTtlMs: 3_000 });
    try {
      const job = await exportTable(server, 'in.c-main.orders');
      const id = job.results!.file.id;
      const plain = (await api(server, `files/${id}`)).body as Json;
      expect(plain).not.toHaveProperty('absCredentials');
      const file = (await api(server, `files/${id}?federationToken=1`)).body as Json & {
        absPath: { container: string; name: string };
        absCredentials: { SASConnectionString: string; expiration: string };
      };
      expect(file).toMatchObject({ provider: 'azure', isSliced: true, absPath: { container: expect.stringMatching(/^exp-15-files-4321-/), name: expect.any(String) } });
      expect(file).not.toHaveProperty('s3Path');
      expect(file.absCredentials.expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/);
      const connection = file.absCredentials.SASConnectionString;
      expect(connection).toMatch(/^BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1;SharedAccessSignature=sv=[^;]*&sr=c&sp=rl&sig=[^;&]+$/);
      const { BlobServiceClient } = await import('@azure/storage-blob');
      const container = BlobServiceClient.fromConnectionString(connection).getContainerClient(file.absPath.container);
      const manifest = JSON.parse((await container.getBlobClient(`${file.absPath.name}manifest`).downloadToBuffer()).toString()) as { entries: { url: string }[] };
      const prefix = `azure://devstoreaccount1.blob.core.windows.net/${file.absPath.container}/`;
      expect(manifest.entries.every((e) => e.url.startsWith(prefix))).toBe(true);
      const names: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix: file.absPath.name })) names.push(blob.name);
      expect(names).toContain(`${file.absPath.name}manifest`);
      // Read and list only: a write is refused.
      await expect(container.getBlockBlobClient(`${file.absPath.name}x`).upload('x', 1)).rejects.toMatchObject({ statusCode: 403 });
      // Expired: Azurite refuses the same SAS.
      await new Promise((resolve) => setTimeout(resolve, 3_500));
      await expect(container.getBlobClient(`${file.absPath.name}manifest`).downloadToBuffer()).rejects.toMatchObject({ statusCode: 403 });
    } finally {
      await server.stop();
    }
  });

  it('gcp: gcsPath and gcsCredentials as the API gives them, a token the GCS server takes until it expires', async () => {
    const server = await start('gcp', { credentialsTtlMs: 2_000 });
    try {
      const job = await exportTable(server, 'in.c-main.customers');
      const id = job.results!.file.id;
      const file = (await api(server, `files/${id}?federationToken=1`)).body as Json & {
        gcsPath: { bucket: string; key: string };
        gcsCredentials: { access_token: string; expires_in: number; token_type: string; projectId: string };
      };
      expect(file).toMatchObject({ provider: 'gcp', gcsPath: { bucket: OTHER_BUCKET, key: expect.any(String) }, gcsCredentials: { token_type: 'Bearer', expires_in: 2, projectId: expect.any(String) } });
      const host = server.storageEnv.STORAGE_EMULATOR_HOST!;
      const object = `${host}/storage/v1/b/${OTHER_BUCKET}/o/${encodeURIComponent(`${file.gcsPath.key}manifest`)}?alt=media`;
      const read = (token?: string): Promise<Response> => fetch(object, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
      const answer = await read(file.gcsCredentials.access_token);
      expect(answer.status).toBe(200);
      const manifest = (await answer.json()) as { entries: { url: string }[] };
      expect(manifest.entries.every((e) => e.url.startsWith(`gs://${OTHER_BUCKET}/${file.gcsPath.key}`))).toBe(true);
      expect((await read()).status).toBe(401);
      expect((await read('ya29.made-up')).status).toBe(401);
      await new Promise((resolve) => setTimeout(resolve, 2_200));
      expect((await read(file.gcsCredentials.access_token)).status).toBe(401);
    } finally {
      await server.stop();
    }
  });
});
