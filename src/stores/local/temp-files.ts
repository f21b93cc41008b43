/**
 * Temp files of a local store: `.<basename>.<pid>-<random>.takeout-tmp` beside their target, created
 * exclusively, and the ones a killed process left behind.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { errnoOf } from '../../errors.js';

export const TEMP_SUFFIX = '.takeout-tmp';
/** Leaves room for the leading dot, the random token and the suffix within NAME_MAX (255 bytes). */
const TEMP_BASENAME_MAX_BYTES = 200;
/** O_NOFOLLOW does not exist on Windows; there the exclusive create alone guards the temp name. */
export const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** `.<basename>.<token>.takeout-tmp`, with the basename shortened so the name fits in 255 bytes. */
export function tempNameFor(baseName: string, token: string): string {
  return `.${truncateUtf8(baseName, TEMP_BASENAME_MAX_BYTES)}.${token}${TEMP_SUFFIX}`;
}

/** `<pid>-<random>`: the pid lets a later run tell a dead process's temp file from a live one's. */
export function tempToken(): string {
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
