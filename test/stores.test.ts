import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { closedPort } from './helpers/cli.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import fc from 'fast-check';
import { assertSafeKey, assertSafePrefix, findCaseCollision, joinInside, keyProblem } from '../src/stores/keys.js';
import { mapFsError } from '../src/stores/local/fs-errors.js';
import { createLocalStore } from '../src/stores/local/store.js';
import { isTempName, openExclusive, tempNameFor } from '../src/stores/local/temp-files.js';
import { openStore, parseStore } from '../src/stores/registry.js';
import { mapS3Error } from '../src/stores/s3/errors.js';
import { createS3Store } from '../src/stores/s3/store.js';
import { parseS3Url } from '../src/stores/s3/url.js';
import { TakeoutError } from '../src/errors.js';
import { describeStoreContract, expectTakeoutError, listAll, readAll, UNSAFE_KEYS } from './store.contract.js';
import { OTHER_BUCKET, rawS3Client, s3TestOptions, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { createAzureStore } from '../src/stores/azure/store.js';
import { azureEnv, blobNames, rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { azureStoreSpecifics } from './stores.azure.js';

const MiB = 1024 * 1024;
const endpoint = inject('s3Endpoint');
const temps: string[] = [];

async function tempFolder(name: string): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), `takeout-${name}-`));
  temps.push(folder);
  return folder;
}

afterAll(async () => {
  await Promise.all(temps.map((folder) => rm(folder, { recursive: true, force: true })));
});

