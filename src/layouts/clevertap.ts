import { createHash } from 'node:crypto';
import { TakeoutError } from '../errors.js';
import { CLEVERTAP_XML_FOOTER, CLEVERTAP_XML_HEADER } from '../formats/clevertap-xml.js';
import { DEFAULT_ROW_GROUP_ROWS, ParquetFileBuilder } from '../formats/parquet.js';
import { recordColumns } from '../formats/typed-records.js';
import type { Row, TableDescriptor } from '../model.js';
import type { DatasetLayout, LayoutContext, RowFilter } from './dataset-layout.js';
import { csvEncoder, Events, EventParquet, jsonEncoder, shapeOf, xmlEncoder } from './clevertap-events.js';
import type { ClevertapFormat, ClevertapLayoutOptions } from './clevertap-options.js';

export { CLEVERTAP_FORMATS, type ClevertapFormat, type ClevertapLayoutOptions } from './clevertap-options.js';

export { eventMillis } from './clevertap-events.js';

/**
 * CleverTap's S3 event export (CleverTap's docs: https://docs.clevertap.com/docs/aws-s3-export and https://docs.clevertap.com/docs/export-format), written from any table of events:
 *
 *   <exportId>/<exportId>-<run epoch s>-<event name>-<yyyymmdd>-<file index>-<database id>.json.gz   one series per event
 *   <exportId>/_manifest.json                                                                      takeout's commit record, last
 *
 * - Files are split per event name (after the character rules) and cut at --max-file-size; the index counts
 *   from 0 within each event. The run timestamp and the date are the export's start (UTC), so a resumed export
 *   names its files as the interrupted run did.
 * - JSON: the first line of each file is the event name, then one object per line,
 *   `{"profile":{"identity":…,…},"ts":yyyyMMddHHmmss,"eventName":…,"eventProps":{…},"deviceInfo":{…}}`.
 *   CSV: a header row, then one event per row, the same fields flat (`profile.identity`, `eventProps.amount`).
 *   XML: CleverTap's `<Events><Event>…` (formats/clevertap-xml.ts). PARQUET: the flat fields as typed columns,
 *   GZIP-compressed column chunks in `.parquet.gzip` files (CleverTap's name for them).
 * - Character rules (whitespace, tab, `/`, NUL → `-`; other controls → `?`) apply to the event name: in the file
 *   name, the JSON first line and every record's eventName, so a file and its events always agree. Other values
 *   are data and are written as they are (each format escapes what it must); CleverTap's documentation does not
 *   say the rules apply to them, and changing them could not be undone.
 * - profile.identity is the first non-empty (not NULL, not blank) of the --identity-priority columns, as text;
 *   a row with none is kept with identity null (an anonymous event still happened; refusing it would fail the
 *   whole export over one row).
 */

/** CleverTap cuts event files at 100 MB (takeout's MB, 2^20 bytes, as --max-file-size 100MB reads it). */
export const CLEVERTAP_MAX_FILE_BYTES = 100 * 1024 * 1024;
/** CleverTap's one-time exports reach back at most this many days. */
export const ONE_TIME_DAYS_BACK = 60;
/** "Everything" for --no-limit without --from: the first day a yyyyMMddHHmmss ts can hold. */
export const BEGINNING_OF_TIME = new Date('0001-01-01T00:00:00.000Z');

const DAY_MS = 24 * 60 * 60 * 1000;
/** An event name takes at most this many bytes of a file name (a segment may hold 255), the rest is the template. */
const MAX_NAME_BYTES = 128;
/** Hex digits of the hash that tells apart event names whose file-name form had to change. */
const NAME_HASH_CHARS = 8;
/** Hex digits of the default database id, a hash of the source. */
const DATABASE_ID_CHARS = 8;

/** The table's column `name` ignoring case: an exact match first, else the one column equal ignoring case. */
export function resolveColumn(columns: readonly string[], name: string, flag: string): string | undefined {
  if (columns.includes(name)) return name;
  const matches = columns.filter((c) => c.toLowerCase() === name.toLowerCase());
  if (matches.length > 1) throw new TakeoutError('USAGE', `${flag} ${name}: the table has ${matches.join(' and ')}, which differ only in case; give the exact name`);
  return matches[0];
}

/**
 * Whether the source filters on the ts column itself: PostgreSQL compares timestamp and date columns (in UTC);
 * other sources, and times kept as numbers, are filtered by the layout as it reads each ts.
 */
export function sourceFiltersWindow(source: string | undefined, table: TableDescriptor, tsColumn: string): boolean {
  const kind = recordColumns(table, [tsColumn])[0]?.kind;
  return /^postgres(ql)?:/i.test(source ?? '') && (kind === 'timestamp' || kind === 'date');
}

