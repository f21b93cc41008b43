/**
 * `takeout copy` through the built CLI: local → local, S3 → S3 within one bucket (CopyObject: no slice byte
 * goes through takeout, counted at a proxy), S3 → local (streamed, sha256 checked), Azure → Azure in Azurite
 * (Copy Blob) and GCS → GCS on the GCS test server (rewrite, in several rounds); every copy verifies clean and a
 * table downloads from it as from the source. Refusals: a partial source, a takeout at DEST, no manifest, a
 * 403 on the copy. The store capability itself: S3's UploadPartCopy branch (which s3rver lacks) through a small
 * feature proxy that serves it from a ranged GET and an UploadPart.
 */
import { readFile, writeFile, cp } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ContainerSASPermissions } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CopySummary } from '../src/pipeline/events.js';
import type { SliceManifest, TakeoutManifest } from '../src/manifests/takeout.js';
import { createAzureStore } from '../src/stores/azure/store.js';
import { createS3Store } from '../src/stores/s3/store.js';
import { canCopyServerSide } from '../src/stores/store.js';
import { createLocalStore } from '../src/stores/local/store.js';
import { blobNames, rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { jsonLines, removeTempFolders, runCli, tempFolder, type CliResult } from './helpers/cli.js';
import { rawS3Client, s3CliArgs, s3TestOptions, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { faultProxyForTests } from './faults/proxy.js';
import { startGcsServer, type GcsServer } from './gcs/server.js';

const s3Endpoint = inject('s3Endpoint');
const connectionString = inject('azureConnectionString');
const proxy = faultProxyForTests(s3Endpoint);
const TABLE = 'in.c-main.customers';
const SMALL = ['--slice-size', '64KB'];

function expectCode(result: CliResult, code: number): void {
  expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(code);
}

function summaryOf(result: CliResult): CopySummary {
  const done = jsonLines(result.stdout).find((e) => e.type === 'copy:done');
  expect(done, result.stdout).toBeDefined();
  return (done as { summary: CopySummary }).summary;
}

/** `files download` of one table, to a file, as bytes. */
async function download(takeout: string, out: string, args: string[] = [], env: Record<string, string> = {}): Promise<Buffer> {
  const from = /^[a-z0-9]+:\/\//.test(takeout) ? `${takeout}takeout-manifest.json` : path.join(takeout, 'takeout-manifest.json');
  const result = await runCli(['files', 'download', from, '--table', TABLE, '-o', out, '-q', ...args], { env });
  expectCode(result, 0);
  return readFile(out);
}

let root: string;
let local: string;

beforeAll(async () => {
  root = await tempFolder('copy');
  local = path.join(root, 'source');
  expectCode(await runCli(['run', 'demo', local, ...SMALL, '-q']), 0);
});

afterAll(removeTempFolders);

describe('takeout copy between folders', () => {
  it('copies every file with the kernel, rewrites nothing it need not, verifies clean, and a table downloads the same', async () => {
    const dest = path.join(root, 'copy-local');
    const copy = await runCli(['copy', local, dest, '--json']);
    expectCode(copy, 0);
    const summary = summaryOf(copy);
    const manifest = JSON.parse(await readFile(path.join(local, 'takeout-manifest.json'), 'utf8')) as TakeoutManifest;
    const sliceManifests = manifest.files.filter((f) => f.key.startsWith('manifests/')).length;
    expect(summary.serverSide.objects).toBe(manifest.files.length - sliceManifests + manifest.tables.reduce((n, t) => n + t.slices.length, 0));
    expect(summary.throughMachine.objects).toBe(sliceManifests + 1);
    const copied = JSON.parse(await readFile(path.join(dest, 'takeout-manifest.json'), 'utf8')) as TakeoutManifest;
    expect(copied.copiedFrom?.runId).toBe(manifest.runId);
    expect(copied.destination).toBe(`${dest}/`);
    expectCode(await runCli(['verify', dest, '-q']), 0);
    expect(await download(dest, path.join(root, 'l1.csv'))).toEqual(await download(local, path.join(root, 'l0.csv')));
  });

  it('refuses a partial takeout, a takeout at DEST (unless --overwrite), a missing manifest and DEST inside SOURCE', async () => {
    const partial = path.join(root, 'partial');
    await cp(local, partial, { recursive: true });
    const file = path.join(partial, 'takeout-manifest.json');
    await writeFile(file, (await readFile(file, 'utf8')).replace('"status": "complete"', '"status": "partial"'));
    const refused = await runCli(['copy', partial, path.join(root, 'from-partial')]);
    expectCode(refused, 7);
    expect(refused.stderr).toContain('partial');
    expect(refused.stderr).toContain('--resume');

    const dest = path.join(root, 'twice');
    expectCode(await runCli(['copy', local, dest, '-q']), 0);
    const again = await runCli(['copy', local, dest]);
    expectCode(again, 9);
    expect(again.stderr).toContain('--overwrite');
    expectCode(await runCli(['copy', local, dest, '--overwrite', '-q']), 0);
    expectCode(await runCli(['verify', dest, '-q']), 0);
    // A takeout in fewer slices replaces it: the slices it does not have are removed (verify finds no extra file).
    const fewer = path.join(root, 'fewer');
    expectCode(await runCli(['run', 'demo', fewer, '-q']), 0);
    expectCode(await runCli(['copy', fewer, dest, '--overwrite', '-q']), 0);
    const verify = await runCli(['verify', dest]);
    expectCode(verify, 0);
    expect(verify.stderr).not.toContain('extra');

    const missing = await runCli(['copy', path.join(root, 'nothing-here'), path.join(root, 'x')]);
    expectCode(missing, 5);
    expectCode(await runCli(['copy', local, path.join(local, 'inner')]), 2);
  });
});

describe('takeout copy in S3', () => {
  const prefix = uniquePrefix('copy-src');
  const src = `s3://${TEST_BUCKET}/${prefix}`;

  beforeAll(async () => {
    expectCode(await runCli(['run', 'demo', src, ...SMALL, '-q', ...s3CliArgs(s3Endpoint)]), 0);
  });

  it('to another prefix of the same bucket: CopyObject for every slice and file, no slice byte through takeout', async () => {
    const destPrefix = uniquePrefix('copy-dst');
    const dest = `s3://${TEST_BUCKET}/${destPrefix}`;
    const copy = await runCli(['copy', src, dest, '--json', ...s3CliArgs(proxy.url)]);
    expectCode(copy, 0);
    const summary = summaryOf(copy);
    const copies = proxy.requests.filter((r) => r.method === 'PUT' && r.headers['x-amz-copy-source'] !== undefined);
    expect(copies.length).toBe(summary.serverSide.objects);
    expect(summary.serverSide.objects).toBeGreaterThan(10);
    // Bytes through takeout: only the slice manifests (read, rewritten, written) and the takeout manifest.
    const isManifest = (url: string): boolean => /\/manifests\/[^/?]+\.manifest|takeout-manifest\.json/.test(decodeURIComponent(url));
    const moved = proxy.requests.filter((r) => (r.method === 'GET' && !r.url.includes('list-type') && !r.url.startsWith(`/${TEST_BUCKET}?`)) || (r.method === 'PUT' && r.headers['x-amz-copy-source'] === undefined));
    expect(moved.filter((r) => !isManifest(r.url)).map((r) => `${r.method} ${r.url}`)).toEqual([]);
    expect(summary.throughMachine.objects).toBe(summary.rewrittenManifests + 1);

    // The slice manifests name the copies.
    const client = rawS3Client(s3Endpoint);
    const manifest = JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${destPrefix}takeout-manifest.json` }))).Body!.transformToString()) as TakeoutManifest;
    const key = manifest.tables.find((t) => t.id === TABLE)!.manifest!;
    const slices = JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${destPrefix}${key}` }))).Body!.transformToString()) as SliceManifest;
    for (const entry of slices.entries) expect(entry.url.startsWith(dest)).toBe(true);
    client.destroy();

    expectCode(await runCli(['verify', dest, '-q', ...s3CliArgs(s3Endpoint)]), 0);
    const fromCopy = await download(dest, path.join(root, 's1.csv'), s3CliArgs(s3Endpoint));
    expect(fromCopy).toEqual(await download(local, path.join(root, 's0.csv')));
  });

  it('--dry-run says what would be copied and how, as the copy does it, and writes nothing (no PUT, no DELETE)', async () => {
    const dest = `s3://${TEST_BUCKET}/${uniquePrefix('copy-dry')}`;
    const before = proxy.requests.length;
    const dry = await runCli(['copy', src, dest, '--dry-run', '--json', ...s3CliArgs(proxy.url)]);
    expectCode(dry, 0);
    const planned = summaryOf(dry);
    expect(planned).toMatchObject({ dryRun: true });
    expect(planned.serverSide.objects).toBeGreaterThan(10);
    expect(planned.throughMachine.objects).toBe(planned.rewrittenManifests + 1);
    expect(proxy.requests.slice(before).filter((r) => r.method !== 'GET' && r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`)).toEqual([]);
    // The copy itself moves what the dry run said.
    const copy = await runCli(['copy', src, dest, '--json', ...s3CliArgs(proxy.url)]);
    expectCode(copy, 0);
    const done = summaryOf(copy);
    expect({ serverSide: done.serverSide, objects: done.objects, dryRun: done.dryRun }).toEqual({ serverSide: planned.serverSide, objects: planned.objects, dryRun: false });
    // Onto that takeout a dry run is refused as the copy would be (exit 9), and with --overwrite it removes nothing.
    expectCode(await runCli(['copy', src, dest, '--dry-run', ...s3CliArgs(s3Endpoint)]), 9);
    expectCode(await runCli(['copy', src, dest, '--dry-run', '--overwrite', ...s3CliArgs(s3Endpoint)]), 0);
    expectCode(await runCli(['verify', dest, '-q', ...s3CliArgs(s3Endpoint)]), 0);
  });

  it('to a folder: streamed through takeout with sha256 checked, the slice manifests relative again', async () => {
    const dest = path.join(root, 'from-s3');
    const copy = await runCli(['copy', src, dest, '--json', ...s3CliArgs(s3Endpoint)]);
    expectCode(copy, 0);
    const summary = summaryOf(copy);
    expect(summary.serverSide.objects).toBe(0);
    const manifest = JSON.parse(await readFile(path.join(dest, 'takeout-manifest.json'), 'utf8')) as TakeoutManifest;
    const slices = JSON.parse(await readFile(path.join(dest, manifest.tables.find((t) => t.id === TABLE)!.manifest!), 'utf8')) as SliceManifest;
    for (const entry of slices.entries) expect(entry.url).not.toContain('s3://');
    expectCode(await runCli(['verify', dest, '-q']), 0);
  });

  it('refuses a DEST under the SOURCE prefix (or around it)', async () => {
    const inner = await runCli(['copy', src, `${src}copy/`, ...s3CliArgs(s3Endpoint)]);
    expectCode(inner, 2);
    expect(inner.stderr).toContain('overlap');
    expectCode(await runCli(['copy', src, `s3://${TEST_BUCKET}/`, ...s3CliArgs(s3Endpoint)]), 2);
  });

  it('a corrupt slice streamed through this machine is INTEGRITY (exit 6), named, and nothing of it lands', async () => {
    const corrupt = path.join(root, 'corrupt');
    await cp(local, corrupt, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(corrupt, 'takeout-manifest.json'), 'utf8')) as TakeoutManifest;
    const slice = manifest.tables.find((t) => t.id === TABLE)!.slices[0]!;
    const file = path.join(corrupt, slice.key);
    const bytes = await readFile(file);
    bytes[bytes.length - 9] = bytes[bytes.length - 9]! ^ 0xff;
    await writeFile(file, bytes);
    const destPrefix = uniquePrefix('copy-corrupt');
    const copy = await runCli(['copy', corrupt, `s3://${TEST_BUCKET}/${destPrefix}`, ...s3CliArgs(s3Endpoint)]);
    expectCode(copy, 6);
    expect(copy.stderr).toContain(slice.key);
    expect(copy.stderr).toContain('sha256');
    const client = rawS3Client(s3Endpoint);
    for (const key of [slice.key, 'takeout-manifest.json']) await expect(client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${destPrefix}${key}` }))).rejects.toThrow();
    client.destroy();
  });

  it('a 403 on CopyObject exits 4, names the object and leaves no takeout-manifest.json', async () => {
    const destPrefix = uniquePrefix('copy-403');
    proxy.rules.push({ match: (req) => req.headers['x-amz-copy-source'] !== undefined, times: 1, action: { kind: 'status', status: 403, code: 'AccessDenied', message: 'no s3:GetObject on the source' } });
    const copy = await runCli(['copy', src, `s3://${TEST_BUCKET}/${destPrefix}`, ...s3CliArgs(proxy.url)]);
    expectCode(copy, 4);
    expect(copy.stderr).toMatch(/CopyObject s3:\/\/takeout-test\/copy-403[^ ]+/);
    const client = rawS3Client(s3Endpoint);
    await expect(client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${destPrefix}takeout-manifest.json` }))).rejects.toThrow();
    client.destroy();
  });
});

/**
 * A feature proxy for UploadPartCopy, which s3rver does not implement: the ranged source is read with a GET and
 * written with an UploadPart, and the answer is UploadPartCopy's XML. Everything else is forwarded.
 */
async function startPartCopyProxy(target: string): Promise<{ url: string; partCopies: number; close(): Promise<void> }> {
  const upstream = new URL(target);
  const state = { partCopies: 0 };
  const send = (method: string, url: string, headers: http.OutgoingHttpHeaders, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: upstream.hostname, port: upstream.port, method, path: url, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const { host: _host, ...headers } = req.headers;
        const source = req.headers['x-amz-copy-source'];
        if (req.method === 'PUT' && typeof source === 'string' && /[?&]partNumber=/.test(req.url ?? '')) {
          state.partCopies++;
          const range = String(req.headers['x-amz-copy-source-range']);
          // s3rver checks the access key id, not signatures: the request's own headers serve both calls.
          const signed = { authorization: String(req.headers.authorization ?? ''), 'x-amz-date': String(req.headers['x-amz-date'] ?? ''), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
          const got = await send('GET', `/${source.replace(/^\//, '')}`, { ...signed, range });
          const put = await send('PUT', req.url ?? '/', { ...signed, 'content-length': got.body.length }, got.body);
          if (got.status !== 206 || put.status !== 200) throw new Error(`GET ${got.status} ${got.body.toString().slice(0, 300)} PUT ${put.status} ${put.body.toString().slice(0, 300)}`);
          const xml = `<?xml version="1.0" encoding="UTF-8"?><CopyPartResult><ETag>${String(put.headers.etag)}</ETag><LastModified>${new Date().toISOString()}</LastModified></CopyPartResult>`;
          res.writeHead(put.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
          res.end(xml);
          return;
        }
        const answer = await send(req.method ?? 'GET', req.url ?? '/', { ...headers, 'content-length': body.length }, body);
        const { 'transfer-encoding': _te, connection: _c, ...out } = answer.headers;
        res.writeHead(answer.status, req.method === 'HEAD' ? out : { ...out, 'content-length': answer.body.length });
        res.end(answer.body);
      })().catch((error: unknown) => {
        res.writeHead(502);
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get partCopies() {
      return state.partCopies;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the ServerSideCopy capability', () => {
  it('S3 above the single-copy limit: UploadPartCopy parts and a create-only CompleteMultipartUpload (through a feature proxy)', async () => {
    const feature = await startPartCopyProxy(s3Endpoint);
    try {
      const options = { s3: s3TestOptions(feature.url), copyMultipartAbove: 6 * 1024 * 1024, copyPartBytes: 5 * 1024 * 1024 };
      const from = createS3Store(`s3://${TEST_BUCKET}/${uniquePrefix('part-src')}`, options);
      const to = createS3Store(`s3://${TEST_BUCKET}/${uniquePrefix('part-dst')}`, options);
      const data = Buffer.alloc(13 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4096) data.writeUInt32BE(i, i);
      await from.put('big.bin', data);
      expect(canCopyServerSide(to) && to.canCopyFrom(from)).toBe(true);
      const written = await to.copyFrom(from, 'big.bin', 'copy/big.bin', { size: data.length, ifNoneMatch: true });
      expect(written.size).toBe(data.length);
      expect(feature.partCopies).toBe(3);
      const chunks: Buffer[] = [];
      for await (const chunk of await to.get('copy/big.bin')) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
      await expect(to.copyFrom(from, 'big.bin', 'copy/big.bin', { size: data.length + 1 })).rejects.toMatchObject({ code: 'INTEGRITY' });
      await from.close?.();
      await to.close?.();
    } finally {
      await feature.close();
    }
  });

  it('is not offered for Azure with an Entra credential (no bearer token for Copy Blob\'s source in this SDK)', async () => {
    const entra = await createAzureStore(`azure://${TEST_CONTAINER}/a/`, { azure: { env: { AZURE_STORAGE_ACCOUNT: 'takeoutcopytest' } } });
    expect(entra.canCopyFrom(entra)).toBe(false);
    const keyed = await createAzureStore(`azure://${TEST_CONTAINER}/a/`, { azure: { env: { AZURE_STORAGE_CONNECTION_STRING: connectionString } } });
    expect(keyed.canCopyFrom(keyed)).toBe(true);
  });

  it('is offered only between stores one principal reaches: not S3 → local, not another endpoint', () => {
    const s3 = createS3Store(`s3://${TEST_BUCKET}/a/`, { s3: s3TestOptions(s3Endpoint) });
    const other = createS3Store(`s3://${TEST_BUCKET}/b/`, { s3: s3TestOptions(proxy.url) });
    const folder = createLocalStore(path.join(root, 'cap'));
    expect(s3.canCopyFrom(other)).toBe(false);
    expect(folder.canCopyFrom(s3)).toBe(false);
    expect(s3.canCopyFrom(folder)).toBe(false);
  });
});

describe('takeout copy in Azure Blob Storage (Azurite)', () => {
  const env = { AZURE_STORAGE_CONNECTION_STRING: connectionString };
  const from = uniquePrefix('copy-az-src');
  const to = uniquePrefix('copy-az-dst');

  beforeAll(async () => {
    await rawContainer(connectionString);
  });

  afterAll(async () => {
    const container = await rawContainer(connectionString);
    for (const p of [from, to]) for (const name of await blobNames(container, p)) await container.deleteBlob(`${p}${name}`);
  });

  it('copies within the account with Copy Blob, verifies clean, and a table downloads the same', async () => {
    expectCode(await runCli(['run', 'demo', `azure://${TEST_CONTAINER}/${from}`, ...SMALL, '-q'], { env }), 0);
    const copy = await runCli(['copy', `azure://${TEST_CONTAINER}/${from}`, `azure://${TEST_CONTAINER}/${to}`, '--json'], { env });
    expectCode(copy, 0);
    const summary = summaryOf(copy);
    expect(summary.serverSide.objects).toBeGreaterThan(10);
    expect(summary.throughMachine.objects).toBe(summary.rewrittenManifests + 1);
    expect(copy.stdout + copy.stderr).not.toContain('AccountKey');
    expectCode(await runCli(['verify', `azure://${TEST_CONTAINER}/${to}`, '-q'], { env }), 0);
    expect(await download(`azure://${TEST_CONTAINER}/${to}`, path.join(root, 'a1.csv'), [], env)).toEqual(await download(local, path.join(root, 'a0.csv')));
  });

  it('with a container SAS: the source URL carries the SAS, the copy is server-side, and no signature is shown', async () => {
    const container = await rawContainer(connectionString);
    const url = new URL(await container.generateSasUrl({ permissions: ContainerSASPermissions.parse('racwdl'), expiresOn: new Date(Date.now() + 3_600_000) }));
    const sas = url.search.slice(1);
    const sasEnv = { AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=${url.origin}${path.posix.dirname(url.pathname)};SharedAccessSignature=${sas}` };
    const again = uniquePrefix('copy-az-sas');
    try {
      const copy = await runCli(['copy', `azure://${TEST_CONTAINER}/${from}`, `azure://${TEST_CONTAINER}/${again}`, '--json'], { env: sasEnv });
      expectCode(copy, 0);
      expect(summaryOf(copy).serverSide.objects).toBeGreaterThan(10);
      expect(copy.stdout + copy.stderr).not.toContain(new URLSearchParams(sas).get('sig')!);
      expectCode(await runCli(['verify', `azure://${TEST_CONTAINER}/${again}`, '-q'], { env: sasEnv }), 0);
    } finally {
      for (const name of await blobNames(container, again)) await container.deleteBlob(`${again}${name}`);
    }
  });
});

describe('takeout copy in Google Cloud Storage (the GCS test server)', () => {
  let server: GcsServer;
  const BUCKET = 'takeout-copy';

  beforeAll(async () => {
    // 32 KiB per rewrite call: slices of 64 KiB take several rounds, each with the last call's rewriteToken.
    server = await startGcsServer({ buckets: [BUCKET], rewriteBytesPerCall: 32 * 1024 });
  });
  afterAll(async () => server?.close());

  it('copies with rewrite (looping on rewriteToken), verifies clean, every slice byte-identical', async () => {
    const env = { STORAGE_EMULATOR_HOST: server.url };
    expectCode(await runCli(['run', 'demo', `gs://${BUCKET}/src/`, ...SMALL, '-q'], { env }), 0);
    const copy = await runCli(['copy', `gs://${BUCKET}/src/`, `gs://${BUCKET}/dst/`, '--json'], { env });
    expectCode(copy, 0);
    const summary = summaryOf(copy);
    expect(summary.serverSide.objects).toBeGreaterThan(10);
    expect(server.state.requests.get('POST rewriteTo') ?? 0).toBeGreaterThan(summary.serverSide.objects);
    const manifest = JSON.parse(server.object(BUCKET, 'dst/takeout-manifest.json')!.data.toString('utf8')) as TakeoutManifest;
    const key = manifest.tables.find((t) => t.id === TABLE)!.manifest!;
    const slices = JSON.parse(server.object(BUCKET, `dst/${key}`)!.data.toString('utf8')) as SliceManifest;
    for (const entry of slices.entries) expect(entry.url.startsWith(`gs://${BUCKET}/dst/`)).toBe(true);
    expectCode(await runCli(['verify', `gs://${BUCKET}/dst/`, '-q'], { env }), 0);
    for (const slice of manifest.tables.flatMap((t) => t.slices)) expect(server.object(BUCKET, `dst/${slice.key}`)!.data.equals(server.object(BUCKET, `src/${slice.key}`)!.data)).toBe(true);
  });
});
