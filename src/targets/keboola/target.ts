import { TakeoutError } from '../../errors.js';
import { BRANCH_METADATA_FILE, CONFIGURATIONS_DIR, TABLES_FILE } from '../../keboola/layout.js';
import { cleartextWarning, StorageClient, stackUrl } from '../../sources/keboola/client.js';
import type { RequestLogger } from '../../stores/network.js';
import type { InspectContext, ParallelLoads, PreparesStructure, RestoreExtra, RestoresExtras, RestoreTable, TableLoad, TableState, Target, TakeoutMetadata } from '../target.js';
import type { Json } from './api.js';
import { bucketSkipReason, createBucket } from './buckets.js';
import { configurationSkipReason, createConfiguration } from './configurations.js';
import { planExtras, restoreExtras } from './extras.js';
import { startSlicedUpload, type Upload } from './files.js';
import { MARKER_KEYS, readMarker, removeMarker, writeMarker, writeProgress, type RestoreMarker } from './marker.js';
import { createAlias, createTable, dropTable, postTableMetadata } from './tables.js';

/**
 * `keboola+https://STACK`: a takeout back into a Keboola project, in the order of Keboola's restore engine
 * (keboola/php-kbc-project-restore, docs/how-it-works.md): buckets, configurations, tables (each table's
 * slices uploaded as they are into one sliced file, then created from it with its columns and primary key,
 * then its table and column metadata). `inspect` lists what the project holds first: a bucket or table of the
 * takeout already there is refused before anything is written.
 */

export interface KeboolaTargetOptions {
  token?: string;
  /** S3 endpoint of the stack's file storage, for S3-compatible test stacks. */
  s3Endpoint?: string;
  warn: (message: string) => void;
  /** Stops waiting for a Storage job: the job may still finish in the project, and --resume goes on from there. */
  signal?: AbortSignal;
  onRequest?: RequestLogger;
}

