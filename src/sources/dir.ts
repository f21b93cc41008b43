import { createReadStream } from 'node:fs';
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { readManifestFile } from '../manifests/read.js';
import { parseHeader } from '../formats/csv.js';
import {
  BUCKETS_FILE,
  BUCKET_ID_PATTERN,
  CONFIGURATIONS_DIR,
  CONFIGURATIONS_FILE,
  NAME_PATTERN,
  TABLES_FILE,
  TAKEOUT_MANIFEST_FILE,
  sliceKey,
  tableFromApi,
  tablePath,
} from '../layouts/keboola.js';
import type {
  BucketDescriptor,
  ComponentDescriptor,
  ConfigurationDescriptor,
  ConfigurationRowDescriptor,
  GzipSlice,
  MetadataEntry,
  ProjectDescriptor,
  Source,
  TableBody,
  TableDescriptor,
} from './source.js';

/**
 * A local project folder, in one of two forms:
 * (a) CSV files `<folder>/<bucket>/<table>.csv[.gz]` with a header row, plus an optional `project.yaml`;
 * (b) an existing takeout (it has `buckets.json`): its JSON files and gzipped parts are passed through.
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
      return {
        kind: 'csv',
        stream: openCsvStream(t.file, t.gzip ?? false),
        hasHeader: true,
        origin: shownPath(t.file),
      } satisfies TableBody;
    },
  };
}

/** A file as error messages name it: relative to the working folder when inside it, else absolute. */
function shownPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) ? file : rel;
}

function openCsvStream(file: string, gzip: boolean): Readable {
  const raw = createReadStream(file, { highWaterMark: GUNZIP_CHUNK_BYTES });
  if (!gzip) return raw;
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  raw.on('error', (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
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
  const stream = openCsvStream(file, true);
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
    throw new TakeoutError('INVALID_INPUT', `${label}/${PROJECT_FILE}: ${(error as Error).message.split('\n')[0]}`);
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

async function readCsvFolder(folder: string, label: string): Promise<ProjectDescriptor> {
  const yaml = await readProjectYaml(folder, label);
  const buckets: BucketDescriptor[] = [];
  const tables: DirTable[] = [];
  const entries = (await readdir(folder, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const bucket = bucketFromFolder(entry.name);
    if (!bucket) {
      throw new TakeoutError(
        'INVALID_INPUT',
        `${label}/${entry.name}: not a valid bucket folder name (letters, digits, _ and - only, or a bucket id like in.c-main)`,
      );
    }
    const extra = yaml.buckets?.[bucket.id] ?? {};
    const bucketTables: DirTable[] = [];
    const files = (await readdir(join(folder, entry.name), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const f of files) {
      if (!f.isFile()) continue;
      const match = /^(.*)\.csv(\.gz)?$/.exec(f.name);
      if (!match) continue;
      const name = match[1]!;
      const gzip = match[2] !== undefined;
      const file = join(folder, entry.name, f.name);
      const shown = `${label}/${entry.name}/${f.name}`;
      if (!NAME_PATTERN.test(name)) {
        throw new TakeoutError('INVALID_INPUT', `${shown}: table names may hold letters, digits, _ and - only`);
      }
      const id = `${bucket.id}.${name}`;
      if (tables.some((t) => t.id === id) || bucketTables.some((t) => t.id === id)) {
        throw new TakeoutError('INVALID_INPUT', `${shown}: table ${id} is given twice (.csv and .csv.gz?)`);
      }
      const head = await readHead(file, gzip);
      const header = head.length === 0 ? undefined : parseHeader(head) ?? (head.length < HEADER_PROBE_BYTES ? parseHeader(Buffer.concat([head, Buffer.from('\n')])) : undefined);
      if (!header) throw new TakeoutError('INVALID_INPUT', `${shown}: no header row`);
      const columns = header.columns;
      const seen = new Set<string>();
      for (const column of columns) {
        if (column === '') throw new TakeoutError('INVALID_INPUT', `${shown}: the header has an empty column name`);
        if (seen.has(column)) throw new TakeoutError('INVALID_INPUT', `${shown}: column "${column}" appears twice in the header`);
        seen.add(column);
      }
      const meta = yaml.tables?.[id] ?? {};
      const info = await stat(file);
      const table: DirTable = {
        id,
        bucketId: bucket.id,
        name,
        columns,
        primaryKey: meta.primaryKey ?? [],
        dataSizeBytes: info.size,
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
      bucketTables.push(table);
    }
    buckets.push({
      ...bucket,
      ...(extra.displayName ? { displayName: extra.displayName } : {}),
      ...(extra.description ? { description: extra.description } : {}),
      ...(extra.metadata ? { metadata: extra.metadata } : {}),
    });
    tables.push(...bucketTables);
  }
  return {
    ...(yaml.project?.id !== undefined ? { id: yaml.project.id } : {}),
    ...(yaml.project?.name !== undefined ? { name: yaml.project.name } : {}),
    buckets,
    tables,
    components: toComponents(yaml.components, label),
  };
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
  // No manifest: the slices are read unchecked. One that cannot be read (too large, not JSON) fails the
  // source instead of silently dropping the sizes and checksums it holds.
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
  const tables: TableDescriptor[] = [];
  const slices = new Map<string, GzipSlice[]>();
  for (const t of rawTables as Record<string, unknown>[]) {
    const table = tableFromApi(t);
    tables.push(table);
    slices.set(table.id, await findSlices(folder, table, manifestTables.get(table.id)));
  }

  const components: ComponentDescriptor[] = [];
  for (const c of rawComponents as Record<string, unknown>[]) {
    const configs: ConfigurationDescriptor[] = [];
    for (const cfg of (c.configurations as Record<string, unknown>[] | undefined) ?? []) {
      const id = String(cfg.id);
      const key = `${CONFIGURATIONS_DIR}/${String(c.id)}/${id}.json`;
      const full = (await readJson(join(folder, key), `${label}/${key}`).catch(() => undefined)) as Record<string, unknown> | undefined;
      configs.push({ id, name: String(cfg.name ?? ''), configuration: {}, raw: full ?? cfg });
    }
    components.push({ id: String(c.id), type: String(c.type ?? ''), name: String(c.name ?? ''), configurations: configs, raw: c });
  }
  return { project: { buckets, tables, components }, slices };
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
