/** One file written atomically: a temp file beside the target, then fsync, close, rename (or link) and fsync of the folder. */
import { constants } from 'node:fs';
import { copyFile, link, lstat, open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { errnoOf } from '../../errors.js';
import type { TakeoutError } from '../../errors.js';
import type { ObjectWriter, WriteOptions, WrittenObject } from '../store.js';
import { GuardedWriter } from '../writer-state.js';
import { exists, interrupted, mapFsError, noProgress } from './fs-errors.js';

/** What link(2) answers on file systems without hard links (FAT and exFAT say EPERM, as do some SMB mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

export async function fsyncFolder(dir: string): Promise<void> {
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

export class LocalWriter extends GuardedWriter implements ObjectWriter {
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

  /**
   * The whole of the local file `source` as this writer's bytes, copied by the kernel into the temp file
   * (a clone where the file system shares blocks, COPYFILE_FICLONE, else copy_file_range or sendfile); the
   * commit is then the same fsync and rename as any write. Only into a writer nothing was written to.
   */
  async copyFileIn(source: string, mode: number): Promise<void> {
    this.assertOpen();
    try {
      if (this.bytes > 0) throw new Error('copyFileIn after write');
      await copyFile(source, this.tempPath, constants.COPYFILE_FICLONE);
      // libuv's copyfile gives the target the source's mode: back to the store's.
      await this.handle.chmod(mode);
      this.bytes = (await this.handle.stat()).size;
    } catch (error) {
      if (this.isAborted()) throw interrupted(this.target);
      const mapped = mapFsError(error, this.target, 'write');
      await this.failWith();
      throw mapped;
    }
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
    await this.beginFinish(this.bytes, this.options.contentLength, { path: this.target });
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
