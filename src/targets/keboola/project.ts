import { TakeoutError } from '../../errors.js';
import { BRANCH_METADATA_FILE, bucketIdOf, CONFIGURATIONS_DIR, TABLES_FILE } from '../../keboola/layout.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import type { InspectContext, RestoreExtra, RestoreTable, TableState, TakeoutMetadata } from '../target.js';
import { listFile, type Json } from './api.js';
import { bucketSkipReason, createBucket } from './buckets.js';
import { configurationSkipReason, createConfiguration } from './configurations.js';
import { correctConfiguration, FLOW_COMPONENT } from './corrections.js';
import { MARKER_KEYS, readMarker, writeMarker, type RestoreMarker } from './marker.js';

/**
 * The Keboola target's first two steps: what the project holds (`inspect`: refused conflicts, or with
 * --resume what an interrupted restore of the same takeout left), then what tables live in (`prepare`, in
 * the order of Keboola's restore engine: the project's metadata, buckets, configurations).
 */

/** What one restore into a project knows, from `inspect` to `writeMetadata`. */
export interface ProjectRestore {
  client: StorageClient;
  description: string;
  baseUrl: string;
  warn: (message: string) => void;
  state: Prepared;
  /** The `#` values copied as they are, to re-enter. */
  toReEnter: string[];
  stackComponents(): Promise<Set<string>>;
}

export interface Prepared {
  buckets: Map<string, Json>;
  tables: Map<string, Json>;
  /** Aliases of tables.json whose source table is among the restored tables. */
  aliases: Json[];
  /** Tables created in the project. */
  created: Set<string>;
  /** The mark of this restore: found by `inspect` (--resume of an interrupted one), or written by `prepare`. */
  resuming?: RestoreMarker;
  /** --resume found the mark: what the project holds of the takeout is this restore's own. */
  resumed: boolean;
  /** --resume: tables the interrupted restore loaded whole (skipped; their metadata is set again). */
  loaded: Set<string>;
  /** `<component>/<id>` of the configurations created. */
  configurations: Set<string>;
  /** Configurations left out, then triggers, subscriptions and permanent files, as they went. */
  extras: RestoreExtra[];
}


/**
 * What `inspect` could not see (it is asked about tables only): a bucket without tables or a configuration
 * already in the project. Checked by listing, before anything is written (Keboola's own restore refuses a
 * project that holds buckets or configurations: app-project-restore checkEmptyProject).
 */
async function refuseConflicts(client: StorageClient, description: string, buckets: readonly string[], configurations: TakeoutMetadata['configurations']): Promise<void> {
  const heldBuckets = new Set((await client.get<Json[]>('buckets')).map((b) => String(b.id)));
  const bucket = buckets.find((id) => heldBuckets.has(id));
  if (bucket !== undefined) throw new TakeoutError('EXISTS', `${description}: bucket ${bucket} already exists`, { hint: 'restore into an empty project; nothing was changed' });
  const held = new Set<string>();
  for (const component of await client.get<Json[]>('branch/default/components')) {
    for (const config of (component.configurations as Json[] | undefined) ?? []) held.add(`${String(component.id)}/${String(config.id)}`);
  }
  const config = configurations.find((c) => held.has(`${c.componentId}/${c.configurationId}`));
  if (config !== undefined) {
    throw new TakeoutError('EXISTS', `${description}: configuration ${config.componentId}/${config.configurationId} already exists`, { hint: 'restore into an empty project; nothing was changed' });
  }
}

/**
 * The buckets to create: every bucket, as the engine restores them, unless --include/--exclude chose some
 * tables (then theirs and their aliases'); linked and system buckets skipped and named.
 */
