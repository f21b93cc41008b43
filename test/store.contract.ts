import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canCopyServerSide } from '../src/stores/store.js';
import type { Store, ObjectInfo } from '../src/stores/store.js';
import { TakeoutError } from '../src/errors.js';

/**
 * The behaviour every Store promises, run against each implementation
 * (test/stores.test.ts). Each test works under its own key prefix, so tests never see
 * each other's objects even though they share one store.
 */
export interface ContractSubject<S extends Store = Store> {
  dest: S;
  cleanup(): Promise<void>;
  /**
   * Every name physically present under the destination, relative and '/'-separated,
   * including what `list` hides (local temp files). Lets the suite prove "nothing left behind".
   */
  rawNames?(): Promise<string[]>;
  /**
   * The server lists a folder's keys before a sibling key that sorts before '/' (`a/1` before
   * `a-1`): s3rver 3.7.1 walks its directory tree instead of sorting keys. Real S3 lists in UTF-8
   * byte order. When set, ordering across that boundary is not asserted.
   */
  listsFolderOrder?: boolean;
  /**
   * The server stores an object even when it exists and the write said `If-None-Match: *` (s3rver 3.7.1).
   * When set, only the creation of a new key under `ifNoneMatch` is asserted.
   */
  ignoresIfNoneMatch?: boolean;
}

export type ContractFactory<S extends Store = Store> = () => Promise<ContractSubject<S>>;

/** What a store's own tests see inside its contract suite: the subject the suite made, once it is made. */
export interface StoreTestContext<S extends Store = Store> {
  readonly subject: ContractSubject<S>;
  readonly dest: S;
}

export interface ContractOptions<S extends Store = Store> {
  /**
   * The store's own tests (its capabilities, its failure modes), declared inside its contract suite as
   * unstorage's `testDriver({ additionalTests })` does, so one suite per store holds all of them.
   */
  additionalTests?(context: StoreTestContext<S>): void;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export async function listAll(dest: Store, prefix?: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of dest.list(prefix)) out.push(info);
  return out;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Rejects with a TakeoutError of `code`; returns it for further checks. */
export async function expectTakeoutError(promise: Promise<unknown>, code: TakeoutError['code']): Promise<TakeoutError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, 'expected a TakeoutError').toBeInstanceOf(TakeoutError);
  const error = caught as TakeoutError;
  expect(error.code, error.message).toBe(code);
  expect(error.message).not.toMatch(/[\r\n]/);
  return error;
}

export const UNSAFE_KEYS = ['../x', '/etc/x', 'a/../../x', 'C:\\x', 'con.txt', 'a\u0000b', 'a//b', 'a/./b', '', '\\\\srv\\x'];

