import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { errorLines, jsonLines, removeTempFolders, runCli, startCli, tempFolder, walkFiles } from './helpers/cli.js';
import { OTHER_BUCKET } from './helpers/s3.js';
import { startStorageApi, type Provider, type StorageApiServer } from './keboola/server.js';
import { openFileStorage, registerFileSecrets, sasAccount } from '../src/sources/keboola/file-storage.js';
import { parseConnectionString } from '../src/stores/azure/credentials.js';
import { redact } from '../src/secrets.js';

/**
 * Keboola projects on Azure and GCP stacks: the Storage API test server with its files in Azurite (a real
 * container SAS) or in the GCS test server (bearer tokens that expire), taken out as the same project on AWS.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url));
const TOKEN = 'kbc-test-token-clouds-SECRET';
const s3Endpoint = inject('s3Endpoint');
const azureConnectionString = inject('azureConnectionString');
/** A run of the fixture project takes a few seconds; with refreshes and two runs per test, well under this. */
const TEST_TIMEOUT_MS = 90_000;

type StartOptions = Partial<Parameters<typeof startStorageApi>[0]>;

function server(provider: Provider, options: StartOptions = {}): Promise<StorageApiServer> {
  return startStorageApi({
    s3Endpoint,
    bucket: OTHER_BUCKET,
    token: TOKEN,
    fixtureDir: FIXTURE,
    jobPolls: { waiting: 0, processing: 1 },
    provider,
    azureConnectionString,
    ...options,
  });
}

function kbc(api: StorageApiServer, args: string[]): ReturnType<typeof runCli> {
  return runCli([...args, '--source', `keboola+${api.url}`], {
    env: { KBC_STORAGE_TOKEN: TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint, ...api.storageEnv },
    timeoutMs: TEST_TIMEOUT_MS,
  });
}

/** The secrets in every file detail handed out with credentials: none may be printed. */
const handedOutSecrets = (api: StorageApiServer): string[] => api.secretsHandedOut();

afterAll(removeTempFolders);

/**
 * What differs between two takeouts of the same project from two stacks: in takeout-manifest.json the run's
 * id and times, where it ran from (the stack's URL, in `source` and `project.meta.stack`) and to
 * (`destination`). Everything else there, and every other file (slices, slice manifests, buckets.json,
 * tables.json, configurations), is compared byte for byte.
 */
function comparableManifest(text: string, stack: string, dest: string, more: readonly string[]): unknown {
  const manifest = JSON.parse(text.split(stack).join('STACK')) as Record<string, unknown>;
  expect(manifest.destination).toBe(`${dest}/`);
  for (const field of ['runId', 'startedAt', 'finishedAt', 'destination', ...more]) delete manifest[field];
  return manifest;
}

/** `more`: manifest fields that differ too (`resumed` after a --resume, absent from a run in one go). */
async function expectSameTakeout(actual: { dest: string; stack: string }, expected: { dest: string; stack: string }, more: readonly string[] = []): Promise<void> {
  const files = await walkFiles(actual.dest);
  expect(files).toEqual(await walkFiles(expected.dest));
  for (const file of files) {
    const [a, b] = await Promise.all([readFile(join(actual.dest, file)), readFile(join(expected.dest, file))]);
    if (file === 'takeout-manifest.json') {
      expect(comparableManifest(a.toString(), actual.stack, actual.dest, more), file).toEqual(comparableManifest(b.toString(), expected.stack, expected.dest, more));
    } else {
      expect(a.equals(b), `${file} differs`).toBe(true);
    }
  }
}

let awsDest: string;
let awsStack: string;
let awsFileId: number;
let awsMerged: Buffer;

beforeAll(async () => {
  const api = await server('aws');
  try {
    awsDest = join(await tempFolder('kbc-clouds-aws'), 't');
    awsStack = api.url;
    const result = await kbc(api, ['run', '--dest', awsDest, '--no-progress']);
    expect(result.code, result.stderr).toBe(0);
    awsFileId = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!.id;
    const out = join(await tempFolder('kbc-clouds-aws-file'), 'orders.csv');
    const download = await kbc(api, ['files', 'download', String(awsFileId), '-o', out, '-q']);
    expect(download.code, download.stderr).toBe(0);
    awsMerged = await readFile(out);
  } finally {
    await api.stop();
  }
}, TEST_TIMEOUT_MS);

