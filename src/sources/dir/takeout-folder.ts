/**
 * An existing takeout as a project (it has `buckets.json`): its JSON files and gzipped parts passed through,
 * the parts found by the takeout manifest or by listing, and every entry no table takes named in `skipped`.
 */
import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TakeoutError, toTakeoutError } from '../../errors.js';
import { readManifestFile } from '../../manifests/read.js';
import { BRANCH_METADATA_FILE, BUCKETS_FILE, FILES_DIR, CONFIGURATIONS_DIR, CONFIGURATIONS_FILE, NOTIFICATIONS_FILE, PERMANENT_FILES_FILE, TABLES_FILE, TRIGGERS_FILE, configurationMetadataKey, sliceKey, stageOf, tableFromApi, tablePath } from '../../keboola/layout.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../../manifests/takeout.js';
import { JOURNAL_FILE } from '../../manifests/journal.js';
import { listFolder, shownName, type DirTable, type FoundEntry } from './entries.js';
import type { KeboolaProjectExtras, PermanentFileDescriptor, BucketDescriptor, ComponentDescriptor, ConfigurationDescriptor, GzipSlice, ProjectDescriptor, TableDescriptor } from '../../model.js';

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
const TAKEOUT_ROOT_ENTRIES = new Set([
  BUCKETS_FILE, TABLES_FILE, CONFIGURATIONS_FILE, CONFIGURATIONS_DIR, TAKEOUT_MANIFEST_FILE, MANIFESTS_DIR, JOURNAL_FILE,
  BRANCH_METADATA_FILE, TRIGGERS_FILE, NOTIFICATIONS_FILE,
]);

/** A list the restore engine reads (triggers.json, …) passed through as it is; absent (older takeouts) is empty. */
async function optionalList(folder: string, key: string, label: string): Promise<unknown[]> {
  const value = await readJson(join(folder, key), `${label}/${key}`).catch((error: unknown) => {
    if (error instanceof TakeoutError && error.code === 'NOT_FOUND') return [];
    throw error;
  });
  if (!Array.isArray(value)) throw new TakeoutError('INTEGRITY', `${label}/${key}: expected a JSON list`);
  return value;
}

/** Storage API file ids are numbers; anything else in permanentFiles.json is not read as a path. */
const FILE_ID_PATTERN = /^\d+$/;

/**
 * permanentFiles.json's entries whose `files/<id>` is in the folder, each read from there; one without
 * its file is left out with a warning (a restore would fail on it).
 */
async function permanentFilesOf(folder: string, label: string, claimed: Set<string>, warnings: string[]): Promise<PermanentFileDescriptor[]> {
  const taken: PermanentFileDescriptor[] = [];
  for (const entry of await optionalList(folder, PERMANENT_FILES_FILE, label)) {
    const { id, name, tags } = (entry ?? {}) as { id?: unknown; name?: unknown; tags?: unknown };
    const key = `${FILES_DIR}/${String(id)}`;
    const file = join(folder, FILES_DIR, String(id));
    const size = FILE_ID_PATTERN.test(String(id)) ? await stat(file).then((i) => (i.isFile() ? i.size : undefined), () => undefined) : undefined;
    if (size === undefined) {
      warnings.push(`${label}/${PERMANENT_FILES_FILE}: permanent file ${String(id)} has no ${key}: left out`);
      continue;
    }
    claimed.add(key);
    taken.push({ id: id as string | number, name: String(name), tags: Array.isArray(tags) ? tags : [], sizeBytes: size, open: async () => createReadStream(file) });
  }
  claimed.add(PERMANENT_FILES_FILE);
  return taken;
}

/** Branch metadata, triggers, notifications and permanent files passed through; absent ones (older takeouts) are empty. */
async function takeoutExtras(folder: string, label: string, claimed: Set<string>, warnings: string[]): Promise<KeboolaProjectExtras> {
  return {
    branchMetadata: await optionalList(folder, BRANCH_METADATA_FILE, label),
    triggers: await optionalList(folder, TRIGGERS_FILE, label),
    notifications: await optionalList(folder, NOTIFICATIONS_FILE, label),
    permanentFiles: await permanentFilesOf(folder, label, claimed, warnings),
  };
}

export async function readTakeoutFolder(
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
      const metadataKey = configurationMetadataKey(String(c.id), id);
      const metadata = await optionalList(folder, metadataKey, label);
      if (metadata.length > 0) claimed.add(metadataKey);
      configs.push({ id, name: String(cfg.name ?? ''), configuration: {}, raw: full ?? cfg, ...(metadata.length > 0 ? { metadata } : {}) });
    }
    components.push({ id: String(c.id), type: String(c.type ?? ''), name: String(c.name ?? ''), configurations: configs, raw: c });
  }
  const keboola = await takeoutExtras(folder, label, claimed, warnings);
  const stages = new Set([...buckets.map((b) => b.stage), ...tables.map((t) => stageOf(t.bucketId)), 'in', 'out', 'sys']);
  const skipped = await unclaimedEntries(folder, label, stages, claimed);
  return {
    project: { buckets, tables, components, keboola, ...(skipped.length ? { skipped } : {}), ...(warnings.length ? { warnings } : {}) },
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
    else if (TAKEOUT_ROOT_ENTRIES.has(entry.name) || claimed.has(entry.rel)) {
      if (entry.name === CONFIGURATIONS_DIR && entry.kind === 'folder') await walk(entry, 2, 'a configuration that configurations.json does not list');
    } else if (entry.name === FILES_DIR && entry.kind === 'folder') {
      await walk(entry, 1, 'a file permanentFiles.json does not list');
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
