/**
 * The write side of the Storage API test server over HTTP: uploads through files/prepare with each cloud's
 * credentials into the real emulators (s3rver, Azurite, the GCS test server), tables created and imported
 * from them and exported back, conflicts, metadata and configurations.
 */
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { OTHER_BUCKET } from '../helpers/s3.js';
import { startStorageApi } from './server.js';
import type { Provider, StorageApiServer } from './server.js';

const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/keboola-project/', import.meta.url));
const TOKEN = 'test-token-write';
const endpoint = inject('s3Endpoint');

type Json = Record<string, unknown>;
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Answer {
  status: number;
  body: Any;
}

async function api(server: StorageApiServer, path: string, init: { method?: string; json?: unknown; form?: Record<string, string>; token?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'X-StorageApi-Token': init.token ?? TOKEN };
  let body: string | undefined;
  if (init.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(init.json);
  } else if (init.form) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(init.form).toString();
  }
  const response = await fetch(`${server.url}/v2/storage/${path}`, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Any) : {} };
}

async function waitJob(server: StorageApiServer, started: Answer): Promise<Any> {
  expect(started.status).toBe(202);
  let job = started.body;
  for (let i = 0; i < 20 && (job.status === 'waiting' || job.status === 'processing'); i += 1) job = (await api(server, `jobs/${String(job.id)}`)).body;
  return job;
}

/** Uploads objects with the credentials of a files/prepare answer, as each cloud's SDK/API takes them. */
async function uploader(server: StorageApiServer, prepared: Any): Promise<{ put(suffix: string, body: Buffer | string): Promise<void>; entry(suffix: string): string }> {
  if (server.provider === 'aws') {
    const p = prepared.uploadParams;
    const s3 = new S3Client({
      endpoint,
      region: String(prepared.region),
      forcePathStyle: true,
      credentials: { accessKeyId: p.credentials.AccessKeyId, secretAccessKey: p.credentials.SecretAccessKey, sessionToken: p.credentials.SessionToken },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    return {
      put: async (suffix, body) => void (await s3.send(new PutObjectCommand({ Bucket: p.bucket, Key: `${p.key}${suffix}`, Body: body, ACL: p.acl }))),
      entry: (suffix) => `s3://${String(p.bucket)}/${String(p.key)}${suffix}`,
    };
  }
  if (server.provider === 'azure') {
    const p = prepared.absUploadParams;
    const container = BlobServiceClient.fromConnectionString(p.absCredentials.SASConnectionString).getContainerClient(p.container);
    return {
      put: async (suffix, body) => void (await container.getBlockBlobClient(`${p.blobName}${suffix}`).uploadData(Buffer.from(body))),
      entry: (suffix) => `azure://${String(p.accountName)}.blob.core.windows.net/${String(p.container)}/${String(p.blobName)}${suffix}`,
    };
  }
  const p = prepared.gcsUploadParams;
  return {
    async put(suffix, body) {
      const url = `${server.storageEnv.STORAGE_EMULATOR_HOST}/upload/storage/v1/b/${p.bucket}/o?uploadType=media&name=${encodeURIComponent(`${p.key}${suffix}`)}`;
      const answer = await fetch(url, { method: 'POST', body: Buffer.from(body), headers: { Authorization: `${p.token_type} ${p.access_token}` } });
      expect(answer.status).toBe(200);
    },
    entry: (suffix) => `gs://${String(p.bucket)}/${String(p.key)}${suffix}`,
  };
}

/** Reads an object with the credentials of a file detail (GET files/{id}?federationToken=1). */
async function download(server: StorageApiServer, file: Any, key: string): Promise<Buffer> {
  if (server.provider === 'aws') {
    const c = file.credentials;
    const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken }, responseChecksumValidation: 'WHEN_REQUIRED' });
    const out = await s3.send(new GetObjectCommand({ Bucket: file.s3Path.bucket, Key: key }));
    return Buffer.from(await out.Body!.transformToByteArray());
  }
  if (server.provider === 'azure') {
    return BlobServiceClient.fromConnectionString(file.absCredentials.SASConnectionString).getContainerClient(file.absPath.container).getBlockBlobClient(key).downloadToBuffer();
  }
  const url = `${server.storageEnv.STORAGE_EMULATOR_HOST}/storage/v1/b/${file.gcsPath.bucket}/o/${encodeURIComponent(key)}?alt=media`;
  const answer = await fetch(url, { headers: { Authorization: `Bearer ${file.gcsCredentials.access_token}` } });
  expect(answer.status).toBe(200);
  return Buffer.from(await answer.arrayBuffer());
}

