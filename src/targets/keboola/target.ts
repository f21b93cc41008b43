import { TakeoutError } from '../../errors.js';
import { bucketIdOf } from '../../keboola/layout.js';
import { cleartextWarning, StorageClient, stackUrl } from '../../sources/keboola/client.js';
import type { RequestLogger } from '../../stores/network.js';
import type { InspectContext, ParallelLoads, PreparesStructure, RestoresExtras, RestoreTable, TableLoad, Target, TakeoutMetadata } from '../target.js';
import type { Json } from './api.js';
import { planExtras, restoreExtras } from './extras.js';
import { startSlicedUpload, type Upload } from './files.js';
import { removeMarker, writeProgress } from './marker.js';
import { inspectProject, prepareProject, type Prepared, type ProjectRestore } from './project.js';
import { createAlias, createTable, dropTable, fillTable, postTableMetadata } from './tables.js';

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

/** Tables loaded at once: as Keboola's restore engine (Restore.php restoreTables(parallelism = 5)). */
const TABLES_AT_ONCE = 5;

export function createKeboolaTarget(uri: string, options: KeboolaTargetOptions): Target & PreparesStructure & ParallelLoads & RestoresExtras {
  const baseUrl = stackUrl(uri);
  const description = `keboola+${baseUrl}`;
  const token = options.token ?? process.env.KBC_STORAGE_TOKEN;
  if (!token) throw new TakeoutError('USAGE', `${description}: no Storage API token`, { hint: 'set KBC_STORAGE_TOKEN or pass --token' });
  const client = new StorageClient({ baseUrl, token, ...(options.onRequest ? { onRequest: options.onRequest } : {}) });
  const cleartext = cleartextWarning(baseUrl);
  if (cleartext) options.warn(cleartext);
  const state: Prepared = { buckets: new Map(), tables: new Map(), aliases: [], created: new Set(), loaded: new Set(), resumed: false, configurations: new Set(), extras: [] };
  // The plan (its extras) and prepare both ask which components the stack has: the service index is read once.
  let components: Promise<Set<string>> | undefined;
  const stackComponents = (): Promise<Set<string>> =>
    (components ??= client.get<{ components?: Json[] }>('').then((index) => new Set((index.components ?? []).map((c) => String(c.id)))));
  const toReEnter: string[] = [];
  const run: ProjectRestore = { client, description, baseUrl, warn: options.warn, state, toReEnter, stackComponents };
  const upload = { description, ...(options.s3Endpoint ? { s3Endpoint: options.s3Endpoint } : {}), ...(options.signal ? { signal: options.signal } : {}) };

  return {
    description,
    loadsAtOnce: TABLES_AT_ONCE,
    locate: (table) => table.id,

    inspect: (tables: readonly RestoreTable[], context: InspectContext) => inspectProject(run, tables, context),
    prepare: (metadata: TakeoutMetadata) => prepareProject(run, metadata),

    async load(table: RestoreTable, { create, data, replace }): Promise<TableLoad> {
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
            if (!create) {
              // --data-only: a full load into the empty table a --structure-only restore made (one job: whole or not at all).
              if (upload_) await fillTable(client, table, upload_, upload, options.signal);
              return;
            }
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
        if (!restored || !state.buckets.has(bucketIdOf(alias))) options.warn(`alias ${String(alias.id)} is not restored: its source table ${source} or its bucket was not restored`);
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