describe.each(['azure', 'gcp'] as const)('a Keboola project on a %s stack', (provider) => {
  it('is taken out byte-identical to the same project on AWS', { timeout: TEST_TIMEOUT_MS }, async () => {
    const api = await server(provider);
    try {
      const dest = join(await tempFolder(`kbc-clouds-${provider}`), 't');
      const result = await kbc(api, ['run', '--dest', dest, '--no-progress']);
      expect(result.code, result.stderr).toBe(0);
      expect(api.state.log.some((l) => l.endpoint === 'GET files/{id}')).toBe(true);
      // The permanent file too, streamed from this cloud's file storage (compared byte for byte below).
      expect(await walkFiles(dest)).toContain('files/800000001');
      await expectSameTakeout({ dest, stack: api.url }, { dest: awsDest, stack: awsStack });
    } finally {
      await api.stop();
    }
  });

  it('files download FILE_ID merges a sliced file identical to the AWS one', { timeout: TEST_TIMEOUT_MS }, async () => {
    const api = await server(provider);
    try {
      const first = await kbc(api, ['table', 'export', 'in.c-main.orders', '-o', join(await tempFolder(`kbc-clouds-${provider}-t`), 'o.csv'), '-q']);
      expect(first.code, first.stderr).toBe(0);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
      expect(file.objectKeys.length).toBeGreaterThan(1);
      const out = join(await tempFolder(`kbc-clouds-${provider}-file`), 'orders.csv');
      const result = await kbc(api, ['files', 'download', String(file.id), '-o', out, '-q']);
      expect(result.code, result.stderr).toBe(0);
      expect((await readFile(out)).equals(awsMerged)).toBe(true);
    } finally {
      await api.stop();
    }
  });

  it('refreshes credentials that expire mid-run, and prints none of them with --debug or --json', { timeout: TEST_TIMEOUT_MS }, async () => {
    // Under the source's 5-minute margin, so every slice is read with credentials fetched anew; the SAS or
    // token still lasts long enough to read one slice.
    const api = await server(provider, { credentialsTtlMs: 20_000 });
    try {
      const dest = join(await tempFolder(`kbc-clouds-${provider}-ttl`), 't');
      const debug = await kbc(api, ['run', '--dest', dest, '--no-progress', '--debug', '--include', 'in.c-main.orders']);
      expect(debug.code, debug.stderr).toBe(0);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
      const fileGets = api.state.log.filter((l) => l.endpoint === 'GET files/{id}').length;
      // Once for the manifest, then once per slice at least.
      expect(fileGets).toBeGreaterThan(file.objectKeys.length);
      if (provider === 'azure') {
        // Each blob read is on the --debug log, its SAS query redacted.
        const blobReads = debug.stderr.split('\n').filter((line) => /^debug: GET http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1\/exp-15-files-/.test(line));
        expect(blobReads.length).toBeGreaterThan(file.objectKeys.length);
        for (const line of blobReads) expect(line).toMatch(/\?\*\*\* 20[06] \d+ ms$/);
      } else {
        // Each object read (metadata, then media) is on the --debug log; the token travels in a header, never logged.
        const host = api.storageEnv.STORAGE_EMULATOR_HOST!;
        const reads = debug.stderr.split('\n').filter((line) => line.startsWith(`debug: GET ${host}/`));
        expect(reads.filter((line) => line.includes('alt=media')).length).toBeGreaterThanOrEqual(file.objectKeys.length);
        for (const line of reads) expect(line).toMatch(/ 20[06] \d+ ms$/);
      }
      const json = await kbc(api, ['run', '--dest', join(dest, '..', 'json'), '--json', '--debug', '--include', 'in.c-main.orders']);
      expect(json.code, json.stderr).toBe(0);
      const printed = debug.stdout + debug.stderr + json.stdout + json.stderr;
      const secrets = handedOutSecrets(api);
      expect(secrets.length).toBeGreaterThan(0);
      for (const secret of secrets) expect(printed).not.toContain(secret);
    } finally {
      await api.stop();
    }
  });

  it('credentials the storage refuses are an authentication error (4) naming the file, and are not printed', { timeout: TEST_TIMEOUT_MS }, async () => {
    const api = await server(provider, { faults: { expiredCredentials: true } });
    try {
      const dest = join(await tempFolder(`kbc-clouds-${provider}-expired`), 't');
      const run = await kbc(api, ['table', 'export', 'in.c-main.orders', '-o', join(dest, 'o.csv'), '--no-progress', '--debug']);
      expect(run.code, run.stderr).toBe(4);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
      const errors = errorLines(run.stderr);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain(`file ${file.id}`);
      for (const secret of handedOutSecrets(api)) expect(run.stdout + run.stderr).not.toContain(secret);
    } finally {
      await api.stop();
    }
  });

  it('refuses a manifest entry in another container or bucket (integrity, 6)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const api = await server(provider);
    try {
      const first = await kbc(api, ['table', 'export', 'in.c-main.orders', '-o', join(await tempFolder(`kbc-clouds-${provider}-m`), 'o.csv'), '-q']);
      expect(first.code, first.stderr).toBe(0);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
      const entries = file.objectKeys.map((key) => api.entryUrl(key));
      const elsewhere = provider === 'azure' ? entries[0]!.replace('/exp-15-files-', '/other-container-') : entries[0]!.replace(`gs://${OTHER_BUCKET}/`, 'gs://someone-elses-bucket/');
      expect(elsewhere).not.toBe(entries[0]);
      await api.putObject(`${file.key}manifest`, JSON.stringify({ entries: [{ url: elsewhere, mandatory: true }, ...entries.slice(1).map((url) => ({ url, mandatory: true }))] }), 'application/json');
      const out = join(await tempFolder(`kbc-clouds-${provider}-m2`), 'orders.csv');
      const result = await kbc(api, ['files', 'download', String(file.id), '-o', out, '-q']);
      expect(result.code, result.stderr).toBe(6);
      expect(errorLines(result.stderr)).toHaveLength(1);
      expect(result.stderr).toContain('is not in the file');
    } finally {
      await api.stop();
    }
  });
});

