/**
 * Tables: `POST buckets/{id}/tables-async` (name, dataFileId, primaryKey, columns for a headerless or sliced
 * file, delimiter/enclosure/escapedBy) → job `tableCreate` whose results are the table; `POST
 * tables/{id}/import-async` (incremental or full) → job `tableImport`; `POST buckets/{id}/tables-definition`
 * (typed, empty) → job `tableDefinitionCreate`; `POST buckets/{id}/table-aliases` → 201 the alias; `PUT
 * tables/{id}` (displayName); `DELETE tables/{id}` (`force` drops its aliases too, else a table with aliases
 * is refused; `async` answers a job `tableDrop`: apiary.apib "Drop table"); table and column metadata
 * `POST tables/{id}/metadata` (apiary.apib "Tables",
 * "Table Metadata"; storage-api-php-client Client.php createTableAsync, writeTableAsyncDirect,
 * createTableDefinition, createAliasTable). Jobs read the uploaded file from the emulator when polled.
 */
import { HttpError, kbcTime, readParams, required, truthy } from './http.js';
import type { Json } from './http.js';
import { bucketById } from './write-buckets.js';
import { bucketSummary, upsertMetadata } from './write-context.js';
import type { TableData, WriteContext, WriteHandler, WriteRoute } from './write-context.js';
import { csvOptions, readDataFile } from './write-files.js';

export const TABLE_ROUTES: WriteRoute[] = [
  { method: 'POST', pattern: /^buckets\/([^/]+)\/tables-async$/, endpoint: 'POST buckets/{id}/tables-async' },
  { method: 'POST', pattern: /^buckets\/([^/]+)\/tables-definition$/, endpoint: 'POST buckets/{id}/tables-definition' },
  { method: 'POST', pattern: /^buckets\/([^/]+)\/table-aliases$/, endpoint: 'POST buckets/{id}/table-aliases' },
  { method: 'POST', pattern: /^tables\/([^/]+)\/import-async$/, endpoint: 'POST tables/{id}/import-async' },
  { method: 'PUT', pattern: /^tables\/([^/]+)$/, endpoint: 'PUT tables/{id}' },
  { method: 'DELETE', pattern: /^tables\/([^/]+)$/, endpoint: 'DELETE tables/{id}' },
  { method: 'POST', pattern: /^tables\/([^/]+)\/metadata$/, endpoint: 'POST tables/{id}/metadata' },
];

/** Longest column name Storage takes (tests/Backend/CommonPart1/CreateTableTest.php testTableWithLongColumnNamesShouldNotBeCreated). */
const MAX_COLUMN_NAME = 64;

/**
 * A header's names as Storage makes them: accents dropped, other characters `_` ("šcrščž" → "scrscz",
 * "with spaces" → "with_spaces": CreateTableTest.php testTableColumnNamesSanitize).
 */
const sanitize = (name: string): string =>
  name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9_]/g, '_');

const list = (value: unknown): string[] | undefined => {
  if (value === undefined || value === null || value === '') return undefined;
  if (Array.isArray(value)) return value.map(String);
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
};

function tableOf(ctx: WriteContext, id: string): Json {
  const table = ctx.project.tables.find((t) => t.id === id);
  if (!table) {
    const dot = id.lastIndexOf('.');
    throw new HttpError(404, `The table "${id.slice(dot + 1)}" was not found in the bucket "${id.slice(0, dot)}" in the project "${ctx.projectId}"`, 'storage.tables.notFound');
  }
  return table;
}

/** CreateTableTest.php: a table whose name or display name is taken, 400 storage.buckets.tableAlreadyExists. */
function assertNew(ctx: WriteContext, bucketId: string, name: string): void {
  if (name.includes('.')) throw new HttpError(400, `Invalid data - name: "${name}" contains not allowed characters.`, 'storage.tables.validation');
  const taken = ctx.project.tables.find((t) => (t.bucket as Json).id === bucketId && (t.name === name || t.displayName === name));
  if (taken) {
    throw new HttpError(400, `The table "${String(taken.name)}" in the bucket already has the same display name "${name}".`, 'storage.buckets.tableAlreadyExists');
  }
}