function chooseBuckets(metadata: TakeoutMetadata, state: Prepared, warn: (message: string) => void): Json[] {
  const listed = listFile(metadata, TABLES_FILE);
  state.aliases = listed.filter((t) => t.isAlias === true && state.tables.has(String((t.sourceTable as Json | undefined)?.id)));
  const whole = listed.every((t) => t.isAlias === true || state.tables.has(String(t.id)));
  const needed = new Set([...state.tables.values(), ...state.aliases].map(bucketIdOf));
  const toCreate: Json[] = [];
  for (const bucket of metadata.buckets) {
    const why = bucketSkipReason(bucket);
    if (why) {
      warn(`bucket ${String(bucket.id)} is not restored: ${why}`);
    } else if (whole || needed.has(String(bucket.id))) toCreate.push(bucket);
  }
  return toCreate;
}

/** A configuration as the project holds it (404: it does not), for --resume. */
async function heldConfiguration(client: StorageClient, componentId: string, configurationId: string): Promise<Json | undefined> {
  try {
    return await client.get<Json>(`branch/default/components/${encodeURIComponent(componentId)}/configs/${encodeURIComponent(configurationId)}`);
  } catch (error) {
    if (error instanceof TakeoutError && error.code === 'NOT_FOUND') return undefined;
    throw error;
  }
}

/**
 * Column names Storage takes: letters, digits and underscores, not an underscore first (`_timestamp` is its own),
 * at most 64 characters (storage-api-php-client tests CreateTableTest: testTableColumnNamesSanitize,
 * testTableWithLongColumnNamesShouldNotBeCreated). A takeout of a Keboola project has only such names; one of a
 * database or a folder of CSVs may not, and is refused before anything is written rather than failing mid-way.
 */
const STORAGE_COLUMN = /^(?!_)[A-Za-z0-9_]{1,64}$/;

function refuseColumns(description: string, tables: readonly RestoreTable[]): void {
  for (const t of tables) {
    const bad = t.columns.find((c) => !STORAGE_COLUMN.test(c.name));
    if (bad) {
      throw new TakeoutError('INVALID_INPUT', `${description}: table ${t.id}: column ${JSON.stringify(bad.name)} is not a name Keboola Storage takes (letters, digits and underscores, not an underscore first, at most 64)`, {
        hint: `leave the table out with --exclude ${t.id}, or restore it into a database; nothing was changed`,
      });
    }
  }
}

/** What the project holds of the takeout: conflicts refused; with --resume under the mark, this restore's own. */
export async function inspectProject(run: ProjectRestore, tables: readonly RestoreTable[], { runId, resume, buckets: listed, dataOnly }: InspectContext): Promise<{ tables: TableState[] }> {
  const { client, description, state } = run;
  const omitted = new Map(listed.map((b) => [String(b.id), bucketSkipReason(b)]));
  refuseColumns(description, tables.filter((t) => !omitted.get(t.bucketId)));
  const marker = await readMarker(client);
  if (marker && !resume) {
    throw new TakeoutError('EXISTS', `${description}: holds an interrupted restore of takeout run ${marker.runId}`, { hint: 'go on with --resume and the same takeout; nothing was changed' });
  }
  if (marker && marker.runId !== runId) {
    throw new TakeoutError('EXISTS', `${description}: holds an interrupted restore of another takeout (run ${marker.runId}, this one is ${runId})`, { hint: 'resume it with that takeout; nothing was changed' });
  }
  if (marker) Object.assign(state, { resuming: marker, resumed: true });
  const buckets = new Set((await client.get<Json[]>('buckets')).map((b) => String(b.id)));
  const taken = [...new Set(tables.map((t) => t.bucketId))].filter((id) => buckets.has(id) && !omitted.get(id));
  // --data-only fills the tables of a --structure-only restore: their buckets are there by design.
  if (taken.length > 0 && !state.resuming && !dataOnly) {
    throw new TakeoutError('EXISTS', `${description}: bucket ${taken.join(', ')} already exists`, {
      hint: resume ? 'the project holds no interrupted restore of this takeout to go on with; nothing was changed' : 'restore into an empty project (or leave its tables out with --exclude); nothing was changed',
    });
  }
  const held = new Map((await client.get<Json[]>('tables')).map((t) => [String(t.id), Number(t.rowsCount ?? 0)]));
  return {
    tables: tables.map((t): TableState => {
      const why = omitted.get(t.bucketId);
      if (why) return { exists: false, omitted: `its bucket ${t.bucketId} is ${why}` };
      const rows = held.get(t.id);
      if (rows === undefined) return { exists: false };
      if (state.resuming && rows === t.rows) state.loaded.add(t.id);
      // Under the mark, a table is this restore's own: one not loaded whole is dropped and made again.
      return { exists: true, rows, ...(state.resuming ? { partial: true } : {}) };
    }),
  };
}

