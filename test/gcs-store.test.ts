import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGcsStore } from '../src/stores/gcs/store.js';
import type { GcsPrefixStore } from '../src/stores/gcs/store.js';
import { parseGcsUrl } from '../src/stores/gcs/url.js';
import { parseStore } from '../src/stores/registry.js';
import { runCli } from './helpers/cli.js';
import { startGcsServer } from './gcs/server.js';
import type { GcsServer } from './gcs/server.js';
import { describeStoreContract, expectTakeoutError, listAll, readAll } from './store.contract.js';
import type { StoreTestContext } from './store.contract.js';

const KiB = 1024;
const BUCKET = 'takeout-test';
let server: GcsServer;
let previousHost: string | undefined;

beforeAll(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  previousHost = process.env.STORAGE_EMULATOR_HOST;
  process.env.STORAGE_EMULATOR_HOST = server.url;
});

afterAll(async () => {
  if (previousHost === undefined) delete process.env.STORAGE_EMULATOR_HOST;
  else process.env.STORAGE_EMULATOR_HOST = previousHost;
  await server?.close();
});

let prefixes = 0;
function uniquePrefix(name: string): string {
  prefixes += 1;
  return `${name}-${prefixes}-${randomBytes(3).toString('hex')}/`;
}

function count(route: string): number {
  return server.state.requests.get(route) ?? 0;
}

describeStoreContract<GcsPrefixStore>('Google Cloud Storage (test server)', async () => {
  const prefix = uniquePrefix('contract');
  // 5 objects a page to exercise paging.
  const dest = createGcsStore(`gs://${BUCKET}/${prefix}`, { listPageSize: 5 });
  return {
    dest,
    rawNames: async () =>
      [...(server.state.buckets.get(BUCKET)?.keys() ?? [])].filter((name) => name.startsWith(prefix)).map((name) => name.slice(prefix.length)),
    cleanup: async () => {
      await dest.delete((await listAll(dest)).map((info) => info.key));
      await dest.close?.();
    },
  };
}, { additionalTests: gcsStoreSpecifics });

function gcsStoreSpecifics(context: StoreTestContext<GcsPrefixStore>): void {
  it('refuses a create-only write of an existing object with EXISTS, by put and by a chunked writer', async () => {
    const { dest } = context;
    await dest.put('specific/create-only.txt', 'first', { ifNoneMatch: true });
    await expectTakeoutError(dest.put('specific/create-only.txt', 'second', { ifNoneMatch: true }), 'EXISTS');
    const writer = await dest.writer('specific/create-only.txt', { ifNoneMatch: true });
    await writer.write(randomBytes(300 * KiB));
    // The session start answers 412, which surfaces on the first write or at finish.
    const error = await writer.finish().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ code: 'EXISTS' });
    expect((await readAll(await dest.get('specific/create-only.txt'))).toString()).toBe('first');
  });

  it('uploads in bounded resumable chunks (more than two) and cancels a session on abort', async () => {
    const store = createGcsStore(`gs://${BUCKET}/${uniquePrefix('chunks')}`, { chunkSize: 256 * KiB });
    const data = randomBytes(900 * KiB);
    const sessionsBefore = count('POST upload');
    const chunksBefore = count('PUT upload/session');
    const writer = await store.writer('x.bin', { ifNoneMatch: true });
    for (let offset = 0; offset < data.length; offset += 64 * KiB) await writer.write(data.subarray(offset, offset + 64 * KiB));
    expect(await writer.finish()).toMatchObject({ key: 'x.bin', size: data.length });
    expect(count('POST upload') - sessionsBefore).toBe(1);
    // 900 KiB in 256 KiB chunks: four PUTs, the last with the total.
    expect(count('PUT upload/session') - chunksBefore).toBe(4);
    expect((await readAll(await store.get('x.bin'))).equals(data)).toBe(true);

    const cancelsBefore = count('DELETE upload/session');
    const aborted = await store.writer('aborted.bin');
    for (let i = 0; i < 6; i++) await aborted.write(randomBytes(128 * KiB));
    await aborted.abort();
    expect(count('DELETE upload/session') - cancelsBefore).toBe(1);
    expect(await store.head('aborted.bin')).toBeUndefined();
    // An overwriting upload is not retried (not idempotent), but later requests of the same client still are.
    server.failNext((request) => request.route === 'GET objects', 503);
    expect((await listAll(store)).map((info) => info.key)).toEqual(['x.bin']);
    expect([...server.state.sessions.values()].filter((session) => session.name.endsWith('/aborted.bin'))).toEqual([]);
  });

  it('recovers a dropped chunk of a create-only upload, and maps a missing bucket to NOT_FOUND', async () => {
    const store = createGcsStore(`gs://${BUCKET}/${uniquePrefix('drop')}`, { chunkSize: 256 * KiB });
    server.failNext((request) => request.route === 'PUT upload/session', 'drop', { persistBytes: 256 * KiB });
    const data = randomBytes(700 * KiB);
    const writer = await store.writer('x.bin', { ifNoneMatch: true });
    await writer.write(data);
    await writer.finish();
    expect((await readAll(await store.get('x.bin'))).equals(data)).toBe(true);

    const missing = createGcsStore('gs://no-such-bucket/x');
    await expectTakeoutError(missing.preflight(), 'NOT_FOUND');
    await expectTakeoutError(missing.put('a.txt', 'a'), 'NOT_FOUND');
  });

  it('retries an overwriting put and an overwriting chunk after a 503', async () => {
    const store = createGcsStore(`gs://${BUCKET}/${uniquePrefix('retry')}`, { chunkSize: 256 * KiB });
    server.failNext((request) => request.route === 'POST upload', 503);
    await store.put('manifest.json', '{}');
    expect((await readAll(await store.get('manifest.json'))).toString()).toBe('{}');
    server.failNext((request) => request.route === 'PUT upload/session', 503);
    const data = randomBytes(600 * KiB);
    const writer = await store.writer('x.bin');
    await writer.write(data);
    await writer.finish();
    expect((await readAll(await store.get('x.bin'))).equals(data)).toBe(true);
  });

  it('passes its preflight, read-only or not, leaving nothing behind', async () => {
    const prefix = uniquePrefix('preflight');
    const store = createGcsStore(`gs://${BUCKET}/${prefix}`);
    await store.preflight({ readOnly: true });
    await store.preflight();
    expect(await listAll(store)).toEqual([]);
  });
}

