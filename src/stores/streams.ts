/** Stream helpers every store uses for reads: a checked byte range, errors mapped on the way, a cut to size. */
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { TakeoutError } from '../errors.js';
import type { ByteRange, WriteOptions } from './store.js';

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

/**
 * The asked-for range out of a ranged answer. Some servers ignore or widen a Range (s3rver 3.7.1 answers
 * `bytes=0-0` with the whole object, Azurite 3.35 a range past the end with the whole blob): what came back,
 * starting at `returned.start`, is checked against what was asked and cut to size. `length` is the answer's
 * body length; `what` names the request for the error (`GetObject s3://bucket/key`).
 */
export function cutToRange(body: Readable, returned: { start: number; total: number | undefined }, range: ByteRange, length: number | undefined, what: string): Readable {
  if (returned.start > range.start) {
    body.destroy();
    throw new TakeoutError('INTEGRITY', `${what} returned bytes from ${returned.start}, not ${range.start}`);
  }
  const lastByte = returned.total === undefined ? range.end : Math.min(range.end, returned.total - 1);
  const wanted = Math.max(0, lastByte - range.start + 1);
  const skip = range.start - returned.start;
  if (skip === 0 && length === wanted) return body;
  return sliceStream(body, skip, wanted);
}

/** A whole-object write's bytes, checked against the length its caller declared. `where` names the object. */
export function putBytes(body: Buffer | string, options: WriteOptions, where: string): Buffer {
  const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (options.contentLength !== undefined && options.contentLength !== data.length) {
    throw new TakeoutError('INTEGRITY', `${where}: expected ${options.contentLength} bytes but got ${data.length}`);
  }
  return data;
}

/** A ranged answer's Content-Range (RFC 9110 §14.4), as S3 and Azure send it: `bytes 0-99/1234` → `{start: 0, total: 1234}`; `*` total → undefined; anything else → undefined. */
export function parseContentRange(header: string | undefined): { start: number; total: number | undefined } | undefined {
  const match = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  return { start: Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}
