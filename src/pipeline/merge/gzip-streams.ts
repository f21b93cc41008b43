import { once } from 'node:events';
import { createGunzip } from 'node:zlib';
import type { FirstRecordProbe } from './first-record.js';

/** gunzip output chunk: 1 MiB runs about twice as fast as the 16 KiB default. */
export const GUNZIP_CHUNK_BYTES = 1 << 20;
/** Compressed bytes inflated at a time when only the first record is wanted (~200 KiB of CSV). */
const SIDE_INFLATE_STEP_BYTES = 64 * 1024;

export function isGzip(chunk: Buffer): boolean {
  return chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b;
}

/** Feeds `source` through a zlib transform with back-pressure and yields its output. */
export async function* through(source: AsyncIterable<Buffer>, first: Buffer, transform: ReturnType<typeof createGunzip>): AsyncGenerator<Buffer> {
  const feeding = (async () => {
    if (!transform.write(first)) await once(transform, 'drain');
    for await (const chunk of source) {
      if (!transform.write(chunk)) await once(transform, 'drain');
    }
    transform.end();
  })();
  feeding.catch((error: unknown) => transform.destroy(error as Error));
  try {
    for await (const chunk of transform as AsyncIterable<Buffer>) yield chunk;
    await feeding;
  } finally {
    transform.destroy();
  }
}

/**
 * Yields gzip bytes as they are while inflating them on the thread pool for the probe. With `whole`, every
 * byte is inflated to prove the gzip whole (a truncated or corrupt gzip throws at the end); without, the
 * inflating stops as soon as the probe has the first record.
 */
export async function* inflatedAside(source: AsyncIterable<Buffer>, first: Buffer, probe: FirstRecordProbe, whole: boolean): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  const done = new Promise<void>((resolve, reject) => {
    gunzip.on('error', reject);
    gunzip.on('end', resolve);
  });
  done.catch(() => undefined);
  gunzip.on('data', (chunk: Buffer) => probe.feed(chunk));
  let inflating = true;
  const feed = async (chunk: Buffer): Promise<void> => {
    // For the probe alone, a small step at a time, so inflating stops soon after the first record.
    const step = whole ? chunk.length : SIDE_INFLATE_STEP_BYTES;
    for (let at = 0; at < chunk.length && inflating; at += step) {
      if (!whole && probe.done) {
        inflating = false;
        gunzip.destroy();
        return;
      }
      try {
        if (!gunzip.write(chunk.subarray(at, at + step))) await Promise.race([once(gunzip, 'drain'), done]);
      } catch (error) {
        if (whole) throw error;
        inflating = false;
        probe.skip();
      }
    }
  };
  try {
    await feed(first);
    probe.throwIfFailed();
    yield first;
    for await (const chunk of source) {
      await feed(chunk);
      probe.throwIfFailed();
      yield chunk;
    }
    if (inflating) {
      gunzip.end();
      // Not asked to prove the gzip whole (its size or sha256 is checked, or --no-verify): only the probe needed
      // it, and a gzip that does not inflate leaves the first record unknown rather than cut short.
      await (whole ? done : done.catch(() => probe.skip()));
    }
  } finally {
    gunzip.destroy();
  }
}
