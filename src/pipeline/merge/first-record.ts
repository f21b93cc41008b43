import { TakeoutError } from '../../errors.js';
import { parseHeader } from '../../formats/csv/header.js';
import type { SliceEntry } from '../../manifests/read.js';
import { plural } from '../../units.js';

/** How far into a slice (decompressed) its first record is looked for; a longer first record leaves the slice unchecked. */
export const FIRST_RECORD_MAX_BYTES = 1024 * 1024;
/** The first record is usually short: parse this much first, so a 1 MiB chunk is not decoded for a 100-byte row. */
const FIRST_RECORD_QUICK_BYTES = 64 * 1024;

/**
 * Slices must agree on their number of fields. Only the first record of each slice is parsed (quote-aware),
 * which catches a slice of another table or with a column more or less without parsing the data. A slice's
 * count is compared as soon as the count it must match is known; with no column count given, that is the
 * first slice in manifest order with a record, so the slice named in the error is the odd one out
 * whatever order the slices arrive in.
 */
export class ColumnCheck {
  /** Per slice: fields in its first record; null when it has none (empty, skipped, record too long); undefined until known. */
  private readonly counts: (number | null | undefined)[];
  /** Slices before this index have all been compared. */
  private compared = 0;
  private reference: { count: number; from: string } | undefined;
  /** The count was given: each slice is compared as soon as it reports. */
  private readonly given: boolean;

  constructor(
    private readonly entries: readonly SliceEntry[],
    expected: number | undefined,
  ) {
    this.counts = entries.map(() => undefined);
    this.given = expected !== undefined;
    if (expected !== undefined) this.reference = { count: expected, from: 'the column names' };
  }

  /** Records slice `index`'s count; returns the error this reveals, if any (about this slice or a later one). */
  report(index: number, count: number | null): TakeoutError | undefined {
    this.counts[index] = count;
    if (this.given) return this.compare(index);
    for (; this.compared < this.counts.length; this.compared++) {
      const current = this.counts[this.compared];
      if (current === undefined) return undefined;
      if (current === null) continue;
      if (this.reference === undefined) {
        this.reference = { count: current, from: `slice ${this.entries[this.compared]!.label}` };
        continue;
      }
      const error = this.compare(this.compared);
      if (error) return error;
    }
    return undefined;
  }

  private compare(index: number): TakeoutError | undefined {
    const count = this.counts[index];
    const reference = this.reference;
    if (count === null || count === undefined || reference === undefined || count === reference.count) return undefined;
    const label = this.entries[index]!.label;
    return new TakeoutError(
      'INTEGRITY',
      `slice ${label}: ${plural(count, 'column')}, expected ${reference.count} as in ${reference.from}`,
      { details: { slice: label, columns: count, expected: reference.count } },
    );
  }
}

/** Finds the number of fields of a slice's first record in its plain bytes, fed as they come; never throws. */
export class FirstRecordProbe {
  private head: Buffer[] = [];
  private bytes = 0;
  private decided = false;
  private failure: TakeoutError | undefined;

  constructor(
    private readonly check: ColumnCheck,
    private readonly index: number,
  ) {}

  get done(): boolean {
    return this.decided;
  }

  feed(chunk: Buffer): void {
    if (this.decided || chunk.length === 0) return;
    const piece = chunk.subarray(0, FIRST_RECORD_MAX_BYTES - this.bytes);
    this.head.push(piece);
    this.bytes += piece.length;
    const head = this.head.length === 1 ? piece : Buffer.concat(this.head, this.bytes);
    const record = (head.length > FIRST_RECORD_QUICK_BYTES ? parseHeader(head.subarray(0, FIRST_RECORD_QUICK_BYTES)) : undefined) ?? parseHeader(head);
    if (record) this.decide(record.columns.length);
    else if (this.bytes >= FIRST_RECORD_MAX_BYTES) this.decide(null);
  }

  /** The slice ended: a last record without a newline still counts. */
  end(): void {
    if (this.decided) return;
    const record = this.bytes === 0 ? undefined : parseHeader(Buffer.concat([...this.head, Buffer.from('\n')]));
    this.decide(record ? record.columns.length : null);
  }

  /** The slice had nothing to read (an optional slice that does not exist). */
  skip(): void {
    if (!this.decided) this.decide(null);
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private decide(count: number | null): void {
    this.decided = true;
    this.head = [];
    this.failure = this.check.report(this.index, count);
  }
}

/** Passes chunks on after showing them to the probe. */
export async function* probed(source: AsyncIterable<Buffer>, probe: FirstRecordProbe): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (!probe.done) {
      probe.feed(chunk);
      probe.throwIfFailed();
    }
    yield chunk;
  }
}
