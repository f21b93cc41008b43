import { createReadStream } from 'node:fs';
import type { Dirent } from 'node:fs';
import { open, readFile, readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import picomatch from 'picomatch';
import { parse as parseYaml } from 'yaml';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { readManifestFile } from '../manifests/read.js';
import { parseHeader } from '../formats/csv/header.js';
import { BUCKETS_FILE, BUCKET_ID_PATTERN, CONFIGURATIONS_DIR, CONFIGURATIONS_FILE, NAME_PATTERN, TABLES_FILE, sliceKey, stageOf, tableFromApi, tablePath } from '../keboola/layout.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import { JOURNAL_FILE } from '../manifests/journal.js';
import type { Source } from './source.js';
import type { BucketDescriptor, ComponentDescriptor, ConfigurationDescriptor, ConfigurationRowDescriptor, GzipSlice, MetadataEntry, ProjectDescriptor, TableBody, TableDescriptor } from '../model.js';

/**
 * A local project folder, in one of two forms:
 * (a) CSV files `<folder>/<bucket>/<table>.csv[.gz]` (any case of the extension) with a header row, CSV
 *     files at the root as tables of ROOT_BUCKET_ID, plus an optional `project.yaml`;
 * (b) an existing takeout (it has `buckets.json`): its JSON files and gzipped parts are passed through.
 * Either way every entry is taken, refused with an error, or named in `skipped` with the reason.
 */

/** How much of a file is read to find its header row; a longer header is refused. */
const HEADER_PROBE_BYTES = 1024 * 1024;
/** gunzip with 1 MiB output chunks runs about twice as fast as with the default 16 KiB. */
const GUNZIP_CHUNK_BYTES = 1 << 20;
const PROJECT_FILE = 'project.yaml';

interface DirTable extends TableDescriptor {
  file?: string;
  gzip?: boolean;
}

export function createDirSource(folder: string, label = folder): Source {
  let form: 'csv' | 'takeout' | undefined;
  let takeoutSlices: Map<string, GzipSlice[]> | undefined;

  return {
    description: `dir:${label}`,
    localPath: resolve(folder),

    async project() {
      const info = await stat(folder).catch((error: unknown) => {
        throw (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? new TakeoutError('NOT_FOUND', `source folder ${label} does not exist`)
          : toTakeoutError(error, `source folder ${label}`);
      });
      if (!info.isDirectory()) throw new TakeoutError('USAGE', `source ${label} is not a folder`);
      const isTakeout = await stat(join(folder, BUCKETS_FILE)).then(
        () => true,
        () => false,
      );
      form = isTakeout ? 'takeout' : 'csv';
      if (isTakeout) {
        const result = await readTakeoutFolder(folder, label);
        takeoutSlices = result.slices;
        return result.project;
      }
      return readCsvFolder(folder, label);
    },

    async openTable(table, open) {
      if (open.query && Object.values(open.query).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0))) {
        throw new TakeoutError('USAGE', `${label}: a folder source exports whole tables; --columns, --where, --changed-*, --limit and --order-by need a database source`);
      }
      const t = table as DirTable;
      if (form === 'takeout' && !t.file) {
        return { kind: 'gzip-slices', slices: takeoutSlices?.get(table.id) ?? [] };
      }
      if (!t.file) throw new TakeoutError('FAILED', `table ${table.id} has no file`);
      const opened = openCsvStream(t.file, t.gzip ?? false);
      return {
        kind: 'csv',
        stream: opened.stream,
        hasHeader: true,
        origin: shownPath(t.file),
        ...(opened.sourceBytes ? { sourceBytes: opened.sourceBytes } : {}),
      } satisfies TableBody;
    },
  };
}

/** A file as error messages name it: relative to the working folder when inside it, else absolute. */
function shownPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? file : rel;
}

/** A table file as CSV bytes; a gzipped one also counts its compressed bytes read (its dataSizeBytes is the file's size). */
function openCsvStream(file: string, gzip: boolean): { stream: Readable; sourceBytes?: () => number } {
  const raw = createReadStream(file, { highWaterMark: GUNZIP_CHUNK_BYTES });
  if (!gzip) return { stream: raw };
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  raw.on('error', (error) => gunzip.destroy(error));
  return { stream: raw.pipe(gunzip), sourceBytes: () => raw.bytesRead };
}

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

interface ProjectYaml {
  project?: { id?: string | number; name?: string };
  /** Entries of the folder that are not part of the project (README.md, docs/): globs on their path in the folder. */
  ignore?: string[];
  buckets?: Record<string, Partial<BucketDescriptor>>;
  tables?: Record<string, { primaryKey?: string[]; description?: string; displayName?: string; metadata?: MetadataEntry[]; columnMetadata?: Record<string, MetadataEntry[]> }>;
  components?: YamlComponent[];
}

