/**
 * `takeout run` of the demo project and of the tricky test project into azure:// (Azurite, global setup) and
 * gs:// (the GCS test server, in-process), read back through each cloud's own client and compared byte for
 * byte with the same run into a local folder; `takeout verify` clean on both.
 *
 * What legitimately differs: in takeout-manifest.json `runId`, `destination`, `startedAt`, `finishedAt`,
 * and the sha256/bytes of the per-table slice manifests in its `files` list; in manifests/<id>.manifest
 * each entry's `url` on GCS, `gs://BUCKET/PREFIX/KEY` where a local folder has the relative key (Azure's are
 * relative keys too, so that verify reads back what an emulator or a custom endpoint holds). Everything else (every slice, every layout file) is the same bytes.
 */
import path from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TakeoutManifest } from '../src/manifests/takeout.js';
import { rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { localStore, readTakeout, removeTempFolders, runCli, tempFolder, type Store } from './helpers/cli.js';
import { azureReadBack, gcsReadBack, gcsTestClient, uncommittedBlobs } from './helpers/clouds.js';
import { expectOk, trickyProject } from './helpers/projects.js';
import { uniquePrefix } from './helpers/s3.js';
import { startGcsServer, type GcsServer } from './gcs/server.js';

const connectionString = inject('azureConnectionString');
const BUCKET = 'takeout-test';
const SETTINGS = ['--slice-size', '64KB', '-q'];

let gcs: GcsServer;
let storage: Storage;
let container: ContainerClient;

beforeAll(async () => {
  gcs = await startGcsServer({ buckets: [BUCKET] });
  storage = gcsTestClient(gcs.url);
  container = await rawContainer(connectionString);
});

afterAll(async () => {
  await gcs?.close();
  await removeTempFolders();
});

const envOf = (cloud: 'azure' | 'gs'): Record<string, string> =>
  cloud === 'azure' ? { AZURE_STORAGE_CONNECTION_STRING: connectionString } : { STORAGE_EMULATOR_HOST: gcs.url };

/** takeout-manifest.json without the fields that name the run and where it went. */
function comparable(manifest: TakeoutManifest): unknown {
  const { runId: _runId, destination: _destination, startedAt: _startedAt, finishedAt: _finishedAt, files, ...rest } = manifest;
  return { ...rest, files: files.map((file) => (file.key.startsWith('manifests/') ? { key: file.key } : file)) };
}

/** Every key of `cloud` holds the bytes of the same key in `local` (slice manifests: the urls made relative). */
async function expectSameTakeout(local: Store, cloud: Store): Promise<void> {
  const keys = await local.list();
  expect(await cloud.list()).toEqual(keys);
  for (const key of keys) {
    const [mine, theirs] = await Promise.all([local.get(key), cloud.get(key)]);
    if (key === 'takeout-manifest.json') {
      expect(comparable(JSON.parse(theirs.toString('utf8')) as TakeoutManifest), key).toEqual(comparable(JSON.parse(mine.toString('utf8')) as TakeoutManifest));
    } else if (key.startsWith('manifests/')) {
      const manifest = JSON.parse(theirs.toString('utf8')) as { entries: { url: string }[] };
      for (const entry of manifest.entries) {
        expect(entry.url.startsWith(cloud.urlPrefix), `${entry.url} starts with ${cloud.urlPrefix}`).toBe(true);
        entry.url = entry.url.slice(cloud.urlPrefix.length);
      }
      expect(manifest, key).toEqual(JSON.parse(mine.toString('utf8')));
    } else {
      expect(theirs.equals(mine), `${key}: ${theirs.length} bytes, local ${mine.length}`).toBe(true);
    }
  }
}

describe.each([
  { project: 'demo', source: async () => 'demo' },
  { project: 'tricky', source: async () => (await trickyProject('cloud-tricky')).root },
])('the $project project round-trips through azure:// and gs://', ({ project, source }) => {
  let local: Store;
  let azure: Store;
  let google: Store;
  let azureUrl: string;

  beforeAll(async () => {
    const from = await source();
    const out = path.join(await tempFolder(`cloud-${project}`), 'out');
    const azurePrefix = uniquePrefix(`roundtrip-${project}`);
    const gcsPrefix = uniquePrefix(`roundtrip-${project}`);
    const runs = await Promise.all([
      runCli(['run', '--source', from, '--dest', out, ...SETTINGS]),
      runCli(['run', '--source', from, '--dest', `azure://${TEST_CONTAINER}/${azurePrefix}`, ...SETTINGS], { env: envOf('azure') }),
      runCli(['run', '--source', from, '--dest', `gs://${BUCKET}/${gcsPrefix}`, ...SETTINGS], { env: envOf('gs') }),
    ]);
    for (const run of runs) expectOk(run);
    azureUrl = `azure://${TEST_CONTAINER}/${azurePrefix}`;
    local = localStore(out);
    azure = azureReadBack(container, azurePrefix);
    google = gcsReadBack(storage, BUCKET, gcsPrefix);
    expect(await uncommittedBlobs(container, azurePrefix)).toEqual([]);
  });

  it('has several slices for some table and every table of the source', async () => {
    const takeout = await readTakeout(local);
    expect(takeout.manifest.status).toBe('complete');
    expect(Math.max(...takeout.manifest.tables.map((t) => t.slices.length))).toBeGreaterThan(2);
    if (project === 'tricky') {
      const { tables } = await trickyProject('cloud-tricky-ids');
      expect(takeout.manifest.tables.map((t) => t.id).sort()).toEqual(tables);
    }
  });

  it.each(['azure', 'gs'] as const)('%s: every object reads back through the cloud’s own client byte-identical to the local run', async (cloud) => {
    await expectSameTakeout(local, cloud === 'azure' ? azure : google);
  });

  it.each(['azure', 'gs'] as const)('%s: takeout verify is clean', async (cloud) => {
    const store = cloud === 'azure' ? azure : google;
    const url = cloud === 'azure' ? azureUrl : store.urlPrefix;
    const verify = await runCli(['verify', url], { env: envOf(cloud) });
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);
  });
});
