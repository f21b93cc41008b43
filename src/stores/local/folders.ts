/** Folder creation and symlink safety for a local store. */
import { constants } from 'node:fs';
import { lstat, mkdir, open, realpath, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { errnoOf, TakeoutError } from '../../errors.js';
import { joinInside } from '../keys.js';
import { cannotCreate, danglingLink, fileAbove, fileInTheWay, isDanglingLink, mapFsError, symlinkRefused } from './fs-errors.js';
import { O_NOFOLLOW } from './temp-files.js';

/** O_DIRECTORY makes open(2) of anything but a folder fail with ENOTDIR; absent on Windows. */
const O_DIRECTORY = constants.O_DIRECTORY ?? 0;

/**
 * Pseudo file systems that exist but take no new folders (statfs f_type, linux/magic.h): a dry run cannot
 * try mkdir, so it asks what the nearest existing folder is on.
 */
export const NO_NEW_FOLDERS_FS = new Set([0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */, 0x64626720 /* debugfs */]);

/**
 * The folders of a local store: its root, created on the first write and resolved once, and the folders
 * below it, each made and checked to be a real folder (no symlink, no file) before anything goes inside.
 */
export class LocalFolders {
  private writableRootPromise: Promise<string> | undefined;
  private readonly knownFolders = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly dirMode: number,
  ) {}

  /**
   * Create the root (mode dirMode) on first write and resolve it once with realpath. The missing folders
   * are made one at a time, not with `mkdir -p`: Node's recursive mkdir reports ENOENT for a parent on a
   * read-only mount ("does not exist"), where one mkdir(2) per folder says EROFS, EACCES or ENOTDIR and
   * names the folder it happened to. Existing parents are followed: the user named this path.
   */
  writableRoot(): Promise<string> {
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

  /**
   * The root, or its closest ancestor that exists (a file in the way included, to be named), with the folders
   * below it that a write would make, top first. Creating the root (writableRoot) and the dry run's look at it
   * (preflight) both start here.
   */
  async nearestExisting(): Promise<{ folder: string; info: Awaited<ReturnType<typeof stat>>; missing: string[] }> {
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
  async readableRoot(): Promise<string | undefined> {
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
  async ensureFolder(root: string, folder: string): Promise<void> {
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
  async locate(key: string): Promise<string | undefined> {
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
}