function checkColumns(columns: string[], primaryKey: string[]): void {
  if (columns.length === 0) throw new HttpError(400, 'No columns found in the file', 'storage.tables.validation.noColumns');
  const seen = new Set<string>();
  for (const column of columns) {
    // A sliced file's first data line taken as a header fails here (CreateTableTest.php testCreateTableFromSlicedFile).
    if (!/^[A-Za-z0-9_]+$/.test(column) || column.startsWith('_') || column.length > MAX_COLUMN_NAME) {
      throw new HttpError(400, `Invalid column name "${column}": only alphanumeric characters and underscores, not first, at most ${MAX_COLUMN_NAME}`, 'storage.tables.validation.invalidColumnName');
    }
    if (seen.has(column.toLowerCase())) throw new HttpError(400, `Duplicate column "${column}"`, 'storage.tables.validation');
    seen.add(column.toLowerCase());
  }
  const missing = primaryKey.filter((c) => !columns.includes(c));
  if (missing.length > 0) {
    throw new HttpError(400, `Primary key columns "${missing.join(', ')}" are not in the table columns (${columns.join(', ')})`, 'storage.tables.validation.invalidPrimaryKeyColumns');
  }
}

function newTable(ctx: WriteContext, bucket: Json, name: string, columns: string[], primaryKey: string[]): Json {
  const id = `${String(bucket.id)}.${name}`;
  const now = kbcTime();
  return {
    uri: `${ctx.baseUrl()}/v2/storage/tables/${id}`,
    id,
    name,
    displayName: name,
    transactional: false,
    primaryKey,
    indexType: null,
    indexKey: [],
    distributionType: null,
    distributionKey: [],
    syntheticPrimaryKey: null,
    syntheticPrimaryKeyEnabled: false,
    created: now,
    lastImportDate: null,
    lastChangeDate: now,
    rowsCount: 0,
    dataSizeBytes: 0,
    isAlias: false,
    isAliasable: true,
    isTyped: false,
    tableType: 'table',
    path: `/${id}`,
    columns,
    bucket: bucketSummary(bucket),
    metadata: [],
    columnMetadata: [],
  };
}

/** Stores rows in the table's column order (missing columns empty) and updates its counts. */
function load(ctx: WriteContext, table: Json, data: TableData, existing: TableData | undefined): number {
  const columns = table.columns as string[];
  const unknown = data.header.filter((c) => !columns.includes(c));
  if (unknown.length > 0) {
    throw new HttpError(400, `Some columns are not in the table "${String(table.id)}": ${unknown.join(', ')}`, 'csvImport.columnsNotMatch');
  }
  const indexes = columns.map((c) => data.header.indexOf(c));
  const incoming = data.rows.map((row) => indexes.map((i) => (i === -1 ? '' : (row[i] ?? ''))));
  let rows = incoming;
  if (existing) {
    const pk = (table.primaryKey as string[]).map((c) => columns.indexOf(c));
    if (pk.length === 0) rows = [...existing.rows, ...incoming];
    else {
      // Incremental load with a primary key updates rows of the same key (apiary.apib import-async "incremental").
      const keyOf = (row: string[]): string => JSON.stringify(pk.map((i) => row[i]));
      const merged = new Map(existing.rows.map((row) => [keyOf(row), row]));
      for (const row of incoming) merged.set(keyOf(row), row);
      rows = [...merged.values()];
    }
  }
  ctx.setRows(String(table.id), { header: columns, rows });
  const now = kbcTime();
  table.rowsCount = rows.length;
  table.dataSizeBytes = rows.reduce((sum, row) => sum + row.reduce((s, v) => s + Buffer.byteLength(v) + 1, 0), 0);
  table.lastImportDate = now;
  table.lastChangeDate = now;
  return incoming.length;
}

async function createTable(ctx: WriteContext, bucketId: string, params: Json): Promise<Json> {
  const bucket = bucketById(ctx, bucketId);
  const name = required(params, 'name');
  const fileId = required(params, 'dataFileId');
  if (!ctx.files.has(Number(fileId))) throw new HttpError(404, `File ${fileId} not found`, 'storage.files.notFound');
  assertNew(ctx, bucketId, name);
  const csv = csvOptions(params);
  const columns = list(params.columns);
  // "columns separated by a comma" (apiary.apib); a list is refused (CreateTableTest.php testTableCreateInvalidPkType).
  if (Array.isArray(params.primaryKey)) throw new HttpError(400, 'Invalid primaryKey: columns separated by a comma expected', 'storage.validation.primaryKey');
  const primaryKey = list(params.primaryKey) ?? [];
  return ctx.startJob('tableCreate', null, { name, bucketId, dataFileId: Number(fileId), primaryKey, ...(columns ? { columns } : {}) }, async () => {
    const data = await readDataFile(ctx, fileId, csv, columns);
    if (!columns) data.header = data.header.map(sanitize);
    checkColumns(data.header, primaryKey);
    assertNew(ctx, bucketId, name);
    const table = newTable(ctx, bucket, name, data.header, primaryKey);
    load(ctx, table, data, undefined);
    ctx.project.tables.push(table);
    return table;
  });
}

