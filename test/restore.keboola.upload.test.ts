/**
 * `takeout restore --to keboola+…`: the upload of a table's slices into the stack's file storage when its
 * credentials end mid-upload, on each cloud (aws through the S3 guard, which checks session tokens and the
 * SSE header; azure with a real SAS in Azurite; gcp with tokens the GCS test server lets expire). Credentials
 * that last less than the renewal margin are renewed before every slice (gcp: `PUT files/{id}/refresh`; aws
 * and azure: a new file, the table loaded from each in turn); credentials refused although not expired are
 * renewed once and the write sent again; refused again, the restore exits 4 naming the table and the file.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { errorLines, removeTempFolders, runCli, tempFolder, type CliResult } from './helpers/cli.js';
import { OTHER_BUCKET } from './helpers/s3.js';
import { startStorageApi, type Provider, type StorageApiOptions, type StorageApiServer } from './keboola/server.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url));
const TOKEN_A = 'kbc-source-token-up1-SECRET';
const TOKEN_B = 'kbc-target-token-up2-SECRET';
const s3Endpoint = inject('s3Endpoint');
const azureConnectionString = inject('azureConnectionString');
/** Under the upload's 10-minute renewal margin: credentials are renewed before every slice, and last for one. */
const SHORT_TTL_MS = 20_000;
const TEST_TIMEOUT_MS = 120_000;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const env = (token: string, api?: StorageApiServer): Record<string, string> => ({ KBC_STORAGE_TOKEN: token, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint, ...(api?.storageEnv ?? {}) });

function expectCode(result: CliResult, code: number): void {
  expect(result.code, `stdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr}`).toBe(code);
}

let a: StorageApiServer;
let takeout: string;
/** Every table of the takeout with its rows, sorted (a multiset). */
const rowsA = new Map<string, string[]>();
let ordersSlices = 0;

beforeAll(async () => {
  a = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, fixtureDir: FIXTURE, token: TOKEN_A, jobPolls: { waiting: 0, processing: 1 } });
  takeout = join(await tempFolder('kbupload'), 'a');
  expectCode(await runCli(['run', '--source', `keboola+${a.url}`, '--dest', takeout, '--no-progress', '--include', 'in.c-main.*'], { env: env(TOKEN_A) }), 0);
  const manifest = JSON.parse(await readFile(join(takeout, 'takeout-manifest.json'), 'utf8')) as Json;
  for (const table of manifest.tables as Json[]) {
    const rows: string[] = [];
    for (const slice of table.slices as Json[]) rows.push(...(parse(gunzipSync(await readFile(join(takeout, String(slice.key))))) as string[][]).map((r) => JSON.stringify(r)));
    rowsA.set(String(table.id), rows.sort());
    if (table.id === 'in.c-main.orders') ordersSlices = (table.slices as Json[]).length;
  }
}, TEST_TIMEOUT_MS);

afterAll(async () => {
  await a?.stop();
  await removeTempFolders();
});

function target(provider: Provider, more: Partial<StorageApiOptions> = {}): Promise<StorageApiServer> {
  return startStorageApi({
    s3Endpoint,
    bucket: OTHER_BUCKET,
    fixtureDir: FIXTURE,
    token: TOKEN_B,
    emptyProject: true,
    provider,
    azureConnectionString,
    jobPolls: { waiting: 0, processing: 1 },
    guardS3: provider === 'aws',
    ...more,
  });
}

function restore(b: StorageApiServer): Promise<CliResult> {
  return runCli(['restore', takeout, '--to', `keboola+${b.url}`, '--debug'], { env: env(TOKEN_B, b), timeoutMs: TEST_TIMEOUT_MS });
}

/** The restored project holds every table of the takeout with the same rows. */
function expectSameRows(b: StorageApiServer): void {
  expect([...b.state.tableData.keys()].sort()).toEqual([...rowsA.keys()].sort());
  for (const [id, rows] of rowsA) expect(b.state.tableData.get(id)!.rows.map((r) => JSON.stringify(r)).sort(), id).toEqual(rows);
}

function expectNothingPrinted(result: CliResult, b: StorageApiServer): void {
  const secrets = b.secretsHandedOut();
  expect(secrets.length).toBeGreaterThan(0);
  for (const secret of [TOKEN_B, ...secrets]) expect(result.stdout + result.stderr).not.toContain(secret);
}

const count = (b: StorageApiServer, endpoint: string): number => b.state.log.filter((l) => l.endpoint === endpoint).length;

