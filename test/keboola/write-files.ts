/**
 * Files: `POST files/prepare` with `federationToken` (the upload goes to the stack's file storage with the
 * credentials answered), `PUT files/{id}/refresh` (gcp), and reading an uploaded file back as a table's data:
 * one object, or a sliced file's `<key>manifest` `{"entries":[{"url"}]}` and its slices, each gzipped or not
 * (apiary.apib "Files" / "Prepare File Upload" / "Working with Sliced Files"; storage-api-php-client
 * Client.php uploadFile / uploadSlicedFile).
 */
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { HttpError, kbcTime, readParams, required, truthy } from './http.js';
import type { Json } from './http.js';
import type { StoredFile } from './types.js';
import type { TableData, WriteContext, WriteHandler, WriteRoute } from './write-context.js';

export const FILE_ROUTES: WriteRoute[] = [
  { method: 'POST', pattern: /^files\/prepare$/, endpoint: 'POST files/prepare' },
  { method: 'PUT', pattern: /^files\/(\d+)\/refresh$/, endpoint: 'PUT files/{id}/refresh' },
];

/** Files a stack keeps unless `isPermanent` (apiary.apib "Prepare File Upload": deleted after 15 days). */
const MAX_AGE_DAYS = 15;

/** A file detail's own fields (apiary.apib "File Detail"), before the storage's path and credentials. */
export function fileFields(file: StoredFile, where: { url?: unknown; provider?: unknown; region?: unknown }, creatorToken: Json, defaultTags: string[]): Json {
  return {
    id: file.id,
    created: file.created,
    isPublic: false,
    isSliced: file.sliced,
    isEncrypted: true,
    name: file.name,
    url: where.url,
    provider: where.provider,
    region: where.region,
    sizeBytes: file.sizeBytes,
    tags: file.tags ?? defaultTags,
    maxAgeDays: file.isPermanent ? null : MAX_AGE_DAYS,
    runId: null,
    runIds: [],
    creatorToken,
    fileType: 'csv',
  };
}

function prepared(ctx: WriteContext, file: StoredFile): Json {
  const expires = ctx.credentialsExpiry();
  const detail = ctx.backend.detail(file.key, file.sliced ? `${file.key}manifest` : file.key, expires, false);
  return { ...fileFields(file, detail, ctx.creatorToken, []), ...ctx.backend.uploadParams(file.key, expires, ctx.uploadCredentialsValid()) };
}

export const handleFiles: WriteHandler = async (ctx, endpoint, arg, _url, req) => {
  if (endpoint === 'POST files/prepare') {
    const params = await readParams(req);
    const name = required(params, 'name');
    const sliced = truthy(params.isSliced);
    if (!truthy(params.federationToken)) {
      // Without it aws answers a browser POST policy (apiary.apib); restore and the PHP client always federate.
      throw new HttpError(400, 'The test server prepares uploads with federationToken=true only', 'storage.validation');
    }
    const id = ctx.newFileId();
    const date = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    // The key as apiary.apib's example: exp-180/578/files/2017/02/14/236518630.somefile.csv
    const key = `${ctx.keyPrefix}${ctx.projectId}/files/${date}/${id}.${name}`;
    const tags = Array.isArray(params.tags) ? (params.tags as unknown[]).map(String) : [];
    const file: StoredFile = {
      id,
      created: kbcTime(),
      name,
      key,
      sliced,
      objectKeys: [],
      sizeBytes: Number(params.sizeBytes ?? 0) || 0,
      rows: 0,
      tableId: '',
      tags,
      isPermanent: truthy(params.isPermanent),
      uploaded: true,
    };
    ctx.files.set(id, file);
    return [201, prepared(ctx, file)];
  }
  // PUT files/{id}/refresh: "used to generate new credentials only for files stored in GCS" (apiary.apib).
  const file = ctx.files.get(Number(arg(1)));
  if (!file) throw new HttpError(404, `File ${arg(1)} not found`, 'storage.files.notFound');
  if (ctx.backend.provider !== 'gcp') throw new HttpError(400, 'Refreshing credentials is supported only for files stored in GCS', 'storage.validation');
  return [200, prepared(ctx, file)];
};

export interface CsvOptions {
  delimiter: string;
  enclosure: string;
  escapedBy: string;
}

export function csvOptions(params: Json): CsvOptions {
  const delimiter = typeof params.delimiter === 'string' && params.delimiter !== '' ? params.delimiter : ',';
  const enclosure = typeof params.enclosure === 'string' ? params.enclosure : '"';
  const escapedBy = typeof params.escapedBy === 'string' ? params.escapedBy : '';
  if (enclosure && escapedBy) throw new HttpError(400, 'Specify either enclosure or escapedBy, not both', 'storage.tables.validation');
  return { delimiter, enclosure, escapedBy };
}

const GZIP_MAGIC = [0x1f, 0x8b];

async function objectText(ctx: WriteContext, file: StoredFile, key: string): Promise<string> {
  let body: Buffer;
  try {
    body = await ctx.backend.get(key);
  } catch {
    throw new HttpError(400, `File "${file.id}" was not uploaded: object "${key}" is missing`, 'storage.fileNotUploaded');
  }
  // "all gzipped and sliced files are supported" (apiary.apib import-async): gzip is told by its magic bytes.
  return (body[0] === GZIP_MAGIC[0] && body[1] === GZIP_MAGIC[1] ? gunzipSync(body) : body).toString('utf8');
}

/**
 * Reads an uploaded file as table data. With `columns` every line is data (a sliced file's slices are
 * headerless and need them); without, the first line (of the first slice) is the header.
 */
export async function readDataFile(ctx: WriteContext, fileId: unknown, csv: CsvOptions, columns: string[] | undefined): Promise<TableData> {
  const file = ctx.files.get(Number(fileId));
  if (!file) throw new HttpError(404, `File ${String(fileId)} not found`, 'storage.files.notFound');
  let keys = [file.key];
  if (file.sliced) {
    const manifest = JSON.parse(await objectText(ctx, file, `${file.key}manifest`)) as { entries?: Array<{ url?: string }> };
    keys = (manifest.entries ?? []).map((entry) => {
      const key = ctx.backend.keyOf(String(entry.url ?? ''));
      if (key === undefined) throw new HttpError(400, `Manifest entry "${String(entry.url)}" is not in the project's file storage`, 'storage.validation');
      return key;
    });
  }
  file.objectKeys = keys;
  if (!ctx.importRows && columns) {
    // Each object must be there (a missing slice fails the job as it would with rows); only its bytes are counted.
    let bytes = 0;
    for (const key of keys) {
      try {
        bytes += await ctx.backend.size(key);
      } catch {
        throw new HttpError(400, `File "${file.id}" was not uploaded: object "${key}" is missing`, 'storage.fileNotUploaded');
      }
    }
    file.sizeBytes = bytes;
    return { header: columns, rows: [] };
  }
  const records: string[][] = [];
  for (const key of keys) {
    const text = await objectText(ctx, file, key);
    const parsed = parse(text, {
      delimiter: csv.delimiter,
      quote: csv.enclosure === '' ? false : csv.enclosure,
      escape: csv.escapedBy || csv.enclosure || '"',
      relax_column_count: true,
    }) as string[][];
    records.push(...parsed);
  }
  const header = columns ?? records.shift() ?? [];
  for (const [index, row] of records.entries()) {
    if (row.length !== header.length) {
      throw new HttpError(400, `Row ${index + 1} of file ${file.id} has ${row.length} values, expected ${header.length} (${header.join(', ')})`, 'storage.tables.validation');
    }
  }
  file.rows = records.length;
  return { header, rows: records };
}
