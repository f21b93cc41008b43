import { SYNTAX_BYTES } from './grammar.js';

const { QUOTE, LF } = SYNTAX_BYTES;

/**
 * Counts CSV records in a byte stream: newlines outside quotes. A final record without a newline counts too.
 * For canonical CSV (what takeout writes, and what verify reads back): a blank line would count as a record.
 */
export class RecordCounter {
  private inQuotes = false;
  private records = 0;
  private pending = false;

  push(chunk: Buffer): void {
    let inQuotes = this.inQuotes;
    let records = 0;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (inQuotes) {
        const q = chunk.indexOf(QUOTE, i);
        if (q === -1) break;
        inQuotes = false;
        i = q + 1;
        continue;
      }
      const c = chunk[i]!;
      if (c === QUOTE) inQuotes = true;
      else if (c === LF) records++;
      i++;
    }
    this.inQuotes = inQuotes;
    this.records += records;
    if (n > 0) this.pending = chunk[n - 1] !== LF;
  }

  /** Total records; a doubled quote toggles twice, so it needs no special case. */
  end(): number {
    return this.records + (this.pending ? 1 : 0);
  }
}
