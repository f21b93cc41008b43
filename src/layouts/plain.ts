import { TakeoutError } from '../errors.js';
import { encodeCsvRow, encodeHeader } from '../formats/csv/encode.js';
import { jsonLinesEncoder } from '../formats/jsonl.js';
import { DEFAULT_ROW_GROUP_ROWS, ParquetFileBuilder, type ParquetCodec } from '../formats/parquet.js';
import type { LineEncoder, RecordColumn } from '../formats/typed-records.js';
import { keyProblem } from '../stores/keys.js';
import { sliceManifest, type SliceManifest } from '../manifests/takeout.js';
import type { Row } from '../model.js';
import type { BlockFiles, DataFile, DatasetLayout, FileBuilder, LayoutContext, LineFiles } from './dataset-layout.js';

/**
 * Our own layout: keys from a template, Hive partition folders, CSV / JSON lines / Parquet, gzip or not.
 *
 *   --key-template '{table}/{export_id}/part-{part:05}'   (the CLI's default)
 *   <folder>/[col=value/…]part-00000.csv.gz               data: the template, the partition folders, the extension
 *   <folder>/manifest                                      Redshift COPY … MANIFEST (url, mandatory, meta, schema)
 *   <folder>/_manifest.json                                the commit record: every file with rows, bytes, sha256, md5
 *
 * `<folder>` is the template's leading folders up to the first that varies per file ({part}, {partitions}).
 * Placeholders: {table}, {export_id}, {date} (the export's start day, UTC, YYYY-MM-DD), {part} (the file's index
 * in its partition), {part:05} (zero-padded to 5 digits), {partitions} (a whole segment: the partition folders;
 * without it they go before the file name). Hive-style `col={date}` folders are literal text around a placeholder.
 */

export type PlainFormat = 'CSV' | 'JSONL' | 'PARQUET';
export type PlainCompression = 'gzip' | 'none' | 'snappy';

/** Hive's folder for NULL (and empty) partition values. */
export const HIVE_DEFAULT_PARTITION = '__HIVE_DEFAULT_PARTITION__';
export const MANIFEST_FILE = '_manifest.json';
export const REDSHIFT_MANIFEST_FILE = 'manifest';

/** Zero padding beyond this is a typo, not a file count. */
const MAX_PART_WIDTH = 20;
/** S3 and file systems: one key segment (the longest partition folder). */
const MAX_SEGMENT_BYTES = 255;

export interface PlainLayoutOptions {
  keyTemplate: string;
  format: PlainFormat;
  compression: PlainCompression;
  /** CSV: a header row at the start of each file. */
  header: boolean;
  partitionBy: readonly string[];
  /** Keep the partition columns in the files too (Hive readers take them from the folders). */
  includePartitionColumns: boolean;
  region: string;
  accountId: string;
}

type Token = { text: string } | { name: 'table' | 'export_id' | 'date' | 'partitions' } | { name: 'part'; width: number };

export interface KeyTemplate {
  /** Tokens of each `/`-separated segment. */
  segments: Token[][];
  /** Index of the segment the partition folders take (a `{partitions}` segment, or before the last). */
  partitionsAt: number;
  /** The template holds `{partitions}` itself. */
  explicitPartitions: boolean;
  /** Segments before this one are the export's folder. */
  folderSegments: number;
}

const usage = (message: string): TakeoutError => new TakeoutError('USAGE', `--key-template ${message}`);