/** Exports a table (export-async → job → file → manifest → slices) and gives its rows. */
async function exportRows(server: StorageApiServer, tableId: string): Promise<string[][]> {
  const job = await waitJob(server, await api(server, `tables/${tableId}/export-async`, { json: { gzip: true } }));
  expect(job.status).toBe('success');
  const file = (await api(server, `files/${String(job.results.file.id)}?federationToken=1`)).body;
  const base = server.provider === 'aws' ? file.s3Path.key : server.provider === 'azure' ? file.absPath.name : file.gcsPath.key;
  const manifest = JSON.parse((await download(server, file, `${base}manifest`)).toString('utf8')) as { entries: Array<{ url: string }> };
  const rows: string[][] = [];
  for (const entry of manifest.entries) {
    const key = entry.url.replace(/^(s3|gs):\/\/[^/]+\//, '').replace(/^azure:\/\/[^/]+\/[^/]+\//, '');
    rows.push(...(parse(gunzipSync(await download(server, file, key)).toString('utf8')) as string[][]));
  }
  return rows;
}

const start = (provider: Provider, more: Partial<Parameters<typeof startStorageApi>[0]> = {}): Promise<StorageApiServer> =>
  startStorageApi({
    s3Endpoint: endpoint,
    bucket: OTHER_BUCKET,
    token: TOKEN,
    fixtureDir: FIXTURE_DIR,
    provider,
    azureConnectionString: inject('azureConnectionString'),
    emptyProject: true,
    ...more,
  });

const ROWS = [
  ['1', 'Ann', 'a "quoted", value'],
  ['2', 'Bob', ''],
  ['3', 'Cy', 'multi\nline'],
];
const csv = (rows: string[][]): string => rows.map((r) => r.map((v) => `"${v.replace(/"/g, '""')}"`).join(',')).join('\n') + '\n';

describe.each(['aws', 'azure', 'gcp'] as const)('Storage API test server, write side on %s', (provider) => {
  let server: StorageApiServer;
  beforeAll(async () => {
    server = await start(provider);
  });
  afterAll(async () => {
    await server.stop();
  });

  it('a sliced upload with a manifest → tables-async with columns → export-async gives the same rows', async () => {
    const bucket = await api(server, 'buckets', { json: { name: 'restored', stage: 'in', description: 'From a takeout' } });
    expect(bucket.status).toBe(201);
    expect(bucket.body).toMatchObject({ id: 'in.c-restored', name: 'c-restored', displayName: 'restored', stage: 'in', description: 'From a takeout', backend: 'snowflake' });

    const slices = [gzipSync(csv(ROWS.slice(0, 2))), Buffer.from(csv(ROWS.slice(2)))]; // one gzipped, one not
    const prepared = await api(server, 'files/prepare', {
      json: { name: 'in.c-restored.people', isSliced: true, federationToken: true, isEncrypted: true, sizeBytes: slices[0]!.length + slices[1]!.length, tags: ['file-import'] },
    });
    expect(prepared.status).toBe(201);
    expect(prepared.body).toMatchObject({ id: expect.any(Number), isSliced: true, name: 'in.c-restored.people', provider, tags: ['file-import'] });
    const params = { aws: 'uploadParams', azure: 'absUploadParams', gcp: 'gcsUploadParams' }[provider];
    expect(prepared.body[params]).toBeDefined();
    const up = await uploader(server, prepared.body);
    await up.put('people.part_0.csv.gz', slices[0]!);
    await up.put('people.part_1.csv', slices[1]!);
    await up.put('manifest', JSON.stringify({ entries: [{ url: up.entry('people.part_0.csv.gz') }, { url: up.entry('people.part_1.csv') }] }));

    const job = await waitJob(
      server,
      await api(server, 'buckets/in.c-restored/tables-async', { json: { name: 'people', dataFileId: prepared.body.id, primaryKey: 'id', columns: ['id', 'name', 'note'] } }),
    );
    expect(job).toMatchObject({ status: 'success', operationName: 'tableCreate', results: { id: 'in.c-restored.people', columns: ['id', 'name', 'note'], primaryKey: ['id'], rowsCount: 3 } });

    const tables = (await api(server, 'buckets/in.c-restored/tables?include=columns')).body as Json[];
    expect(tables).toEqual([expect.objectContaining({ id: 'in.c-restored.people', columns: ['id', 'name', 'note'] })]);
    expect((await api(server, 'buckets')).body.map((b: Json) => b.id)).toEqual(['in.c-restored']);
    expect(await exportRows(server, 'in.c-restored.people')).toEqual(ROWS);

    const detail = await api(server, `files/${String(prepared.body.id)}`);
    expect(detail.body).toMatchObject({ id: prepared.body.id, isSliced: true, name: 'in.c-restored.people', tags: ['file-import'] });
  });

  it('the upload credentials write; the download credentials of a file detail cannot (where the emulator enforces it)', async () => {
    const prepared = (await api(server, 'files/prepare', { json: { name: 'probe.csv', federationToken: true } })).body;
    const up = await uploader(server, prepared);
    await up.put('', 'a\n1\n');
    const file = (await api(server, `files/${String(prepared.id)}?federationToken=1`)).body;
    expect(file.isSliced).toBe(false);
    expect((await download(server, file, provider === 'aws' ? file.s3Path.key : provider === 'azure' ? file.absPath.name : file.gcsPath.key)).toString()).toBe('a\n1\n');
    if (provider === 'azure') {
      const readOnly = BlobServiceClient.fromConnectionString(file.absCredentials.SASConnectionString).getContainerClient(file.absPath.container);
      await expect(readOnly.getBlockBlobClient(`${String(file.absPath.name)}-other`).uploadData(Buffer.from('x'))).rejects.toMatchObject({ statusCode: 403 });
    }
    if (provider === 'gcp') {
      const url = `${server.storageEnv.STORAGE_EMULATOR_HOST}/upload/storage/v1/b/${file.gcsPath.bucket}/o?uploadType=media&name=other`;
      const answer = await fetch(url, { method: 'POST', body: 'x', headers: { Authorization: `Bearer ${file.gcsCredentials.access_token}` } });
      expect(answer.status).toBe(403);
      const refreshed = await api(server, `files/${String(prepared.id)}/refresh`, { method: 'PUT' });
      expect(refreshed.status).toBe(200);
      expect(refreshed.body.gcsUploadParams).toMatchObject({ key: prepared.gcsUploadParams.key, token_type: 'Bearer', access_token: expect.not.stringMatching(prepared.gcsUploadParams.access_token) });
    } else {
      expect((await api(server, `files/${String(prepared.id)}/refresh`, { method: 'PUT' })).status).toBe(400);
    }
    for (const secret of server.secretsHandedOut()) expect(secret).not.toBe('');
  });
});

describe('Storage API test server, write side: conflicts, imports, metadata, configurations', () => {
  let server: StorageApiServer;
  beforeAll(async () => {
    server = await start('aws');
  });
  afterAll(async () => {
    await server.stop();
  });

  /** Prepares and uploads one non-sliced file; its id. */
  async function upload(name: string, body: string | Buffer): Promise<number> {
    const prepared = (await api(server, 'files/prepare', { json: { name, federationToken: true } })).body;
    await (await uploader(server, prepared)).put('', body);
    return prepared.id as number;
  }

  it('refuses a wrong token with 401 on writes too', async () => {
    for (const [path, json] of [['buckets', { name: 'x' }], ['files/prepare', { name: 'x', federationToken: true }]] as const) {
      const answer = await api(server, path, { json, token: 'wrong' });
      expect(answer.status).toBe(401);
      expect(answer.body).toMatchObject({ error: 'Invalid access token', code: 'storage.tokenInvalid' });
    }
    expect((await api(server, 'buckets')).body).toEqual([]);
  });

  it('answers an existing bucket or table with 400 and the API codes; validates names and stages', async () => {
    expect((await api(server, 'buckets', { form: { name: 'dup', stage: 'out' } })).status).toBe(201);
    const again = await api(server, 'buckets', { json: { name: 'dup', stage: 'out' } });
    expect(again).toMatchObject({ status: 400, body: { code: 'storage.buckets.alreadyExists', error: 'The bucket out.c-dup already exists.' } });
    expect((await api(server, 'buckets', { json: { name: 'bad name' } })).body.code).toBe('storage.buckets.validation');
    expect((await api(server, 'buckets', { json: { name: 'x', stage: 'sys' } })).status).toBe(400);

    const fileId = await upload('t.csv.gz', gzipSync('"id","v"\n"1","a"\n'));
    const first = await waitJob(server, await api(server, 'buckets/out.c-dup/tables-async', { form: { name: 't', dataFileId: String(fileId), primaryKey: 'id' } }));
    expect(first.status).toBe('success');
    const second = await api(server, 'buckets/out.c-dup/tables-async', { json: { name: 't', dataFileId: fileId } });
    expect(second).toMatchObject({ status: 400, body: { code: 'storage.buckets.tableAlreadyExists', error: 'The table "t" in the bucket already has the same display name "t".' } });
    // A header is sanitized; a sliced file without columns has a data line for a header, refused.
    const spaced = await waitJob(server, await api(server, 'buckets/out.c-dup/tables-async', { json: { name: 's', dataFileId: await upload('s.csv', 'with spaces,šcrščž\n1,2\n') } }));
    expect(spaced.results.columns).toEqual(['with_spaces', 'scrscz']);
    const slicedPrepared = (await api(server, 'files/prepare', { json: { name: 'sl', isSliced: true, federationToken: true } })).body;
    const up = await uploader(server, slicedPrepared);
    await up.put('sl.part_0.csv', '"0","- unchecked -"\n');
    await up.put('manifest', JSON.stringify({ entries: [{ url: up.entry('sl.part_0.csv') }] }));
    const noColumns = await waitJob(server, await api(server, 'buckets/out.c-dup/tables-async', { json: { name: 'sl', dataFileId: slicedPrepared.id } }));
    expect(noColumns).toMatchObject({ status: 'error', error: { code: 'storage.tables.validation.invalidColumnName' } });
    expect((await api(server, 'buckets/out.c-none/tables-async', { json: { name: 't', dataFileId: fileId } })).body.code).toBe('storage.buckets.notFound');
    expect((await api(server, 'buckets/out.c-dup/tables-async', { json: { name: 'u', dataFileId: fileId, primaryKey: ['id'] } })).body.code).toBe('storage.validation.primaryKey');
    const badPk = await waitJob(server, await api(server, 'buckets/out.c-dup/tables-async', { json: { name: 'u', dataFileId: fileId, primaryKey: 'nope' } }));
    expect(badPk).toMatchObject({ status: 'error', error: { code: 'storage.tables.validation.invalidPrimaryKeyColumns' } });
    const neverUploaded = (await api(server, 'files/prepare', { json: { name: 'n.csv', federationToken: true } })).body.id as number;
    const missing = await waitJob(server, await api(server, 'buckets/out.c-dup/tables-async', { json: { name: 'n', dataFileId: neverUploaded } }));
    expect(missing).toMatchObject({ status: 'error', error: { code: 'storage.fileNotUploaded' } });

    expect((await api(server, 'buckets/out.c-dup', { method: 'DELETE' })).body.code).toBe('storage.buckets.notEmpty');
    expect((await api(server, 'buckets/out.c-dup?force=true', { method: 'DELETE' })).status).toBe(204);
    expect((await api(server, 'buckets')).body).toEqual([]);
    expect((await api(server, 'tables')).body).toEqual([]);
  });

  it('imports full and incremental (upserting on the primary key), headerless with columns', async () => {
    await api(server, 'buckets', { json: { name: 'imp' } });
    const created = await waitJob(server, await api(server, 'buckets/in.c-imp/tables-async', { json: { name: 't', dataFileId: await upload('t.csv', 'id;v\n1;a\n2;b\n'), primaryKey: 'id', delimiter: ';' } }));
    expect(created.results).toMatchObject({ columns: ['id', 'v'], rowsCount: 2 });
    const incremental = await waitJob(
      server,
      await api(server, 'tables/in.c-imp.t/import-async', { json: { dataFileId: await upload('i.csv', '"c","2"\n"d","3"\n'), incremental: true, columns: ['v', 'id'] } }),
    );
    expect(incremental).toMatchObject({ status: 'success', operationName: 'tableImport', results: { importedRowsCount: 2, totalRowsCount: 3 } });
    expect(await exportRows(server, 'in.c-imp.t')).toEqual([['1', 'a'], ['2', 'c'], ['3', 'd']]);
    const full = await waitJob(server, await api(server, 'tables/in.c-imp.t/import-async', { json: { dataFileId: await upload('f.csv', 'id,v\n9,z\n'), incremental: false } }));
    expect(full.results.totalRowsCount).toBe(1);
    expect(await exportRows(server, 'in.c-imp.t')).toEqual([['9', 'z']]);
    server.state.faults.failingWrites = ['in.c-imp.t'];
    const failed = await waitJob(server, await api(server, 'tables/in.c-imp.t/import-async', { json: { dataFileId: await upload('g.csv', 'id,v\n8,y\n') } }));
    expect(failed).toMatchObject({ status: 'error', error: { code: 'storage.tableImport.failed' } });
    server.state.faults = {};
    expect(await exportRows(server, 'in.c-imp.t')).toEqual([['9', 'z']]);
    const extra = await waitJob(server, await api(server, 'tables/in.c-imp.t/import-async', { json: { dataFileId: await upload('x.csv', 'id,w\n1,2\n') } }));
    expect(extra).toMatchObject({ status: 'error', error: { code: 'csvImport.columnsNotMatch' } });
  });

  it('creates typed tables, aliases, and table, column and bucket metadata', async () => {
    await api(server, 'buckets', { json: { name: 'typed', stage: 'out' } });
    const definition = await waitJob(
      server,
      await api(server, 'buckets/out.c-typed/tables-definition', {
        json: {
          name: 'n',
          primaryKeysNames: ['id'],
          columns: [
            { name: 'id', definition: { type: 'NUMBER', nullable: false, length: '38,0' }, basetype: 'NUMERIC' },
            { name: 'label', definition: { type: 'VARCHAR' } },
          ],
        },
      }),
    );
    expect(definition).toMatchObject({ status: 'success', operationName: 'tableDefinitionCreate', results: { id: 'out.c-typed.n', isTyped: true, primaryKey: ['id'] } });
    const table = (await api(server, 'tables/out.c-typed.n')).body;
    expect(table.columnMetadata.id).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: 'KBC.datatype.type', value: 'NUMBER', provider: 'storage' }),
        expect.objectContaining({ key: 'KBC.datatype.nullable', value: '' }),
        expect.objectContaining({ key: 'KBC.datatype.basetype', value: 'NUMERIC' }),
      ]),
    );
    const nullablePk = await api(server, 'buckets/out.c-typed/tables-definition', { json: { name: 'm', primaryKeysNames: ['id'], columns: [{ name: 'id', definition: { type: 'NUMBER', nullable: true } }] } });
    expect(nullablePk.status).toBe(400);
    await waitJob(server, await api(server, 'tables/out.c-typed.n/import-async', { json: { dataFileId: await upload('n.csv', 'id,label\n1,x\n2,y\n') } }));

    const alias = await api(server, 'buckets/out.c-typed/table-aliases', { json: { sourceTable: 'out.c-typed.n', name: 'only_x', aliasFilter: { column: 'label', values: ['x'] }, aliasColumns: ['id'] } });
    expect(alias).toMatchObject({ status: 201, body: { id: 'out.c-typed.only_x', isAlias: true, sourceTable: { id: 'out.c-typed.n' }, aliasColumnsAutoSync: false, columns: ['id'] } });
    expect(await exportRows(server, 'out.c-typed.only_x')).toEqual([['1']]);

    const meta = await api(server, 'tables/out.c-typed.n/metadata', {
      json: { provider: 'user', metadata: [{ key: 'KBC.description', value: 'Numbers' }], columnsMetadata: { 0: [{ key: 'KBC.description', value: 'The id', columnName: 'id' }] } },
    });
    expect(meta.status).toBe(201);
    expect(meta.body.metadata).toEqual([expect.objectContaining({ key: 'KBC.description', value: 'Numbers', provider: 'user' })]);
    const listed = ((await api(server, 'tables?include=metadata,columnMetadata')).body as Any[]).find((t) => t.id === 'out.c-typed.n')!;
    expect(listed.columnMetadata.id).toContainEqual(expect.objectContaining({ key: 'KBC.description', value: 'The id', provider: 'user' }));

    const first = await api(server, 'buckets/out.c-typed/metadata', { json: { provider: 'user', metadata: [{ key: 'k', value: '1' }] } });
    const second = await api(server, 'buckets/out.c-typed/metadata', { json: { provider: 'user', metadata: [{ key: 'k', value: '2' }] } });
    expect(second.status).toBe(201);
    expect(second.body).toEqual([{ id: first.body[0].id, key: 'k', value: '2', provider: 'user', timestamp: expect.any(String) }]);
    const bucket = ((await api(server, 'buckets?include=metadata')).body as Any[]).find((b) => b.id === 'out.c-typed')!;
    expect(bucket.metadata).toEqual(second.body);
  });

  it('creates tokens, triggers running with them and notification subscriptions; the read side lists them', async () => {
    expect((await api(server, 'buckets', { json: { name: 'watched', stage: 'in' } })).status).toBe(201);
    expect((await waitJob(server, await api(server, 'buckets/in.c-watched/tables-async', { json: { name: 'orders', dataFileId: await upload('orders.csv', '"id"\n') } }))).status).toBe('success');
    const token = await api(server, 'tokens', { json: { description: '[_internal] Token for triggering 5501', canManageBuckets: true, canReadAllFileUploads: true } });
    expect(token.status).toBe(201);
    expect(token.body).toMatchObject({ description: '[_internal] Token for triggering 5501', canManageBuckets: true, canReadAllFileUploads: true, isMasterToken: false });
    expect(token.body.token).toMatch(/^\d+-\d+-[0-9a-f]{40}$/);
    expect((await api(server, `tokens/${String(token.body.id)}`)).body.id).toBe(token.body.id);
    expect((await api(server, 'tokens')).body.map((t: Any) => t.id)).toContain(token.body.id);

    const trigger = { runWithTokenId: Number(token.body.id), component: 'keboola.orchestrator', configurationId: '5501', coolDownPeriodMinutes: 10, tableIds: ['in.c-watched.orders'] };
    for (const field of ['runWithTokenId', 'component', 'configurationId', 'coolDownPeriodMinutes', 'tableIds']) {
      const { [field]: _left, ...rest } = trigger as Json;
      expect((await api(server, 'triggers', { json: rest })).status).toBe(400);
    }
    expect((await api(server, 'triggers', { json: { ...trigger, runWithTokenId: 1 } })).status).toBe(400);
    expect((await api(server, 'triggers', { json: { ...trigger, coolDownPeriodMinutes: 0 } })).status).toBe(400);
    expect((await api(server, 'triggers', { json: { ...trigger, tableIds: ['in.c-main.nope'] } })).body.code).toBe('storage.tables.notFound');
    const created = await api(server, 'triggers', { json: trigger });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ runWithTokenId: trigger.runWithTokenId, component: 'keboola.orchestrator', configurationId: '5501', coolDownPeriodMinutes: 10, tables: [{ tableId: 'in.c-watched.orders' }] });
    expect((await api(server, 'triggers')).body.map((t: Any) => t.id)).toContain(created.body.id);
    expect((await api(server, `triggers/${String(created.body.id)}`)).body.configurationId).toBe('5501');
    expect((await api(server, `tokens/${String(token.body.id)}`, { method: 'DELETE' })).status).toBe(400);
    const spare = (await api(server, 'tokens', { json: { description: 'spare' } })).body;
    expect((await api(server, `tokens/${String(spare.id)}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(server, `tokens/${String(spare.id)}`)).status).toBe(404);

    const notify = async (json: unknown): Promise<Answer> => {
      const response = await fetch(`${server.url}/notification/project-subscriptions`, { method: 'POST', headers: { 'X-StorageApi-Token': TOKEN, 'Content-Type': 'application/json' }, body: JSON.stringify(json) });
      return { status: response.status, body: (await response.json()) as Any };
    };
    const subscription = { event: 'job-failed', filters: [{ field: 'branch.id', value: '101', operator: '==' }], recipient: { channel: 'email', address: 'ops@example.com' } };
    expect((await notify({ ...subscription, event: 'dummy-event' })).body.error).toMatch(/Invalid event type "dummy-event"/);
    expect((await notify({ ...subscription, recipient: { channel: 'slack' } })).status).toBe(400);
    const made = await notify(subscription);
    expect(made.status).toBe(200);
    expect(made.body).toMatchObject(subscription);
    const listed = await fetch(`${server.url}/notification/project-subscriptions`, { headers: { 'X-StorageApi-Token': TOKEN } });
    expect(((await listed.json()) as Any[]).map((s) => s.id)).toContain(made.body.id);
  });

  it('creates configurations with rows, state, order and metadata; the read side lists them with their versions', async () => {
    const created = await api(server, 'branch/default/components/keboola.ex-db-mysql/configs', {
      form: { configurationId: '7001', name: 'Restored', description: 'd', configuration: JSON.stringify({ parameters: { '#password': 'KBC::ProjectSecure::abc' } }), state: '{}', changeDescription: 'Restored' },
    });
    expect(created).toMatchObject({ status: 201, body: { id: '7001', name: 'Restored', version: 1, isDisabled: false, configuration: { parameters: { '#password': 'KBC::ProjectSecure::abc' } }, state: {} } });
    expect((await api(server, 'components/keboola.ex-db-mysql/configs', { json: { configurationId: '7001', name: 'again' } })).status).toBe(400);
    // The stack's components are the fixture's; another is refused and not listed.
    const index = (await api(server, '')).body;
    expect(index.components.map((c: Any) => c.id)).toContain('keboola.ex-db-mysql');
    expect((await api(server, 'branch/default/components/keboola.not-on-stack/configs', { json: { name: 'x' } })).body.code).toBe('storage.components.notFound');

    const base = 'branch/default/components/keboola.ex-db-mysql/configs/7001';
    for (const rowId of ['r1', 'r2']) {
      const row = await api(server, `${base}/rows`, { json: { rowId, name: rowId, configuration: { table: rowId }, state: null, isDisabled: null } });
      expect(row).toMatchObject({ status: 201, body: { id: rowId, version: 1, configuration: { table: rowId } } });
    }
    expect((await api(server, `${base}/rows/r2`, { method: 'PUT', json: { configuration: { table: 'r2b' }, isDisabled: true, changeDescription: 'Row r2 restored from backup' } })).body).toMatchObject({ version: 2, isDisabled: true });
    expect((await api(server, `${base}/rows/r1/state`, { method: 'PUT', json: { state: { lastId: 5 } } })).body.state).toEqual({ lastId: 5 });
    expect((await api(server, `${base}/state`, { method: 'PUT', json: { state: { component: { at: 1 } } } })).body.state).toEqual({ component: { at: 1 } });
    expect((await api(server, base, { method: 'PUT', json: { rowsSortOrder: ['r2'] } })).status).toBe(400);
    const ordered = await api(server, base, { method: 'PUT', json: { rowsSortOrder: ['r2', 'r1'], changeDescription: 'Restored rows sort order from backup' } });
    expect(ordered.body).toMatchObject({ rowsSortOrder: ['r2', 'r1'], version: 5 });
    const metadata = await api(server, `${base}/metadata`, { json: { metadata: [{ key: 'KBC.configuration.folderName', value: 'x' }] } });
    expect(metadata).toMatchObject({ status: 201, body: [{ key: 'KBC.configuration.folderName', value: 'x' }] });
    expect((await api(server, `${base}/metadata`)).body).toEqual(metadata.body);

    const components = (await api(server, 'components?include=configuration,rows,state')).body as Any[];
    const config = components.find((c) => c.id === 'keboola.ex-db-mysql')!.configurations[0];
    expect(config).toMatchObject({ id: '7001', version: 5, state: { component: { at: 1 } }, rowsSortOrder: ['r2', 'r1'] });
    expect(config.rows.map((r: Any) => [r.id, r.state, r.configuration])).toEqual([
      ['r1', { lastId: 5 }, { table: 'r1' }],
      ['r2', {}, { table: 'r2b' }],
    ]);
    const versions = (await api(server, 'components/keboola.ex-db-mysql/configs/7001/versions?include=configuration')).body as Any[];
    expect(versions.map((v) => v.version)).toEqual([5, 4, 3, 2, 1]);
    expect(versions[4]).toMatchObject({ changeDescription: 'Restored', configuration: { parameters: { '#password': 'KBC::ProjectSecure::abc' } } });
    expect((await api(server, 'components/keboola.ex-db-mysql/configs/7001/rows/r2/versions')).body.map((v: Any) => v.version)).toEqual([2, 1]);
  });
});

describe("Storage API test server: the calls of Keboola's restore engine, as its PHP client sends them", () => {
  let server: StorageApiServer;
  beforeAll(async () => {
    server = await start('azure');
  });
  afterAll(async () => {
    await server.stop();
  });

  it('header-only create, then a sliced headerless import with columns; configuration create with nulls, then update, rows, state', async () => {
    // keboola/php-kbc-project-restore worker-create-table.php + storage-api-php-client createTableAsync / writeTableAsyncDirect.
    expect((await api(server, 'buckets', { json: { name: 'main', stage: 'in', description: '', backend: 'snowflake', displayName: 'main' } })).status).toBe(201);
    const header = (await api(server, 'files/prepare', { json: { isPublic: false, isPermanent: false, isEncrypted: true, isSliced: false, notify: false, name: 'customers.csv.gz', sizeBytes: 20, tags: ['file-import'], federationToken: true } })).body;
    await (await uploader(server, header)).put('', gzipSync('"id","name"\n'));
    const created = await waitJob(
      server,
      await api(server, 'buckets/in.c-main/tables-async', {
        json: { bucketId: 'in.c-main', name: 'customers', delimiter: ',', enclosure: '"', escapedBy: '', primaryKey: 'id', distributionKey: null, transactional: false, columns: null, syntheticPrimaryKeyEnabled: null, dataFileId: header.id },
      }),
    );
    expect(created.results).toMatchObject({ id: 'in.c-main.customers', columns: ['id', 'name'], primaryKey: ['id'], rowsCount: 0 });
    expect((await api(server, 'tables/in.c-main.customers', { method: 'PUT', json: { displayName: 'Customers' } })).body.displayName).toBe('Customers');

    const data = (await api(server, 'files/prepare', { json: { isEncrypted: true, isSliced: true, name: 'in.c-main.customers', sizeBytes: 40, federationToken: true } })).body;
    const up = await uploader(server, data);
    await up.put('in.c-main.customers.part_0.csv.gz', gzipSync('"1","Ann"\n'));
    await up.put('in.c-main.customers.part_1.csv.gz', gzipSync('"2","Bob"\n'));
    await up.put('manifest', JSON.stringify({ entries: [0, 1].map((i) => ({ url: up.entry(`in.c-main.customers.part_${i}.csv.gz`) })) }));
    const imported = await waitJob(server, await api(server, 'tables/in.c-main.customers/import-async', { json: { dataFileId: data.id, columns: ['id', 'name'], incremental: false } }));
    expect(imported).toMatchObject({ status: 'success', operationName: 'tableImport', tableId: 'in.c-main.customers', results: { totalRowsCount: 2 } });
    expect(await exportRows(server, 'in.c-main.customers')).toEqual([['1', 'Ann'], ['2', 'Bob']]);

    const base = 'branch/default/components/keboola.ex-db-mysql/configs';
    const config = await api(server, base, { json: { name: 'N', description: 'D', configurationId: '9001', configuration: null, state: null, changeDescription: null, isDisabled: null } });
    expect(config.body).toMatchObject({ id: '9001', configuration: {}, state: {}, isDisabled: false, version: 1 });
    await api(server, `${base}/9001`, { method: 'PUT', json: { name: 'N', description: 'D', configuration: { parameters: { '#secret': 'KBC::ProjectSecure::x' } }, changeDescription: 'Configuration 9001 restored from backup' } });
    await api(server, `${base}/9001/state`, { method: 'PUT', json: { state: { component: { a: 1 } } } });
    await api(server, `${base}/9001/rows`, { json: { rowId: '1', configuration: null, state: null, changeDescription: null, name: null, description: null, isDisabled: null } });
    await api(server, `${base}/9001/rows/1`, { method: 'PUT', json: { name: 'r', description: '', configuration: { q: 1 }, isDisabled: false, changeDescription: 'Row 1 restored from backup' } });
    await api(server, `${base}/9001/rows/1/state`, { method: 'PUT', json: { state: { s: 2 } } });
    const listed = ((await api(server, 'components?include=configuration,rows,state')).body as Any[])[0]!.configurations[0];
    expect(listed).toMatchObject({
      id: '9001',
      name: 'N',
      configuration: { parameters: { '#secret': 'KBC::ProjectSecure::x' } },
      state: { component: { a: 1 } },
      rows: [{ id: '1', name: 'r', configuration: { q: 1 }, state: { s: 2 } }],
    });
    expect(server.state.requests['POST buckets/{id}/tables-async']).toBe(1);
  });
});

describe('Storage API test server: every fixture table copied into an empty project through the write side', () => {
  let source: StorageApiServer;
  let target: StorageApiServer;
  beforeAll(async () => {
    source = await start('aws', { emptyProject: false, sliceBytes: 200 });
    target = await start('gcp');
  });
  afterAll(async () => {
    await Promise.all([source.stop(), target.stop()]);
  });

  it('buckets, tables (sliced, headerless, with columns and primary keys), aliases and metadata read back the same', async () => {
    const buckets = (await api(source, 'buckets?include=metadata')).body as Any[];
    const tables = (await api(source, 'tables?include=buckets,columns,metadata,columnMetadata')).body as Any[];
    for (const bucket of buckets.filter((b) => b.stage !== 'sys')) {
      const created = await api(target, 'buckets', { json: { name: String(bucket.name).replace(/^c-/, ''), stage: bucket.stage, description: bucket.description, backend: bucket.backend } });
      expect(created.body.id).toBe(bucket.id);
      for (const provider of new Set((bucket.metadata as Any[]).map((m) => m.provider as string))) {
        const metadata = (bucket.metadata as Any[]).filter((m) => m.provider === provider).map((m) => ({ key: m.key, value: m.value }));
        expect((await api(target, `buckets/${String(bucket.id)}/metadata`, { json: { provider, metadata } })).status).toBe(201);
      }
    }
    const copied = tables.filter((t) => !t.isAlias && buckets.some((b) => b.id === t.bucket.id && b.stage !== 'sys'));
    expect(copied.length).toBeGreaterThan(2);
    for (const table of copied) {
      const rows = await exportRows(source, table.id);
      // Re-slice the rows as a takeout holds them: headerless gzipped slices, one sliced file.
      const slices = [rows.slice(0, Math.ceil(rows.length / 2)), rows.slice(Math.ceil(rows.length / 2))].map((part) => gzipSync(part.length ? csv(part) : ''));
      const prepared = (await api(target, 'files/prepare', { json: { name: table.id, isSliced: true, federationToken: true, sizeBytes: slices[0]!.length + slices[1]!.length } })).body;
      const up = await uploader(target, prepared);
      for (const [i, slice] of slices.entries()) await up.put(`${String(table.id)}.part_${i}.csv.gz`, slice);
      await up.put('manifest', JSON.stringify({ entries: slices.map((_, i) => ({ url: up.entry(`${String(table.id)}.part_${i}.csv.gz`) })) }));
      const job = await waitJob(target, await api(target, `buckets/${String(table.bucket.id)}/tables-async`, { json: { name: table.name, dataFileId: prepared.id, primaryKey: (table.primaryKey as string[]).join(','), columns: table.columns } }));
      expect(job).toMatchObject({ status: 'success', tableId: table.id });
      for (const provider of new Set((table.metadata as Any[]).map((m) => m.provider as string))) {
        const metadata = (table.metadata as Any[]).filter((m) => m.provider === provider).map((m) => ({ key: m.key, value: m.value }));
        await api(target, `tables/${String(table.id)}/metadata`, { json: { provider, metadata } });
      }
      const columnMetadata = Array.isArray(table.columnMetadata) ? {} : (table.columnMetadata as Record<string, Any[]>);
      for (const [column, items] of Object.entries(columnMetadata)) {
        for (const provider of new Set(items.map((m) => m.provider as string))) {
          const list = items.filter((m) => m.provider === provider).map((m) => ({ key: m.key, value: m.value, columnName: column }));
          expect((await api(target, `tables/${String(table.id)}/metadata`, { json: { provider, columnsMetadata: [list] } })).status).toBe(201);
        }
      }
      expect((await exportRows(target, table.id)).sort()).toEqual(rows.sort());
    }
    const aliases = tables.filter((t) => t.isAlias && copied.some((c) => c.id === t.sourceTable.id) && buckets.some((b) => b.id === t.bucket.id && b.stage !== 'sys'));
    expect(aliases.length).toBeGreaterThan(0);
    for (const alias of aliases) {
      const body = { sourceTable: alias.sourceTable.id, name: alias.name, ...(alias.aliasFilter ? { aliasFilter: alias.aliasFilter } : {}), ...(alias.aliasColumnsAutoSync === false ? { aliasColumns: alias.columns } : {}) };
      expect((await api(target, `buckets/${String(alias.bucket.id)}/table-aliases`, { json: body })).status).toBe(201);
      expect((await exportRows(target, alias.id)).sort()).toEqual((await exportRows(source, alias.id)).sort());
    }
    const strip = (list: Any[]): Any[] => list.map((m) => ({ key: m.key, value: m.value, provider: m.provider }));
    const after = (await api(target, 'tables?include=columns,metadata,columnMetadata')).body as Any[];
    for (const table of copied) {
      const back = after.find((t) => t.id === table.id)!;
      expect([back.columns, back.primaryKey, strip(back.metadata)]).toEqual([table.columns, table.primaryKey, strip(table.metadata)]);
      const columns = (value: Any): Record<string, Any[]> => Object.fromEntries(Object.entries(Array.isArray(value) ? {} : value).map(([c, l]) => [c, strip(l as Any[])]));
      expect(columns(back.columnMetadata)).toEqual(columns(table.columnMetadata));
    }
    const bucketsBack = (await api(target, 'buckets?include=metadata')).body as Any[];
    expect(bucketsBack.map((b) => [b.id, b.description, strip(b.metadata)])).toEqual(
      buckets.filter((b) => b.stage !== 'sys').map((b) => [b.id, b.description, strip(b.metadata)]),
    );
  });
});
