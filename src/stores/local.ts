import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, lstat, mkdir, open, readdir, realpath, rename, stat, statfs, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { errnoOf, oneLine, TakeoutError } from '../errors.js';
import type {
  ByteRange,
  Store,
  StoreOptions,
  Leftover,
  ObjectInfo,
  ObjectWriter,
  WriteOptions,
  WrittenObject,
} from './store.js';
import { assertSafeKey, assertSafePrefix, joinInside, keyProblem } from './keys.js';
import { checkRange, withMappedErrors } from './streams.js';
import { throttledStore } from './throttled.js';
import { GuardedWriter } from './writer-state.js';

/**
 * A local folder as a destination.
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

const DEFAULT_FILE_MODE = 0o600;
const DEFAULT_DIR_MODE = 0o700;
export const TEMP_SUFFIX = '.takeout-tmp';

/** Reads in 1 MiB chunks: 16× fewer round trips through the thread pool than the 64 KiB default. */
const READ_CHUNK_BYTES = 1024 * 1024;
/** Leaves room for the leading dot, the random token and the suffix within NAME_MAX (255 bytes). */
const TEMP_BASENAME_MAX_BYTES = 200;
/** Keys deleted in parallel. */
const DELETE_CONCURRENCY = 32;
/** O_NOFOLLOW does not exist on Windows; there the exclusive create alone guards the temp name. */
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/** O_DIRECTORY makes open(2) of anything but a folder fail with ENOTDIR; absent on Windows. */
const O_DIRECTORY = constants.O_DIRECTORY ?? 0;

/** `.<basename>.<token>.takeout-tmp`, with the basename shortened so the name fits in 255 bytes. */
export function tempNameFor(baseName: string, token: string): string {
  return `.${truncateUtf8(baseName, TEMP_BASENAME_MAX_BYTES)}.${token}${TEMP_SUFFIX}`;
}

/** `<pid>-<random>`: the pid lets a later run tell a dead process's temp file from a live one's. */
function tempToken(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** True unless `pid` is certainly gone on this machine (EPERM: alive, someone else's). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoOf(error) !== 'ESRCH';
  }
}

/**
 * Removes the temp files beside `file` that a takeout process on this machine left when it was killed
 * (SIGKILL sends no cleanup), so a rerun leaves the folder as clean as an uninterrupted run.
 * Temp files of live processes, and of other names, are left alone. Returns how many were removed.
 */
export async function removeOrphanTemps(file: string): Promise<number> {
  const folder = path.dirname(file);
  const lead = tempNameFor(path.basename(file), '');
  const prefix = lead.slice(0, lead.length - TEMP_SUFFIX.length);
  let removed = 0;
  const names = await readdir(folder).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(TEMP_SUFFIX)) continue;
    const token = /^(\d+)-[0-9a-f]{12}$/.exec(name.slice(prefix.length, name.length - TEMP_SUFFIX.length));
    const pid = token ? Number(token[1]) : undefined;
    if (pid === undefined || pid === process.pid || processAlive(pid)) continue;
    const info = await lstat(path.join(folder, name)).catch(() => undefined);
    if (!info?.isFile()) continue;
    await unlink(path.join(folder, name)).then(() => removed++, () => undefined);
  }
  return removed;
}

export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith(TEMP_SUFFIX);
}

/** Create a new file for writing: fails if anything (file, symlink, folder) exists at `file`. */
export async function openExclusive(file: string, mode: number): Promise<FileHandle> {
  return open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, mode);
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > maxBytes) break;
    out += char;
    bytes += size;
  }
  return out;
}