async function walkNames(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    const name = `${prefix}${entry.name}`;
    if (entry.isDirectory()) out.push(...(await walkNames(path.join(root, entry.name), `${name}/`)));
    else out.push(name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The shared contract, once per store, with each store's own tests (below) inside it.

describeStoreContract('local folder', async () => {
  const root = path.join(await tempFolder('contract'), 'dest');
  return {
    dest: createLocalStore(root),
    rawNames: async () => walkNames(root).catch(() => []),
    cleanup: async () => undefined,
  };
}, { additionalTests: localStoreSpecifics });

describeStoreContract('S3 (s3rver)', async () => {
  const prefix = uniquePrefix('contract');
  const dest = createS3Store(`s3://${TEST_BUCKET}/${prefix}`, {
    // 5 MiB parts (the S3 minimum) so the 20 MB object goes multipart; 7 keys a page to exercise paging.
    s3: s3TestOptions(endpoint, { partSize: 5 * MiB, partConcurrency: 3 }),
    listPageSize: 7,
  });
  const raw = rawS3Client(endpoint);
  return {
    dest,
    listsFolderOrder: true,
    ignoresIfNoneMatch: true,
    rawNames: async () => {
      const names: string[] = [];
      let token: string | undefined;
      do {
        const page = await raw.send(
          new ListObjectsV2Command({ Bucket: TEST_BUCKET, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
        );
        for (const entry of page.Contents ?? []) if (entry.Key) names.push(entry.Key.slice(prefix.length));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return names;
    },
    cleanup: async () => {
      const keys = (await listAll(dest)).map((info) => info.key);
      await dest.delete(keys);
      await dest.close?.();
      raw.destroy();
    },
  };
}, { additionalTests: s3StoreSpecifics });

describeStoreContract('Azure Blob (Azurite)', async () => {
  const connectionString = inject('azureConnectionString');
  const prefix = uniquePrefix('contract');
  const raw = await rawContainer(connectionString);
  // 1 MiB blocks, 3 in flight, so the 20 MB object is staged in many blocks; 7 blobs a page to exercise paging.
  const dest = await createAzureStore(`azure://${TEST_CONTAINER}/${prefix}`, {
    azure: azureEnv(connectionString),
    s3: { partSize: MiB, partConcurrency: 3 },
    listPageSize: 7,
  });
  return {
    dest,
    rawNames: () => blobNames(raw, prefix),
    cleanup: async () => {
      await dest.delete((await listAll(dest)).map((info) => info.key));
      await dest.close?.();
    },
  };
}, { additionalTests: azureStoreSpecifics });

// ---------------------------------------------------------------------------------------------
// Keys.

describe('assertSafeKey / joinInside', () => {
  it('accepts ordinary keys', () => {
    for (const key of [
      'a',
      'a/b.csv',
      'in.c-main.orders/part-0001.csv.gz',
      'dir/..foo',
      'dir/.hidden',
      'ünïcødé/✓.txt',
      'consolidated.csv',
      'com10.txt',
      'x'.repeat(255),
      '2024-01-01T00:00:00Z.json',
    ]) {
      expect(keyProblem(key), key).toBeUndefined();
      expect(() => assertSafeKey(key)).not.toThrow();
    }
  });

  it('rejects traversal, absolute paths, drive letters, backslashes, control characters and reserved names', () => {
    const unsafe = [
      ...UNSAFE_KEYS,
      '..',
      '.',
      'a/..',
      'a/.',
      '/',
      'a/',
      '/a',
      'c:x',
      'D:/x',
      'a\\b',
      'a\tb',
      'a\nb',
      'a\u007fb',
      'CON',
      'aux.csv',
      'nul.tar.gz',
      'dir/COM1',
      'lpt9.txt',
      'prn',
      'name.',
      'name ',
      'dir./x',
      'x'.repeat(256),
      'é'.repeat(128),
      `${'a/'.repeat(600)}b`,
    ];
    for (const key of unsafe) {
      let caught: unknown;
      try {
        assertSafeKey(key);
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(key)).toBeInstanceOf(TakeoutError);
      expect((caught as TakeoutError).code).toBe('USAGE');
      expect((caught as TakeoutError).message).not.toContain('\u0000');
    }
  });

  it('joinInside resolves under the root and never outside', () => {
    const root = path.resolve('/data/root');
    expect(joinInside(root, 'a/b.csv')).toBe(path.join(root, 'a', 'b.csv'));
    expect(joinInside(`${root}/`, 'x')).toBe(path.join(root, 'x'));
    for (const key of ['../x', 'a/../../x', '../root-evil/x', '/etc/passwd']) {
      expect(() => joinInside(root, key), key).toThrow(TakeoutError);
    }
  });

  it('checks listing prefixes up to their last slash', () => {
    for (const prefix of ['', 'a', 'a/', 'a/b', 'tables/orders.', 'a/b/']) expect(() => assertSafePrefix(prefix), prefix).not.toThrow();
    for (const prefix of ['../', '/', '/a', 'a/../b/', 'a\\b', 'a\u0000', 'CON/']) {
      expect(() => assertSafePrefix(prefix), prefix).toThrow(TakeoutError);
    }
  });
});

describe('findCaseCollision', () => {
  it('finds the first two keys that differ only in case or Unicode normalisation, in the order given', () => {
    expect(findCaseCollision([])).toBeUndefined();
    expect(findCaseCollision(['in/c-main/orders', 'in/c-main/customers', 'in/c-crm/orders'])).toBeUndefined();
    expect(findCaseCollision(['a/Orders.csv', 'b', 'a/orders.csv', 'A/ORDERS.CSV'])).toEqual(['a/Orders.csv', 'a/orders.csv']);
    // "é" precomposed (NFC) and as e + combining acute (NFD, as macOS file names come): one name there.
    expect(findCaseCollision(['caf\u00e9.csv', 'cafe\u0301.csv'])).toEqual(['caf\u00e9.csv', 'cafe\u0301.csv']);
    expect(findCaseCollision(['CAF\u00c9', 'cafe\u0301'])).toEqual(['CAF\u00c9', 'cafe\u0301']);
    expect(findCaseCollision(['same', 'same'])).toEqual(['same', 'same']);
    expect(findCaseCollision(new Set(['x', 'X']))).toEqual(['x', 'X']);
    // Different characters that only look alike are different names.
    expect(findCaseCollision(['a.csv', 'a.csv '])).toBeUndefined();
  });

  it('property: none among keys distinct after folding; the pair once a case variant of one is added', () => {
    const fold = (key: string): string => key.normalize('NFC').toLowerCase();
    const distinct = fc.uniqueArray(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), { selector: fold, maxLength: 20 });
    fc.assert(
      fc.property(distinct, fc.nat(), fc.nat(), (keys, pick, at) => {
        expect(findCaseCollision(keys)).toBeUndefined();
        if (keys.length === 0) return;
        const original = keys[pick % keys.length]!;
        const variant = original === original.toUpperCase() ? original.toLowerCase() : original.toUpperCase();
        // Upper-casing can change what folds to (ß → SS); only true variants are added.
        fc.pre(fold(variant) === fold(original));
        const position = (pick % keys.length) + 1 + (at % (keys.length - (pick % keys.length)));
        const withVariant = [...keys.slice(0, position), variant, ...keys.slice(position)];
        expect(findCaseCollision(withVariant)).toEqual([original, variant]);
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Registry.

describe('registry', () => {
  it('parses destinations', () => {
    expect(parseStore('s3://bucket/prefix')).toEqual({ kind: 's3', url: 's3://bucket/prefix' });
    expect(parseStore('S3://bucket')).toEqual({ kind: 's3', url: 's3://bucket' });
    expect(parseStore('out/dir')).toEqual({ kind: 'local', path: path.resolve('out/dir') });
    expect(parseStore('/abs/dir')).toEqual({ kind: 'local', path: path.resolve('/abs/dir') });
    expect(parseStore(pathToFileURL('/tmp/x y').href)).toEqual({ kind: 'local', path: path.resolve('/tmp/x y') });
    expect(() => parseStore('')).toThrow(TakeoutError);
    expect(() => parseStore('https://user:secret@example.com/x')).toThrow(TakeoutError);
    try {
      parseStore('https://user:secret@example.com/x');
    } catch (error) {
      expect((error as Error).message).not.toContain('secret');
    }
  });

  it('opens the right destination', async () => {
    const root = await tempFolder('registry');
    const local = await openStore(root);
    expect(local.description).toBe(`${root}${path.sep}`);
    expect(local.urlFor('x')).toBeUndefined();
    const s3 = await openStore(`s3://${TEST_BUCKET}/a//b`, { s3: s3TestOptions(endpoint) });
    expect(s3.description).toBe(`s3://${TEST_BUCKET}/a/b/ at ${endpoint}`);
    expect(s3.urlFor('c/d.csv')).toBe(`s3://${TEST_BUCKET}/a/b/c/d.csv`);
    await s3.close?.();
  });
});

// ---------------------------------------------------------------------------------------------
// Local specifics.

/** The local folder's own tests, run inside its contract suite. */
function localStoreSpecifics(): void {
  describe('local folder specifics', () => {
    it('creates files 0600 and folders 0700 by default, and honours explicit modes', async () => {
      const root = path.join(await tempFolder('modes'), 'out');
      const dest = createLocalStore(root);
      await dest.put('a/b/file.txt', 'x');
      expect((await stat(root)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(root, 'a'))).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(root, 'a', 'b'))).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(root, 'a', 'b', 'file.txt'))).mode & 0o777).toBe(0o600);

      const wide = createLocalStore(path.join(root, 'wide'), { fileMode: 0o644, dirMode: 0o755 });
      await wide.put('c/file.txt', 'x');
      expect((await stat(path.join(root, 'wide', 'c'))).mode & 0o777).toBe(0o755);
      expect((await stat(path.join(root, 'wide', 'c', 'file.txt'))).mode & 0o777).toBe(0o644);
    });

    it('writes through a hidden temp file in the same folder, skipped by list', async () => {
      const root = await tempFolder('temp');
      const dest = createLocalStore(root);
      const writer = await dest.writer('t/data.csv');
      await writer.write(Buffer.from('a,b\n'));
      const names = await readdir(path.join(root, 't'));
      expect(names).toHaveLength(1);
      expect(names[0]).toMatch(/^\.data\.csv\.\d+-[0-9a-f]{12}\.takeout-tmp$/);
      expect(isTempName(names[0] as string)).toBe(true);
      expect((await stat(path.join(root, 't', names[0] as string))).mode & 0o777).toBe(0o600);
      expect(await listAll(dest)).toEqual([]);
      await writer.finish();
      expect(await readdir(path.join(root, 't'))).toEqual(['data.csv']);
    });

    it('keeps temp names within 255 bytes for long key segments', async () => {
      const root = await tempFolder('long');
      const dest = createLocalStore(root);
      const key = `${'é'.repeat(127)}x`; // 255 bytes
      expect(Buffer.byteLength(tempNameFor(key, 'abcdef012345'))).toBeLessThanOrEqual(255);
      await dest.put(key, 'long');
      expect((await readAll(await dest.get(key))).toString()).toBe('long');
    });

    it('never writes through a symlink planted at a temp name', async () => {
      const root = await tempFolder('plant-temp');
      const victim = path.join(await tempFolder('victim'), 'victim.txt');
      await writeFile(victim, 'original');
      const planted = path.join(root, tempNameFor('data.csv', '000000000000'));
      await symlink(victim, planted);
      await expect(openExclusive(planted, 0o600)).rejects.toMatchObject({ code: expect.stringMatching(/^(EEXIST|ELOOP)$/) });
      // A dangling link (the classic attack: the target does not exist yet) is refused too.
      const dangling = path.join(root, tempNameFor('other.csv', '000000000000'));
      const notYet = path.join(path.dirname(victim), 'created-through-link.txt');
      await symlink(notYet, dangling);
      await expect(openExclusive(dangling, 0o600)).rejects.toMatchObject({ code: expect.stringMatching(/^(EEXIST|ELOOP)$/) });
      await expect(stat(notYet)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await readFile(victim, 'utf8')).toBe('original');
    });

    it('replaces a symlink at the final name instead of writing through it', async () => {
      const root = await tempFolder('plant-final');
      const victim = path.join(await tempFolder('victim'), 'victim.txt');
      await writeFile(victim, 'original');
      await symlink(victim, path.join(root, 'data.csv'));
      const dest = createLocalStore(root);
      expect(await readlink(path.join(root, 'data.csv'))).toBe(victim);
      await dest.put('data.csv', 'new content');
      expect(await readFile(victim, 'utf8')).toBe('original');
      expect((await lstat(path.join(root, 'data.csv'))).isFile()).toBe(true);
      expect(await readFile(path.join(root, 'data.csv'), 'utf8')).toBe('new content');
    });

    it('with ifNoneMatch, refuses a symlink or folder at the final name (EXISTS) without touching it or its target', async () => {
      const root = await tempFolder('create-only');
      const victim = path.join(await tempFolder('victim'), 'victim.txt');
      await writeFile(victim, 'original');
      await symlink(victim, path.join(root, 'data.csv'));
      await mkdir(path.join(root, 'folder.csv'));
      const dest = createLocalStore(root);
      const error = await expectTakeoutError(dest.put('data.csv', 'new content', { ifNoneMatch: true }), 'EXISTS');
      expect(error.message).toBe(`${path.join(await realpath(root), 'data.csv')} already exists at the destination`);
      await expectTakeoutError(dest.put('folder.csv', 'x', { ifNoneMatch: true }), 'EXISTS');
      expect(await readlink(path.join(root, 'data.csv'))).toBe(victim);
      expect(await readFile(victim, 'utf8')).toBe('original');
      expect((await walkNames(root)).sort()).toEqual(['data.csv']);
      // A new key is created with the destination's file mode, and the temp name is gone.
      await dest.put('fresh.csv', 'fresh', { ifNoneMatch: true });
      expect((await stat(path.join(root, 'fresh.csv'))).mode & 0o777).toBe(0o600);
      expect((await stat(path.join(root, 'fresh.csv'))).nlink).toBe(1);
      expect((await walkNames(root)).sort()).toEqual(['data.csv', 'fresh.csv']);
    });

    it('refuses to write, read or delete through a symlinked folder inside the root', async () => {
      const root = await tempFolder('plant-dir');
      const outside = await tempFolder('outside');
      await writeFile(path.join(outside, 'secret.txt'), 'outside');
      await symlink(outside, path.join(root, 'linked'));
      const dest = createLocalStore(root);
      await expectTakeoutError(dest.put('linked/new.txt', 'x'), 'FAILED');
      await expect(stat(path.join(outside, 'new.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expectTakeoutError(dest.get('linked/secret.txt'), 'FAILED');
      await expectTakeoutError(dest.delete(['linked/secret.txt']), 'FAILED');
      expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('outside');
      expect(await listAll(dest)).toEqual([]);
    });

    it('follows a symlinked root (resolved once)', async () => {
      const real = await tempFolder('real-root');
      const link = path.join(await tempFolder('link-parent'), 'root-link');
      await symlink(real, link);
      const dest = createLocalStore(link);
      await dest.put('a/x.txt', 'via link');
      expect(await readFile(path.join(real, 'a', 'x.txt'), 'utf8')).toBe('via link');
      expect((await listAll(dest)).map((info) => info.key)).toEqual(['a/x.txt']);
    });

    it('reads from a missing root as empty, and creates the root on first write', async () => {
      const root = path.join(await tempFolder('missing'), 'not', 'yet');
      const dest = createLocalStore(root);
      expect(await listAll(dest)).toEqual([]);
      expect(await dest.head('x')).toBeUndefined();
      await expectTakeoutError(dest.get('x'), 'NOT_FOUND');
      await dest.delete(['x']);
      await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
      await dest.preflight?.();
      expect((await stat(root)).isDirectory()).toBe(true);
    });

    it('fails clearly when a file is in the way of a folder or the root', async () => {
      const parent = await tempFolder('in-the-way');
      await writeFile(path.join(parent, 'file'), 'x');
      const dest = createLocalStore(parent);
      await expectTakeoutError(dest.put('file/child.txt', 'x'), 'FAILED');
      const fileRoot = createLocalStore(path.join(parent, 'file'));
      const error = await expectTakeoutError(fileRoot.put('x.txt', 'x'), 'FAILED');
      expect(error.message).toContain(path.join(parent, 'file'));
    });

    // root ignores permission bits, so this only means something for other users.
    it.skipIf(process.getuid?.() === 0)('maps permission problems to AUTH', async () => {
      const parent = await tempFolder('perm');
      await mkdir(path.join(parent, 'locked'), { mode: 0o500 });
      const dest = createLocalStore(path.join(parent, 'locked'));
      const error = await expectTakeoutError(dest.put('x.txt', 'x'), 'AUTH');
      expect(error.message).toContain(path.join(parent, 'locked'));
    });

    // ENOSPC: /dev/full cannot be a rename target and tmpfs mounts need root, so the mapping is tested directly.
    it('maps file system errors to one-line TakeoutErrors naming the path', () => {
      const disk = mapFsError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), '/out/x.csv', 'write');
      expect(disk.code).toBe('FAILED');
      expect(disk.message).toContain('disk is full');
      expect(disk.message).toContain('/out/x.csv');
      expect(mapFsError(Object.assign(new Error('x'), { code: 'ENOENT' }), '/p', 'read').code).toBe('NOT_FOUND');
      expect(mapFsError(Object.assign(new Error('x'), { code: 'EACCES' }), '/p', 'read').code).toBe('AUTH');
      expect(mapFsError(Object.assign(new Error('x\ny'), { code: 'EIO' }), '/p', 'read').message).toBe('cannot read /p: x y');
    });

    it('rejects a byte range that starts past the end', async () => {
      const dest = createLocalStore(await tempFolder('range'));
      await dest.put('x', 'abc');
      await expectTakeoutError(dest.get('x', { start: 3, end: 10 }), 'USAGE');
    });
  });
}

// ---------------------------------------------------------------------------------------------
// S3 specifics.

/** The S3 store's own tests, run inside its contract suite. */
function s3StoreSpecifics(): void {
  describe('S3 store specifics', () => {
    const raw = rawS3Client(endpoint);
    const prefix = uniquePrefix('s3-specific');
    const dest = createS3Store(`s3://${TEST_BUCKET}/${prefix}`, { s3: s3TestOptions(endpoint, { partSize: 5 * MiB }) });

    beforeAll(async () => {
      await dest.preflight?.();
    });

    afterAll(async () => {
      await dest.delete((await listAll(dest)).map((info) => info.key));
      await dest.close?.();
      raw.destroy();
    });

    it('normalises s3:// URLs', () => {
      expect(parseS3Url('s3://b')).toEqual({ bucket: 'b', prefix: '' });
      expect(parseS3Url('s3://b/')).toEqual({ bucket: 'b', prefix: '' });
      expect(parseS3Url('s3://b/a/b/')).toEqual({ bucket: 'b', prefix: 'a/b/' });
      expect(parseS3Url('s3://b//a/b')).toEqual({ bucket: 'b', prefix: 'a/b/' });
      expect(parseS3Url('s3://b/a//b//')).toEqual({ bucket: 'b', prefix: 'a/b/' });
      for (const bad of ['s3://', 's3:///x', 'http://b/x', 's3://bad bucket/x', 's3://b/../x', 's3://b/a/./c']) {
        expect(() => parseS3Url(bad), bad).toThrow(TakeoutError);
      }
      expect(() => parseS3Url('s3://user:hunter2secret@b/x')).toThrow(/\*\*\*/);
    });

    it('describes itself and builds URLs', () => {
      expect(dest.description).toBe(`s3://${TEST_BUCKET}/${prefix} at ${endpoint}`);
      expect(dest.urlFor('t/x.csv.gz')).toBe(`s3://${TEST_BUCKET}/${prefix}t/x.csv.gz`);
      const root = createS3Store(`s3://${TEST_BUCKET}`, { s3: s3TestOptions(endpoint) });
      expect(root.description).toBe(`s3://${TEST_BUCKET}/ at ${endpoint}`);
      expect(root.urlFor('x')).toBe(`s3://${TEST_BUCKET}/x`);
      void root.close?.();
    });

    it('stores exactly the bytes written (no aws-chunked framing), single part and multipart', async () => {
      const small = randomBytes(100_000);
      const large = randomBytes(11 * MiB + 123);
      for (const [key, data] of [
        ['exact/small.bin', small],
        ['exact/large.bin', large],
      ] as const) {
        const writer = await dest.writer(key);
        for (let offset = 0; offset < data.length; offset += 64 * 1024) await writer.write(data.subarray(offset, offset + 64 * 1024));
        await writer.finish();
        const head = await raw.send(new HeadObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}${key}` }));
        expect(head.ContentLength).toBe(data.length);
        const object = await raw.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}${key}` }));
        const bytes = Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
        expect(bytes.equals(data)).toBe(true);
      }
    });

    it('writes to another bucket', async () => {
      const other = createS3Store(`s3://${OTHER_BUCKET}/${prefix}`, { s3: s3TestOptions(endpoint) });
      await other.put('x.txt', 'other bucket');
      const object = await raw.send(new GetObjectCommand({ Bucket: OTHER_BUCKET, Key: `${prefix}x.txt` }));
      expect(await (object.Body as { transformToString(): Promise<string> }).transformToString()).toBe('other bucket');
      await other.delete(['x.txt']);
      expect(await other.head('x.txt')).toBeUndefined();
      await other.close?.();
    });

    it('preflight: a missing bucket is NOT_FOUND and names the bucket', async () => {
      const missing = createS3Store('s3://takeout-no-such-bucket/x', { s3: s3TestOptions(endpoint) });
      const error = await expectTakeoutError(missing.preflight!(), 'NOT_FOUND');
      expect(error.message).toContain('takeout-no-such-bucket');
      expect(error.message).toContain(endpoint);
      await expectTakeoutError(missing.put('x', 'x'), 'NOT_FOUND');
      await missing.close?.();
    });

    it('an unreachable endpoint is NETWORK within a few seconds and names the endpoint', async () => {
      const port = await closedPort();
      const unreachable = createS3Store(`s3://${TEST_BUCKET}/x`, { s3: s3TestOptions(`http://127.0.0.1:${port}`) });
      const started = Date.now();
      const error = await expectTakeoutError(unreachable.preflight!(), 'NETWORK');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error.message).toContain(`cannot reach http://127.0.0.1:${port}`);
      await expectTakeoutError(unreachable.put('x', 'x'), 'NETWORK');
      const writer = await unreachable.writer('y');
      await writer.write(Buffer.from('abc'));
      await expectTakeoutError(writer.finish(), 'NETWORK');
      await unreachable.close?.();
    });

    it('a multipart upload that fails rejects write or finish instead of hanging on back-pressure', async () => {
      const port = await closedPort();
      const unreachable = createS3Store(`s3://${TEST_BUCKET}/x`, {
        s3: s3TestOptions(`http://127.0.0.1:${port}`, { partSize: 5 * MiB, partConcurrency: 2 }),
      });
      const writer = await unreachable.writer('big.bin');
      const chunk = randomBytes(64 * 1024);
      const started = Date.now();
      const attempt = async (): Promise<void> => {
        for (let i = 0; i < 40 * 16; i++) await writer.write(chunk); // up to 40 MiB
        await writer.finish();
      };
      await expectTakeoutError(attempt(), 'NETWORK');
      expect(Date.now() - started).toBeLessThan(10_000);
      await writer.abort();
      await expectTakeoutError(writer.write(chunk), 'FAILED');
      await unreachable.close?.();
    });

    it('bad credentials are AUTH, name the bucket and never show the secrets', async () => {
      const secret = 'canary-secret-key-0123456789abcdef';
      const token = 'canary-session-token-fedcba9876543210';
      const denied = createS3Store(`s3://${TEST_BUCKET}/x`, {
        s3: s3TestOptions(endpoint, { accessKeyId: 'AKIANOTREALCANARY', secretAccessKey: secret, sessionToken: token }),
      });
      for (const attempt of [() => denied.preflight!(), () => denied.put('x', 'x'), () => denied.head('x')]) {
        const error = await expectTakeoutError(attempt(), 'AUTH');
        expect(error.message).toContain(TEST_BUCKET);
        // Everything reachable from the error, including its cause (SDK errors hold the signed request).
        const everything = `${error.message} ${error.hint ?? ''} ${JSON.stringify(error.details)} ${inspect(error, { depth: 10 })}`;
        expect(everything).not.toContain(secret);
        expect(everything).not.toContain(token);
        expect(everything).not.toMatch(/Signature=[0-9a-f]{16}/);
      }
      await denied.close?.();
    });

    it('rejects invalid options as USAGE', () => {
      expect(() => createS3Store(`s3://${TEST_BUCKET}`, { s3: s3TestOptions(endpoint, { partSize: 1024 }) })).toThrow(TakeoutError);
      expect(() => createS3Store(`s3://${TEST_BUCKET}`, { s3: { endpointUrl: endpoint, accessKeyId: 'only-the-id' } })).toThrow(
        TakeoutError,
      );
      expect(() => createS3Store(`s3://${TEST_BUCKET}`, { s3: { endpointUrl: 'not a url' } })).toThrow(TakeoutError);
    });

    it('maps SDK errors in one place, redacting what the SDK said', () => {
      const where = 'http://127.0.0.1:1';
      const context = { bucket: 'b', operation: 'PutObject', key: 'k', where };
      const signed = mapS3Error(
        Object.assign(new Error('bad request X-Amz-Signature=abcdef0123456789&X-Amz-Credential=AKIA/x'), {
          name: 'Weird',
          $metadata: { httpStatusCode: 400 },
        }),
        context,
      );
      expect(signed.code).toBe('FAILED');
      expect(signed.message).not.toContain('abcdef0123456789');
      expect(mapS3Error(Object.assign(new Error('x'), { name: 'NoSuchBucket' }), context).code).toBe('NOT_FOUND');
      expect(mapS3Error(Object.assign(new Error('x'), { name: 'ExpiredToken', $metadata: { httpStatusCode: 400 } }), context).code).toBe('AUTH');
      expect(mapS3Error(Object.assign(new Error('x'), { name: 'TimeoutError' }), context).code).toBe('NETWORK');
      expect(mapS3Error(Object.assign(new Error('x'), { code: 'ENOTFOUND' }), context).code).toBe('NETWORK');
      expect(mapS3Error(Object.assign(new Error('x'), { name: 'AbortError' }), context).code).toBe('INTERRUPTED');
      expect(mapS3Error(Object.assign(new Error('x'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }), { ...context, operation: 'HeadBucket', key: undefined }).message).toBe(
        `bucket b does not exist (${where})`,
      );
    });
  });
}