async function importTable(ctx: WriteContext, tableId: string, params: Json): Promise<Json> {
  const table = tableOf(ctx, tableId);
  if (table.isAlias) throw new HttpError(400, `Cannot import data into the alias table "${tableId}"`, 'storage.tables.validation');
  const fileId = required(params, 'dataFileId');
  if (!ctx.files.has(Number(fileId))) throw new HttpError(404, `File ${fileId} not found`, 'storage.files.notFound');
  const csv = csvOptions(params);
  const incremental = truthy(params.incremental);
  // "the first line of the file will not be treated as a header" with columns; withoutHeaders: table order.
  const columns = list(params.columns) ?? (truthy(params.withoutHeaders) ? (table.columns as string[]) : undefined);
  return ctx.startJob('tableImport', tableId, { dataFileId: Number(fileId), incremental, ...(columns ? { columns } : {}) }, async () => {
    const data = await readDataFile(ctx, fileId, csv, columns);
    const imported = load(ctx, table, data, incremental ? await ctx.rowsOf(tableId) : undefined);
    return {
      importedColumns: data.header,
      warnings: [],
      transaction: null,
      totalRowsCount: table.rowsCount,
      totalDataSizeBytes: table.dataSizeBytes,
      importedRowsCount: imported,
    };
  });
}

const DATATYPE_KEYS = ['type', 'nullable', 'length', 'default'] as const;

/** A typed table (apiary.apib "Create Table Definition"): empty, columns typed, `KBC.datatype.*` storage metadata. */
async function createDefinition(ctx: WriteContext, bucketId: string, params: Json): Promise<Json> {
  const bucket = bucketById(ctx, bucketId);
  const name = required(params, 'name');
  if (!Array.isArray(params.columns)) throw new HttpError(400, 'Invalid request: columns - This value should not be blank.', 'storage.tables.validation');
  const defs = params.columns as Array<{ name?: string; definition?: Json; basetype?: string }>;
  const columns = defs.map((c) => String(c.name ?? ''));
  const primaryKey = list(params.primaryKeysNames) ?? [];
  checkColumns(columns, primaryKey);
  for (const column of defs) {
    if (primaryKey.includes(String(column.name)) && column.definition && truthy(column.definition.nullable ?? true)) {
      throw new HttpError(400, `Primary keys columns must be set nullable false: "${String(column.name)}"`, 'storage.tables.validation');
    }
  }
  assertNew(ctx, bucketId, name);
  return ctx.startJob('tableDefinitionCreate', null, { name, bucketId, primaryKeysNames: primaryKey, columns: defs }, async () => {
    assertNew(ctx, bucketId, name);
    const table = newTable(ctx, bucket, name, columns, primaryKey);
    const typed = defs.some((c) => c.definition?.type !== undefined || c.basetype !== undefined);
    table.isTyped = typed;
    if (typed) {
      const time = kbcTime();
      const columnMetadata: Record<string, Json[]> = {};
      for (const c of defs) {
        const items = DATATYPE_KEYS.filter((k) => c.definition?.[k] !== undefined && c.definition[k] !== null).map((k) => ({
          key: `KBC.datatype.${k}`,
          value: k === 'nullable' ? (truthy(c.definition?.[k]) ? '1' : '') : String(c.definition?.[k]),
        }));
        if (c.basetype) items.push({ key: 'KBC.datatype.basetype', value: c.basetype });
        columnMetadata[String(c.name)] = upsertMetadata(ctx, [], 'storage', items, time);
      }
      table.columnMetadata = columnMetadata;
      table.definition = { primaryKeysNames: primaryKey, columns: defs.map((c) => ({ name: c.name, definition: c.definition ?? {}, basetype: c.basetype ?? null, canBeFiltered: true })) };
    }
    ctx.setRows(String(table.id), { header: columns, rows: [] });
    ctx.project.tables.push(table);
    return table;
  });
}