interface Prepared {
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

const bucketOf = (table: Json): string => String((table.bucket as Json | undefined)?.id ?? String(table.id).split('.').slice(0, 2).join('.'));

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
  const listed = JSON.parse(metadata.files.find((f) => f.key === TABLES_FILE)?.text ?? '[]') as Json[];
  state.aliases = listed.filter((t) => t.isAlias === true && state.tables.has(String((t.sourceTable as Json | undefined)?.id)));
  const whole = listed.every((t) => t.isAlias === true || state.tables.has(String(t.id)));
  const needed = new Set([...state.tables.values(), ...state.aliases].map(bucketOf));
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

/** Tables loaded at once: as Keboola's restore engine (Restore.php restoreTables(parallelism = 5)). */
const TABLES_AT_ONCE = 5;

export function createKeboolaTarget(uri: string, options: KeboolaTargetOptions): Target & PreparesStructure & ParallelLoads & RestoresExtras {
  const baseUrl = stackUrl(uri);
  const description = `keboola+${baseUrl}`;
  const token = options.token ?? process.env.KBC_STORAGE_TOKEN;
  if (!token) throw new TakeoutError('USAGE', `${description}: no Storage API token: set KBC_STORAGE_TOKEN or pass --token`);
  const client = new StorageClient({ baseUrl, token, ...(options.onRequest ? { onRequest: options.onRequest } : {}) });
  const cleartext = cleartextWarning(baseUrl);
  if (cleartext) options.warn(cleartext);
  const state: Prepared = { buckets: new Map(), tables: new Map(), aliases: [], created: new Set(), loaded: new Set(), resumed: false, configurations: new Set(), extras: [] };
  const stackComponents = async (): Promise<Set<string>> => new Set(((await client.get<{ components?: Json[] }>('')).components ?? []).map((c) => String(c.id)));
  const toReEnter: string[] = [];
  const upload = { description, ...(options.s3Endpoint ? { s3Endpoint: options.s3Endpoint } : {}) };

  return {
    description,
    loadsAtOnce: TABLES_AT_ONCE,
    locate: (table) => table.id,

    async inspect(tables: readonly RestoreTable[], { runId, resume, buckets: listed }: InspectContext) {
      const omitted = new Map(listed.map((b) => [String(b.id), bucketSkipReason(b)]));
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
      if (taken.length > 0 && !state.resuming) {
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
    },

    /** Before the tables: buckets, then configurations, as the engine orders them. */
    async prepare(metadata: TakeoutMetadata) {
      for (const t of metadata.tables) state.tables.set(String(t.raw.id), t.raw);
      const toCreate = chooseBuckets(metadata, state, options.warn);
      if (!state.resuming) {
        await refuseConflicts(client, description, toCreate.map((b) => String(b.id)), metadata.configurations);
        state.resuming = await writeMarker(client, metadata.runId);
      }
      // The project's own metadata first (Restore.php restoreProjectMetadata); only its keys and values, the stack assigns ids and times.
      const branch = (JSON.parse(metadata.files.find((f) => f.key === BRANCH_METADATA_FILE)?.text ?? '[]') as Json[]).filter((m) => !MARKER_KEYS.has(String(m.key)));
      if (branch.length > 0) await client.post('branch/default/metadata', { body: { metadata: branch.map((m) => ({ key: m.key, value: m.value })) } });
      const held = state.resumed ? new Set((await client.get<Json[]>('buckets')).map((b) => String(b.id))) : new Set<string>();
      for (const bucket of toCreate) {
        await createBucket(client, bucket, held.has(String(bucket.id)));
        state.buckets.set(String(bucket.id), bucket);
      }
      const components = await stackComponents();
      for (const config of metadata.configurations) {
        const why = configurationSkipReason(config.componentId, components, baseUrl);
        if (why) {
          options.warn(`configuration ${config.componentId}/${config.configurationId} is not restored: ${why}`);
          state.extras.push({ kind: 'configuration', name: `${config.componentId}/${config.configurationId}`, action: 'skip', reason: why });
          continue;
        }
        state.configurations.add(`${config.componentId}/${config.configurationId}`);
        const key = `${CONFIGURATIONS_DIR}/${config.componentId}/${config.configurationId}.json.metadata`;
        const text = metadata.files.find((f) => f.key === key)?.text;
        const existing = state.resumed ? await heldConfiguration(client, config.componentId, config.configurationId) : undefined;
        toReEnter.push(
          ...(await createConfiguration(client, {
            componentId: config.componentId,
            configurationId: config.configurationId,
            body: config.body as Json,
            ...(text !== undefined ? { metadata: JSON.parse(text) as unknown } : {}),
          }, undefined, existing)),
        );
      }
    },

    async load(table: RestoreTable, { create, data, replace }): Promise<TableLoad> {
      if (!create) throw new TakeoutError('USAGE', `${description}: --data-only is not supported for a Keboola project`, { hint: 'restore without --data-only' });
      let upload_: Upload | undefined;
      let index = 0;
      return {
        async slice(body, origin) {
          // The slice's check can fail (size, sha256) while files/prepare is awaited, before anything reads it: the
          // error stays on the stream (the loop reading it rejects with it), and is not thrown as unhandled.
          body.on('error', () => undefined);
          upload_ ??= await startSlicedUpload(client, table.id, 0, upload);
          return upload_.slice(body, `${table.name}.part_${index++}.csv.gz`, table.columns.length, origin);
        },
        async commit() {
          try {
            // Dropped only now, when every slice passed: a corrupt takeout leaves the partial table as it was.
            if (replace) await dropTable(client, table.id, `${description}: table ${table.id}`, options.signal);
            await createTable(client, table, data && table.rows > 0 ? upload_ : undefined, state.tables.get(table.id), upload, options.signal);
            state.created.add(table.id);
          } finally {
            await upload_?.close();
          }
        },
        async rollback() {
          // Nothing was created in the project; uploaded slices stay in the stack's file storage until the file expires (15 days, apiary.apib files/prepare).
          await upload_?.close();
        },
      };
    },

    /** After the tables: their aliases (the engine's last table step), triggers, notifications, permanent files; then what the user must do by hand. */
    async writeMetadata(metadata: TakeoutMetadata) {
      // --resume: the metadata of tables loaded whole before the interruption is set again (it may not have been).
      for (const id of state.loaded) await postTableMetadata(client, id, state.tables.get(id));
      const held = state.resumed ? new Set((await client.get<Json[]>('tables')).map((t) => String(t.id))) : new Set<string>();
      for (const alias of state.aliases) {
        const source = String((alias.sourceTable as Json).id);
        const restored = state.created.has(source) || state.loaded.has(source);
        if (!restored || !state.buckets.has(bucketOf(alias))) options.warn(`alias ${String(alias.id)} is not restored: its source table ${source} or its bucket was not restored`);
        else if (held.has(String(alias.id))) await postTableMetadata(client, String(alias.id), alias);
        else await createAlias(client, alias);
      }
      state.extras.push(
        ...(await restoreExtras(metadata, {
          client,
          configurations: state.configurations,
          upload,
          warn: options.warn,
          alreadyDone: state.resuming?.extrasDone ?? 0,
          onDone: (n) => writeProgress(client, n),
        })),
      );
      // The restore is whole: its mark goes, so the project holds nothing of takeout's own.
      await removeMarker(client);
      // Nothing more is written into the project: the takeout's layout files stay where they are.
      if (toReEnter.length > 0) options.warn(`encrypted values copied as they are, to re-enter in the project (they are bound to the source project): ${toReEnter.join('; ')}`);
    },

    planExtras: async (metadata: TakeoutMetadata) => planExtras(metadata, await stackComponents(), baseUrl),
    restoredExtras: () => state.extras,

    async close() {},
  };
}