/** Map a file system error to a one-line TakeoutError naming the path. */
export function mapFsError(error: unknown, file: string, action: string): TakeoutError {
  if (error instanceof TakeoutError) return error;
  const code = errnoOf(error);
  const options = { cause: error, details: { path: file, errno: code } };
  switch (code) {
    case 'ENOENT':
      return new TakeoutError('NOT_FOUND', `${file} does not exist`, options);
    case 'EACCES':
    case 'EPERM':
      return new TakeoutError('AUTH', `permission denied: cannot ${action} ${file}`, options);
    case 'EROFS':
      return new TakeoutError('AUTH', `cannot ${action} ${file}: the file system is read-only`, options);
    case 'ENOSPC':
      return new TakeoutError('FAILED', `disk is full: cannot ${action} ${file}`, {
        ...options,
        hint: 'free some space or choose another destination',
      });
    case 'EDQUOT':
      return new TakeoutError('FAILED', `disk quota exceeded: cannot ${action} ${file}`, options);
    case 'ELOOP':
      // Too many symlinks on the way (a loop), or a symlink opened where takeout follows none (O_NOFOLLOW).
      return new TakeoutError('FAILED', `cannot ${action} ${file}: a symlink loop, or a symlink where takeout follows none`, options);
    case 'EEXIST':
      return new TakeoutError('FAILED', `cannot ${action} ${file}: something already exists there`, options);
    case 'ENOTDIR':
      return new TakeoutError('FAILED', `cannot ${action} ${file}: a file is in the way of one of its folders`, options);
    case 'EISDIR':
    case 'ENOTEMPTY':
      return new TakeoutError('FAILED', `cannot ${action} ${file}: it is a folder`, options);
    case 'ENAMETOOLONG':
      return new TakeoutError('USAGE', `cannot ${action} ${file}: the name is too long`, options);
    case 'EMFILE':
    case 'ENFILE':
      return new TakeoutError('FAILED', `cannot ${action} ${file}: too many open files`, options);
    default: {
      const message = error instanceof Error ? error.message : String(error);
      return new TakeoutError('FAILED', oneLine(`cannot ${action} ${file}: ${message}`), options);
    }
  }
}

/** The nearest ancestor of `target` that exists and is not a folder (ENOTDIR names no path), or `target`'s parent. */
async function fileAbove(target: string): Promise<string> {
  for (let current = path.dirname(target); ; current = path.dirname(current)) {
    const info = await lstat(current).catch(() => undefined);
    if (info && !info.isDirectory()) return current;
    if (info || path.dirname(current) === current) return path.dirname(target);
  }
}

function fileInTheWay(folder: string, file: string): TakeoutError {
  return new TakeoutError('FAILED', `cannot create folder ${folder}: ${file} is a file, not a folder`, {
    details: { path: folder, inTheWay: file },
    hint: 'move the file away or choose another destination',
  });
}

function symlinkRefused(file: string): TakeoutError {
  return new TakeoutError(
    'FAILED',
    `${file} is reached through a symlink: takeout does not follow symlinks inside a destination`,
    { details: { path: file } },
  );
}

/** What link(2) answers on file systems without hard links (FAT and exFAT say EPERM, as do some SMB mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

function exists(file: string, cause: unknown): TakeoutError {
  return new TakeoutError('EXISTS', `${file} already exists at the destination`, { cause, details: { path: file } });
}

/**
 * write(2) that accepts nothing (a misbehaving FUSE or network file system): retrying the rest would loop
 * forever without an error, so it is one, mapped like any failed write.
 */
function noProgress(): NodeJS.ErrnoException {
  return Object.assign(new Error('write(2) wrote 0 bytes'), { code: 'EIO', syscall: 'write' });
}

/**
 * mkdir(2) said ENOENT though the folders above were found: the parent is a dangling symlink, or a file
 * system that takes no new folders (/proc, /sys). "does not exist" would send the user looking for the wrong thing.
 */
async function cannotCreate(folder: string, cause: unknown): Promise<TakeoutError> {
  const parent = path.dirname(folder);
  if (await isDanglingLink(parent)) return danglingLink(parent, cause);
  return new TakeoutError('NOT_FOUND', `cannot create folder ${folder}: its parent folder does not take new folders`, {
    cause,
    hint: 'choose a destination on a regular file system',
    details: { path: folder, errno: 'ENOENT' },
  });
}

async function isDanglingLink(file: string): Promise<boolean> {
  const link = await lstat(file).then((info) => info.isSymbolicLink(), () => false);
  return link && (await stat(file).then(() => false, (error: unknown) => errnoOf(error) === 'ENOENT'));
}

