import { TakeoutError } from '../errors.js';
import { jsonDocument, plainJsonOfDynamoItem } from '../formats/jsonl.js';
import { numberText, parseBinary, parseBoolean, parseTimestamp, type ColumnKind, type LineEncoder, type RecordColumn } from '../formats/typed-records.js';
import type { Row } from '../model.js';
import type { DataFile, DatasetLayout, LayoutContext, RowFilter } from './dataset-layout.js';
import { DigestSet, digestOf, NewestById } from './digests.js';

/**
 * Amazon Personalize's dataset export (CreateDatasetExportJob: https://docs.aws.amazon.com/personalize/latest/dg/API_CreateDatasetExportJob.html), written
 * from any source:
 *
 *   <dest>/[<jobName>/]<exportId>/<datasetType>_<exportId>_part_<00000>.csv[.gz]   CSV, header row in every file
 *   <dest>/[<jobName>/]<exportId>/_manifest.json                                  the commit record
 *   <dest>/[<jobName>/]<exportId>/_SUCCESS                                        empty, last (Hadoop/Spark's marker)
 *
 * Personalize does not document its file names; these are ours: derived from the export id and the file's
 * index, so a resumed export names its files as the interrupted run did, and two exports never share a file.
 *
 * Values follow Personalize's import rules: an unquoted header of the schema's field names, UTF-8, textual
 * values in `"…"` with `\` escaping `"` and `\`, numbers and booleans bare, NULL as an empty field, and
 * TIMESTAMP / CREATION_TIMESTAMP as Unix epoch seconds.
 *
 * Deduplication is Personalize's: records identical in every exported field are written once; with ingestion
 * mode ALL, items and users keep only their newest record per id; interactions, and every dataset type with
 * BULK or PUT alone, keep all same-id variants. Memory: see src/layouts/digests.ts (24–48 bytes per distinct
 * record for the exact-duplicate set; 50–99 bytes per distinct id for ALL items/users).
 */

export type PersonalizeDatasetType = 'interactions' | 'items' | 'users';
export type IngestionMode = 'BULK' | 'PUT' | 'ALL';

/** The fields each dataset type's schema requires. */
const REQUIRED: Record<PersonalizeDatasetType, readonly string[]> = {
  interactions: ['USER_ID', 'ITEM_ID', 'TIMESTAMP'],
  items: ['ITEM_ID'],
  users: ['USER_ID'],
};

/** The id whose newest record ALL keeps (interactions keep every record). */
const ID_FIELD: Record<PersonalizeDatasetType, string> = { interactions: 'USER_ID', items: 'ITEM_ID', users: 'USER_ID' };

/** Personalize's reserved field names: a source column matching one in any case is written under it. */
const RESERVED = ['USER_ID', 'ITEM_ID', 'TIMESTAMP', 'EVENT_TYPE', 'EVENT_VALUE', 'IMPRESSION', 'RECOMMENDATION_ID', 'CREATION_TIMESTAMP'];

/** Fields whose values Personalize reads as Unix epoch seconds. */
const EPOCH_FIELDS = new Set(['TIMESTAMP', 'CREATION_TIMESTAMP']);

/** Schema field names are Avro names. */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Personalize's jobName rule: 1–63 characters. */
export const JOB_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/;

/** Digits of the part number in file names: lexical order is numeric order up to 100,000 files. */
const PART_DIGITS = 5;

export const MANIFEST_FILE = '_manifest.json';
export const SUCCESS_FILE = '_SUCCESS';

export interface PersonalizeLayoutOptions {
  datasetType: PersonalizeDatasetType;
  ingestionMode: IngestionMode;
  /** A column saying `bulk` or `put` per record; without it only ALL can be exported. */
  ingestionColumn?: string;
  /** `--id-column` values: `COLUMN` (items, users) or `FIELD=COLUMN`. */
  idColumns: readonly string[];
  /** The column that says which record of an id is newest (ALL); items default to CREATION_TIMESTAMP. */
  timestampColumn?: string;
  jobName?: string;
  gzip: boolean;
  region: string;
  accountId: string;
}

/** Checks what can be checked before the table's columns are known; throws USAGE naming the flag. */
export function checkPersonalizeOptions(o: PersonalizeLayoutOptions): void {
  if (!o.ingestionColumn && o.ingestionMode !== 'ALL') {
    throw new TakeoutError('USAGE', `--ingestion-mode ${o.ingestionMode} needs --ingestion-column (the column saying bulk or put for each record); give --ingestion-mode ALL to export every record`);
  }
  if (o.jobName !== undefined && !JOB_NAME.test(o.jobName)) {
    throw new TakeoutError('USAGE', `--job-name ${JSON.stringify(o.jobName)}: 1–63 letters, digits, - and _, starting with a letter or digit (as Personalize's jobName)`);
  }
  if (o.timestampColumn !== undefined && o.datasetType === 'interactions') {
    throw new TakeoutError('USAGE', '--timestamp-column picks the newest record per id, which only items and users datasets keep; interactions keep every record');
  }
  idOverrides(o);
}