describe('a manifest entry of another Azure account', () => {
  it('is refused though the container has the same name (integrity, 6)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const api = await server('azure');
    try {
      const first = await kbc(api, ['table', 'export', 'in.c-main.orders', '-o', join(await tempFolder('kbc-clouds-acct'), 'o.csv'), '-q']);
      expect(first.code, first.stderr).toBe(0);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
      const entries = file.objectKeys.map((key) => ({ url: api.entryUrl(key).replace('azure://devstoreaccount1.', 'azure://attacker1.'), mandatory: true }));
      await api.putObject(`${file.key}manifest`, JSON.stringify({ entries }), 'application/json');
      const result = await kbc(api, ['files', 'download', String(file.id), '-o', join(await tempFolder('kbc-clouds-acct2'), 'o.csv'), '-q']);
      expect(result.code, result.stderr).toBe(6);
      expect(result.stderr).toContain('of account devstoreaccount1');
    } finally {
      await api.stop();
    }
  });
});

describe.each(['azure', 'gcp'] as const)('kill -9 of a run from a %s stack', (provider) => {
  it('--resume completes byte-identical to the AWS takeout, reusing the slices that landed', { timeout: TEST_TIMEOUT_MS }, async () => {
    const api = await server(provider);
    try {
      const dest = join(await tempFolder(`kbc-clouds-${provider}-kill`), 't');
      // One stream at ~8 KB/s: the 24 KB of slices take seconds, so the run is killed between slices.
      const slow = ['--concurrency', '1', '--bwlimit', '8K', '--json'];
      const cli = startCli(['run', '--source', `keboola+${api.url}`, '--dest', dest, ...slow], {
        env: { KBC_STORAGE_TOKEN: TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint, ...api.storageEnv },
        timeoutMs: TEST_TIMEOUT_MS,
      });
      await cli.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > 2);
      cli.child.kill('SIGKILL');
      expect((await cli.done).code).toBe(137);
      expect(await walkFiles(dest)).not.toContain('takeout-manifest.json');
      const resumed = await kbc(api, ['run', '--dest', dest, '--resume', '--json']);
      expect(resumed.code, resumed.stderr).toBe(0);
      const done = jsonLines(resumed.stdout).find((e) => e.type === 'run:done')!.summary as { reused: { slices: number } };
      // The journal records a slice once it landed; the one in flight at the kill is written again.
      expect(done.reused.slices).toBeGreaterThanOrEqual(1);
      await expectSameTakeout({ dest, stack: api.url }, { dest: awsDest, stack: awsStack }, ['resumed']);
    } finally {
      await api.stop();
    }
  });
});

