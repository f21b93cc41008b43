/** What `list` and `leftovers` find below a local store's root: files and temp files, never through a symlink. */
import { lstat, readdir } from 'node:fs/promises';
import type { Dirent, Stats } from 'node:fs';
import path from 'node:path';
import { errnoOf } from '../../errors.js';
import type { Leftover, ObjectInfo } from '../store.js';
import { keyProblem } from '../keys.js';
import { mapFsError } from './fs-errors.js';
import { isTempName } from './temp-files.js';

/** Byte-wise (UTF-8) order, the order S3 lists keys in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The entries of a folder; none when it is gone or is not a folder (any more). */
async function entriesOf(folder: string): Promise<Dirent[]> {
  try {
    return await readdir(folder, { withFileTypes: true });
  } catch (error) {
    const code = errnoOf(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw mapFsError(error, folder, 'list');
  }
}

/** lstat of a file found by a walk; undefined when it went away meanwhile. */
async function statFound(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if (errnoOf(error) !== 'ENOENT') throw mapFsError(error, file, 'list');
    return undefined;
  }
}

/** Temp files (`.<name>.<random>.takeout-tmp`) below `folder`, last modified before `cutoff` (ms since the epoch). */
export async function listTemps(folder: string, keyPrefix: string, cutoff: number, found: Leftover[]): Promise<void> {
  for (const entry of await entriesOf(folder)) {
    const key = `${keyPrefix}${entry.name}`;
    // Names takeout could never have written are not its business.
    if (keyProblem(key) !== undefined) continue;
    if (entry.isDirectory()) {
      await listTemps(path.join(folder, entry.name), `${key}/`, cutoff, found);
    } else if (entry.isFile() && isTempName(entry.name)) {
      const info = await statFound(path.join(folder, entry.name));
      if (info !== undefined && info.mtimeMs < cutoff) found.push({ key, kind: 'temp-file', started: info.mtime });
    }
    // Symlinks are never followed.
  }
}

/** The files below `folder` whose keys start with `wanted`; temp files and names takeout never writes are skipped. */
export async function listFiles(folder: string, keyPrefix: string, wanted: string, found: ObjectInfo[]): Promise<void> {
  for (const entry of await entriesOf(folder)) {
    if (isTempName(entry.name)) continue;
    const key = `${keyPrefix}${entry.name}`;
    if (entry.isDirectory()) {
      // Only descend where keys under this folder can still match the prefix.
      const below = `${key}/`;
      if (below.startsWith(wanted) || wanted.startsWith(below)) {
        await listFiles(path.join(folder, entry.name), below, wanted, found);
      }
    } else if (entry.isFile() && key.startsWith(wanted) && keyProblem(key) === undefined) {
      const info = await statFound(path.join(folder, entry.name));
      if (info !== undefined) found.push({ key, size: info.size, lastModified: info.mtime });
    }
    // Symlinks, sockets, devices: not objects of this store.
  }
}