/** The default --database-id: a short hash of the source, so exports of one database share it. */
export function defaultDatabaseId(source: string): string {
  return createHash('sha256').update(source).digest('hex').slice(0, DATABASE_ID_CHARS);
}

const DATABASE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function checkDatabaseId(id: string): string {
  if (!DATABASE_ID.test(id)) throw new TakeoutError('USAGE', `--database-id '${id}': use 1–64 letters, digits, '_' or '-' (it goes into every file name)`);
  return id;
}

/** `YYYY-MM-DD` as 00:00 UTC of that day. */
export function parseDay(text: string, flag: string): Date {
  const m = /^(\d{4})-(\d\d)-(\d\d)$/.exec(text.trim());
  const day = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!m || !day || day.getUTCFullYear() !== Number(m[1]) || day.getUTCMonth() !== Number(m[2]) - 1 || day.getUTCDate() !== Number(m[3])) {
    throw new TakeoutError('USAGE', `${flag} '${text}' is not a date (YYYY-MM-DD, UTC)`);
  }
  return day;
}

const isoDay = (d: Date): string => d.toISOString().slice(0, 10);

export interface WindowRequest {
  from?: string;
  until?: string;
  noLimit: boolean;
  recurring: boolean;
}

/**
 * --from/--until as the runner's window [from, to): `--from` is 00:00 UTC of its day, `--until` includes its whole
 * day (the window ends at 00:00 of the next), and no --until ends at the export's start. Without --from: 60 days
 * back (CleverTap's limit), everything with --no-limit. A `--from` more than 60 days back is refused unless
 * --no-limit. Recurring runs chain from the last completed run; --from only starts the first one.
 */
export function clevertapWindow(request: WindowRequest, now: Date): { from: Date; to?: Date } {
  const today = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS);
  const earliest = new Date(today.getTime() - ONE_TIME_DAYS_BACK * DAY_MS);
  const limitHint = { hint: 'give --no-limit to export any range' };
  let from = request.noLimit ? BEGINNING_OF_TIME : earliest;
  if (request.from !== undefined) {
    from = parseDay(request.from, '--from');
    if (!request.noLimit && from.getTime() < earliest.getTime()) {
      throw new TakeoutError(
        'USAGE',
        `--from ${request.from} is more than ${ONE_TIME_DAYS_BACK} days back: CleverTap's one-time exports start at most ${ONE_TIME_DAYS_BACK} days before today (${isoDay(earliest)} at the earliest)`,
        limitHint,
      );
    }
    if (from.getTime() > now.getTime()) throw new TakeoutError('USAGE', `--from ${request.from} is in the future`);
  }
  if (request.until === undefined) return { from };
  if (request.recurring) throw new TakeoutError('USAGE', '--until does not go with --recurring: each recurring run ends at its own start');
  const to = new Date(parseDay(request.until, '--until').getTime() + DAY_MS);
  if (to.getTime() <= from.getTime()) {
    if (!request.noLimit && request.from === undefined) {
      throw new TakeoutError('USAGE', `--until ${request.until} is more than ${ONE_TIME_DAYS_BACK} days back: CleverTap's one-time exports start at most ${ONE_TIME_DAYS_BACK} days before today (${isoDay(earliest)} at the earliest)`, limitHint);
    }
    throw new TakeoutError('USAGE', `--until ${request.until} is before --from ${request.from ?? isoDay(from)}`);
  }
  return { from, to };
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** The run's date in file names: yyyymmdd (UTC). */
export function fileDate(d: Date): string {
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
}

/**
 * An event name (already through the character rules) as it goes into a file name: as it is when it is a safe
 * key part (no backslash) of at most MAX_NAME_BYTES; otherwise made safe, cut, and followed by `~` and a hash of
 * the whole name, so two event names never share a file name.
 */
export function fileEventName(series: string): string {
  if (!series.includes('\\') && Buffer.byteLength(series) <= MAX_NAME_BYTES) return series;
  let name = '';
  let bytes = 0;
  const room = MAX_NAME_BYTES - NAME_HASH_CHARS - 1;
  for (const ch of series.replaceAll('\\', '-')) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > room) break;
    name += ch;
    bytes += size;
  }
  return `${name}~${createHash('sha256').update(series).digest('hex').slice(0, NAME_HASH_CHARS)}`;
}

export const exportFolder = (exportId: string): string => `${exportId}/`;
export const manifestKey = (exportId: string): string => `${exportFolder(exportId)}_manifest.json`;