describe.each(['aws', 'azure', 'gcp'] as const)('restore into a Keboola project on a %s stack: upload credentials', (provider: Provider) => {
  it('that expire mid-upload are renewed before each slice: the restore succeeds with the same rows', { timeout: TEST_TIMEOUT_MS }, async () => {
    expect(ordersSlices).toBeGreaterThan(2);
    const b = await target(provider, { credentialsTtlMs: SHORT_TTL_MS });
    try {
      const result = await restore(b);
      expectCode(result, 0);
      expectSameRows(b);
      const orders = b.state.log.filter((l) => l.endpoint === 'POST tables/{id}/import-async' && l.path.includes('in.c-main.orders')).length;
      if (provider === 'gcp') {
        // The same file, its credentials refreshed before every slice after the first and before the manifest.
        expect(count(b, 'PUT files/{id}/refresh')).toBeGreaterThanOrEqual(ordersSlices);
        expect(orders).toBe(1);
      } else {
        // No refresh for aws or azure files (apiary.apib): a new file per slice here, each imported in turn.
        expect(count(b, 'PUT files/{id}/refresh')).toBe(0);
        expect(orders).toBe(ordersSlices);
      }
      expectNothingPrinted(result, b);
      if (provider === 'aws') {
        // Every object put or multipart upload carried the SSE the answer asked for (the guard refuses others).
        const created = b.fileStorageWrites().filter((w) => w.operation === 'PutObject' || w.operation === 'CreateMultipartUpload');
        expect(created.length).toBeGreaterThan(ordersSlices);
        for (const write of created) expect(write.sse, write.key).toBe('AES256');
      }
    } finally {
      await b.stop();
    }
  });

  it('refused although not expired are renewed once and the write sent again', { timeout: TEST_TIMEOUT_MS }, async () => {
    const b = await target(provider, { faults: { refusedUploadCredentials: 1 } });
    try {
      const result = await restore(b);
      expectCode(result, 0);
      expect(b.state.faults.refusedUploadCredentials).toBe(0);
      expectSameRows(b);
      expectNothingPrinted(result, b);
    } finally {
      await b.stop();
    }
  });

  it('refused again after renewal exit 4 naming the table and the file, creating no table', { timeout: TEST_TIMEOUT_MS }, async () => {
    const b = await target(provider, { faults: { refusedUploadCredentials: 1_000 } });
    try {
      const result = await restore(b);
      expectCode(result, 4);
      // Tables load five at once: each refused one's error, then the run's, name the table and the file; a slice's, the slice too.
      const errors = errorLines(result.stderr);
      expect(errors.length, result.stderr).toBeGreaterThan(0);
      for (const line of errors) expect(line).toMatch(/in\.c-main\.\w+.*: file \d+.*\[AUTH, exit 4\]$/);
      expect(errors.some((line) => /table in\.c-main\.\w+: file \d+, slice \S+\.part_0\.csv\.gz: /.test(line)), result.stderr).toBe(true);
      expect(b.state.tableData.size).toBe(0);
      expectNothingPrinted(result, b);
    } finally {
      await b.stop();
    }
  });
});

describe('the aws test stack checks server-side encryption', () => {
  it('refuses an upload without the SSE header files/prepare asked for, and takes it with', async () => {
    const b = await target('aws');
    try {
      const answer = await fetch(`${b.url}/v2/storage/files/prepare`, {
        method: 'POST',
        headers: { 'X-StorageApi-Token': TOKEN_B, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'x.csv', federationToken: true, isEncrypted: true }),
      });
      const file = (await answer.json()) as Json;
      const up = file.uploadParams as Json;
      expect(up['x-amz-server-side-encryption']).toBe('AES256');
      const s3 = new S3Client({
        endpoint: b.storageEnv.TAKEOUT_KEBOOLA_S3_ENDPOINT,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: up.credentials.AccessKeyId, secretAccessKey: up.credentials.SecretAccessKey, sessionToken: up.credentials.SessionToken },
      });
      try {
        await expect(s3.send(new PutObjectCommand({ Bucket: up.bucket, Key: up.key, Body: 'a\n' }))).rejects.toMatchObject({ name: 'AccessDenied' });
        await s3.send(new PutObjectCommand({ Bucket: up.bucket, Key: up.key, Body: 'a\n', ServerSideEncryption: 'AES256' }));
      } finally {
        s3.destroy();
      }
    } finally {
      await b.stop();
    }
  });
});