describe('gs:// URLs', () => {
  it('parses bucket and prefix', () => {
    expect(parseGcsUrl('gs://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(parseGcsUrl('gs://my-bucket//a//b/')).toEqual({ bucket: 'my-bucket', prefix: 'a/b/' });
    expect(parseStore('GS://my-bucket/x')).toEqual({ kind: 'gs', url: 'gs://my-bucket/x' });
  });

  it('refuses invalid bucket names, unsafe prefixes and credentials, never repeating a secret', () => {
    for (const url of ['gs://My-Bucket/x', 'gs://ab/x', 'gs://-bucket/x', 'gs://google-x/y', 'gs://goog-x/y', 'gs://192.168.1.1/x', 'gs://my-bucket/../x']) {
      expect(() => parseGcsUrl(url), url).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    let message = '';
    try {
      parseGcsUrl('gs://ya29.SECRET-TOKEN@my-bucket/x');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/credentials do not belong/);
    expect(message).not.toContain('SECRET-TOKEN');
  });
});

describe('takeout with a gs:// destination', () => {
  const SMALL = ['--include', 'in.c-crm.products'];

  it('runs the demo project into gs://, verifies it clean, and loads the Google SDK only then', async () => {
    const prefix = uniquePrefix('cli');
    const env = { STORAGE_EMULATOR_HOST: server.url, NODE_DEBUG: 'esm,module' };
    const run = await runCli(['run', '--source', 'demo', '--dest', `gs://${BUCKET}/${prefix}`, ...SMALL, '-q'], { env });
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    expect(run.stderr).toMatch(/@google-cloud[\\/]storage/);
    const names = [...(server.state.buckets.get(BUCKET)?.keys() ?? [])].filter((name) => name.startsWith(prefix));
    expect(names).toContain(`${prefix}takeout-manifest.json`);
    const verify = await runCli(['verify', `gs://${BUCKET}/${prefix}`, '-q'], { env: { STORAGE_EMULATOR_HOST: server.url } });
    expect(verify.code, verify.stderr).toBe(0);

    for (const args of [['--help'], ['run', '--help'], ['verify', '--help']]) {
      const help = await runCli(args, { env: { NODE_DEBUG: 'esm,module' } });
      expect(help.code, args.join(' ')).toBe(0);
      expect(help.stderr, args.join(' ')).not.toMatch(/@google-cloud[\\/]|google-auth-library/);
    }
  });

  it('sends GOOGLE_OAUTH_ACCESS_TOKEN as a bearer token, and a refused token exits 4 without showing it', async () => {
    const token = `ya29.test-${randomBytes(8).toString('hex')}`;
    const guarded = await startGcsServer({ buckets: [BUCKET], token });
    try {
      const prefix = uniquePrefix('token');
      const dest = `gs://${BUCKET}/${prefix}`;
      const ok = await runCli(['run', '--source', 'demo', '--dest', dest, ...SMALL, '-q'], { env: { STORAGE_EMULATOR_HOST: guarded.url, GOOGLE_OAUTH_ACCESS_TOKEN: token } });
      expect(ok.code, ok.stderr.slice(-2000)).toBe(0);
      const wrong = `ya29.wrong-${randomBytes(8).toString('hex')}`;
      const refused = await runCli(['verify', dest], { env: { STORAGE_EMULATOR_HOST: guarded.url, GOOGLE_OAUTH_ACCESS_TOKEN: wrong } });
      expect(refused.code, refused.stderr).toBe(4);
      expect(refused.stderr + refused.stdout).not.toContain(wrong);
    } finally {
      await guarded.close();
    }
  });
});