function extensionOf(format: ClevertapFormat, gzip: boolean): string {
  if (format === 'PARQUET') return gzip ? 'parquet.gzip' : 'parquet';
  return `${format.toLowerCase()}${gzip ? '.gz' : ''}`;
}

/** `_manifest.json`: takeout's addition (CleverTap writes no commit record), written after every data file. */
export interface ClevertapManifest {
  layout: 'clevertap';
  exportId: string;
  table: string;
  exportFormat: ClevertapFormat;
  databaseId: string;
  /** The `<timestamp of run>` of the file names: the export's start in epoch seconds. */
  runTimestamp: number;
  startTime: string;
  endTime: string;
  /** The events taken: ts in [from, to). */
  window: { from: string | null; to: string | null };
  recurring: boolean;
  itemCount: number;
  /** Every data file, by event then index: its name in this folder, rows, stored bytes, MD5 and SHA-256 (hex). */
  files: { name: string; event: string; index: number; rows: number; bytes: number; md5: string | null; sha256: string }[];
}

/** The clevertap layout for one export. */
export function clevertapLayout(ctx: LayoutContext, o: ClevertapLayoutOptions): DatasetLayout {
  const origin = ctx.table.id;
  const events = new Events(ctx.columns, shapeOf(ctx.columns, o, origin), origin);
  const folder = exportFolder(ctx.exportId);
  const runTimestamp = Math.floor(ctx.startTime.getTime() / 1000);
  const date = fileDate(ctx.startTime);
  const extension = extensionOf(o.format, o.gzip);
  const databaseId = o.databaseId ?? defaultDatabaseId(ctx.source);
  const fileKey = (series: string, index: number): string => `${folder}${ctx.exportId}-${runTimestamp}-${fileEventName(series)}-${date}-${index}-${databaseId}.${extension}`;
  const seriesOf = (row: Row): string => events.name(row);

  let data: DatasetLayout['data'];
  if (o.format === 'PARQUET') {
    data = {
      kind: 'blocks',
      seriesOf,
      open: () => new EventParquet(new ParquetFileBuilder(events.shape.flat, { codec: o.gzip ? 'GZIP' : 'UNCOMPRESSED', rowGroupRows: DEFAULT_ROW_GROUP_ROWS }, origin), events),
      fileKey,
    };
  } else {
    const encoder = o.format === 'JSON' ? jsonEncoder(events, origin) : o.format === 'CSV' ? csvEncoder(events, origin) : xmlEncoder(events, origin);
    data = {
      kind: 'lines',
      seriesOf,
      encoder,
      // JSON: "the first line of the file contains the event name" (the name has no line breaks after the rules).
      prologue: (series) => (o.format === 'JSON' ? `${series}\n` : o.format === 'XML' ? CLEVERTAP_XML_HEADER : (encoder.header ?? '')),
      ...(o.format === 'XML' ? { epilogue: () => CLEVERTAP_XML_FOOTER } : {}),
      fileKey,
      gzip: o.gzip,
    };
  }

  const from = ctx.window?.from?.getTime();
  const to = ctx.window?.to?.getTime();
  const filter: RowFilter | undefined =
    o.filterWindow && (from !== undefined || to !== undefined)
      ? {
          keep: (row) => {
            const t = events.millis(row);
            return (from === undefined || t >= from) && (to === undefined || t < to);
          },
        }
      : undefined;

  const manifest = manifestKey(ctx.exportId);
  return {
    name: 'clevertap',
    exportFormat: o.format,
    outputPrefix: folder,
    manifestKey: manifest,
    data,
    ...(filter ? { filter } : {}),
    finishFiles(files, job) {
      const body: ClevertapManifest = {
        layout: 'clevertap',
        exportId: ctx.exportId,
        table: ctx.table.id,
        exportFormat: o.format,
        databaseId,
        runTimestamp,
        startTime: job.startTime,
        endTime: job.endTime ?? new Date().toISOString(),
        window: { from: job.exportFromTime ?? null, to: job.exportToTime ?? job.exportTime ?? null },
        recurring: job.recurring === true,
        itemCount: files.reduce((n, f) => n + f.rows, 0),
        files: files.map((f) => ({
          name: f.key.slice(folder.length),
          event: f.series,
          index: f.index,
          rows: f.rows,
          bytes: f.bytes,
          md5: f.md5 !== undefined ? Buffer.from(f.md5, 'base64').toString('hex') : null,
          sha256: f.sha256,
        })),
      };
      return [{ key: manifest, body: `${JSON.stringify(body, null, 2)}\n`, contentType: 'application/json' }];
    },
  };
}
