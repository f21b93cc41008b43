/** A project folder's entries as they are read (symlinks followed, loops and oddities named), and its files opened. */
import { createReadStream } from 'node:fs';
import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { toTakeoutError } from '../../errors.js';
import type { TableDescriptor } from '../../model.js';

/** gunzip with 1 MiB output chunks runs about twice as fast as with the default 16 KiB. */
const GUNZIP_CHUNK_BYTES = 1 << 20;

/** A table of a folder: the CSV file it is read from, when it is not a takeout's gzipped parts. */
export interface DirTable extends TableDescriptor {
  file?: string;
  gzip?: boolean;
}

/** A file as error messages name it: relative to the working folder when inside it, else absolute. */
export function shownPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? file : rel;
}

/** A table file as CSV bytes; a gzipped one also counts its compressed bytes read (its dataSizeBytes is the file's size). */
export function openCsvStream(file: string, gzip: boolean): { stream: Readable; sourceBytes?: () => number } {
  const raw = createReadStream(file, { highWaterMark: GUNZIP_CHUNK_BYTES });
  if (!gzip) return { stream: raw };
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  raw.on('error', (error) => gunzip.destroy(error));
  return { stream: raw.pipe(gunzip), sourceBytes: () => raw.bytesRead };
}

/** An entry of the folder as it is read: what a symlink points at is resolved first. */
export interface FoundEntry {
  kind: 'file' | 'folder';
  path: string;
  /** The path in the source folder, `/`-separated. */
  rel: string;
  name: string;
  /** Where a symlink leads when that is outside the source folder. */
  outside?: string;
}
export type Entry = FoundEntry | { kind: 'skip'; rel: string; reason: string };

/** A name as it can be shown on one line: quoted when it holds control characters (a newline would end the line). */
export function shownName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}

const isInside = (root: string, target: string): boolean => {
  const rel = relative(root, target);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
};

/**
 * What one directory entry is. A symlink is followed: to a file or a folder it is read like one (and
 * a target outside the source folder is noted, since the takeout then holds data from elsewhere); a
 * loop, a dangling link or a link to the folder itself or a parent of it is skipped with that reason.
 */
async function classify(root: string, parent: string, relParent: string, dirent: Dirent): Promise<Entry> {
  const path = join(parent, dirent.name);
  const rel = relParent ? `${relParent}/${dirent.name}` : dirent.name;
  if (dirent.name.startsWith('.')) return { kind: 'skip', rel, reason: 'hidden (its name starts with a dot)' };
  if (dirent.isSymbolicLink()) {
    let target: string;
    try {
      target = await realpath(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') return { kind: 'skip', rel, reason: 'a symlink loop' };
      if (code === 'ENOENT') return { kind: 'skip', rel, reason: 'a broken symlink (its target does not exist)' };
      throw toTakeoutError(error, `symlink ${shownName(rel)}`);
    }
    const info = await stat(target);
    if (info.isDirectory() && isInside(target, root)) {
      return { kind: 'skip', rel, reason: 'a symlink to the source folder itself or one of its parents (a loop)' };
    }
    const outside = isInside(root, target) ? {} : { outside: target };
    if (info.isFile()) return { kind: 'file', path, rel, name: dirent.name, ...outside };
    if (info.isDirectory()) return { kind: 'folder', path, rel, name: dirent.name, ...outside };
    return { kind: 'skip', rel, reason: 'a symlink to something that is neither a file nor a folder' };
  }
  if (dirent.isFile()) return { kind: 'file', path, rel, name: dirent.name };
  if (dirent.isDirectory()) return { kind: 'folder', path, rel, name: dirent.name };
  return { kind: 'skip', rel, reason: 'neither a file nor a folder (a FIFO, socket or device)' };
}

export async function listFolder(root: string, folder: string, rel: string, label: string): Promise<Entry[]> {
  let dirents: Dirent[];
  try {
    dirents = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    throw toTakeoutError(error, `${label}${rel ? `/${shownName(rel)}` : ''}: cannot list the folder`);
  }
  dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries: Entry[] = [];
  for (const dirent of dirents) entries.push(await classify(root, folder, rel, dirent));
  return entries;
}