/** `--id-column` values as field → source column. */
function idOverrides(o: PersonalizeLayoutOptions): Map<string, string> {
  const required = REQUIRED[o.datasetType];
  const out = new Map<string, string>();
  for (const value of o.idColumns) {
    const eq = value.indexOf('=');
    let field: string;
    let column: string;
    if (eq === -1) {
      if (o.datasetType === 'interactions') throw new TakeoutError('USAGE', `--id-column ${value}: interactions have two ids; give --id-column USER_ID=COLUMN or ITEM_ID=COLUMN`);
      field = ID_FIELD[o.datasetType];
      column = value;
    } else {
      field = value.slice(0, eq).trim().toUpperCase();
      column = value.slice(eq + 1).trim();
      if (!required.includes(field)) throw new TakeoutError('USAGE', `--id-column ${value}: the ${o.datasetType} dataset's required fields are ${required.join(', ')}`);
    }
    if (column === '') throw new TakeoutError('USAGE', `--id-column ${value}: no column given`);
    if (out.has(field)) throw new TakeoutError('USAGE', `--id-column: ${field} is given twice`);
    out.set(field, column);
  }
  return out;
}

/** A column by name: exactly, else in any case (the first such). */
function findColumn(columns: readonly RecordColumn[], name: string): number {
  const exact = columns.findIndex((c) => c.name === name);
  return exact !== -1 ? exact : columns.findIndex((c) => c.name.toLowerCase() === name.toLowerCase());
}

interface Field {
  /** The header name. */
  name: string;
  /** Index of the source column in a row. */
  index: number;
  kind: ColumnKind;
  epoch: boolean;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A date or timestamp cell as epoch milliseconds; NaN when it is neither. */
function epochMillis(text: string): number {
  const t = text.trim();
  const day = DATE_ONLY.exec(t);
  if (day) return Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]));
  return parseTimestamp(t)?.getTime() ?? Number.NaN;
}

/** Textual values: in double quotes, `"` and `\` escaped with `\`. */
function quoted(text: string): string {
  return `"${/["\\]/.test(text) ? text.replace(/["\\]/g, '\\$&') : text}"`;
}

/** One cell as Personalize's CSV has it. */
function cellText(field: Field, cell: string | null, origin: string): string {
  if (cell === null) return '';
  const where = `${origin}: column ${field.name}`;
  if (field.epoch) {
    if (NUMBER.test(cell.trim())) return numberText(cell, where);
    const ms = epochMillis(cell);
    if (Number.isNaN(ms)) throw new TakeoutError('INVALID_INPUT', `${where}: '${cell.slice(0, 40)}' is neither epoch seconds nor a date or timestamp`);
    return String(Math.floor(ms / 1000));
  }
  switch (field.kind) {
    case 'integer':
    case 'number':
      return numberText(cell, where);
    case 'boolean':
      return parseBoolean(cell) ? 'true' : 'false';
    case 'binary':
      return quoted(parseBinary(cell).toString('base64'));
    case 'json':
      return quoted(jsonDocument(cell, where));
    case 'dynamodb-item':
      return quoted(plainJsonOfDynamoItem(cell, where));
    default:
      return quoted(cell);
  }
}

/** What a layout needs of the table: the fields in order, and the columns the rules read. */
export interface PersonalizeSchema {
  fields: Field[];
  /** Index in a row of the ingestion column, when there is one. */
  origin?: number;
  /** Index in `fields` of the id the newest record is kept per (ALL items/users). */
  id: number;
  /** Index in a row of the column that says which record is newest, when there is one. */
  time?: number;
  timeKind?: ColumnKind;
}

