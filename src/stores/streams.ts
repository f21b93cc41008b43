/**
 * Stream helpers every store uses for reads: a checked byte range, errors mapped on the way, a cut to size, a
 * download that is asked again from where its connection was cut.
 */
import { PassThrough, Readable as ReadableStream } from 'node:stream';
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

/** Tries of one download whose body is cut short (the first and 2 more, each from the byte the last one reached). */
export const BODY_TRIES = 3;

export interface ContinuedDownload {
  /** Bytes the whole body holds (of the range asked for). */
  length: number;
  /** A body for the bytes from `offset` (relative to the first byte asked for) to the end. */
  reopen: (offset: number) => Promise<Readable>;
  /**
   * No byte for this long while one is being waited for (so never while the reader is busy): the body is taken as
   * cut. Some HTTP clients never end nor fail a body whose connection closed mid-way (node-fetch 2, under
   * @google-cloud/storage 7, with a Content-Length answer), so this is what bounds such a read.
   */
  idleMs: number;
  /** The object, for messages: `gs://bucket/key`. */
  what: string;
  /** Whether a body error is a cut connection worth asking again (an abort of ours, say, is not). */
  isCut: (error: unknown) => boolean;
}

class CutBody extends Error {
  override name = 'CutBody';
}

/** The next chunk of `iterator`, or a CutBody error when none comes within `idleMs`. */
async function nextWithin(iterator: AsyncIterator<Buffer>, idleMs: number): Promise<IteratorResult<Buffer>> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new CutBody(`no byte for ${idleMs} ms`)), idleMs);
  });
  try {
    return await Promise.race([iterator.next(), idle]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `first`, then, when its body ends short, fails as a cut connection or stops sending for `idleMs`, a new body
 * from the byte reached, at most BODY_TRIES bodies in all; then a NETWORK error naming the object and how far it
 * got. A body longer than `length` is an INTEGRITY error.
 */
export function continuedDownload(first: Readable, download: ContinuedDownload): Readable {
  const { length, reopen, idleMs, what, isCut } = download;
  async function* bodies(): AsyncGenerator<Buffer> {
    let body = first;
    let received = 0;
    for (let tries = 1; ; tries += 1) {
      const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      let cut: string | undefined;
      try {
        for (;;) {
          const next = await nextWithin(iterator, idleMs);
          if (next.done) break;
          received += next.value.length;
          if (received > length) throw new TakeoutError('INTEGRITY', `${what}: the server sent more than the ${length} bytes asked for`);
          yield next.value;
        }
        if (received === length) return;
        cut = 'the body ended';
      } catch (error) {
        if (!(error instanceof CutBody) && !isCut(error)) throw error;
        cut = error instanceof CutBody ? `no byte came for ${idleMs / 1000} s` : 'the connection was cut';
      } finally {
        if (!body.destroyed) body.destroy();
      }
      if (tries >= BODY_TRIES) {
        throw new TakeoutError('NETWORK', `${what}: ${cut} after ${received} of ${length} bytes, ${tries} times`, {
          hint: 'run the command again; a network that keeps cutting downloads needs fixing first',
          details: { received, length, tries },
        });
      }
      body = await reopen(received);
    }
  }
  return ReadableStream.from(bodies(), { objectMode: false });
}