/** Parses and checks a key template; throws USAGE naming what is wrong. */
export function parseKeyTemplate(template: string, partitioned: boolean): KeyTemplate {
  if (template.trim() === '') throw usage('is empty');
  const segments = template.split('/').map((segment, i, all) => {
    if (segment === '') throw usage(`${JSON.stringify(template)} has an empty folder (${i === 0 ? 'a leading /' : i === all.length - 1 ? 'a trailing /' : '//'})`);
    const tokens: Token[] = [];
    let rest = segment;
    while (rest !== '') {
      const open = rest.indexOf('{');
      const close = rest.indexOf('}');
      if (close !== -1 && (open === -1 || close < open)) throw usage(`${JSON.stringify(template)}: a } without its {`);
      if (open === -1) {
        tokens.push({ text: rest });
        break;
      }
      if (open > 0) tokens.push({ text: rest.slice(0, open) });
      const end = rest.indexOf('}', open);
      if (end === -1) throw usage(`${JSON.stringify(template)}: a { without its }`);
      const name = rest.slice(open + 1, end);
      const part = /^part(?::0(\d+))?$/.exec(name);
      if (part) {
        const width = part[1] === undefined ? 1 : Number(part[1]);
        if (width < 1 || width > MAX_PART_WIDTH) throw usage(`{${name}}: pad {part} to 1–${MAX_PART_WIDTH} digits, like {part:05}`);
        tokens.push({ name: 'part', width });
      } else if (name === 'table' || name === 'export_id' || name === 'date' || name === 'partitions') {
        tokens.push({ name });
      } else {
        throw usage(`${JSON.stringify(template)}: unknown placeholder {${name}} (known: {table}, {export_id}, {date}, {part}, {part:05}, {partitions})`);
      }
      rest = rest.slice(end + 1);
    }
    return tokens;
  });
  const has = (i: number, name: string): boolean => segments[i]!.some((t) => 'name' in t && t.name === name);
  const partitionSegments = segments.map((_, i) => i).filter((i) => has(i, 'partitions'));
  for (const i of partitionSegments) {
    if (segments[i]!.length !== 1) throw usage(`${JSON.stringify(template)}: {partitions} must be a whole folder, like a/{partitions}/part-{part}`);
  }
  if (partitionSegments.length > 1) throw usage(`${JSON.stringify(template)}: {partitions} appears twice`);
  const explicitPartitions = partitionSegments.length === 1;
  if (explicitPartitions && !partitioned) throw usage(`${JSON.stringify(template)}: {partitions} needs --partition-by`);
  if (explicitPartitions && partitionSegments[0] === segments.length - 1) throw usage(`${JSON.stringify(template)}: {partitions} are folders; the file name comes after them`);
  const firstPart = segments.findIndex((_, i) => has(i, 'part'));
  if (firstPart === -1) throw usage(`${JSON.stringify(template)} needs {part} (or {part:05}): files are cut at --max-file-size, and each needs its own key`);
  const partitionsAt = explicitPartitions ? partitionSegments[0]! : segments.length - 1;
  const template_: KeyTemplate = { segments, partitionsAt, explicitPartitions, folderSegments: Math.min(firstPart, partitioned ? partitionsAt : segments.length - 1) };
  // A sample key must be safe: no `..`, no absolute paths, no control characters, whatever the values.
  const sample = renderKey(template_, { table: 'table', exportId: '01700000000000-00000000', date: '2000-01-01', partitions: partitioned ? 'col=value' : '', part: 0 });
  const problem = keyProblem(sample);
  if (problem !== undefined) throw usage(`${JSON.stringify(template)} makes unsafe keys like ${JSON.stringify(sample)}: ${problem}`);
  return template_;
}

interface KeyValues {
  table: string;
  exportId: string;
  date: string;
  /** `col=value/col2=value2`, or '' when not partitioned. */
  partitions: string;
  part: number;
}

function renderSegment(tokens: readonly Token[], v: KeyValues): string {
  let out = '';
  for (const t of tokens) {
    if ('text' in t) out += t.text;
    else if (t.name === 'part') out += String(v.part).padStart(t.width, '0');
    else if (t.name === 'table') out += v.table;
    else if (t.name === 'export_id') out += v.exportId;
    else if (t.name === 'date') out += v.date;
    else out += v.partitions;
  }
  return out;
}

/** A data file's key without its extension. */
export function renderKey(t: KeyTemplate, v: KeyValues): string {
  const parts: string[] = [];
  t.segments.forEach((tokens, i) => {
    if (i === t.partitionsAt && !t.explicitPartitions && v.partitions !== '') parts.push(v.partitions);
    const segment = renderSegment(tokens, v);
    if (segment !== '') parts.push(segment);
  });
  return parts.join('/');
}

/** The export's folder: the leading segments that are the same for every file, ending with `/` (or ''). */
export function renderFolder(t: KeyTemplate, v: Omit<KeyValues, 'partitions' | 'part'>): string {
  const folder = t.segments.slice(0, t.folderSegments).map((tokens) => renderSegment(tokens, { ...v, partitions: '', part: 0 }));
  return folder.length === 0 ? '' : `${folder.join('/')}/`;
}