interface YamlComponent {
  id: string;
  type: string;
  name: string;
  configurations?: (Omit<ConfigurationDescriptor, 'rows'> & { rows?: ConfigurationRowDescriptor[] })[];
  [extra: string]: unknown;
}

async function readProjectYaml(folder: string, label: string): Promise<ProjectYaml> {
  let text: string;
  try {
    text = await readFile(join(folder, PROJECT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw toTakeoutError(error, `${label}/${PROJECT_FILE}`);
  }
  try {
    const parsed: unknown = parseYaml(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a mapping at the top level');
    return parsed as ProjectYaml;
  } catch (error) {
    // `file:line:column: message`, as for --config files: the parser's message without its own position.
    const at = (error as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    const message = (error as Error).message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}${at ? `:${at.line}:${at.col}: not valid YAML` : ''}: ${message}`);
  }
}

function toComponents(list: YamlComponent[] | undefined, label: string): ComponentDescriptor[] {
  return (list ?? []).map((c, i) => {
    if (!c || typeof c.id !== 'string' || typeof c.type !== 'string' || typeof c.name !== 'string') {
      throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: component #${i + 1} needs id, type and name`);
    }
    const { id, type, name, configurations, ...extra } = c;
    return {
      id,
      type,
      name,
      extra,
      configurations: (configurations ?? []).map((config) => {
        if (config.id === undefined || config.id === null) {
          throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: a configuration of ${id} has no id`);
        }
        return {
          ...config,
          id: String(config.id),
          name: config.name ?? '',
          configuration: config.configuration ?? {},
          rows: (config.rows ?? []).map((row) => ({ ...row, id: String(row.id), configuration: row.configuration ?? {} })),
        };
      }),
    };
  });
}

/** An entry of the folder as it is read: what a symlink points at is resolved first. */
interface FoundEntry {
  kind: 'file' | 'folder';
  path: string;
  /** The path in the source folder, `/`-separated. */
  rel: string;
  name: string;
  /** Where a symlink leads when that is outside the source folder. */
  outside?: string;
}
type Entry = FoundEntry | { kind: 'skip'; rel: string; reason: string };

/** A name as it can be shown on one line: quoted when it holds control characters (a newline would end the line). */
export function shownName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(name) ? JSON.stringify(name) : name;
}

/**
 * `<table>.csv` or `<table>.csv.gz`, the extension in any case (`UPPER.CSV`, `t.csv.GZ`): exports from
 * Windows tools often come upper-case, and the case of an extension never means anything else.
 */
const CSV_FILE = /^(.*)\.csv(\.gz)?$/is;

const isInside = (root: string, target: string): boolean => {
  const rel = relative(root, target);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
};

/**
 * What one directory entry is. A symlink is followed: to a file or a folder it is read like one (and
 * a target outside the source folder is noted, since the takeout then holds data from elsewhere); a
 * loop, a dangling link or a link to the folder itself or a parent of it is skipped with that reason.
 */
async function classify(root: string, parent: string, relParent: string, dirent: Dirent): Promise<Entry> {
  const path = join(parent, dirent.name);
  const rel = relParent ? `${relParent}/${dirent.name}` : dirent.name;
  if (dirent.name.startsWith('.')) return { kind: 'skip', rel, reason: 'hidden (its name starts with a dot)' };
  if (dirent.isSymbolicLink()) {
    let target: string;
    try {
      target = await realpath(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') return { kind: 'skip', rel, reason: 'a symlink loop' };
      if (code === 'ENOENT') return { kind: 'skip', rel, reason: 'a broken symlink (its target does not exist)' };
      throw toTakeoutError(error, `symlink ${shownName(rel)}`);
    }
    const info = await stat(target);
    if (info.isDirectory() && isInside(target, root)) {
      return { kind: 'skip', rel, reason: 'a symlink to the source folder itself or one of its parents (a loop)' };
    }
    const outside = isInside(root, target) ? {} : { outside: target };
    if (info.isFile()) return { kind: 'file', path, rel, name: dirent.name, ...outside };
    if (info.isDirectory()) return { kind: 'folder', path, rel, name: dirent.name, ...outside };
    return { kind: 'skip', rel, reason: 'a symlink to something that is neither a file nor a folder' };
  }
  if (dirent.isFile()) return { kind: 'file', path, rel, name: dirent.name };
  if (dirent.isDirectory()) return { kind: 'folder', path, rel, name: dirent.name };
  return { kind: 'skip', rel, reason: 'neither a file nor a folder (a FIFO, socket or device)' };
}

async function listFolder(root: string, folder: string, rel: string, label: string): Promise<Entry[]> {
  let dirents: Dirent[];
  try {
    dirents = await readdir(folder, { withFileTypes: true });
  } catch (error) {
    throw toTakeoutError(error, `${label}${rel ? `/${shownName(rel)}` : ''}: cannot list the folder`);
  }
  dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const entries: Entry[] = [];
  for (const dirent of dirents) entries.push(await classify(root, folder, rel, dirent));
  return entries;
}

/**
 * CSV files at the folder's root are tables of this bucket: a Keboola table always lives in a bucket,
 * and a flat folder of CSV files is the commonest project folder there is. The name says where they came from.
 */
export const ROOT_BUCKET_ID = 'in.c-default';

/**
 * The project-folder layout: `<bucket>/<table>.csv[.gz]` (a bucket folder is a bucket id such as
 * `in.c-main`, or a bare name such as `main` for `in.c-main`), CSV files at the root in ROOT_BUCKET_ID,
 * and `project.yaml`. An entry that looks like a table (a .csv or .csv.gz file) is taken or refused
 * with an error; any other entry is skipped and named in `skipped` with the reason.
 */
/** project.yaml's `ignore` globs as one test on a path in the folder; such entries are neither taken nor named. */
function ignoreMatcher(yaml: ProjectYaml, label: string): (rel: string) => boolean {
  const patterns = yaml.ignore ?? [];
  if (!Array.isArray(patterns) || patterns.some((p) => typeof p !== 'string' || p === '')) {
    throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: ignore must be a list of globs (README.md, docs/**)`);
  }
  const tests = patterns.map((p) => picomatch(p.replace(/\/+$/, ''), { dot: true }));
  return (rel) => tests.some((test) => test(rel));
}

async function readCsvFolder(folder: string, label: string): Promise<ProjectDescriptor> {
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

/** A takeout's JSON files (manifest, tables, buckets), read with the manifests' size cap. */
async function readJson(file: string, label: string): Promise<unknown> {
  const text = await readManifestFile(file, label);
  if (text === undefined) throw new TakeoutError('NOT_FOUND', `${label} does not exist`);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new TakeoutError('INTEGRITY', `${label}: not valid JSON (${(error as Error).message})`);
  }
}

interface ManifestTable {
  id: string;
  slices?: { key: string; bytes: number; rows: number; sha256: string }[];
}

/** What a takeout folder holds at its root beside the stage folders: read, or written by takeout itself. */
const TAKEOUT_ROOT_ENTRIES = new Set([BUCKETS_FILE, TABLES_FILE, CONFIGURATIONS_FILE, CONFIGURATIONS_DIR, TAKEOUT_MANIFEST_FILE, MANIFESTS_DIR, JOURNAL_FILE]);

async function readTakeoutFolder(
  folder: string,
  label: string,
): Promise<{ project: ProjectDescriptor; slices: Map<string, GzipSlice[]> }> {
  const rawBuckets = await readJson(join(folder, BUCKETS_FILE), `${label}/${BUCKETS_FILE}`);
  const rawTables = await readJson(join(folder, TABLES_FILE), `${label}/${TABLES_FILE}`);
  if (!Array.isArray(rawBuckets) || !Array.isArray(rawTables)) {
    throw new TakeoutError('INTEGRITY', `${label}: buckets.json and tables.json must be arrays`);
  }
  const rawComponents = await readJson(join(folder, CONFIGURATIONS_FILE), `${label}/${CONFIGURATIONS_FILE}`).catch(
    (error: unknown) => {
      if (error instanceof TakeoutError && error.code === 'NOT_FOUND') return [];
      throw error;
    },
  );
  const warnings: string[] = [];
  // No manifest (Keboola's own takeouts have none): the parts are found by listing, unchecked. One that
  // cannot be read (too large, not JSON) fails the source instead of silently dropping the sizes and
  // checksums it holds.
  const manifest = (await readJson(join(folder, TAKEOUT_MANIFEST_FILE), `${label}/${TAKEOUT_MANIFEST_FILE}`).catch((error: unknown) => {
    if (error instanceof TakeoutError && error.code === 'NOT_FOUND') return undefined;
    throw error;
  })) as { tables?: ManifestTable[] } | undefined;
  const manifestTables = new Map((manifest?.tables ?? []).map((t) => [t.id, t]));

  const buckets: BucketDescriptor[] = rawBuckets.map((b: Record<string, unknown>) => ({
    id: String(b.id),
    stage: String(b.stage),
    name: String(b.name),
    raw: b,
  }));
  const tables: DirTable[] = [];
  const slices = new Map<string, GzipSlice[]>();
  /** Every file of the folder that a table takes, to name the ones none does. */
  const claimed = new Set<string>();
  for (const t of rawTables as Record<string, unknown>[]) {
    const table: DirTable = tableFromApi(t);
    const found = await findSlices(folder, table, manifestTables.get(table.id));
    for (const slice of found) claimed.add(slice.origin);
    if (found.length === 0) {
      // Keboola writes a table exported unsliced as one gzip with its header (design: "non-sliced export").
      const single = `${tablePath(table)}.csv.gz`;
      if (await stat(join(folder, single)).then((i) => i.isFile(), () => false)) {
        table.file = join(folder, single);
        table.gzip = true;
        claimed.add(single);
      }
    }
    tables.push(table);
    slices.set(table.id, found);
  }

  const components: ComponentDescriptor[] = [];
  for (const c of rawComponents as Record<string, unknown>[]) {
    const configs: ConfigurationDescriptor[] = [];
    for (const cfg of (c.configurations as Record<string, unknown>[] | undefined) ?? []) {
      const id = String(cfg.id);
      const key = `${CONFIGURATIONS_DIR}/${String(c.id)}/${id}.json`;
      claimed.add(key);
      const full = (await readJson(join(folder, key), `${label}/${key}`).catch((error: unknown) => {
        warnings.push(`${toTakeoutError(error).message}: configuration ${id} of ${String(c.id)} is taken as configurations.json lists it, without rows, state and versions`);
        return undefined;
      })) as Record<string, unknown> | undefined;
      configs.push({ id, name: String(cfg.name ?? ''), configuration: {}, raw: full ?? cfg });
    }
    components.push({ id: String(c.id), type: String(c.type ?? ''), name: String(c.name ?? ''), configurations: configs, raw: c });
  }
  const stages = new Set([...buckets.map((b) => b.stage), ...tables.map((t) => stageOf(t.bucketId)), 'in', 'out', 'sys']);
  const skipped = await unclaimedEntries(folder, label, stages, claimed);
  return {
    project: { buckets, tables, components, ...(skipped.length ? { skipped } : {}), ...(warnings.length ? { warnings } : {}) },
    slices,
  };
}

/**
 * The entries of a takeout folder that no table or configuration takes, each with why: a stray part,
 * a file in a stage folder no table claims, the files Keboola's newer takeouts add (triggers.json,
 * files/) that this reader does not take, hidden entries.
 */
async function unclaimedEntries(folder: string, label: string, stages: Set<string>, claimed: Set<string>): Promise<{ id: string; reason: string }[]> {
  const root = await realpath(folder);
  const skipped: { id: string; reason: string }[] = [];
  const skip = (entry: { rel: string }, reason: string): void => {
    skipped.push({ id: shownName(entry.rel), reason });
  };
  const walk = async (entry: FoundEntry, depth: number, unclaimed: string): Promise<void> => {
    for (const inner of await listFolder(root, entry.path, entry.rel, label)) {
      if (inner.kind === 'skip') skip(inner, inner.reason);
      else if (inner.kind === 'folder' && depth > 1) await walk(inner, depth - 1, unclaimed);
      else if (inner.kind === 'folder') skip(inner, 'a folder where the takeout layout has files');
      else if (!claimed.has(inner.rel)) skip(inner, unclaimed);
    }
  };
  for (const entry of await listFolder(root, folder, '', label)) {
    if (entry.kind === 'skip') skip(entry, entry.reason);
    else if (TAKEOUT_ROOT_ENTRIES.has(entry.name)) {
      if (entry.name === CONFIGURATIONS_DIR && entry.kind === 'folder') await walk(entry, 2, 'a configuration that configurations.json does not list');
    } else if (stages.has(entry.name) && entry.kind === 'folder') await walk(entry, 2, 'no table in tables.json has this file');
    else skip(entry, 'not part of what takeout reads from a takeout (buckets, tables, their data and configurations)');
  }
  return skipped;
}

async function findSlices(folder: string, table: TableDescriptor, fromManifest: ManifestTable | undefined): Promise<GzipSlice[]> {
  const sliceOf = (key: string, known?: { bytes: number; rows: number; sha256: string }): GzipSlice => ({
    origin: key,
    ...(known ? { bytes: known.bytes, rows: known.rows, sha256: known.sha256 } : {}),
    open: () => Promise.resolve(createReadStream(join(folder, key))),
  });
  if (fromManifest?.slices) return fromManifest.slices.map((s) => sliceOf(s.key, s));
  const base = tablePath(table);
  const dir = join(folder, base, '..');
  const prefix = `${table.name}.part_`;
  const names = await readdir(dir).catch(() => [] as string[]);
  const parts = names
    .map((n) => (n.startsWith(prefix) && n.endsWith('.csv.gz') ? Number(n.slice(prefix.length, -'.csv.gz'.length)) : NaN))
    .filter((n) => Number.isInteger(n) && n >= 0)
    .sort((a, b) => a - b);
  return parts.map((n) => sliceOf(sliceKey(table, n)));
}
