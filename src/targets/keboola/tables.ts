import type { StorageClient } from '../../sources/keboola/client.js';
import type { RestoreTable } from '../target.js';
import { metadataByProvider, runJob, type Json } from './api.js';
import { uploadHeaderFile, type Upload, type UploadOptions } from './files.js';

/**
 * Tables as Keboola's restore engine creates them (php-kbc-project-restore worker-create-table.php and
 * restoreTableColumnsMetadata): `POST buckets/{id}/tables-async` with the primary key as a comma-separated
 * string, from the uploaded sliced file with `columns` (its slices are headerless), or, for a table without
 * rows, from a gzipped file holding only the header; then the table and column metadata per provider
 * (`POST tables/{id}/metadata`), the stack's own provider `storage` left out.
 */

/** Provider `storage` metadata is the stack's own (Restore.php skips it for tables and columns). */
const SYSTEM_PROVIDER = 'storage';

/** Table and column metadata of a tables.json entry, one call per provider. */
export async function postTableMetadata(client: StorageClient, tableId: string, raw: Json | undefined): Promise<void> {
  if (!raw) return;
  const table = metadataByProvider(raw.metadata, [SYSTEM_PROVIDER]);
  const columns = new Map<string, Map<string, { key: string; value: string }[]>>();
  const byColumn = typeof raw.columnMetadata === 'object' && raw.columnMetadata !== null && !Array.isArray(raw.columnMetadata) ? (raw.columnMetadata as Record<string, unknown>) : {};
  for (const [column, list] of Object.entries(byColumn)) columns.set(column, metadataByProvider(list, [SYSTEM_PROVIDER]));
  const providers = new Set([...table.keys(), ...[...columns.values()].flatMap((m) => [...m.keys()])]);
  for (const provider of providers) {
    const columnsMetadata: Record<string, { key: string; value: string; columnName: string }[]> = {};
    for (const [column, m] of columns) {
      const list = m.get(provider);
      if (list?.length) columnsMetadata[column] = list.map((x) => ({ ...x, columnName: column }));
    }
    await client.post(`tables/${encodeURIComponent(tableId)}/metadata`, { body: { provider, metadata: table.get(provider) ?? [], columnsMetadata } });
  }
}

/**
 * A typed table's definition (tables.json `definition`, what the stack answered) as `POST tables-definition`
 * takes it, primary key columns not nullable (worker-create-table.php setForcePrimaryKeyNotNull); undefined
 * for a table that is not typed.
 */
export function typedDefinition(table: RestoreTable, raw: Json | undefined): Json | undefined {
  const definition = raw?.isTyped === true ? (raw.definition as Json | undefined) : undefined;
  if (!definition || !Array.isArray(definition.columns)) return undefined;
  const columns = (definition.columns as Json[]).map((c) => {
    const own = typeof c.definition === 'object' && c.definition !== null ? (c.definition as Json) : {};
    return {
      name: c.name,
      definition: table.primaryKey.includes(String(c.name)) ? { ...own, nullable: false } : own,
      ...(typeof c.basetype === 'string' ? { basetype: c.basetype } : {}),
    };
  });
  return { name: table.name, primaryKeysNames: table.primaryKey, columns };
}

/**
 * Loads a table from the files of its upload in turn: the first as asked, each later one incrementally, which
 * appends (updates rows of the same primary key, which a table's rows do not repeat; apiary.apib import-async
 * "incremental"). More than one file only when upload credentials were renewed by a new file (files.ts).
 */
async function importFiles(client: StorageClient, tableId: string, fileIds: readonly (number | string)[], columns: string[], incremental: boolean, what: string, signal?: AbortSignal): Promise<void> {
  for (const [n, dataFileId] of fileIds.entries()) {
    await runJob(client, `tables/${encodeURIComponent(tableId)}/import-async`, { dataFileId, columns, incremental: incremental || n > 0 }, what, signal);
  }
}

/** Creates a table from its finished upload (or empty when there is none), then its metadata. */
export async function createTable(client: StorageClient, table: RestoreTable, upload: Upload | undefined, raw: Json | undefined, options: UploadOptions, signal?: AbortSignal): Promise<void> {
  const columns = table.columns.map((c) => c.name);
  const what = `${options.description}: table ${table.id}`;
  const typed = typedDefinition(table, raw);
  if (typed) {
    // Typed tables: the definition first, then a full load of the sliced file (the engine's typed path). The
    // manifest is written before the definition's job, while the upload credentials of the last slice hold.
    await upload?.finish();
    await runJob(client, `buckets/${encodeURIComponent(table.bucketId)}/tables-definition`, typed, what, signal);
    if (upload) await importFiles(client, table.id, upload.fileIds, columns, false, what, signal);
    await postTableMetadata(client, table.id, raw);
    return;
  }
  const body: Json = { name: table.name, primaryKey: table.primaryKey.join(',') };
  const [first, ...more] = upload?.fileIds ?? [];
  if (upload && first !== undefined) {
    await upload.finish();
    // "the first line of the file will not be treated as a header" when `columns` is given (apiary.apib import-async).
    Object.assign(body, { dataFileId: first, columns });
  } else {
    body.dataFileId = await uploadHeaderFile(client, `${table.id}.csv.gz`, columns, options);
  }
  await runJob(client, `buckets/${encodeURIComponent(table.bucketId)}/tables-async`, body, what, signal);
  await importFiles(client, table.id, more, columns, true, what, signal);
  await postTableMetadata(client, table.id, raw);
}

/** Fills an existing empty table (--data-only) from its finished upload: a full load, as the engine loads a typed table. */
export async function fillTable(client: StorageClient, table: RestoreTable, upload: Upload, options: UploadOptions, signal?: AbortSignal): Promise<void> {
  await upload.finish();
  await importFiles(client, table.id, upload.fileIds, table.columns.map((c) => c.name), false, `${options.description}: table ${table.id}`, signal);
}

/** An alias of tables.json (`isAlias`), after the tables (Restore.php restoreTableAliases): `POST buckets/{id}/table-aliases`. */
export async function createAlias(client: StorageClient, alias: Json): Promise<void> {
  const bucketId = String((alias.bucket as Json | undefined)?.id ?? '');
  const source = alias.sourceTable as Json | undefined;
  const body: Json = { sourceTable: source?.id, name: alias.name };
  if (alias.aliasFilter) body.aliasFilter = alias.aliasFilter;
  // The engine names the columns only when they do not follow the source table's.
  if (alias.aliasColumnsAutoSync === false) body.aliasColumns = alias.columns;
  await client.post(`buckets/${encodeURIComponent(bucketId)}/table-aliases`, { body });
  await postTableMetadata(client, String(alias.id), alias);
}

/**
 * Drops what an interrupted restore left of a table (--resume: a typed table defined but not filled), with
 * `force` for its aliases (the restore makes them after every table, so there are none of its own).
 */
export async function dropTable(client: StorageClient, tableId: string, what: string, signal?: AbortSignal): Promise<void> {
  await runJob(client, `tables/${encodeURIComponent(tableId)}?force=true&async=true`, undefined, what, signal);
}
