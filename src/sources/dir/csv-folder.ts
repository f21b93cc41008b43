/**
 * A folder of CSV files as a project: `<bucket>/<table>.csv[.gz]`, CSV files at the root, and `project.yaml`.
 * Every entry is taken, refused with an error, or named in `skipped` with the reason.
 */
import { open, realpath, stat } from 'node:fs/promises';
import { TakeoutError, toTakeoutError } from '../../errors.js';
import { parseHeader } from '../../formats/csv/header.js';
import { BUCKET_ID_PATTERN, NAME_PATTERN } from '../../keboola/layout.js';
import { listFolder, openCsvStream, shownName, shownPath, type DirTable, type FoundEntry } from './entries.js';
import { PROJECT_FILE, ignoreMatcher, readProjectYaml, toComponents, type ProjectYaml } from './project-yaml.js';
import type { BucketDescriptor, ProjectDescriptor } from '../../model.js';

/** How much of a file is read to find its header row; a longer header is refused. */
const HEADER_PROBE_BYTES = 1024 * 1024;

/**
 * `<table>.csv` or `<table>.csv.gz`, the extension in any case (`UPPER.CSV`, `t.csv.GZ`): exports from
 * Windows tools often come upper-case, and the case of an extension never means anything else.
 */
const CSV_FILE = /^(.*)\.csv(\.gz)?$/is;

/**
 * CSV files at the folder's root are tables of this bucket: a Keboola table always lives in a bucket,
 * and a flat folder of CSV files is the commonest project folder there is. The name says where they came from.
 */
export const ROOT_BUCKET_ID = 'in.c-default';

