/**
 * The real local folder destination, whose writes fail on demand with a real errno error mapped exactly as
 * the destination maps a failing write(2) (mapFsError): ENOSPC, EIO, EACCES, … Loaded in place of
 * dist/stores/local/store.js by faulty-hooks.mjs. Test-only.
 *
 * TAKEOUT_TEST_FAULT (JSON): { "kind": "<write kind>" | "any", "n": <1-based occurrence>, "errno": "ENOSPC",
 *   "at": "write" | "finish", "sticky": true|false, "after": { "kind", "n" } } fails the n-th object of that kind
 *   (counted from the after.n-th write of after.kind, if given), and with sticky every later write too, as a full disk would.
 * TAKEOUT_TEST_WRITE_LOG: a file that gets one line `<kind>\t<key>` per object written (to count them).
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { mapFsError } from '../../dist/stores/local/fs-errors.js';
import * as real from '../../dist/stores/local/store.js';
import { writeKind } from './write-kinds.mjs';

export * from '../../dist/stores/local/store.js';

const fault = process.env.TAKEOUT_TEST_FAULT ? JSON.parse(process.env.TAKEOUT_TEST_FAULT) : undefined;
const log = process.env.TAKEOUT_TEST_WRITE_LOG;
const seen = new Map();
let failing = false;

const ERRNO = { ENOSPC: -28, EIO: -5, EACCES: -13, EROFS: -30, EDQUOT: -122 };

function errnoError(code, file) {
  const error = new Error(`${code}: injected failure, write '${file}'`);
  return Object.assign(error, { code, errno: ERRNO[code] ?? -5, syscall: 'write', path: file });
}

let afterSeen = 0;
let armed = fault?.after === undefined;

/** Whether this object's write is the one to fail (or comes after it, when the fault is sticky). */
function hits(kind) {
  if (!fault) return false;
  if (!armed) {
    // "after": counting starts once the after.n-th write of after.kind began (the last journal write of a run
    // is the one after its last layout file: journal rewrites coalesce, so their number varies between runs).
    if (kind === fault.after.kind && ++afterSeen === fault.after.n) armed = true;
    return false;
  }
  if (fault.kind !== 'any' && fault.kind !== kind) return failing && fault.sticky === true;
  const n = (seen.get(fault.kind) ?? 0) + 1;
  seen.set(fault.kind, n);
  if (n === fault.n) failing = true;
  return n === fault.n || (failing && fault.sticky === true);
}

export function createLocalStore(root, options) {
  const inner = real.createLocalStore(root, options);
  const writer = async (key, writeOptions) => {
    const kind = writeKind(key);
    if (log) appendFileSync(log, `${kind}\t${key}\n`);
    const w = await inner.writer(key, writeOptions);
    if (!hits(kind)) return w;
    if (log) appendFileSync(log, `HIT\t${key}\n`);
    const target = path.join(path.resolve(root), key);
    const fail = async () => {
      await w.abort();
      throw mapFsError(errnoError(fault.errno ?? 'ENOSPC', target), target, 'write');
    };
    return {
      write: (chunk) => (fault.at === 'finish' ? w.write(chunk) : fail()),
      finish: () => fail(),
      abort: () => w.abort(),
    };
  };
  return new Proxy(inner, {
    get(target, property) {
      if (property === 'writer') return writer;
      // As the real put: a writer, one write, finish; abort on failure.
      if (property === 'put') {
        return async (key, body, writeOptions = {}) => {
          const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
          const w = await writer(key, writeOptions);
          try {
            if (data.length > 0) await w.write(data);
            return await w.finish();
          } catch (error) {
            await w.abort();
            throw error;
          }
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