/** Before the tables: the project's metadata, buckets, then configurations, as the engine orders them. */
export async function prepareProject(run: ProjectRestore, metadata: TakeoutMetadata): Promise<void> {
  const { client, description, state, baseUrl, warn } = run;
  for (const t of metadata.tables) state.tables.set(String(t.raw.id), t.raw);
  const toCreate = chooseBuckets(metadata, state, warn);
  if (!state.resuming) {
    await refuseConflicts(client, description, toCreate.map((b) => String(b.id)), metadata.configurations);
    state.resuming = await writeMarker(client, metadata.runId);
  }
  // The project's own metadata first (Restore.php restoreProjectMetadata); only its keys and values, the stack assigns ids and times.
  const branch = listFile(metadata, BRANCH_METADATA_FILE).filter((m) => !MARKER_KEYS.has(String(m.key)));
  if (branch.length > 0) await client.post('branch/default/metadata', { body: { metadata: branch.map((m) => ({ key: m.key, value: m.value })) } });
  const held = state.resumed ? new Set((await client.get<Json[]>('buckets')).map((b) => String(b.id))) : new Set<string>();
  for (const bucket of toCreate) {
    await createBucket(client, bucket, held.has(String(bucket.id)));
    state.buckets.set(String(bucket.id), bucket);
  }
  const components = await run.stackComponents();
  // The project's default backend picks the Snowflake writer a flow's tasks name on some GCP stacks.
  const backend = String(((await client.get<Json>('tokens/verify')).owner as Json | undefined)?.defaultBackend ?? '');
  for (const config of metadata.configurations) {
    const why = configurationSkipReason(config.componentId, components, baseUrl);
    if (why) {
      warn(`configuration ${config.componentId}/${config.configurationId} is not restored: ${why}`);
      state.extras.push({ kind: 'configuration', name: `${config.componentId}/${config.configurationId}`, action: 'skip', reason: why });
      continue;
    }
    state.configurations.add(`${config.componentId}/${config.configurationId}`);
    const key = `${CONFIGURATIONS_DIR}/${config.componentId}/${config.configurationId}.json.metadata`;
    const text = metadata.files.find((f) => f.key === key)?.text;
    const existing = state.resumed ? await heldConfiguration(client, config.componentId, config.configurationId) : undefined;
    const body = config.body as Json;
    const corrected = correctConfiguration(config.componentId, body.configuration, new URL(baseUrl).host, backend);
    // Flows are restored disabled, as the engine restores them: a restored project starts nothing by itself.
    const flow = config.componentId === FLOW_COMPONENT;
    if (flow && body.isDisabled !== true) corrected.changes.push('restored disabled: enable it when the project is ready');
    if (corrected.changes.length > 0) warn(`configuration ${config.componentId}/${config.configurationId}: ${corrected.changes.join('; ')}`);
    run.toReEnter.push(
      ...(await createConfiguration(client, {
        componentId: config.componentId,
        configurationId: config.configurationId,
        body: { ...body, configuration: corrected.configuration, ...(flow ? { isDisabled: true } : {}) },
        ...(text !== undefined ? { metadata: JSON.parse(text) as unknown } : {}),
      }, undefined, existing)),
    );
  }
}
