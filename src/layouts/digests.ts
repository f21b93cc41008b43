import { hash } from 'node:crypto';
import { TakeoutError } from '../errors.js';

/**
 * Compact in-memory tables of record digests for whole-export deduplication (Personalize's rules). A record
 * is remembered by a 128-bit digest (SHA-256 cut to 16 bytes), never by its text: at a billion distinct
 * records the chance that two of them share a digest stays below 10^-20, so no record is dropped by mistake.
 *
 * Both tables use open addressing with linear probing over typed arrays (no object per entry), kept between
 * 1/3 and 2/3 full: see the per-class bounds. While a table doubles, the old and the new arrays live at once.
 */

/** Bytes of a digest kept per record or id: enough that collisions never happen in practice (see above). */
export const DIGEST_BYTES = 16;
const WORDS = DIGEST_BYTES / 4;
/** Slots of a new table: small exports stay small. */
const INITIAL_SLOTS = 1 << 10;
/** Past this share of occupied slots probing slows down: the table doubles. */
const MAX_LOAD = 2 / 3;
/**
 * At most this many slots (2^29): the key array (4 × uint32 per slot) stays under V8's typed-array length
 * limit, and the table at ~8 GiB; beyond ~358 million distinct records or ids the export fails instead.
 */
const MAX_SLOTS = 1 << 29;

/** The digest of a record's or an id's text: 16 bytes of SHA-256. */
export function digestOf(text: string): Buffer {
  return hash('sha256', text, 'buffer').subarray(0, DIGEST_BYTES);
}

function tooMany(what: string): TakeoutError {
  return new TakeoutError('INVALID_INPUT', `more than ${Math.floor(MAX_SLOTS * MAX_LOAD).toLocaleString('en-US')} distinct ${what} to deduplicate in memory`, {
    hint: 'export a part of the table at a time (--where)',
  });
}

/** Linear-probing core: slots of four uint32 words, all-zero meaning empty. */
class DigestSlots {
  protected keys: Uint32Array;
  protected mask: number;
  size = 0;

