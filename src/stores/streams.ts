/** Stream helpers every store uses for reads: a checked byte range, errors mapped on the way, a cut to size. */
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { TakeoutError } from '../errors.js';
import type { ByteRange } from './store.js';

export function checkRange(range: ByteRange, what: string): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new TakeoutError('USAGE', `invalid byte range ${start}-${end} for ${what}`, { details: { range } });
  }
}

/** Re-emit a stream's errors as TakeoutErrors; destroying the result releases the source (a file handle, a socket). */
export function withMappedErrors(source: Readable, map: (error: unknown) => TakeoutError): Readable {
  const out = new PassThrough();
  source.on('error', (error) => out.destroy(map(error)));
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(out);
  return out;
}

/** Drop the first `skip` bytes, pass `length` bytes, then end and release the source. */
export function sliceStream(source: Readable, skip: number, length: number): Readable {
  let toSkip = skip;
  let remaining = length;
  const out = new PassThrough();
  source.on('data', (chunk: Buffer) => {
    let piece = chunk;
    if (toSkip > 0) {
      const dropped = Math.min(toSkip, piece.length);
      toSkip -= dropped;
      piece = piece.subarray(dropped);
    }
    if (piece.length > 0 && remaining > 0) {
      const kept = piece.subarray(0, remaining);
      remaining -= kept.length;
      if (!out.write(kept)) source.pause();
    }
    if (remaining === 0) {
      out.end();
      source.destroy();
    }
  });
  out.on('drain', () => source.resume());
  source.on('end', () => out.end());
  source.on('error', (error) => out.destroy(error));
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
  });
  if (remaining === 0) {
    out.end();
    source.destroy();
  }
  return out;
}