function danglingLink(link: string, cause?: unknown): TakeoutError {
  return new TakeoutError('NOT_FOUND', `cannot create folder below ${link}: it is a symlink to a folder that does not exist`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'point the symlink at an existing folder, or choose another destination',
    details: { path: link, errno: 'ENOENT' },
  });
}

/**
 * Pseudo file systems that exist but take no new folders (statfs f_type, linux/magic.h): a dry run cannot
 * try mkdir, so it asks what the nearest existing folder is on.
 */
const NO_NEW_FOLDERS_FS = new Set([0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */, 0x64626720 /* debugfs */]);

function interrupted(file: string): TakeoutError {
  return new TakeoutError('INTERRUPTED', `writing ${file} was aborted`, { details: { path: file } });
}

/** Byte-wise (UTF-8) order, the order S3 lists keys in. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function fsyncFolder(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, constants.O_RDONLY);
    await handle.sync();
  } catch (error) {
    // Some platforms and file systems cannot fsync a folder (Windows, some network mounts).
    const code = errnoOf(error);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') {
      throw mapFsError(error, dir, 'sync folder');
    }
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

class LocalWriter extends GuardedWriter implements ObjectWriter {
  private bytes = 0;
  private handleClosed = false;
  private discarded: Promise<void> | undefined;

  constructor(
    private readonly key: string,
    private readonly target: string,
    private readonly tempPath: string,
    private readonly handle: FileHandle,
    private readonly options: WriteOptions,
  ) {
    super(options.signal);
  }

  async write(chunk: Buffer): Promise<void> {
    await this.writeFully(chunk, undefined);
    this.bytes += chunk.length;
  }

  /**
   * Writes at a byte position, for writers that fill a file out of order (parallel merges with
   * known slice sizes). Mixing it with write() is the caller's business.
   */
  async writeAt(chunk: Buffer, position: number): Promise<void> {
    await this.writeFully(chunk, position);
    this.bytes = Math.max(this.bytes, position + chunk.length);
  }

  /** All of `chunk`, at `position` or at the file's offset; a failure discards the temp file. */
  private async writeFully(chunk: Buffer, position: number | undefined): Promise<void> {
    this.assertOpen();
    try {
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset, position === undefined ? undefined : position + offset);
        if (bytesWritten === 0) throw noProgress();
        offset += bytesWritten;
      }
    } catch (error) {
      if (this.isAborted()) throw interrupted(this.target);
      const mapped = mapFsError(error, this.target, 'write');
      await this.failWith();
      throw mapped;
    }
  }

  async finish(): Promise<WrittenObject> {
    this.beginFinish();
    const expected = this.options.contentLength;
    if (expected !== undefined && expected !== this.bytes) {
      await this.failWith();
      throw new TakeoutError('INTEGRITY', `${this.target}: expected ${expected} bytes but ${this.bytes} were written`, {
        details: { path: this.target, expected, written: this.bytes },
      });
    }
    try {
      await this.handle.sync();
      this.handleClosed = true;
      await this.handle.close();
      if (this.isAborted()) throw interrupted(this.target);
      await (this.options.ifNoneMatch ? this.commitNew() : rename(this.tempPath, this.target));
    } catch (error) {
      if (this.isAborted()) {
        await this.discard();
        throw interrupted(this.target);
      }
      const mapped = mapFsError(error, this.target, 'write');
      await this.failWith();
      throw mapped;
    }
    this.committed();
    await fsyncFolder(path.dirname(this.target));
    return { key: this.key, size: this.bytes };
  }

  /**
   * Create-only commit: link(2) fails with EEXIST when anything (file, symlink, folder) is at the final
   * name, atomically, where rename(2) would replace it. The temp name is unlinked afterwards.
   */
  private async commitNew(): Promise<void> {
    try {
      await link(this.tempPath, this.target);
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'EEXIST') throw exists(this.target, error);
      if (code === undefined || !NO_HARD_LINKS.has(code)) throw error;
      // No hard links here (FAT, some network shares): check, then rename. Not atomic, but still refuses
      // everything except a file created in the instant between the two calls.
      if (await lstat(this.target).then(() => true, () => false)) throw exists(this.target, error);
      await rename(this.tempPath, this.target);
      return;
    }
    // The object is committed; a temp name left by a failed unlink is a hard link that cleanup removes.
    await unlink(this.tempPath).catch(() => undefined);
  }

  protected where(): string {
    return this.target;
  }

  protected interrupted(): TakeoutError {
    return interrupted(this.target);
  }

  protected discard(): Promise<void> {
    this.discarded ??= (async () => {
      if (!this.handleClosed) {
        this.handleClosed = true;
        await this.handle.close().catch(() => undefined);
      }
      await unlink(this.tempPath).catch(() => undefined);
    })();
    return this.discarded;
  }
}