/** The export's fields from the table's columns; throws USAGE naming what is missing. */
export function personalizeSchema(columns: readonly RecordColumn[], o: PersonalizeLayoutOptions, origin: string): PersonalizeSchema {
  const overrides = idOverrides(o);
  let originIndex: number | undefined;
  if (o.ingestionColumn !== undefined) {
    originIndex = findColumn(columns, o.ingestionColumn);
    if (originIndex === -1) throw new TakeoutError('USAGE', `--ingestion-column ${o.ingestionColumn}: no such column in ${origin}`);
  }
  const renamed = new Map<number, string>();
  for (const [field, column] of overrides) {
    const index = findColumn(columns, column);
    if (index === -1) throw new TakeoutError('USAGE', `--id-column ${field}=${column}: no such column in ${origin}`);
    if (index === originIndex) throw new TakeoutError('USAGE', `--id-column ${field}=${column} is the --ingestion-column`);
    renamed.set(index, field);
  }
  const fields: Field[] = [];
  const byName = new Map<string, string>();
  columns.forEach((column, index) => {
    if (index === originIndex) return;
    const reserved = RESERVED.find((r) => r === column.name.toUpperCase());
    const name = renamed.get(index) ?? reserved ?? column.name;
    if (!FIELD_NAME.test(name)) throw new TakeoutError('USAGE', `column ${JSON.stringify(column.name)} of ${origin} cannot be a Personalize field (letters, digits and _ only); leave it out with --columns`);
    const clash = byName.get(name.toUpperCase());
    if (clash !== undefined) throw new TakeoutError('USAGE', `columns ${clash} and ${column.name} of ${origin} are both the field ${name}; leave one out with --columns or map another with --id-column`);
    byName.set(name.toUpperCase(), column.name);
    fields.push({ name, index, kind: column.kind, epoch: EPOCH_FIELDS.has(name) });
  });
  const missing = REQUIRED[o.datasetType].filter((f) => !fields.some((field) => field.name === f));
  if (missing.length > 0) {
    throw new TakeoutError('USAGE', `the ${o.datasetType} dataset needs ${missing.join(', ')}: ${origin} has no such column${missing.length > 1 ? 's' : ''} (in any case); map ${missing.length > 1 ? 'them' : 'one'} with --id-column FIELD=COLUMN`);
  }
  const id = fields.findIndex((f) => f.name === ID_FIELD[o.datasetType]);
  let time: number | undefined;
  if (o.timestampColumn !== undefined) {
    time = findColumn(columns, o.timestampColumn);
    if (time === -1) throw new TakeoutError('USAGE', `--timestamp-column ${o.timestampColumn}: no such column in ${origin}`);
  } else if (o.datasetType === 'items') {
    time = fields.find((f) => f.name === 'CREATION_TIMESTAMP')?.index;
  }
  return {
    fields,
    id,
    ...(originIndex !== undefined ? { origin: originIndex } : {}),
    ...(time !== undefined ? { time, timeKind: columns[time]!.kind } : {}),
  };
}

/** The header row: field names, unquoted. */
export function headerRow(schema: PersonalizeSchema): string {
  return `${schema.fields.map((f) => f.name).join(',')}\n`;
}

/** An encoder that remembers its last line: the filter encodes a row to compare it, the writer then reuses it. */
interface CachingEncoder extends LineEncoder {
  line(row: Row): string;
}

export function personalizeEncoder(schema: PersonalizeSchema, origin: string): CachingEncoder {
  const { fields } = schema;
  let lastRow: Row | undefined;
  let lastLine = '';
  const line = (row: Row): string => {
    if (row === lastRow) return lastLine;
    let text = '';
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      text += `${i === 0 ? '' : ','}${cellText(field, row[field.index] ?? null, origin)}`;
    }
    lastRow = row;
    lastLine = `${text}\n`;
    return lastLine;
  };
  return { extension: 'csv', line, encode: line };
}

/** Which ingestion a record came from: its ingestion column's value. */
function originOf(row: Row, index: number, column: string, origin: string): 'bulk' | 'put' {
  const value = (row[index] ?? '').trim().toLowerCase();
  if (value === 'bulk' || value === 'put') return value;
  throw new TakeoutError('INVALID_INPUT', `${origin}: column ${column} holds ${JSON.stringify((row[index] ?? 'NULL').slice(0, 40))}, not bulk or put`);
}

/** A record's time for "newest": epoch seconds, or its text's date; NULL is the oldest. */
function timeOf(cell: string | null, kind: ColumnKind | undefined, where: string): number {
  if (cell === null) return Number.NEGATIVE_INFINITY;
  const t = cell.trim();
  if (NUMBER.test(t) && kind !== 'date') return Number(t);
  const ms = epochMillis(t);
  if (Number.isNaN(ms)) throw new TakeoutError('INVALID_INPUT', `${where}: '${cell.slice(0, 40)}' is neither a number nor a date or timestamp`);
  return ms / 1000;
}

/**
 * Personalize's selection and deduplication as a row filter. ALL items/users read the table twice: the first
 * read finds each id's newest record, the second writes it once. Everything else decides on one read: the
 * mode's records, each distinct one once.
 */