describe('a file detail from an Azure or GCP stack', () => {
  const account = (text: string): string | undefined => sasAccount(parseConnectionString(text));

  it('names the SAS account by AccountName, the blob host, or an emulator path', () => {
    expect(account('BlobEndpoint=https://kbcfshc7chguaeh2km.blob.core.windows.net;SharedAccessSignature=sv=2017-11-09&sr=c&sig=x')).toBe('kbcfshc7chguaeh2km');
    expect(account('BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=1&sig=x')).toBe('devstoreaccount1');
    expect(account('AccountName=Named1;BlobEndpoint=https://other.blob.core.windows.net;SharedAccessSignature=sig=x')).toBe('named1');
    expect(account('SharedAccessSignature=sig=x')).toBeUndefined();
  });

  it('registers the connection string, the SAS, and its signature as sent and decoded', () => {
    const signature = 'aB3%2Bcd%2Fef9gh%3D';
    registerFileSecrets({
      id: 1,
      provider: 'azure',
      absCredentials: { SASConnectionString: `BlobEndpoint=https://acct1.blob.core.windows.net;SharedAccessSignature=sv=2017-11-09&sr=c&sp=rl&sig=${signature}` },
      gcsCredentials: { access_token: 'ya29.unit-test-token-CANARY' },
    });
    expect(redact(`x ${signature} y`)).not.toContain(signature);
    expect(redact(`x ${decodeURIComponent(signature)} y`)).not.toContain(decodeURIComponent(signature));
    expect(redact('Bearer ya29.unit-test-token-CANARY')).not.toContain('CANARY');
  });

  it('refuses a SAS that would travel over http to another machine, and a provider it does not know', async () => {
    const azure = {
      id: 7,
      provider: 'azure',
      isSliced: true,
      absPath: { container: 'exp-15-files-1', name: 'a/b.csv.gz' },
      absCredentials: { SASConnectionString: 'BlobEndpoint=http://storage.example.com/acct1;SharedAccessSignature=sv=1&sig=abcdefgh', expiration: '2030-01-01T00:00:00+0000' },
    };
    await expect(openFileStorage(azure, 7, { description: 'keboola+test' })).rejects.toThrow(/file 7: the stack hands out a SAS for http:\/\/storage\.example\.com/);
    await expect(openFileStorage({ id: 8, provider: 'oracle' }, 8, { description: 'keboola+test' })).rejects.toThrow(/provider "oracle"/);
  });

  it('takes expires_in as seconds from the answer, and an Azure expiration in Keboola\'s form', async () => {
    const before = Date.now();
    const gcs = await openFileStorage(
      { id: 9, provider: 'gcp', gcsPath: { bucket: 'kbc-files', key: 'k/' }, gcsCredentials: { access_token: 'ya29.unit-test-2', expires_in: 3599, token_type: 'Bearer', projectId: 'p' } },
      9,
      { description: 'keboola+test' },
    );
    expect(gcs.expires).toBeGreaterThanOrEqual(before + 3_599_000);
    expect(gcs.expires).toBeLessThanOrEqual(Date.now() + 3_599_000);
    expect(gcs.entryKey({ kind: 'gs', bucket: 'kbc-files', key: 'k/_0_0_0.csv.gz' }, 'slice')).toBe('k/_0_0_0.csv.gz');
    expect(() => gcs.entryKey({ kind: 's3', bucket: 'kbc-files', key: 'k' }, 'slice')).toThrow(/not in the file's bucket kbc-files/);
    const azure = await openFileStorage(
      {
        id: 10,
        provider: 'azure',
        absPath: { container: 'exp-15-files-1', name: 'n/' },
        absCredentials: { SASConnectionString: 'BlobEndpoint=https://acct1.blob.core.windows.net;SharedAccessSignature=sv=1&se=2031-01-01T00%3A00%3A00Z&sig=abcdefgh', expiration: '2030-01-01T01:00:00+0100' },
      },
      10,
      { description: 'keboola+test' },
    );
    expect(azure.expires).toBe(Date.parse('2030-01-01T00:00:00Z'));
    expect(azure.entryKey({ kind: 'azure', account: 'acct1', container: 'exp-15-files-1', key: 'n/x' }, 'slice')).toBe('n/x');
    expect(() => azure.entryKey({ kind: 'azure', account: 'acct2', container: 'exp-15-files-1', key: 'n/x' }, 'slice')).toThrow(/of account acct1/);
    await Promise.all([gcs.store.close?.(), azure.store.close?.()]);
  });
});
