import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { TakeoutError } from '../errors.js';

/**
 * Counts and hashes a takeout object's bytes on their way on (into a restore target, to a copy's destination) and
 * fails the stream past its listed size, or at its end when size or sha256 differ from what the manifest lists.
 */
export class ListedBytesCheck extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly listed: { bytes: number; sha256?: string },
    private readonly origin: string,
    private readonly onBytes: (n: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.listed.bytes) {
      callback(new TakeoutError('INTEGRITY', `${this.origin} holds more than the ${this.listed.bytes} bytes the takeout manifest lists`, { hint: 'check the takeout with takeout verify' }));
      return;
    }
    this.hash.update(chunk);
    this.onBytes(chunk.length);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes !== this.listed.bytes) {
      callback(new TakeoutError('INTEGRITY', `${this.origin} holds ${this.bytes} bytes, not the ${this.listed.bytes} the takeout manifest lists`, { hint: 'check the takeout with takeout verify' }));
      return;
    }
    const digest = this.hash.digest('hex');
    if (this.listed.sha256 !== undefined && digest !== this.listed.sha256) {
      callback(new TakeoutError('INTEGRITY', `${this.origin}: sha256 ${digest.slice(0, 12)}… is not the ${this.listed.sha256.slice(0, 12)}… the takeout manifest lists`, { hint: 'check the takeout with takeout verify' }));
      return;
    }
    callback();
  }
}
