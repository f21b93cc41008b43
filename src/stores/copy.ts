/** What every store's server-side copy shares: the source object looked up first, and the copied size checked. */
import { TakeoutError } from '../errors.js';
import { whereIs, type ObjectInfo, type Store } from './store.js';

/** `source` cannot be copied from server-side by `destination`: the caller should have asked `canCopyFrom`. */
export function copyRefused(destination: Store, source: Store): TakeoutError {
  return new TakeoutError('USAGE', `${destination.description} cannot copy from ${source.description} server-side`, {
    hint: 'copy it through this machine instead (get, then write)',
  });
}

/**
 * The source object, which must exist and, when the caller knows its size (a manifest), have that size: a
 * copy of the wrong bytes is refused before it is made.
 */
export async function sourceObject(source: Store, key: string, size: number | undefined): Promise<ObjectInfo> {
  const info = await source.head(key);
  const where = whereIs(source, key);
  if (info === undefined) throw new TakeoutError('NOT_FOUND', `${where} does not exist`, { details: { key } });
  if (size !== undefined && info.size !== size) {
    throw new TakeoutError('INTEGRITY', `${where} holds ${info.size} bytes, not the ${size} its manifest lists`, { details: { key, size: info.size, expected: size } });
  }
  return info;
}

/** What landed has the source's size, or the copy is an INTEGRITY error naming it. */
export function assertCopiedSize(copied: ObjectInfo | undefined, expected: number, where: string): void {
  if (copied === undefined) throw new TakeoutError('INTEGRITY', `${where} is missing after it was copied`);
  if (copied.size !== expected) {
    throw new TakeoutError('INTEGRITY', `${where} holds ${copied.size} bytes after the copy, not the source's ${expected}`, { details: { size: copied.size, expected } });
  }
}
