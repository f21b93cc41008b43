import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CsvRecordParser } from '../formats/csv/record-parser.js';
import type { Row } from '../model.js';

/** Records handed to a target at once: one prepared-statement loop or appender run per batch. */
export const ROW_BATCH = 2_000;

/**
 * A gzipped, headerless CSV slice as batches of records, parsed by the same parser the sources use (an
 * empty unquoted field is `null`, `""` is ''; CRLF and LF rows; quoted line breaks), each record checked
 * to have the table's column count. Memory: one batch and one gunzipped chunk.
 */
export async function* sliceRows(body: Readable, columns: number, origin: string): AsyncGenerator<Row[]> {
  const gunzip = createGunzip();
  body.on('error', (error) => gunzip.destroy(error));
  body.pipe(gunzip);
  const parser = new CsvRecordParser({ columns, hasHeader: false, origin });
  let batch: Row[] = [];
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    for (const row of parser.push(chunk)) {
      batch.push(row);
      if (batch.length >= ROW_BATCH) {
        yield batch;
        batch = [];
      }
    }
  }
  batch.push(...parser.end());
  if (batch.length > 0) yield batch;
}
