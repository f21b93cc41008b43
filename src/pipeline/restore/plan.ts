import { TakeoutError } from '../../errors.js';
import type { Readable } from 'node:stream';
import { BUCKETS_FILE, CONFIGURATIONS_DIR, FILES_DIR, TABLES_FILE, tableFromApi } from '../../keboola/layout.js';
import { ListedBytesCheck } from '../../manifests/listed-bytes.js';
import { parseManifestJson, readListedText } from '../../manifests/read.js';
import { TAKEOUT_MANIFEST_FILE, type ManifestTable, type TakeoutManifest } from '../../manifests/takeout.js';
import { whereIs, type Store } from '../../stores/store.js';
import { restoreColumns, restoresExtras, type RestoreTable, type Target, type TakeoutMetadata } from '../../targets/target.js';
import type { Emit, RestorePlan, RestorePlanTable } from '../events.js';
import { selectTables } from '../run/select.js';

/**
 * Phase 1 of `takeout restore`: the takeout's layout files read and checked against its manifest (size and
 * sha256), the tables selected (--include/--exclude as run), and the target asked what it already holds.
 * A table already there is a conflict (exit 9, nothing changed), except with --resume when it holds exactly
 * the rows the takeout has (a database table is loaded in one transaction, so it is there whole or not at
 * all), or when the target says an interrupted restore of this takeout left it partial: then it is replaced.
 */
export interface RestoreOptions {
  store: Store;
  /** The TAKEOUT argument as given, for messages. */
  source: string;
  /** Its takeout manifest, status complete (the command checks it). */
  manifest: TakeoutManifest;
  target: Target;
  include: readonly string[];
  exclude: readonly string[];
  structureOnly: boolean;
  dataOnly: boolean;
  dryRun: boolean;
  resume: boolean;
  signal?: AbortSignal;
  emit: Emit;
}

export interface PlannedTable {
  table: RestoreTable;
  manifest: ManifestTable;
  location: string;
  raw: Record<string, unknown>;
  action: RestorePlanTable['action'];
  /** Why an omitted table is not restored. */
  reason?: string;
}

export interface RestorePlanState {
  tables: PlannedTable[];
  metadata: TakeoutMetadata;
  /** The target holds this takeout's `_takeout` record already (a --resume after the metadata landed). */
  metadataDone: boolean;
  plan: RestorePlan;
}

/** A layout file of the takeout, read whole and checked against the size and sha256 its manifest lists. */
async function readLayoutFile(options: RestoreOptions, key: string): Promise<string> {
  const listed = options.manifest.files.find((f) => f.key === key);
  if (!listed) throw new TakeoutError('INTEGRITY', `${options.source}: ${TAKEOUT_MANIFEST_FILE} does not list ${key}`, { hint: 'check the takeout with takeout verify' });
  return readListedText(options.store, listed);
}

/** `files/<id>` streamed from the takeout through its manifest's size and sha256 check (the stream fails otherwise). */
async function openListed(options: RestoreOptions, key: string): Promise<Readable> {
  const listed = options.manifest.files.find((f) => f.key === key);
  if (!listed) throw new TakeoutError('INTEGRITY', `${options.source}: ${TAKEOUT_MANIFEST_FILE} does not list ${key}`, { hint: 'check the takeout with takeout verify' });
  const body = await options.store.get(key);
  const check = new ListedBytesCheck(listed, whereIs(options.store, key), () => undefined);
  body.on('error', (error) => check.destroy(error));
  return body.pipe(check);
}

/**
 * A permanent file's bytes are not text and may be large: streamed through their check here, before anything is
 * written, so a corrupt one is refused before the restore starts, as a corrupt layout file is.
 */
async function checkListed(options: RestoreOptions, key: string): Promise<void> {
  const stream = await openListed(options, key);
  for await (const _chunk of stream) {
    // Read through: the check fails the stream at its end when size or sha256 differ.
  }
}

function records(value: unknown, origin: string): Record<string, unknown>[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'object' || v === null)) throw new TakeoutError('INTEGRITY', `${origin}: not a list of objects`);
  return value as Record<string, unknown>[];
}