async function readHead(file: string, gzip: boolean): Promise<Buffer> {
  if (!gzip) {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(HEADER_PROBE_BYTES);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const { stream } = openCsvStream(file, true);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= HEADER_PROBE_BYTES) break;
    }
  } catch (error) {
    throw new TakeoutError('INVALID_INPUT', `${file}: not a readable gzip file (${(error as Error).message})`);
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

function bucketFromFolder(name: string): { id: string; stage: string; name: string } | undefined {
  if (BUCKET_ID_PATTERN.test(name)) {
    const dot = name.indexOf('.');
    return { id: name, stage: name.slice(0, dot), name: name.slice(dot + 1) };
  }
  if (!NAME_PATTERN.test(name)) return undefined;
  return { id: `in.c-${name}`, stage: 'in', name: `c-${name}` };
}

/**
 * The project-folder layout: `<bucket>/<table>.csv[.gz]` (a bucket folder is a bucket id such as
 * `in.c-main`, or a bare name such as `main` for `in.c-main`), CSV files at the root in ROOT_BUCKET_ID,
 * and `project.yaml`. An entry that looks like a table (a .csv or .csv.gz file) is taken or refused
 * with an error; any other entry is skipped and named in `skipped` with the reason.
 */
export async function readCsvFolder(folder: string, label: string): Promise<ProjectDescriptor> {
  const yaml = await readProjectYaml(folder, label);
  const ignored = ignoreMatcher(yaml, label);
  const root = await realpath(folder);
  const skipped: { id: string; reason: string }[] = [];
  const warnings: string[] = [];
  const skip = (entry: { rel: string }, reason: string): void => {
    skipped.push({ id: shownName(entry.rel), reason });
  };
  const noteOutside = (entry: { rel: string; outside?: string }): void => {
    if (entry.outside !== undefined) {
      warnings.push(`${shownName(`${label}/${entry.rel}`)} is a symlink to ${shownName(entry.outside)}, outside the source folder: it is read all the same`);
    }
  };
  /** Files by bucket id, in the order met. */
  const byBucket = new Map<string, { bucket: { id: string; stage: string; name: string }; files: FoundEntry[] }>();
  const bucketOf = (bucket: { id: string; stage: string; name: string }): FoundEntry[] => {
    let known = byBucket.get(bucket.id);
    if (!known) byBucket.set(bucket.id, (known = { bucket, files: [] }));
    return known.files;
  };

  for (const entry of await listFolder(root, folder, '', label)) {
    if (ignored(entry.rel)) continue;
    if (entry.kind === 'skip') {
      skip(entry, entry.reason);
    } else if (entry.kind === 'file') {
      if (entry.name === PROJECT_FILE) continue;
      if (!CSV_FILE.test(entry.name)) {
        skip(entry, 'not a .csv or .csv.gz file');
        continue;
      }
      noteOutside(entry);
      bucketOf({ id: ROOT_BUCKET_ID, stage: 'in', name: ROOT_BUCKET_ID.slice(3) }).push(entry);
    } else {
      const bucket = bucketFromFolder(entry.name);
      if (!bucket) {
        throw new TakeoutError('INVALID_INPUT', `${shownName(`${label}/${entry.name}`)}: not a valid bucket folder name`, {
          hint: 'a bucket folder is named with letters, digits, _ and - only (main), or is a bucket id (in.c-main); rename it or move it out of the folder',
        });
      }
      noteOutside(entry);
      const files = bucketOf(bucket);
      for (const inner of await listFolder(root, entry.path, entry.rel, label)) {
        if (ignored(inner.rel)) continue;
        if (inner.kind === 'skip') skip(inner, inner.reason);
        else if (inner.kind === 'folder') skip(inner, `a folder inside a bucket folder: tables are ${shownName(entry.name)}/<table>.csv, one level deep`);
        else if (!CSV_FILE.test(inner.name)) skip(inner, 'not a .csv or .csv.gz file');
        else {
          noteOutside(inner);
          files.push(inner);
        }
      }
    }
  }

  const buckets: BucketDescriptor[] = [];
  const tables: DirTable[] = [];
  for (const { bucket, files } of byBucket.values()) {
    const extra = yaml.buckets?.[bucket.id] ?? {};
    for (const f of files) tables.push(await readCsvTable(f, bucket.id, label, yaml, tables));
    buckets.push({
      ...bucket,
      ...(extra.displayName ? { displayName: extra.displayName } : {}),
      ...(extra.description ? { description: extra.description } : {}),
      ...(extra.metadata ? { metadata: extra.metadata } : {}),
    });
  }
  buckets.sort((a, b) => a.id.localeCompare(b.id));
  const components = toComponents(yaml.components, label);
  if (tables.length === 0 && components.length === 0) {
    const named = skipped.slice(0, 5).map((s) => `${s.id} (${s.reason})`);
    throw new TakeoutError('USAGE', `${label}: no table and no configuration found: nothing to take out`, {
      hint:
        'a project folder holds CSV files with a header row, in bucket folders (in.c-main/customers.csv) or at its root' +
        (named.length ? `; not taken: ${named.join(', ')}${skipped.length > named.length ? ` and ${skipped.length - named.length} more` : ''}` : ''),
    });
  }
  return {
    ...(yaml.project?.id !== undefined ? { id: yaml.project.id } : {}),
    ...(yaml.project?.name !== undefined ? { name: yaml.project.name } : {}),
    buckets,
    tables,
    components,
    ...(skipped.length ? { skipped } : {}),
    ...(warnings.length ? { warnings } : {}),
  };
}

/** One CSV file as a table: its name checked, its header read. */
async function readCsvTable(
  f: FoundEntry,
  bucketId: string,
  label: string,
  yaml: ProjectYaml,
  known: readonly DirTable[],
): Promise<DirTable> {
  const match = CSV_FILE.exec(f.name)!;
  const name = match[1]!;
  const gzip = match[2] !== undefined;
  const file = f.path;
  const shown = shownName(`${label}/${f.rel}`);
  if (!NAME_PATTERN.test(name)) {
    throw new TakeoutError('INVALID_INPUT', `${shown}: ${shownName(name)} cannot be a table name: letters, digits, _ and - only`, {
      hint: 'rename the file, or move it out of the folder',
    });
  }
  const id = `${bucketId}.${name}`;
  const twin = known.find((t) => t.id === id);
  if (twin) {
    throw new TakeoutError('INVALID_INPUT', `${shown}: table ${id} is given twice (also ${shownPath(twin.file!)})`, {
      hint: 'keep one of the two files (.csv and .csv.gz, or a bucket folder named both main and in.c-main)',
    });
  }
  let head: Buffer;
  try {
    head = await readHead(file, gzip);
  } catch (error) {
    throw toTakeoutError(error, shown);
  }
  const header = head.length === 0 ? undefined : parseHeader(head) ?? (head.length < HEADER_PROBE_BYTES ? parseHeader(Buffer.concat([head, Buffer.from('\n')])) : undefined);
  if (!header) throw new TakeoutError('INVALID_INPUT', `${shown}: no header row`);
  const columns = header.columns;
  const seen = new Set<string>();
  // The header is line 1, after a BOM if there is one: named as the scanners name the place of a row's error.
  const headerAt = `${shown}:1 (byte ${head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0})`;
  for (const column of columns) {
    if (column === '') throw new TakeoutError('INVALID_INPUT', `${headerAt}: the header has an empty column name`);
    if (seen.has(column)) throw new TakeoutError('INVALID_INPUT', `${headerAt}: column "${column}" appears twice in the header`);
    seen.add(column);
  }
  const meta = yaml.tables?.[id] ?? {};
  const info = await stat(file);
  const table: DirTable = {
    id,
    bucketId,
    name,
    columns,
    primaryKey: meta.primaryKey ?? [],
    dataSizeBytes: info.size,
    dataSizeIsRead: true,
    created: info.birthtime.toISOString(),
    lastChangeDate: info.mtime.toISOString(),
    file,
    gzip,
    ...(meta.description ? { description: meta.description } : {}),
    ...(meta.displayName ? { displayName: meta.displayName } : {}),
    ...(meta.metadata ? { metadata: meta.metadata } : {}),
    ...(meta.columnMetadata ? { columnMetadata: meta.columnMetadata } : {}),
  };
  for (const key of table.primaryKey) {
    if (!seen.has(key)) throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: primary key column "${key}" is not in ${id}`);
  }
  return table;
}
