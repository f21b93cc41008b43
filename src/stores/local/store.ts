/**
 * A local folder as a store.
 *
 * Writes are atomic: bytes go to a temp file in the target's own folder
 * (`.<basename>.<random>.takeout-tmp`, opened with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600),
 * then fsync → close → rename → fsync of the folder. A reader never sees a half-written file,
 * and a crash leaves only a hidden temp file that `list` skips.
 *
 * Symlinks: the root is resolved with realpath once, and nothing below it is followed.
 * - A planted symlink at the temp name makes the exclusive open fail (EEXIST/ELOOP): never written through.
 * - A symlink at the final name is *replaced* by rename(2) (the link itself, not its target); with
 *   `ifNoneMatch` the commit is link(2) instead, which refuses it like any existing name (EXISTS).
 * - A symlinked folder between the root and a key is refused for writes, reads and deletes,
 *   and skipped by `list`.
 */
import { constants } from 'node:fs';
import { access, lstat, open, realpath, statfs, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { errnoOf, TakeoutError } from '../../errors.js';
import type {
  ByteRange,
  CleanableLeftovers,
  CopyOptions,
  LocalFolder,
  Preflight,
  Store,
  StoreOptions,
  Leftover,
  ObjectInfo,
  ObjectWriter,
  ServerSideCopy,
  WriteOptions,
  WrittenObject,
} from '../store.js';
import { assertCopiedSize, copyRefused, sourceObject } from '../copy.js';
import { assertSafeKey, assertSafePrefix, joinInside } from '../keys.js';
import { checkRange, withMappedErrors } from '../streams.js';
import { throttledStore } from '../throttled.js';
import { LocalFolders, NO_NEW_FOLDERS_FS } from './folders.js';
import { interrupted, mapFsError, symlinkRefused } from './fs-errors.js';
import { compareKeys, listFiles, listTemps } from './listing.js';
import { isTempName, O_NOFOLLOW, openExclusive, tempNameFor, tempToken } from './temp-files.js';
import { LocalWriter } from './writer.js';

const DEFAULT_FILE_MODE = 0o600;
const DEFAULT_DIR_MODE = 0o700;
/** Reads in 1 MiB chunks: 16× fewer round trips through the thread pool than the 64 KiB default. */
const READ_CHUNK_BYTES = 1024 * 1024;
/** Keys deleted in parallel. */
const DELETE_CONCURRENCY = 32;

/** What a local folder can do: every capability. */
export type LocalFolderStore = Store & Preflight & CleanableLeftovers & LocalFolder & ServerSideCopy;

class LocalStore implements LocalFolderStore {
  readonly description: string;
  private readonly root: string;
  private readonly fileMode: number;
  private readonly folders: LocalFolders;

  constructor(root: string, options: StoreOptions) {
    this.root = path.resolve(root);
    this.description = this.root.endsWith(path.sep) ? this.root : `${this.root}${path.sep}`;
    this.fileMode = options.fileMode ?? DEFAULT_FILE_MODE;
    this.folders = new LocalFolders(this.root, options.dirMode ?? DEFAULT_DIR_MODE);
  }

  urlFor(): string | undefined {
    return undefined;
  }

  /** Whether two names that differ only in case are one file here (macOS and Windows by default): probed with a temp file. */
  async caseInsensitive(): Promise<boolean> {
    const root = await this.folders.writableRoot();
    const probe = path.join(root, tempNameFor('case-probe', tempToken()));
    const handle = await openExclusive(probe, this.fileMode);
    await handle.close();
    try {
      return (await lstat(path.join(root, probe.slice(root.length + 1).toUpperCase())).catch(() => undefined)) !== undefined;
    } finally {
      await unlink(probe).catch(() => undefined);
    }
  }

  get localPath(): string {
    return this.root;
  }

  async preflight(options: { readOnly?: boolean } = {}): Promise<void> {
    if (options.readOnly) {
      // What mkdir -p and the first write would meet, found without creating anything.
      const { folder, info } = await this.folders.nearestExisting();
      if (folder !== this.root && NO_NEW_FOLDERS_FS.has((await statfs(folder).catch(() => undefined))?.type ?? -1)) {
        throw new TakeoutError('NOT_FOUND', `cannot create folder ${this.root}: ${folder} is on a file system that takes no new folders`, {
          hint: 'choose a destination on a regular file system',
          details: { path: this.root },
        });
      }
      if (!info.isDirectory()) {
        throw folder === this.root
          ? new TakeoutError('FAILED', `${this.root} exists and is not a folder`)
          : mapFsError(Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }), this.root, 'create folder');
      }
      try {
        await access(folder, constants.W_OK | constants.X_OK);
      } catch (error) {
        throw mapFsError(error, this.root, folder === this.root ? 'write into' : 'create folder');
      }
      return;
    }
    const root = await this.folders.writableRoot();
    try {
      await access(root, constants.W_OK | constants.X_OK);
    } catch (error) {
      throw mapFsError(error, root, 'write into');
    }
  }

  async writer(key: string, options: WriteOptions = {}): Promise<ObjectWriter> {
    assertSafeKey(key);
    if (options.signal?.aborted) throw interrupted(key);
    const root = await this.folders.writableRoot();
    const target = joinInside(root, key);
    const folder = path.dirname(target);
    await this.folders.ensureFolder(root, folder);
    const tempPath = path.join(folder, tempNameFor(path.basename(target), tempToken()));
    let handle: FileHandle;
    try {
      handle = await openExclusive(tempPath, this.fileMode);
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'EEXIST' || code === 'ELOOP') {
        throw new TakeoutError('FAILED', `temp file ${tempPath} already exists: refusing to write through it`, {
          cause: error,
          details: { path: tempPath },
        });
      }
      throw mapFsError(error, target, 'create');
    }
    try {
      // open(2) applies the umask; set the mode we were asked for exactly.
      await handle.chmod(this.fileMode);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(tempPath).catch(() => undefined);
      throw mapFsError(error, target, 'set the mode of');
    }
    return new LocalWriter(key, target, tempPath, handle, options);
  }

  /** Another folder on this machine: the kernel copies, no byte passes through this process. */
  canCopyFrom(source: Store): boolean {
    return source instanceof LocalStore;
  }

  async copyFrom(source: Store, fromKey: string, toKey: string, options: CopyOptions = {}): Promise<WrittenObject> {
    if (!(source instanceof LocalStore)) throw copyRefused(this, source);
    const info = await sourceObject(source, fromKey, options.size);
    const file = await source.folders.locate(fromKey);
    if (file === undefined) throw new TakeoutError('NOT_FOUND', `${joinInside(source.root, fromKey)} does not exist`, { details: { key: fromKey } });
    const writer = (await this.writer(toKey, { contentLength: info.size, ...(options.ifNoneMatch ? { ifNoneMatch: true } : {}), ...(options.signal ? { signal: options.signal } : {}) })) as LocalWriter;
    let written: WrittenObject;
    try {
      await writer.copyFileIn(file, this.fileMode);
      written = await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
    assertCopiedSize(written, info.size, joinInside(this.root, toKey));
    return written;
  }

  async put(key: string, body: Buffer | string, options: WriteOptions = {}): Promise<WrittenObject> {
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    const writer = await this.writer(key, options);
    try {
      if (data.length > 0) await writer.write(data);
      return await writer.finish();
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertSafeKey(key);
    if (range) checkRange(range, key);
    const file = await this.folders.locate(key);
    if (file === undefined) {
      throw new TakeoutError('NOT_FOUND', `${joinInside(this.root, key)} does not exist`, { details: { key } });
    }
    let handle: FileHandle;
    try {
      handle = await open(file, constants.O_RDONLY | O_NOFOLLOW);
    } catch (error) {
      throw mapFsError(error, file, 'read');
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new TakeoutError('NOT_FOUND', `${file} is not a file`, { details: { key } });
      if (range && range.start >= info.size) {
        throw new TakeoutError('USAGE', `byte range ${range.start}-${range.end} is outside ${file} (${info.size} bytes)`, {
          details: { key, range, size: info.size },
        });
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw mapFsError(error, file, 'read');
    }
    const stream = handle.createReadStream({ highWaterMark: READ_CHUNK_BYTES, ...(range ? { start: range.start, end: range.end } : {}) });
    return withMappedErrors(stream, (error) => mapFsError(error, file, 'read'));
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertSafeKey(key);
    const file = await this.folders.locate(key);
    if (file === undefined) return undefined;
    try {
      const info = await lstat(file);
      if (!info.isFile()) return undefined;
      return { key, size: info.size, lastModified: info.mtime };
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      throw mapFsError(error, file, 'read');
    }
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    assertSafePrefix(prefix);
    const root = await this.folders.readableRoot();
    if (root === undefined) return;
    const slash = prefix.lastIndexOf('/');
    const folderKey = slash === -1 ? '' : prefix.slice(0, slash);
    const start = folderKey === '' ? root : joinInside(root, folderKey);
    const found: ObjectInfo[] = [];
    await listFiles(start, folderKey === '' ? '' : `${folderKey}/`, prefix, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertSafeKey(key);
    const root = await this.folders.readableRoot();
    if (root === undefined) return;
    const verifiedFolders = new Map<string, Promise<boolean>>();
    const folderIsReal = (folder: string): Promise<boolean> => {
      let verdict = verifiedFolders.get(folder);
      if (!verdict) {
        verdict = realpath(folder).then(
          (real) => {
            if (real !== folder) throw symlinkRefused(folder);
            return true;
          },
          (error: unknown) => {
            const code = errnoOf(error);
            if (code === 'ENOENT' || code === 'ENOTDIR') return false;
            throw mapFsError(error, folder, 'delete from');
          },
        );
        verifiedFolders.set(folder, verdict);
      }
      return verdict;
    };
    const deleteOne = async (key: string): Promise<void> => {
      const file = joinInside(root, key);
      if (!(await folderIsReal(path.dirname(file)))) return;
      try {
        await unlink(file);
      } catch (error) {
        const code = errnoOf(error);
        // Missing keys are not an error; a folder at the key is not an object either.
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return;
        if (code === 'EPERM' && (await lstat(file).catch(() => undefined))?.isDirectory()) return;
        throw mapFsError(error, file, 'delete');
      }
    };
    for (let i = 0; i < keys.length; i += DELETE_CONCURRENCY) {
      await Promise.all(keys.slice(i, i + DELETE_CONCURRENCY).map(deleteOne));
    }
  }

  /** Temp files (`.<name>.<random>.takeout-tmp`) anywhere below the root, last modified before the cutoff. */
  async *leftovers(olderThanMs: number): AsyncIterable<Leftover> {
    const root = await this.folders.readableRoot();
    if (root === undefined) return;
    // 0 takes every temp file, even one modified while the folder is walked.
    const cutoff = olderThanMs > 0 ? Date.now() - olderThanMs : Number.POSITIVE_INFINITY;
    const found: Leftover[] = [];
    await listTemps(root, '', cutoff, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async removeLeftover(item: Leftover): Promise<void> {
    if (item.kind !== 'temp-file' || !isTempName(path.posix.basename(item.key))) {
      throw new TakeoutError('USAGE', `${item.key} is not a takeout temp file of ${this.description}`, { details: { key: item.key } });
    }
    const root = await this.folders.readableRoot();
    if (root === undefined) return;
    const file = joinInside(root, item.key);
    const folder = path.dirname(file);
    try {
      if ((await realpath(folder)) !== folder) throw symlinkRefused(folder);
      const info = await lstat(file);
      if (!info.isFile()) return;
      await unlink(file);
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw mapFsError(error, file, 'remove');
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  async freeBytes(): Promise<number | undefined> {
    const { folder } = await this.folders.nearestExisting();
    const fs = await statfs(folder).catch(() => undefined);
    return fs === undefined ? undefined : fs.bavail * fs.bsize;
  }

}

/** A destination writing into (and reading from) the folder `root`; created on the first write. */
export function createLocalStore(root: string, options: StoreOptions = {}): LocalFolderStore {
  const destination = new LocalStore(root, options);
  return options.throttle ? throttledStore(destination, options.throttle) : destination;
}