export async function planRestore(options: RestoreOptions): Promise<RestorePlanState> {
  const { manifest, target } = options;
  const files: { key: string; text: string }[] = [];
  for (const f of manifest.files) {
    if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', 'interrupted');
    if (f.key.startsWith(`${FILES_DIR}/`)) await checkListed(options, f.key);
    else files.push({ key: f.key, text: await readLayoutFile(options, f.key) });
  }
  const text = (key: string): string => {
    const found = files.find((f) => f.key === key);
    if (!found) throw new TakeoutError('INTEGRITY', `${options.source}: ${TAKEOUT_MANIFEST_FILE} does not list ${key}`, { hint: 'a takeout of a Keboola project (takeout run) has buckets.json and tables.json' });
    return found.text;
  };
  const buckets = records(parseManifestJson(text(BUCKETS_FILE), BUCKETS_FILE), BUCKETS_FILE);
  const rawTables = records(parseManifestJson(text(TABLES_FILE), TABLES_FILE), TABLES_FILE);
  const configurations = files
    .filter((f) => f.key.startsWith(`${CONFIGURATIONS_DIR}/`) && f.key.endsWith('.json'))
    .map((f) => {
      const [, componentId = '', name = ''] = f.key.split('/');
      return { componentId, configurationId: name.slice(0, -'.json'.length), body: parseManifestJson(f.text, f.key) };
    });

  const inManifest = new Map(manifest.tables.map((t) => [t.id, t]));
  const descriptors = rawTables.map(tableFromApi).filter((t) => inManifest.has(t.id));
  const selected = selectTables(descriptors, options.include, options.exclude);
  if (selected.length === 0) throw new TakeoutError('USAGE', `${options.source}: no table to restore`, { hint: 'check --include and --exclude; --dry-run lists the tables' });
  const planned = selected.map((d) => {
    const m = inManifest.get(d.id)!;
    const raw = d.raw as Record<string, unknown>;
    const table: RestoreTable = {
      id: d.id,
      bucketId: d.bucketId,
      name: d.name,
      columns: restoreColumns(m.columns.length > 0 ? m.columns : d.columns, raw.columnMetadata),
      primaryKey: m.primaryKey,
      rows: options.structureOnly ? 0 : m.rows,
    };
    return { table, manifest: m, raw, location: target.locate(table) };
  });

  // SQLite and DuckDB compare identifiers without case ("Orders" is "orders"): two tables must not meet in one name.
  const names = new Map<string, string>();
  for (const p of planned) {
    const other = names.get(p.location.toLowerCase());
    if (other !== undefined) throw new TakeoutError('USAGE', `${target.description}: ${other} and ${p.table.id} would both be ${p.location}`, { hint: 'restore one of them with --exclude, or into another target' });
    names.set(p.location.toLowerCase(), p.table.id);
  }
  const held = await target.inspect(planned.map((p) => p.table), { runId: manifest.runId, resume: options.resume, buckets, dataOnly: options.dataOnly });
  const tables: PlannedTable[] = planned.map((p, i) => {
    const state = held.tables[i] ?? { exists: false };
    if (!state.exists && state.omitted) return { ...p, action: 'omit', reason: state.omitted };
    if (options.dataOnly) {
      if (!state.exists) throw new TakeoutError('NOT_FOUND', `${target.description}: ${p.location} does not exist, and --data-only fills tables that do`, { hint: 'restore without --data-only to create them' });
      if (state.rows === p.table.rows && options.resume) return { ...p, action: 'skip' };
      if (state.rows > 0) throw new TakeoutError('EXISTS', `${target.description}: ${p.location} already holds ${state.rows} rows`, { hint: 'restore into an empty table or another target; nothing was changed' });
      return { ...p, action: 'fill' };
    }
    if (!state.exists) return { ...p, action: 'create' };
    if (options.resume && state.rows === p.table.rows) return { ...p, action: 'skip' };
    if (options.resume && state.partial) return { ...p, action: 'replace' };
    const why = options.resume ? `holds ${state.rows} rows, not the takeout's ${p.table.rows}` : 'already exists';
    throw new TakeoutError('EXISTS', `${target.description}: ${p.location} (${p.table.id}) ${why}`, {
      hint: options.resume ? 'drop that table and restore with --resume again' : 'restore into an empty target; after an interrupted restore, --resume goes on; nothing was changed',
    });
  });
  const metadataDone = held.record !== undefined && held.record.runId === manifest.runId && options.resume;
  if (held.record && !metadataDone && !options.dataOnly) {
    throw new TakeoutError('EXISTS', `${target.description}: already holds a restored takeout (_takeout record of run ${held.record.runId})`, { hint: 'restore into an empty target; nothing was changed' });
  }
  const planTables: RestorePlanTable[] = tables.map((p) => ({
    id: p.table.id,
    target: p.location,
    action: p.action,
    rows: p.table.rows,
    bytes: options.structureOnly ? 0 : p.manifest.bytes,
    slices: options.structureOnly ? 0 : p.manifest.slices.length,
    typedColumns: p.table.columns.filter((c) => c.type !== 'STRING').length,
    ...(p.reason ? { reason: p.reason } : {}),
  }));
  const metadata: TakeoutMetadata = {
    runId: manifest.runId,
    source: options.source,
    restoredAt: new Date().toISOString(),
    buckets,
    tables: tables.map((p) => ({ raw: p.raw, target: p.location })),
    configurations,
    files: [...files, { key: TAKEOUT_MANIFEST_FILE, text: `${JSON.stringify(manifest, null, 2)}\n` }],
    openListed: (key) => openListed(options, key),
  };
  const extras = restoresExtras(target) && !options.dataOnly ? await target.planExtras(metadata) : undefined;
  return {
    tables,
    metadata,
    metadataDone,
    plan: {
      source: options.source,
      target: target.description,
      tables: planTables,
      rows: planTables.reduce((n, t) => n + (t.action === 'skip' || t.action === 'omit' ? 0 : t.rows), 0),
      bytes: planTables.reduce((n, t) => n + (t.action === 'skip' || t.action === 'omit' ? 0 : t.bytes), 0),
      configurations: configurations.length,
      metadata: !options.dataOnly && !metadataDone,
      ...(extras ? { extras } : {}),
    },
  };
}