  constructor(slots: number) {
    this.keys = new Uint32Array(slots * WORDS);
    this.mask = slots - 1;
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /** The slot holding `d`, or the empty slot where it would go (as `~slot`, negative). */
  protected find(d: Buffer): number {
    const w0 = d.readUInt32LE(0);
    const w1 = d.readUInt32LE(4);
    const w2 = d.readUInt32LE(8);
    // An all-zero digest would read as an empty slot: it is stored with its lowest bit set (a 2^-128 event).
    const w3 = d.readUInt32LE(12) || (w0 | w1 | w2 ? 0 : 1);
    const keys = this.keys;
    // The digest's bits are uniform already: its first word picks the slot.
    let slot = w0 & this.mask;
    for (;;) {
      const at = slot * WORDS;
      const k0 = keys[at]!;
      const k1 = keys[at + 1]!;
      const k2 = keys[at + 2]!;
      const k3 = keys[at + 3]!;
      if ((k0 | k1 | k2 | k3) === 0) return ~slot;
      if (k0 === w0 && k1 === w1 && k2 === w2 && k3 === w3) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  protected store(slot: number, d: Buffer): void {
    const at = slot * WORDS;
    const w0 = d.readUInt32LE(0);
    const w1 = d.readUInt32LE(4);
    const w2 = d.readUInt32LE(8);
    this.keys[at] = w0;
    this.keys[at + 1] = w1;
    this.keys[at + 2] = w2;
    this.keys[at + 3] = d.readUInt32LE(12) || (w0 | w1 | w2 ? 0 : 1);
    this.size++;
  }

  /** The slot count to grow to before adding one more entry, or undefined when it still fits. */
  protected grownCapacity(what: string): number | undefined {
    if (this.size + 1 <= this.capacity * MAX_LOAD) return undefined;
    if (this.capacity >= MAX_SLOTS) throw tooMany(what);
    return this.capacity * 2;
  }

  /** The first empty slot for a key whose first word is `w0`, in `keys` of `mask + 1` slots (for rehashing). */
  protected static emptySlotFor(keys: Uint32Array, mask: number, w0: number): number {
    let slot = w0 & mask;
    while ((keys[slot * WORDS]! | keys[slot * WORDS + 1]! | keys[slot * WORDS + 2]! | keys[slot * WORDS + 3]!) !== 0) slot = (slot + 1) & mask;
    return slot;
  }
}

/**
 * A set of record digests: which records were exported already. 16 bytes per slot, so 24–48 bytes per
 * distinct record (plus the old table while it doubles).
 */
export class DigestSet extends DigestSlots {
  constructor() {
    super(INITIAL_SLOTS);
  }

  /** Adds the digest; false when it was there already. */
  add(d: Buffer): boolean {
    const grown = this.grownCapacity('records');
    if (grown !== undefined) this.rehash(grown);
    const slot = this.find(d);
    if (slot >= 0) return false;
    this.store(~slot, d);
    return true;
  }

  /** Forgets every digest (the table keeps its size). */
  clear(): void {
    this.keys.fill(0);
    this.size = 0;
  }

  private rehash(slots: number): void {
    const old = this.keys;
    const keys = new Uint32Array(slots * WORDS);
    const mask = slots - 1;
    for (let at = 0; at < old.length; at += WORDS) {
      if ((old[at]! | old[at + 1]! | old[at + 2]! | old[at + 3]!) === 0) continue;
      const to = DigestSlots.emptySlotFor(keys, mask, old[at]!) * WORDS;
      keys.set(old.subarray(at, at + WORDS), to);
    }
    this.keys = keys;
    this.mask = mask;
  }
}

/** Flags of a NewestById slot. */
const FROM_PUT = 1;
const TAKEN = 2;

/**
 * The newest record per id: for each id digest, the winning record's digest (64 bits: it only has to tell
 * apart the variants of one id), its time and origin. 16 + 8 + 8 + 1 = 33 bytes per slot, so 50–99 bytes
 * per distinct id (plus the old table while it doubles).
 */
export class NewestById extends DigestSlots {
  private winners: Uint32Array;
  private times: Float64Array;
  private flags: Uint8Array;

  constructor() {
    super(INITIAL_SLOTS);
    this.winners = new Uint32Array(INITIAL_SLOTS * 2);
    this.times = new Float64Array(INITIAL_SLOTS);
    this.flags = new Uint8Array(INITIAL_SLOTS);
  }

  /**
   * A record of `id` seen on the first read, in source order. It becomes the id's record unless the one
   * kept is newer: a later time, or the same time and the kept one came from PUT while this one is BULK.
   * So, for equal times, PUT wins over BULK and a later record over an earlier one.
   */
  offer(id: Buffer, record: Buffer, time: number, put: boolean): void {
    const grown = this.grownCapacity('ids');
    if (grown !== undefined) this.rehash(grown);
    let slot = this.find(id);
    if (slot < 0) {
      slot = ~slot;
      this.store(slot, id);
    } else {
      const keptTime = this.times[slot]!;
      const keptPut = (this.flags[slot]! & FROM_PUT) !== 0;
      if (time < keptTime || (time === keptTime && keptPut && !put)) return;
    }
    this.winners[slot * 2] = record.readUInt32LE(0);
    this.winners[slot * 2 + 1] = record.readUInt32LE(4);
    this.times[slot] = time;
    this.flags[slot] = put ? FROM_PUT : 0;
  }

  /** On the second read: true for the first record that is its id's winner (copies of it are not taken again). */
  take(id: Buffer, record: Buffer): boolean {
    const slot = this.find(id);
    if (slot < 0) return false;
    const flags = this.flags[slot]!;
    if ((flags & TAKEN) !== 0) return false;
    if (this.winners[slot * 2] !== record.readUInt32LE(0) || this.winners[slot * 2 + 1] !== record.readUInt32LE(4)) return false;
    this.flags[slot] = flags | TAKEN;
    return true;
  }

  /** Forgets which winners were taken, for another second read. */
  rewind(): void {
    for (let i = 0; i < this.flags.length; i++) this.flags[i] = this.flags[i]! & ~TAKEN;
  }

  private rehash(slots: number): void {
    const mask = slots - 1;
    const keys = new Uint32Array(slots * WORDS);
    const winners = new Uint32Array(slots * 2);
    const times = new Float64Array(slots);
    const flags = new Uint8Array(slots);
    const old = this.keys;
    for (let from = 0; from < this.capacity; from++) {
      const at = from * WORDS;
      if ((old[at]! | old[at + 1]! | old[at + 2]! | old[at + 3]!) === 0) continue;
      const to = DigestSlots.emptySlotFor(keys, mask, old[at]!);
      keys.set(old.subarray(at, at + WORDS), to * WORDS);
      winners[to * 2] = this.winners[from * 2]!;
      winners[to * 2 + 1] = this.winners[from * 2 + 1]!;
      times[to] = this.times[from]!;
      flags[to] = this.flags[from]!;
    }
    this.keys = keys;
    this.mask = mask;
    this.winners = winners;
    this.times = times;
    this.flags = flags;
  }
}
