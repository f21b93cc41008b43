import { createGunzip } from 'node:zlib';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { CsvRecordParser } from '../formats/csv/record-parser.js';
import type { CsvBody, Row, TableBody } from '../model.js';
import { plural } from '../units.js';

/** Rows handed on at once: enough to amortise the async hop per batch, small enough to stay a few MB. */
export const RECORD_BATCH_ROWS = 4096;

/**
 * A table body as batches of rows, whatever form the source gives it in: value rows as they are, CSV
 * bytes parsed (NULL kept apart from ''), gzipped slices gunzipped and parsed in order. onRead hears the
 * source-side bytes read (CSV bytes, or a gzipped file's or slice's stored bytes), for progress.
 */
export async function* recordBatches(body: TableBody, columns: number, signal?: AbortSignal, onRead?: (bytes: number) => void): AsyncIterable<Row[]> {
  if (body.kind === 'rows') {
    let batch: Row[] = [];
    for await (const row of body.rows) {
      if (row.length !== columns) throw new TakeoutError('INVALID_INPUT', `row has ${plural(row.length, 'value')}, the table has ${plural(columns, 'column')}`);
      batch.push(row);
      if (batch.length >= RECORD_BATCH_ROWS) {
        signal?.throwIfAborted();
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
    return;
  }
  if (body.kind === 'csv') {
    const parser = new CsvRecordParser({ columns, hasHeader: body.hasHeader, origin: body.origin });
    const read = readCounter(body);
    try {
      for await (const chunk of body.stream as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        onRead?.(read(chunk));
        const rows = parser.push(chunk);
        if (rows.length > 0) yield rows;
      }
    } finally {
      body.stream.destroy();
    }
    const rest = parser.end();
    if (rest.length > 0) yield rest;
    return;
  }
  for (const [index, slice] of body.slices.entries()) {
    const parser = new CsvRecordParser({ columns, hasHeader: body.header === true && index === 0, origin: slice.origin });
    const gunzip = createGunzip();
    const opened = await slice.open();
    // Source-side bytes are the slices' stored (gzipped) bytes, the unit of their listed sizes.
    if (onRead) opened.on('data', (chunk: Buffer) => onRead(chunk.length));
    const stream = opened.pipe(gunzip);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        const rows = parser.push(chunk);
        if (rows.length > 0) yield rows;
      }
    } catch (error) {
      throw toTakeoutError(error, slice.origin);
    } finally {
      gunzip.destroy();
    }
    const rest = parser.end();
    if (rest.length > 0) yield rest;
  }
}

/**
 * The source-side bytes a CSV body's chunk stands for: the chunk's length, or what the source read for it
 * when that differs (a gzipped file: its compressed bytes, the unit of the table's dataSizeBytes).
 */
export function readCounter(body: CsvBody): (chunk: Buffer) => number {
  const sourceBytes = body.sourceBytes;
  if (!sourceBytes) return (chunk) => chunk.length;
  let seen = 0;
  return () => {
    const now = sourceBytes();
    const delta = now - seen;
    seen = now;
    return delta;
  };
}
