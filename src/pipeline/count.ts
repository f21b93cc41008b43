/** Counts CSV records in a byte stream: newlines outside quotes. A final record without a newline counts too. */
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
        const q = chunk.indexOf(0x22, i);
        if (q === -1) break;
        inQuotes = false;
        i = q + 1;
        continue;
      }
      const c = chunk[i]!;
      if (c === 0x22) inQuotes = true;
      else if (c === 0x0a) records++;
      i++;
    }
    this.inQuotes = inQuotes;
    this.records += records;
    if (n > 0) this.pending = chunk[n - 1] !== 0x0a;
  }

  /** Total records; a doubled quote toggles twice, so it needs no special case. */
  end(): number {
    return this.records + (this.pending ? 1 : 0);
  }
}
