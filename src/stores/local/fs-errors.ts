/** File system failures of a local store as one-line TakeoutErrors naming the path, and the checks behind them. */
import { lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import { errnoOf, oneLine, TakeoutError } from '../../errors.js';

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
export async function fileAbove(target: string): Promise<string> {
  for (let current = path.dirname(target); ; current = path.dirname(current)) {
    const info = await lstat(current).catch(() => undefined);
    if (info && !info.isDirectory()) return current;
    if (info || path.dirname(current) === current) return path.dirname(target);
  }
}

export function fileInTheWay(folder: string, file: string): TakeoutError {
  return new TakeoutError('FAILED', `cannot create folder ${folder}: ${file} is a file, not a folder`, {
    details: { path: folder, inTheWay: file },
    hint: 'move the file away or choose another destination',
  });
}

export function symlinkRefused(file: string): TakeoutError {
  return new TakeoutError(
    'FAILED',
    `${file} is reached through a symlink: takeout does not follow symlinks inside a destination`,
    { details: { path: file } },
  );
}

export function exists(file: string, cause: unknown): TakeoutError {
  return new TakeoutError('EXISTS', `${file} already exists at the destination`, { cause, details: { path: file } });
}


/**
 * write(2) that accepts nothing (a misbehaving FUSE or network file system): retrying the rest would loop
 * forever without an error, so it is one, mapped like any failed write.
 */
export function noProgress(): NodeJS.ErrnoException {
  return Object.assign(new Error('write(2) wrote 0 bytes'), { code: 'EIO', syscall: 'write' });
}

/**
 * mkdir(2) said ENOENT though the folders above were found: the parent is a dangling symlink, or a file
 * system that takes no new folders (/proc, /sys). "does not exist" would send the user looking for the wrong thing.
 */
export async function cannotCreate(folder: string, cause: unknown): Promise<TakeoutError> {
  const parent = path.dirname(folder);
  if (await isDanglingLink(parent)) return danglingLink(parent, cause);
  return new TakeoutError('NOT_FOUND', `cannot create folder ${folder}: its parent folder does not take new folders`, {
    cause,
    hint: 'choose a destination on a regular file system',
    details: { path: folder, errno: 'ENOENT' },
  });
}

export async function isDanglingLink(file: string): Promise<boolean> {
  const link = await lstat(file).then((info) => info.isSymbolicLink(), () => false);
  return link && (await stat(file).then(() => false, (error: unknown) => errnoOf(error) === 'ENOENT'));
}

export function danglingLink(link: string, cause?: unknown): TakeoutError {
  return new TakeoutError('NOT_FOUND', `cannot create folder below ${link}: it is a symlink to a folder that does not exist`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'point the symlink at an existing folder, or choose another destination',
    details: { path: link, errno: 'ENOENT' },
  });
}

export function interrupted(file: string): TakeoutError {
  return new TakeoutError('INTERRUPTED', `writing ${file} was aborted`, { details: { path: file } });
}