export function personalizeFilter(schema: PersonalizeSchema, encoder: CachingEncoder, o: PersonalizeLayoutOptions, origin: string): RowFilter {
  const fromPut = (row: Row): boolean => schema.origin !== undefined && originOf(row, schema.origin, o.ingestionColumn ?? '', origin) === 'put';
  const idField = schema.fields[schema.id];
  if (o.ingestionMode === 'ALL' && o.datasetType !== 'interactions' && idField) {
    const newest = new NewestById();
    const idOf = (row: Row): Buffer => {
      const id = row[idField.index] ?? null;
      if (id === null) throw new TakeoutError('INVALID_INPUT', `${origin}: a record has no ${idField.name} (NULL)`);
      return digestOf(id);
    };
    const timeWhere = `${origin}: column ${o.timestampColumn ?? 'CREATION_TIMESTAMP'}`;
    return {
      observe(row) {
        const time = schema.time !== undefined ? timeOf(row[schema.time] ?? null, schema.timeKind, timeWhere) : 0;
        newest.offer(idOf(row), digestOf(encoder.line(row)), time, fromPut(row));
      },
      keep: (row) => newest.take(idOf(row), digestOf(encoder.line(row))),
      rewind: () => newest.rewind(),
    };
  }
  const seen = new DigestSet();
  const wanted = o.ingestionMode === 'ALL' ? undefined : o.ingestionMode === 'PUT';
  return {
    keep(row) {
      if (wanted !== undefined && fromPut(row) !== wanted) return false;
      return seen.add(digestOf(encoder.line(row)));
    },
    rewind: () => seen.clear(),
  };
}

const pad = (index: number): string => String(index).padStart(PART_DIGITS, '0');

/** The export's folder: `[<jobName>/]<exportId>/`. */
export function personalizeFolder(exportId: string, jobName?: string): string {
  return `${jobName ? `${jobName}/` : ''}${exportId}/`;
}

export function personalizeArn(o: Pick<PersonalizeLayoutOptions, 'region' | 'accountId' | 'jobName'>, exportId: string): string {
  return `arn:aws:personalize:${o.region}:${o.accountId}:dataset-export-job/${o.jobName ?? exportId}`;
}

/** The commit record: the job as DescribeDatasetExportJob shows it, and every file with rows, bytes and checksums. */
export function personalizeManifest(ctx: LayoutContext, o: PersonalizeLayoutOptions, folder: string, fields: readonly string[], files: readonly DataFile[], times: { start: string; end: string }): Record<string, unknown> {
  const path = ctx.bucket !== null ? `s3://${ctx.bucket}/${ctx.prefix ? `${ctx.prefix}/` : ''}${folder}` : folder;
  return {
    formatVersion: 1,
    kind: 'takeout-personalize-export',
    datasetExportJob: {
      jobName: o.jobName ?? ctx.exportId,
      datasetExportJobArn: personalizeArn(o, ctx.exportId),
      ingestionMode: o.ingestionMode,
      status: 'ACTIVE',
      jobOutput: { s3DataDestination: { path } },
      creationDateTime: times.start,
      lastUpdatedDateTime: times.end,
    },
    exportId: ctx.exportId,
    table: ctx.table.id,
    source: ctx.source,
    datasetType: o.datasetType,
    fields,
    files: files.map((f) => ({ key: f.key, rows: f.rows, bytes: f.bytes, md5: f.md5 ? Buffer.from(f.md5, 'base64').toString('hex') : undefined, sha256: f.sha256 })),
    totals: { files: files.length, rows: files.reduce((n, f) => n + f.rows, 0), bytes: files.reduce((n, f) => n + f.bytes, 0) },
  };
}

/** The Personalize dataset export layout for one export. */
export function personalizeLayout(ctx: LayoutContext, o: PersonalizeLayoutOptions): DatasetLayout {
  checkPersonalizeOptions(o);
  const origin = ctx.table.id;
  const schema = personalizeSchema(ctx.columns, o, origin);
  const encoder = personalizeEncoder(schema, origin);
  const folder = personalizeFolder(ctx.exportId, o.jobName);
  const header = headerRow(schema);
  const manifestKey = `${folder}${MANIFEST_FILE}`;
  return {
    name: 'personalize',
    exportFormat: 'CSV',
    outputPrefix: folder,
    manifestKey,
    data: {
      kind: 'lines',
      encoder,
      prologue: () => header,
      fileKey: (_series, index) => `${folder}${o.datasetType}_${ctx.exportId}_part_${pad(index)}.csv${o.gzip ? '.gz' : ''}`,
      gzip: o.gzip,
    },
    filter: personalizeFilter(schema, encoder, o, origin),
    finishFiles(files, job) {
      const manifest = personalizeManifest(ctx, o, folder, schema.fields.map((f) => f.name), files, { start: job.startTime, end: job.endTime ?? new Date().toISOString() });
      const body = `${JSON.stringify(manifest, null, 2)}\n`;
      return [
        { key: manifestKey, body, contentType: 'application/json' },
        { key: `${folder}${SUCCESS_FILE}`, body: '', contentType: 'text/plain' },
      ];
    },
  };
}