/** Characters Hive escapes in partition folder names (FileUtils.escapePathName), as %XX. */
// eslint-disable-next-line no-control-regex
const HIVE_ESCAPED = /[\u0000-\u001f\u007f"#%'*/:=?\\{}[\]^]/g;

/**
 * A value (or column name) as one safe key segment, Hive's way: its special characters as `%XX`; and so that
 * no value can make `..`, an absolute key or a segment a file system refuses, a trailing dot or space too.
 */
export function escapePartition(text: string): string {
  const escaped = text.replace(HIVE_ESCAPED, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return escaped.replace(/[. ]$/, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** One partition folder: `col=value`, NULL and '' as Hive's default partition. */
export function partitionSegment(column: string, value: string | null): string {
  return `${escapePartition(column)}=${value === null || value === '' ? HIVE_DEFAULT_PARTITION : escapePartition(value)}`;
}

export function extensionOf(format: PlainFormat, compression: PlainCompression): string {
  if (format === 'PARQUET') return '.parquet';
  return `.${format === 'CSV' ? 'csv' : 'jsonl'}${compression === 'gzip' ? '.gz' : ''}`;
}

const PARQUET_CODECS: Record<PlainCompression, ParquetCodec> = { snappy: 'SNAPPY', gzip: 'GZIP', none: 'UNCOMPRESSED' };

/** Checks the option combination; throws USAGE naming the flag. */
export function checkPlainOptions(o: Pick<PlainLayoutOptions, 'keyTemplate' | 'format' | 'compression' | 'partitionBy'>): KeyTemplate {
  if (o.compression === 'snappy' && o.format !== 'PARQUET') throw new TakeoutError('USAGE', `--compression snappy is for PARQUET; ${o.format} takes gzip or none`);
  const seen = new Set<string>();
  for (const column of o.partitionBy) {
    if (seen.has(column)) throw new TakeoutError('USAGE', `--partition-by ${column} is given twice`);
    seen.add(column);
  }
  return parseKeyTemplate(o.keyTemplate, o.partitionBy.length > 0);
}

/** Redshift's column types for the manifest's schema, from the column kinds as the files hold them. */
function redshiftType(column: RecordColumn, format: PlainFormat): string {
  switch (column.kind) {
    case 'integer':
      return 'bigint';
    case 'number':
      return format === 'PARQUET' ? 'double precision' : 'numeric';
    case 'boolean':
      return 'boolean';
    case 'binary':
      return 'varbyte';
    case 'date':
      return format === 'PARQUET' ? 'character varying' : 'date';
    case 'timestamp':
      return format === 'PARQUET' ? 'character varying' : 'timestamp';
    default:
      return 'character varying';
  }
}

/** The plain layout for one export. */
export function plainLayout(ctx: LayoutContext, o: PlainLayoutOptions): DatasetLayout {
  const template = checkPlainOptions(o);
  const origin = ctx.table.id;
  const partitionIndexes = o.partitionBy.map((name) => {
    const index = ctx.columns.findIndex((c) => c.name === name);
    if (index === -1) throw new TakeoutError('USAGE', `--partition-by ${name}: no such column in ${origin}`);
    return index;
  });
  const keep = ctx.columns.map((_, i) => i).filter((i) => o.includePartitionColumns || !partitionIndexes.includes(i));
  if (keep.length === 0) throw new TakeoutError('USAGE', `--partition-by takes every column of ${origin}: the files would hold nothing (add --include-partition-columns)`);
  const fileColumns = keep.map((i) => ctx.columns[i]!);
  const project: (row: Row) => Row = keep.length === ctx.columns.length ? (row) => row : (row) => keep.map((i) => row[i] ?? null);

  const values = { table: escapePartition(ctx.table.name), exportId: ctx.exportId, date: ctx.startTime.toISOString().slice(0, 10) };
  const folder = renderFolder(template, values);
  const extension = extensionOf(o.format, o.compression);
  const fileKey = (series: string, index: number): string => {
    const key = `${renderKey(template, { ...values, partitions: series, part: index })}${extension}`;
    const problem = keyProblem(key);
    if (problem !== undefined) throw new TakeoutError('INVALID_INPUT', `${origin}: the key ${JSON.stringify(key.slice(0, 200))} is not safe (${problem})`);
    return key;
  };
  const seriesOf =
    partitionIndexes.length === 0
      ? undefined
      : (row: Row): string => {
          let series = '';
          for (let p = 0; p < partitionIndexes.length; p++) {
            const segment = partitionSegment(o.partitionBy[p]!, row[partitionIndexes[p]!] ?? null);
            if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) throw new TakeoutError('INVALID_INPUT', `${origin}: a value of ${o.partitionBy[p]!} makes a partition folder longer than ${MAX_SEGMENT_BYTES} bytes`);
            series += `${p === 0 ? '' : '/'}${segment}`;
          }
          return series;
        };

  let data: LineFiles | BlockFiles;
  if (o.format === 'PARQUET') {
    const codec = PARQUET_CODECS[o.compression];
    data = {
      kind: 'blocks',
      ...(seriesOf ? { seriesOf } : {}),
      fileKey,
      open(): FileBuilder {
        const builder = new ParquetFileBuilder(fileColumns, { codec, rowGroupRows: DEFAULT_ROW_GROUP_ROWS }, origin);
        return {
          add: (rows) => builder.add(keep.length === ctx.columns.length ? rows : rows.map(project)),
          get boundBytes() {
            return builder.boundBytes;
          },
          rowBytes: (row) => builder.rowBytes(keep.length === ctx.columns.length ? row : project(row)),
          settle: () => builder.settle(),
          finish: () => builder.finish(),
        };
      },
    };
  } else {
    const inner: LineEncoder = o.format === 'CSV' ? { extension: 'csv', encode: (row) => encodeCsvRow(row) } : jsonLinesEncoder(fileColumns, origin);
    const header = o.format === 'CSV' && o.header ? encodeHeader(fileColumns.map((c) => c.name)) : undefined;
    data = {
      kind: 'lines',
      ...(seriesOf ? { seriesOf } : {}),
      encoder: { extension: inner.extension, encode: (row) => inner.encode(project(row)) },
      ...(header ? { prologue: () => header } : {}),
      fileKey,
      gzip: o.compression === 'gzip',
    };
  }

  const manifestKey = `${folder}${MANIFEST_FILE}`;
  const redshiftKey = `${folder}${REDSHIFT_MANIFEST_FILE}`;
  const urlFor = (key: string): string | undefined => (ctx.bucket !== null ? `s3://${ctx.bucket}/${ctx.prefix ? `${ctx.prefix}/` : ''}${key}` : undefined);
  return {
    name: 'plain',
    exportFormat: o.format,
    outputPrefix: folder,
    manifestKey,
    data,
    finishFiles(files, job) {
      const redshift: SliceManifest = sliceManifest(files, fileColumns.map((c) => c.name), urlFor, job.tool.version);
      redshift.schema = { elements: fileColumns.map((c) => ({ name: c.name, type: { base: redshiftType(c, o.format) } })) };
      const manifest = plainManifest(ctx, o, files, fileColumns, job.startTime, job.endTime ?? new Date().toISOString());
      return [
        { key: redshiftKey, body: `${JSON.stringify(redshift, null, 2)}\n`, contentType: 'application/json' },
        { key: manifestKey, body: `${JSON.stringify(manifest, null, 2)}\n`, contentType: 'application/json' },
      ];
    },
  };
}

/** `_manifest.json`: what the export is and every file it wrote, in key order per partition. */
function plainManifest(ctx: LayoutContext, o: PlainLayoutOptions, files: readonly DataFile[], columns: readonly RecordColumn[], start: string, end: string): Record<string, unknown> {
  return {
    formatVersion: 1,
    kind: 'takeout-plain-export',
    exportId: ctx.exportId,
    table: ctx.table.id,
    source: ctx.source,
    startTime: start,
    endTime: end,
    format: o.format,
    compression: o.compression,
    ...(o.format === 'CSV' ? { header: o.header } : {}),
    keyTemplate: o.keyTemplate,
    partitionBy: o.partitionBy,
    columns: columns.map((c) => ({ name: c.name, kind: c.kind })),
    files: files.map((f) => ({
      key: f.key,
      ...(o.partitionBy.length > 0 ? { partition: f.series } : {}),
      rows: f.rows,
      bytes: f.bytes,
      sha256: f.sha256,
      ...(f.md5 ? { md5: Buffer.from(f.md5, 'base64').toString('hex') } : {}),
    })),
    totals: { files: files.length, rows: files.reduce((n, f) => n + f.rows, 0), bytes: files.reduce((n, f) => n + f.bytes, 0) },
  };
}

/** A takeout ARN for plain exports (no AWS service writes this layout). */
export function plainArn(table: { displayName?: string; name: string }, o: Pick<PlainLayoutOptions, 'region' | 'accountId'>, exportId: string): string {
  return `arn:takeout:dataset-export:${o.region}:${o.accountId}:table/${table.displayName ?? table.name}/export/${exportId}`;
}