class LocalStore implements Store {
  readonly description: string;
  private readonly root: string;
  private readonly fileMode: number;
  private readonly dirMode: number;
  private writableRootPromise: Promise<string> | undefined;
  private readonly knownFolders = new Set<string>();

  constructor(root: string, options: StoreOptions) {
    this.root = path.resolve(root);
    this.description = this.root.endsWith(path.sep) ? this.root : `${this.root}${path.sep}`;
    this.fileMode = options.fileMode ?? DEFAULT_FILE_MODE;
    this.dirMode = options.dirMode ?? DEFAULT_DIR_MODE;
  }

  urlFor(): string | undefined {
    return undefined;
  }

  /** Whether two names that differ only in case are one file here (macOS and Windows by default): probed with a temp file. */
  async caseInsensitive(): Promise<boolean> {
    const root = await this.writableRoot();
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
      const { folder, info } = await this.nearestExisting();
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
    const root = await this.writableRoot();
    try {
      await access(root, constants.W_OK | constants.X_OK);
    } catch (error) {
      throw mapFsError(error, root, 'write into');
    }
  }

  async writer(key: string, options: WriteOptions = {}): Promise<ObjectWriter> {
    assertSafeKey(key);
    if (options.signal?.aborted) throw interrupted(key);
    const root = await this.writableRoot();
    const target = joinInside(root, key);
    const folder = path.dirname(target);
    await this.ensureFolder(root, folder);
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
    const file = await this.locate(key);
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
    const file = await this.locate(key);
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
    const root = await this.readableRoot();
    if (root === undefined) return;
    const slash = prefix.lastIndexOf('/');
    const folderKey = slash === -1 ? '' : prefix.slice(0, slash);
    const start = folderKey === '' ? root : joinInside(root, folderKey);
    const found: ObjectInfo[] = [];
    await this.walk(start, folderKey === '' ? '' : `${folderKey}/`, prefix, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertSafeKey(key);
    const root = await this.readableRoot();
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
    const root = await this.readableRoot();
    if (root === undefined) return;
    // 0 takes every temp file, even one modified while the folder is walked.
    const cutoff = olderThanMs > 0 ? Date.now() - olderThanMs : Number.POSITIVE_INFINITY;
    const found: Leftover[] = [];
    await this.walkTemps(root, '', cutoff, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async removeLeftover(item: Leftover): Promise<void> {
    if (item.kind !== 'temp-file' || !isTempName(path.posix.basename(item.key))) {
      throw new TakeoutError('USAGE', `${item.key} is not a takeout temp file of ${this.description}`, { details: { key: item.key } });
    }
    const root = await this.readableRoot();
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

  /**
   * Create the root (mode dirMode) on first write and resolve it once with realpath. The missing folders
   * are made one at a time, not with `mkdir -p`: Node's recursive mkdir reports ENOENT for a parent on a
   * read-only mount ("does not exist"), where one mkdir(2) per folder says EROFS, EACCES or ENOTDIR and
   * names the folder it happened to. Existing parents are followed: the user named this path.
   */
  private writableRoot(): Promise<string> {
    this.writableRootPromise ??= (async () => {
      const { folder: existing, info, missing } = await this.nearestExisting();
      if (!info.isDirectory()) {
        throw existing === this.root
          ? new TakeoutError('FAILED', `${this.root} exists and is not a folder`, { details: { path: this.root } })
          : fileInTheWay(missing[0] ?? this.root, existing);
      }
      for (const folder of missing) await this.makeFolder(folder, true);
      try {
        const real = await realpath(this.root);
        const info = await lstat(real);
        if (!info.isDirectory()) throw new TakeoutError('FAILED', `${this.root} exists and is not a folder`);
        return real;
      } catch (error) {
        throw mapFsError(error, this.root, 'open folder');
      }
    })();
    this.writableRootPromise.catch(() => {
      this.writableRootPromise = undefined;
    });
    return this.writableRootPromise;
  }

  /**
   * Make one folder (mode dirMode) whose parent exists, or accept the folder already there. Inside the
   * destination (`follow` false) the folder is opened with O_DIRECTORY|O_NOFOLLOW, so a symlink or a file
   * at its name is refused before anything is created below it; the mode is set on that open handle,
   * never through a name that could have been swapped for a link meanwhile.
   */
  private async makeFolder(folder: string, follow: boolean): Promise<void> {
    let created = false;
    try {
      await mkdir(folder, { mode: this.dirMode });
      created = true;
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOTDIR') throw fileInTheWay(folder, await fileAbove(folder));
      if (code === 'ENOENT') throw await cannotCreate(folder, error);
      if (code !== 'EEXIST') throw mapFsError(error, folder, 'create folder');
    }
    if (process.platform === 'win32') {
      // Windows opens no folder with open(2), and has no modes to set: lstat is the check there.
      const info = await lstat(folder).catch((error: unknown) => {
        throw mapFsError(error, folder, 'open folder');
      });
      if (info.isSymbolicLink() && !follow) throw symlinkRefused(folder);
      if (!info.isDirectory() && !info.isSymbolicLink()) throw fileInTheWay(folder, folder);
      return;
    }
    let handle: FileHandle | undefined;
    try {
      handle = await open(folder, constants.O_RDONLY | O_DIRECTORY | (follow ? 0 : O_NOFOLLOW));
      // Where O_NOFOLLOW is missing, open(2) cannot tell a symlink from a folder.
      if (!follow && O_NOFOLLOW === 0 && (await lstat(folder)).isSymbolicLink()) throw symlinkRefused(folder);
      // mkdir(2) applies the umask; set the mode we were asked for exactly.
      if (created) await handle.chmod(this.dirMode);
    } catch (error) {
      if (error instanceof TakeoutError) throw error;
      const code = errnoOf(error);
      // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR on Linux, ELOOP on macOS, EMLINK on FreeBSD.
      if (code === 'ELOOP' || code === 'EMLINK' || code === 'ENOTDIR') {
        if ((await lstat(folder).catch(() => undefined))?.isSymbolicLink()) throw symlinkRefused(folder);
        if (code === 'ENOTDIR') throw fileInTheWay(folder, folder);
      }
      if (code === 'ENOENT' && (await isDanglingLink(folder))) throw danglingLink(folder, error);
      throw mapFsError(error, folder, 'open folder');
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  async freeBytes(): Promise<number | undefined> {
    const { folder } = await this.nearestExisting();
    const fs = await statfs(folder).catch(() => undefined);
    return fs === undefined ? undefined : fs.bavail * fs.bsize;
  }

  /** The root, or its closest ancestor that exists: where a write would first land. */
  /**
   * The root, or its closest ancestor that exists (a file in the way included, to be named), with the folders
   * below it that a write would make, top first. Creating the root (writableRoot) and the dry run's look at it
   * (preflight) both start here.
   */
  private async nearestExisting(): Promise<{ folder: string; info: Awaited<ReturnType<typeof stat>>; missing: string[] }> {
    const missing: string[] = [];
    let folder = this.root;
    for (;;) {
      try {
        return { folder, info: await stat(folder), missing };
      } catch (error) {
        const code = errnoOf(error);
        const parent = path.dirname(folder);
        // ENOTDIR: a file somewhere above; climbing on finds it, to name it.
        if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === folder) throw mapFsError(error, folder, 'open folder');
        // A dangling symlink is there but leads nowhere: the run's mkdir would stop at it.
        if (code === 'ENOENT' && (await isDanglingLink(folder))) throw danglingLink(folder, error);
        missing.unshift(folder);
        folder = parent;
      }
    }
  }

  /** The real root when it exists; reading never creates it. */
  private async readableRoot(): Promise<string | undefined> {
    if (this.writableRootPromise) {
      try {
        return await this.writableRootPromise;
      } catch {
        // Fall through to a fresh look.
      }
    }
    try {
      return await realpath(this.root);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return undefined;
      throw mapFsError(error, this.root, 'open folder');
    }
  }

  /**
   * Create the folders between the root and `folder` (mode dirMode) one at a time, each checked to be a
   * real folder (no symlink, no file) before the next is made inside it: a link planted at `dest/in`
   * is refused without creating anything where it points.
   */
  private async ensureFolder(root: string, folder: string): Promise<void> {
    if (folder === root || this.knownFolders.has(folder)) return;
    let current = root;
    for (const segment of path.relative(root, folder).split(path.sep)) {
      current = path.join(current, segment);
      if (this.knownFolders.has(current)) continue;
      await this.makeFolder(current, false);
      this.knownFolders.add(current);
    }
    // Belt and braces: the whole chain resolves to itself (no component was swapped for a link meanwhile).
    let real: string;
    try {
      real = await realpath(folder);
    } catch (error) {
      throw mapFsError(error, folder, 'open folder');
    }
    if (real !== folder) {
      for (let f = folder; f.length > root.length; f = path.dirname(f)) this.knownFolders.delete(f);
      throw symlinkRefused(folder);
    }
  }

  /** The path of an existing key (undefined when absent), refusing paths that pass through symlinks. */
  private async locate(key: string): Promise<string | undefined> {
    const root = await this.readableRoot();
    if (root === undefined) return undefined;
    const file = joinInside(root, key);
    let real: string;
    try {
      real = await realpath(file);
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw mapFsError(error, file, 'read');
    }
    if (real !== file) throw symlinkRefused(file);
    return file;
  }

  private async walkTemps(folder: string, keyPrefix: string, cutoff: number, found: Leftover[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw mapFsError(error, folder, 'list');
    }
    for (const entry of entries) {
      const key = `${keyPrefix}${entry.name}`;
      // Names takeout could never have written are not its business.
      if (keyProblem(key) !== undefined) continue;
      if (entry.isDirectory()) {
        await this.walkTemps(path.join(folder, entry.name), `${key}/`, cutoff, found);
      } else if (entry.isFile() && isTempName(entry.name)) {
        const file = path.join(folder, entry.name);
        try {
          const info = await lstat(file);
          if (info.mtimeMs < cutoff) found.push({ key, kind: 'temp-file', started: info.mtime });
        } catch (error) {
          if (errnoOf(error) !== 'ENOENT') throw mapFsError(error, file, 'list');
        }
      }
      // Symlinks are never followed.
    }
  }

  private async walk(folder: string, keyPrefix: string, wanted: string, found: ObjectInfo[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      const code = errnoOf(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw mapFsError(error, folder, 'list');
    }
    for (const entry of entries) {
      if (isTempName(entry.name)) continue;
      const key = `${keyPrefix}${entry.name}`;
      if (entry.isDirectory()) {
        // Only descend where keys under this folder can still match the prefix.
        const below = `${key}/`;
        if (below.startsWith(wanted) || wanted.startsWith(below)) {
          await this.walk(path.join(folder, entry.name), below, wanted, found);
        }
      } else if (entry.isFile() && key.startsWith(wanted) && keyProblem(key) === undefined) {
        const file = path.join(folder, entry.name);
        try {
          const info = await lstat(file);
          found.push({ key, size: info.size, lastModified: info.mtime });
        } catch (error) {
          if (errnoOf(error) !== 'ENOENT') throw mapFsError(error, file, 'list');
        }
      }
      // Symlinks, sockets, devices: not objects of this destination.
    }
  }
}

/** A destination writing into (and reading from) the folder `root`; created on the first write. */
export function createLocalStore(root: string, options: StoreOptions = {}): Store {
  const destination = new LocalStore(root, options);
  return options.throttle ? throttledStore(destination, options.throttle) : destination;
}