function createAlias(ctx: WriteContext, bucketId: string, params: Json): Json {
  const bucket = bucketById(ctx, bucketId);
  const source = tableOf(ctx, required(params, 'sourceTable'));
  if (source.isAlias) throw new HttpError(400, `The table "${String(source.id)}" is an alias: aliases cannot be chained`, 'storage.tables.validation');
  const name = typeof params.name === 'string' && params.name ? params.name : String(source.name);
  assertNew(ctx, bucketId, name);
  const aliasColumns = list(params.aliasColumns);
  const sourceColumns = source.columns as string[];
  const unknown = (aliasColumns ?? []).filter((c) => !sourceColumns.includes(c));
  if (unknown.length > 0) throw new HttpError(400, `Columns ${unknown.join(', ')} are not in the table "${String(source.id)}"`, 'storage.tables.validation');
  const filter = params.aliasFilter as Json | undefined;
  const table = newTable(ctx, bucket, name, aliasColumns ?? sourceColumns, source.primaryKey as string[]);
  Object.assign(table, {
    isAlias: true,
    isAliasable: false,
    rowsCount: source.rowsCount,
    dataSizeBytes: source.dataSizeBytes,
    lastImportDate: source.lastImportDate,
    sourceTable: { id: source.id, uri: source.uri, isAlias: false, project: { id: Number(ctx.projectId), name: String((ctx.project.token.owner as Json | undefined)?.name ?? '') } },
    aliasColumnsAutoSync: aliasColumns === undefined,
    aliasFilter: filter && typeof filter === 'object' ? { column: filter.column, operator: filter.operator ?? 'eq', values: list(filter.values) ?? [] } : null,
  });
  ctx.project.tables.push(table);
  return table;
}

/** Column metadata sent keyed by column name (deprecated) or by index with `columnName` inside (apiary.apib). */
function columnItems(value: unknown): Array<[string, Json[]]> {
  if (value === undefined || value === null) return [];
  const groups = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as Json);
  return groups.map(([index, items]) => {
    const list = Array.isArray(items) ? (items as Json[]) : [];
    const named = list.find((item) => typeof item.columnName === 'string')?.columnName;
    return [typeof named === 'string' ? named : index, list];
  });
}

async function tableMetadata(ctx: WriteContext, tableId: string, params: Json): Promise<Json> {
  const table = tableOf(ctx, tableId);
  const provider = required(params, 'provider');
  if (params.metadata === undefined && params.columnsMetadata === undefined) {
    throw new HttpError(400, 'At least one of metadata or columnsMetadata is required', 'storage.metadata.validation');
  }
  const time = kbcTime();
  const columns = columnItems(params.columnsMetadata);
  for (const [column] of columns) {
    if (!(table.columns as string[]).includes(column)) throw new HttpError(400, `Column "${column}" not found in table "${tableId}"`, 'storage.tables.columnNotFound');
  }
  table.metadata = upsertMetadata(ctx, (table.metadata as Json[] | undefined) ?? [], provider, params.metadata, time);
  const byColumn: Record<string, Json[]> = Array.isArray(table.columnMetadata) ? {} : { ...(table.columnMetadata as Record<string, Json[]>) };
  for (const [column, items] of columns) byColumn[column] = upsertMetadata(ctx, byColumn[column] ?? [], provider, items, time);
  table.columnMetadata = Object.keys(byColumn).length > 0 ? byColumn : [];
  return { metadata: table.metadata, columnsMetadata: byColumn };
}

function dropTable(ctx: WriteContext, id: string, force: boolean): void {
  const table = tableOf(ctx, id);
  const aliases = ctx.project.tables.filter((t) => (t.sourceTable as Json | undefined)?.id === id);
  if (aliases.length > 0 && !force) throw new HttpError(400, `The table ${id} has aliases; drop them first or use force.`, 'storage.tables.cannotDeleteTableWithAliases');
  for (const t of [table, ...aliases]) ctx.dropRows(String(t.id));
  ctx.project.tables = ctx.project.tables.filter((t) => t !== table && !aliases.includes(t));
}

export const handleTables: WriteHandler = async (ctx, endpoint, arg, url, req) => {
  if (endpoint === 'DELETE tables/{id}') {
    const force = truthy(url.searchParams.get('force'));
    if (!truthy(url.searchParams.get('async'))) return (dropTable(ctx, arg(1), force), [204, undefined]);
    tableOf(ctx, arg(1));
    return [202, ctx.startJob('tableDrop', arg(1), { force }, async () => (dropTable(ctx, arg(1), force), null))];
  }
  const params = await readParams(req);
  switch (endpoint) {
    case 'POST buckets/{id}/tables-async':
      return [202, await createTable(ctx, arg(1), params)];
    case 'POST tables/{id}/import-async':
      return [202, await importTable(ctx, arg(1), params)];
    case 'POST buckets/{id}/tables-definition':
      return [202, await createDefinition(ctx, arg(1), params)];
    case 'POST buckets/{id}/table-aliases':
      return [201, createAlias(ctx, arg(1), params)];
    case 'PUT tables/{id}': {
      const table = tableOf(ctx, arg(1));
      if (typeof params.displayName === 'string' && params.displayName) table.displayName = params.displayName;
      return [200, table];
    }
    default:
      return [201, await tableMetadata(ctx, arg(1), params)];
  }
};
