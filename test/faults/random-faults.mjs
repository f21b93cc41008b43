/**
 * Seeded random fault schedules for the local destination (faulty-local.mjs): from a random write on, every
 * write fails, with a random errno, at a random step (the write or the commit). Shared by
 * test/write-faults.random.test.ts and bench/fault-random.mjs, so a seed printed by either replays in both.
 */

import { prng } from '../../fixtures/prng.mjs';

export { prng };

const ERRNOS = ['ENOSPC', 'EIO', 'EACCES', 'EROFS', 'EDQUOT'];

/** The fault of one run: from its n-th write (1 … writes) on, every write of any kind fails. */
export function randomFault(random, writes) {
  return {
    kind: 'any',
    n: 1 + Math.floor(random() * writes),
    errno: ERRNOS[Math.floor(random() * ERRNOS.length)],
    at: random() < 0.5 ? 'write' : 'finish',
    sticky: true,
  };
}

/** The exit codes a run may end with when a write fails (src/errors.ts): failed, partial, auth/permission. */
export const FAILED_WRITE_EXITS = [1, 3, 4];
