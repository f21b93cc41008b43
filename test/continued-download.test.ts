import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { BODY_TRIES, continuedDownload } from '../src/stores/streams.js';

/**
 * continuedDownload (src/stores/streams.ts) on plain streams: a body cut short, failing as a cut connection or
 * never ending is asked again from the byte it reached, BODY_TRIES bodies at most; then one NETWORK error.
 */

const DATA = 'abcdefghijklmnopqrstuvwxyz';
const cutError = (): Error => Object.assign(new Error('aborted'), { code: 'ECONNRESET' });

function scripted(steps: Array<{ upTo: number; then: 'end' | 'cut' | 'hang' }>): { first: Readable; reopened: number[]; reopen: (offset: number) => Promise<Readable> } {
  const reopened: number[] = [];
  const make = (offset: number, step: { upTo: number; then: 'end' | 'cut' | 'hang' }): Readable => {
    const chunk = Buffer.from(DATA.slice(offset, offset + step.upTo));
    let sent = false;
    const stream = new Readable({
      read() {
        if (!sent) {
          sent = true;
          if (chunk.length > 0) this.push(chunk);
          if (step.then === 'end') this.push(null);
          else if (step.then === 'cut') setImmediate(() => this.destroy(cutError()));
        }
      },
    });
    return stream;
  };
  let i = 0;
  return {
    first: make(0, steps[0]!),
    reopened,
    reopen: async (offset) => {
      reopened.push(offset);
      i += 1;
      return make(offset, steps[i] ?? { upTo: DATA.length, then: 'end' });
    },
  };
}

const options = (reopen: (offset: number) => Promise<Readable>) => ({
  length: DATA.length,
  reopen,
  idleMs: 100,
  what: 'gs://b/k',
  isCut: (error: unknown) => (error as { code?: string }).code === 'ECONNRESET',
});

describe('continuedDownload', () => {
  it('passes a whole body through untouched', async () => {
    const { first, reopen, reopened } = scripted([{ upTo: DATA.length, then: 'end' }]);
    expect(await text(continuedDownload(first, options(reopen)))).toBe(DATA);
    expect(reopened).toEqual([]);
  });

  it('asks again from the byte reached after a cut, a short end and a silent body', async () => {
    const { first, reopen, reopened } = scripted([{ upTo: 5, then: 'cut' }, { upTo: 7, then: 'hang' }, { upTo: 100, then: 'end' }]);
    expect(await text(continuedDownload(first, options(reopen)))).toBe(DATA);
    expect(reopened).toEqual([5, 12]);
    const short = scripted([{ upTo: 10, then: 'end' }]);
    expect(await text(continuedDownload(short.first, options(short.reopen)))).toBe(DATA);
    expect(short.reopened).toEqual([10]);
  });

  it(`gives up after ${BODY_TRIES} bodies with one NETWORK error saying how far it got`, async () => {
    const { first, reopen, reopened } = scripted([{ upTo: 3, then: 'cut' }, { upTo: 3, then: 'cut' }, { upTo: 3, then: 'hang' }]);
    await expect(text(continuedDownload(first, options(reopen)))).rejects.toMatchObject({
      code: 'NETWORK',
      message: 'gs://b/k: no byte came for 0.1 s after 9 of 26 bytes, 3 times',
    });
    expect(reopened).toEqual([3, 6]);
  });

  it('passes other errors on at once, and a body longer than asked for is an INTEGRITY error', async () => {
    const failing = new Readable({ read() { this.destroy(new Error('checksum mismatch')); } });
    await expect(text(continuedDownload(failing, options(async () => failing)))).rejects.toThrow('checksum mismatch');
    const long = scripted([{ upTo: DATA.length, then: 'end' }]);
    await expect(text(continuedDownload(long.first, { ...options(long.reopen), length: 10 }))).rejects.toMatchObject({ code: 'INTEGRITY' });
  });
});
