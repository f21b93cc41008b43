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
    // Both searches are Buffer.indexOf (memchr): a record's bytes are not visited one by one in JavaScript. The
    // next line feed is kept across quoted stretches, so no byte is searched twice.
    let nextLf = chunk.indexOf(LF);
    while (i < n) {
      const q = chunk.indexOf(QUOTE, i);
      if (inQuotes) {
        if (q === -1) break;
        inQuotes = false;
        i = q + 1;
        continue;
      }
      const end = q === -1 ? n : q;
      if (nextLf !== -1 && nextLf < i) nextLf = chunk.indexOf(LF, i);
      while (nextLf !== -1 && nextLf < end) {
        records++;
        nextLf = chunk.indexOf(LF, nextLf + 1);
      }
      if (q === -1) break;
      inQuotes = true;
      i = q + 1;
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
