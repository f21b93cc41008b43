/**
 * `takeout files download` of manifests whose entries are on Azure Blob Storage (Azurite, global setup) and
 * Google Cloud Storage (the GCS test server): the Storage API's sliced-file form (`azure://ACCOUNT.blob.core.
 * windows.net/CONTAINER/KEY`, `gs://BUCKET/KEY`), read with the user's own credentials for that cloud, and only
 * in the manifest's own container or bucket unless --allow-bucket says otherwise.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { blobNames, rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { removeTempFolders, runCli, tempFolder } from './helpers/cli.js';
import { uniquePrefix } from './helpers/s3.js';
import { startGcsServer, type GcsServer } from './gcs/server.js';

const connectionString = inject('azureConnectionString');
const AZURE_ENV = { AZURE_STORAGE_CONNECTION_STRING: connectionString };
/** Azurite's well-known account: the host a real stack's manifest would name is ACCOUNT.blob.core.windows.net. */
const ACCOUNT = /AccountName=([^;]+)/.exec(connectionString)?.[1] ?? 'devstoreaccount1';
const BUCKET = 'kbc-files';
const PARTS = ['1,"a"\n2,"b"\n', '3,"c"\n', '4,"d"\n5,"e"\n'];
const WHOLE = `"id","name"\n${PARTS.join('')}`;

let container: ContainerClient;
let gcs: GcsServer;
const prefix = uniquePrefix('files-clouds');

const manifest = (urls: string[]): string => JSON.stringify({ entries: urls.map((url) => ({ url, mandatory: true })) });

async function gcsPut(name: string, body: Buffer | string): Promise<void> {
  const response = await fetch(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(name)}`, { method: 'POST', body });
  expect(response.status).toBe(200);
}

beforeAll(async () => {
  container = await rawContainer(connectionString);
  gcs = await startGcsServer({ buckets: [BUCKET, 'other-bucket'] });
  const urls: string[] = [];
  for (const [i, part] of PARTS.entries()) {
    const key = `${prefix}123.csv.gz_0_0_${i}.csv.gz`;
    await container.getBlockBlobClient(key).uploadData(gzipSync(part));
    await gcsPut(key, gzipSync(part));
    urls.push(key);
  }
  await container.getBlockBlobClient(`${prefix}123.csv.gzmanifest`).uploadData(Buffer.from(manifest(urls.map((k) => `azure://${ACCOUNT}.blob.core.windows.net/${TEST_CONTAINER}/${k}`))));
  await gcsPut(`${prefix}123.csv.gzmanifest`, manifest(urls.map((k) => `gs://${BUCKET}/${k}`)));
});

afterAll(async () => {
  for (const name of await blobNames(container, prefix)) await container.deleteBlob(`${prefix}${name}`);
  await gcs?.close();
  await removeTempFolders();
});

describe('files download of slices on Azure Blob Storage and Google Cloud Storage', () => {
  it('merges a Storage API manifest on Azure (azure://ACCOUNT.blob.core.windows.net/… entries)', async () => {
    const out = path.join(await tempFolder('files-azure'), 'out.csv');
    const result = await runCli(['files', 'download', `azure://${TEST_CONTAINER}/${prefix}123.csv.gzmanifest`, '--columns', 'id,name', '-o', out, '-q'], { env: AZURE_ENV });
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(out, 'utf8')).toBe(WHOLE);
  });

  it('merges a Storage API manifest on GCS (gs://BUCKET/… entries)', async () => {
    const out = path.join(await tempFolder('files-gcs'), 'out.csv');
    const result = await runCli(['files', 'download', `gs://${BUCKET}/${prefix}123.csv.gzmanifest`, '--columns', 'id,name', '-o', out, '-q'], { env: { STORAGE_EMULATOR_HOST: gcs.url } });
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(out, 'utf8')).toBe(WHOLE);
  });

  it('reads a local manifest of cloud entries only with --allow-bucket, naming the container or bucket and the flag', async () => {
    const dir = await tempFolder('files-allow');
    const key = `${prefix}123.csv.gz_0_0_0.csv.gz`;
    const cases = [
      { url: `azure://${ACCOUNT}.blob.core.windows.net/${TEST_CONTAINER}/${key}`, allow: `${ACCOUNT}/${TEST_CONTAINER}`, env: AZURE_ENV },
      { url: `gs://${BUCKET}/${key}`, allow: BUCKET, env: { STORAGE_EMULATOR_HOST: gcs.url } },
    ];
    for (const { url, allow, env } of cases) {
      const file = path.join(dir, 'm.manifest');
      await writeFile(file, manifest([url]));
      const out = path.join(dir, `${allow.replace('/', '-')}.csv`);
      const refused = await runCli(['files', 'download', file, '-o', out], { env });
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(url);
      expect(refused.stderr).toContain(`--allow-bucket ${allow}`);
      const allowed = await runCli(['files', 'download', file, '--allow-bucket', allow, '--no-header', '-o', out, '-q'], { env });
      expect(allowed.code, allowed.stderr).toBe(0);
      expect(await readFile(out, 'utf8')).toBe(PARTS[0]);
    }
  });

  it("refuses an entry in another container or bucket than the manifest's before fetching anything", async () => {
    const dir = await tempFolder('files-other');
    const cases = [
      { name: `${prefix}other-azure.manifest`, url: `azure://${ACCOUNT}.blob.core.windows.net/other-container/x.csv.gz`, put: (n: string, b: string) => container.getBlockBlobClient(n).uploadData(Buffer.from(b)), arg: (n: string) => `azure://${TEST_CONTAINER}/${n}`, env: AZURE_ENV },
      { name: `${prefix}other-gcs.manifest`, url: 'gs://other-bucket/x.csv.gz', put: gcsPut, arg: (n: string) => `gs://${BUCKET}/${n}`, env: { STORAGE_EMULATOR_HOST: gcs.url } },
    ];
    for (const c of cases) {
      await c.put(c.name, manifest([c.url]));
      const result = await runCli(['files', 'download', c.arg(c.name), '-o', path.join(dir, 'out.csv')], { env: c.env });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(c.url);
      expect(result.stderr).toMatch(/which this manifest may not read/);
    }
  });

  it('files merge leaves cloud entries to files download', async () => {
    const dir = await tempFolder('files-merge-cloud');
    const file = path.join(dir, 'm.manifest');
    await writeFile(file, manifest([`gs://${BUCKET}/${prefix}123.csv.gz_0_0_0.csv.gz`]));
    const result = await runCli(['files', 'merge', '--manifest', file, '-o', path.join(dir, 'out.csv')]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/Google Cloud Storage: use takeout files download/);
  });
});