export function describeStoreContract<S extends Store>(name: string, factory: ContractFactory<S>, options: ContractOptions<S> = {}): void {
  describe(`Store contract: ${name}`, () => {
    let subject: ContractSubject<S>;
    let dest: S;

    beforeAll(async () => {
      subject = await factory();
      dest = subject.dest;
    });

    afterAll(async () => {
      await subject?.cleanup();
    });

    it('has a description', () => {
      expect(typeof dest.description).toBe('string');
      expect(dest.description.length).toBeGreaterThan(0);
    });

    it('round-trips text, strings and binary bytes exactly through put/get', async () => {
      const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const random = randomBytes(100 * KiB);
      const text = 'id,name\n1,"Zoë ✓ 😀"\r\n';
      await dest.put('roundtrip/all-bytes.bin', allBytes);
      await dest.put('roundtrip/random.bin', random);
      const written = await dest.put('roundtrip/text.csv', text, { contentType: 'text/csv' });
      expect(written).toMatchObject({ key: 'roundtrip/text.csv', size: Buffer.byteLength(text) });

      expect((await readAll(await dest.get('roundtrip/all-bytes.bin'))).equals(allBytes)).toBe(true);
      expect((await readAll(await dest.get('roundtrip/random.bin'))).equals(random)).toBe(true);
      expect((await readAll(await dest.get('roundtrip/text.csv'))).toString('utf8')).toBe(text);
    });

    it('overwrites an existing key', async () => {
      await dest.put('overwrite/x.txt', 'first version, longer');
      await dest.put('overwrite/x.txt', 'second');
      expect((await readAll(await dest.get('overwrite/x.txt'))).toString()).toBe('second');
      expect((await dest.head('overwrite/x.txt'))?.size).toBe(6);
    });

    it('streams a 20 MB object in 64 KiB chunks through writer (multipart on S3)', async () => {
      const data = randomBytes(20 * 1000 * 1000);
      const writer = await dest.writer('big/twenty.bin', { contentType: 'application/octet-stream' });
      for (let offset = 0; offset < data.length; offset += 64 * KiB) {
        await writer.write(data.subarray(offset, Math.min(offset + 64 * KiB, data.length)));
      }
      const written = await writer.finish();
      expect(written).toMatchObject({ key: 'big/twenty.bin', size: data.length });
      expect((await dest.head('big/twenty.bin'))?.size).toBe(data.length);
      const back = await readAll(await dest.get('big/twenty.bin'));
      expect(back.length).toBe(data.length);
      expect(sha256(back)).toBe(sha256(data));
    });

    it('reads byte ranges (end inclusive, clamped at the end of the object)', async () => {
      const data = randomBytes(1000);
      await dest.put('range/data.bin', data);
      expect((await readAll(await dest.get('range/data.bin', { start: 10, end: 19 }))).equals(data.subarray(10, 20))).toBe(true);
      expect((await readAll(await dest.get('range/data.bin', { start: 0, end: 0 }))).equals(data.subarray(0, 1))).toBe(true);
      expect((await readAll(await dest.get('range/data.bin', { start: 990, end: 999 }))).equals(data.subarray(990))).toBe(true);
      expect((await readAll(await dest.get('range/data.bin', { start: 995, end: 5000 }))).equals(data.subarray(995))).toBe(true);
      await expectTakeoutError(dest.get('range/data.bin', { start: 1000, end: 1005 }), 'USAGE');
      await expectTakeoutError(dest.get('range/data.bin', { start: 20, end: 10 }), 'USAGE');
      await expectTakeoutError(dest.get('range/data.bin', { start: -1, end: 10 }), 'USAGE');
    });

    it('reports NOT_FOUND when getting a missing key', async () => {
      await expectTakeoutError(dest.get('missing/nothing-here.bin'), 'NOT_FOUND');
      await expectTakeoutError(dest.get('missing/nothing-here.bin', { start: 0, end: 1 }), 'NOT_FOUND');
    });

    it('heads present and absent keys', async () => {
      await dest.put('head/present.txt', 'hello');
      const info = await dest.head('head/present.txt');
      expect(info).toMatchObject({ key: 'head/present.txt', size: 5 });
      expect(await dest.head('head/absent.txt')).toBeUndefined();
      // A "folder" is not an object.
      expect(await dest.head('head')).toBeUndefined();
    });

    it('lists keys under a prefix, relative to the root, in byte order, with sizes', async () => {
      const keys = ['list/c/d/e.txt', 'list/b.csv', 'list/a/1.csv', 'list/a-1.csv', 'list-sibling/x.txt', 'other/y.txt'];
      for (const key of keys) await dest.put(key, `content of ${key}`);

      const byteOrder = (keys: string[]): string[] =>
        subject.listsFolderOrder ? [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))) : keys;
      const listed = await listAll(dest, 'list/');
      expect(byteOrder(listed.map((info) => info.key))).toEqual(['list/a-1.csv', 'list/a/1.csv', 'list/b.csv', 'list/c/d/e.txt']);
      for (const info of listed) expect(info.size).toBe(Buffer.byteLength(`content of ${info.key}`));

      expect(byteOrder((await listAll(dest, 'list/a')).map((info) => info.key))).toEqual(['list/a-1.csv', 'list/a/1.csv']);
      expect(byteOrder((await listAll(dest, 'list')).map((info) => info.key))).toEqual([
        'list-sibling/x.txt',
        'list/a-1.csv',
        'list/a/1.csv',
        'list/b.csv',
        'list/c/d/e.txt',
      ]);
      expect(await listAll(dest, 'nothing-under-here/')).toEqual([]);

      const everything = (await listAll(dest)).map((info) => info.key);
      for (const key of keys) expect(everything).toContain(key);
      if (!subject.listsFolderOrder) {
        expect([...everything].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))).toEqual(everything);
      }
    });

    it('lists across several pages (30 keys)', async () => {
      const keys = Array.from({ length: 30 }, (_, i) => `paging/key-${String(i).padStart(3, '0')}.txt`);
      await Promise.all([...keys].reverse().map((key) => dest.put(key, key)));
      const listed = await listAll(dest, 'paging/');
      expect(listed.map((info) => info.key)).toEqual(keys);
    });

    it('deletes keys, ignoring missing ones', async () => {
      await dest.put('delete/a.txt', 'a');
      await dest.put('delete/b/c.txt', 'c');
      await dest.put('delete/keep.txt', 'keep');
      await dest.delete(['delete/a.txt', 'delete/b/c.txt', 'delete/never-existed.txt', 'delete/no/such/folder.txt']);
      expect(await dest.head('delete/a.txt')).toBeUndefined();
      expect(await dest.head('delete/b/c.txt')).toBeUndefined();
      expect((await listAll(dest, 'delete/')).map((info) => info.key)).toEqual(['delete/keep.txt']);
      await dest.delete([]);
      await dest.delete(['delete/a.txt']);
    });

    it('writer abort leaves nothing behind', async () => {
      const small = await dest.writer('abort/small.bin');
      await small.write(randomBytes(1000));
      await small.abort();
      await small.abort();

      // Large enough to start a multipart upload on S3 (parts of 5 MiB).
      const large = await dest.writer('abort/large.bin');
      const chunk = randomBytes(256 * KiB);
      for (let i = 0; i < 28; i++) await large.write(chunk);
      await large.abort();

      await expectTakeoutError(small.write(Buffer.from('more')), 'INTERRUPTED');
      await expectTakeoutError(large.finish(), 'INTERRUPTED');
      expect(await dest.head('abort/small.bin')).toBeUndefined();
      expect(await dest.head('abort/large.bin')).toBeUndefined();
      expect(await listAll(dest, 'abort/')).toEqual([]);
      if (subject.rawNames) {
        const raw = await subject.rawNames();
        expect(raw.filter((entry) => entry.includes('abort/') || entry.includes('small.bin') || entry.includes('large.bin'))).toEqual([]);
      }
    });

    it('abort after finish keeps the object', async () => {
      const writer = await dest.writer('abort-after/x.txt');
      await writer.write(Buffer.from('kept'));
      await writer.finish();
      await writer.abort();
      expect((await readAll(await dest.get('abort-after/x.txt'))).toString()).toBe('kept');
    });

    it('an AbortSignal aborts the writer', async () => {
      const controller = new AbortController();
      const writer = await dest.writer('signal/x.bin', { signal: controller.signal });
      await writer.write(randomBytes(1000));
      controller.abort();
      await expectTakeoutError(writer.write(Buffer.from('more')), 'INTERRUPTED');
      await writer.abort();
      expect(await dest.head('signal/x.bin')).toBeUndefined();
      await expectTakeoutError(dest.writer('signal/y.bin', { signal: controller.signal }), 'INTERRUPTED');
    });

    it('a writer whose finish is never called is not visible', async () => {
      const writer = await dest.writer('unfinished/x.bin');
      await writer.write(randomBytes(10 * KiB));
      try {
        expect(await dest.head('unfinished/x.bin')).toBeUndefined();
        expect(await listAll(dest, 'unfinished/')).toEqual([]);
        await expectTakeoutError(dest.get('unfinished/x.bin'), 'NOT_FOUND');
      } finally {
        await writer.abort();
      }
    });

    it('writes zero-byte objects through writer and put', async () => {
      const writer = await dest.writer('empty/by-writer.bin');
      await writer.write(Buffer.alloc(0));
      expect(await writer.finish()).toMatchObject({ key: 'empty/by-writer.bin', size: 0 });
      await dest.put('empty/by-put.txt', '');
      for (const key of ['empty/by-writer.bin', 'empty/by-put.txt']) {
        expect((await dest.head(key))?.size).toBe(0);
        expect((await readAll(await dest.get(key))).length).toBe(0);
      }
      expect((await listAll(dest, 'empty/')).map((info) => [info.key, info.size])).toEqual([
        ['empty/by-put.txt', 0],
        ['empty/by-writer.bin', 0],
      ]);
    });

    it('fails with INTEGRITY when the bytes written differ from contentLength, leaving nothing', async () => {
      const writer = await dest.writer('length/x.bin', { contentLength: 10 });
      await writer.write(Buffer.from('12345'));
      await expectTakeoutError(writer.finish(), 'INTEGRITY');
      expect(await dest.head('length/x.bin')).toBeUndefined();
      await expectTakeoutError(dest.put('length/y.bin', 'abc', { contentLength: 4 }), 'INTEGRITY');
      expect(await dest.head('length/y.bin')).toBeUndefined();
    });

    it('with ifNoneMatch, creates a new key but refuses an existing one (EXISTS), keeping its bytes and leaving no temp', async () => {
      expect(await dest.put('create-only/x.txt', 'first', { ifNoneMatch: true })).toMatchObject({ key: 'create-only/x.txt', size: 5 });
      const writer = await dest.writer('create-only/y.bin', { ifNoneMatch: true });
      await writer.write(Buffer.from('new'));
      expect(await writer.finish()).toMatchObject({ key: 'create-only/y.bin', size: 3 });
      expect((await readAll(await dest.get('create-only/y.bin'))).toString()).toBe('new');
      if (subject.ignoresIfNoneMatch) return;

      const error = await expectTakeoutError(dest.put('create-only/x.txt', 'second', { ifNoneMatch: true }), 'EXISTS');
      expect(error.exitCode).toBe(9);
      expect(error.message).toMatch(/create-only[/\\]x\.txt already exists at the destination$/);
      const again = await dest.writer('create-only/x.txt', { ifNoneMatch: true });
      await again.write(Buffer.from('third'));
      await expectTakeoutError(again.finish(), 'EXISTS');
      await again.abort();
      expect((await readAll(await dest.get('create-only/x.txt'))).toString()).toBe('first');
      expect((await listAll(dest, 'create-only/')).map((info) => info.key)).toEqual(['create-only/x.txt', 'create-only/y.bin']);
      if (subject.rawNames) {
        expect((await subject.rawNames()).filter((name) => name.startsWith('create-only/')).sort()).toEqual(['create-only/x.txt', 'create-only/y.bin']);
      }
    });

    it('copies server-side within itself (ServerSideCopy): create-only or replacing, sizes checked, nothing left by a refused copy', async () => {
      if (!canCopyServerSide(dest)) return;
      expect(dest.canCopyFrom(dest)).toBe(true);
      const data = randomBytes(300 * KiB);
      await dest.put('copy/src.bin', data);
      expect(await dest.copyFrom(dest, 'copy/src.bin', 'copy/dst.bin', { ifNoneMatch: true, size: data.length })).toMatchObject({ key: 'copy/dst.bin', size: data.length });
      expect((await readAll(await dest.get('copy/dst.bin'))).equals(data)).toBe(true);
      await dest.put('copy/other.txt', 'other');
      if (!subject.ignoresIfNoneMatch) await expectTakeoutError(dest.copyFrom(dest, 'copy/other.txt', 'copy/dst.bin', { ifNoneMatch: true }), 'EXISTS');
      expect((await readAll(await dest.get('copy/dst.bin'))).equals(data)).toBe(true);
      await dest.copyFrom(dest, 'copy/other.txt', 'copy/dst.bin');
      expect((await readAll(await dest.get('copy/dst.bin'))).toString()).toBe('other');
      await expectTakeoutError(dest.copyFrom(dest, 'copy/missing.bin', 'copy/m.bin'), 'NOT_FOUND');
      await expectTakeoutError(dest.copyFrom(dest, 'copy/src.bin', 'copy/wrong.bin', { size: data.length + 1 }), 'INTEGRITY');
      await expectTakeoutError(dest.copyFrom(dest, 'copy/src.bin', '../x'), 'USAGE');
      expect((await listAll(dest, 'copy/')).map((info) => info.key)).toEqual(['copy/dst.bin', 'copy/other.txt', 'copy/src.bin']);
      if (subject.rawNames) expect((await subject.rawNames()).filter((name) => name.startsWith('copy/')).sort()).toEqual(['copy/dst.bin', 'copy/other.txt', 'copy/src.bin']);
    });

    it('rejects unsafe keys before touching anything', async () => {
      for (const key of UNSAFE_KEYS) {
        const error = await expectTakeoutError(dest.put(key, 'x'), 'USAGE');
        // The key is named, quoted and escaped (a NUL shows as \u0000, not as a raw byte).
        expect(error.message).toContain(JSON.stringify(key));
        await expectTakeoutError(dest.writer(key), 'USAGE');
        await expectTakeoutError(dest.get(key), 'USAGE');
        await expectTakeoutError(dest.head(key), 'USAGE');
        await expectTakeoutError(dest.delete([key]), 'USAGE');
      }
      await expectTakeoutError(listAll(dest, '../'), 'USAGE');
      const everything = (await listAll(dest)).map((info) => info.key);
      expect(everything.filter((key) => key === 'x' || key.endsWith('/x') || key.includes('con.txt'))).toEqual([]);
    });

    it('creates nested folders for nested keys', async () => {
      await dest.put('nested/a/b/c/d/e.txt', 'deep');
      const writer = await dest.writer('nested/a/other/f.txt');
      await writer.write(Buffer.from('deep too'));
      await writer.finish();
      expect((await readAll(await dest.get('nested/a/b/c/d/e.txt'))).toString()).toBe('deep');
      expect((await listAll(dest, 'nested/')).map((info) => info.key)).toEqual(['nested/a/b/c/d/e.txt', 'nested/a/other/f.txt']);
    });

    it('handles a reasonable range of key characters', async () => {
      const keys = ['chars/with space.txt', 'chars/ünïcødé-✓.txt', 'chars/plus+equals=.txt', 'chars/percent%20.txt'];
      for (const key of keys) await dest.put(key, key);
      for (const key of keys) expect((await readAll(await dest.get(key))).toString()).toBe(key);
      const listed = (await listAll(dest, 'chars/')).map((info) => info.key);
      expect([...listed].sort()).toEqual([...keys].sort());
    });

    it('writers on different keys run concurrently', async () => {
      const payloads = Array.from({ length: 8 }, () => randomBytes(50 * KiB));
      const writers = await Promise.all(payloads.map((_, i) => dest.writer(`concurrent/${i}.bin`)));
      await Promise.all(writers.map((writer, i) => writer.write(payloads[i] as Buffer)));
      await Promise.all(writers.map((writer) => writer.finish()));
      for (let i = 0; i < payloads.length; i++) {
        expect((await readAll(await dest.get(`concurrent/${i}.bin`))).equals(payloads[i] as Buffer)).toBe(true);
      }
    });

    it('keeps memory bounded: writes wait for the consumer (back-pressure)', async () => {
      // Not a memory measurement: just proves writes resolve and the data arrives intact under 1 MiB chunks.
      const data = randomBytes(6 * MiB);
      const writer = await dest.writer('pressure/x.bin');
      for (let offset = 0; offset < data.length; offset += MiB) await writer.write(data.subarray(offset, offset + MiB));
      await writer.finish();
      expect(sha256(await readAll(await dest.get('pressure/x.bin')))).toBe(sha256(data));
    });

    options.additionalTests?.({
      get subject() {
        return subject;
      },
      get dest() {
        return dest;
      },
    });
  });
}
