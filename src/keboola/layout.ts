import type { BucketDescriptor, KeboolaProjectExtras, PermanentFileDescriptor, ComponentDescriptor, ConfigurationDescriptor, ConfigurationRowDescriptor, TableDescriptor } from '../model.js';
import { MANIFESTS_DIR } from '../manifests/takeout.js';

/**
 * The Keboola "Data Takeout" layout: where files go and what the JSON files hold.
 * Shapes follow the Storage API answers the Keboola tools write (https://help.keboola.com/management/project/export/);
 * a source that has the raw API objects passes them through untouched.
 */

export const BUCKETS_FILE = 'buckets.json';
export const TABLES_FILE = 'tables.json';
export const CONFIGURATIONS_FILE = 'configurations.json';
export const CONFIGURATIONS_DIR = 'configurations';
/**
 * Files Keboola's restore engine (keboola/php-kbc-project-restore `src/Restore.php`) reads with a plain GET,
 * failing when one is missing: each takeout writes them, empty lists when the source has none, as
 * keboola/php-kbc-project-backup `src/Backup.php` does for a project without any.
 */
export const BRANCH_METADATA_FILE = 'defaultBranchMetadata.json';
export const TRIGGERS_FILE = 'triggers.json';
export const NOTIFICATIONS_FILE = 'notifications.json';
export const PERMANENT_FILES_FILE = 'permanentFiles.json';
/** `files/<id>`: a permanent file's bytes as stored, under its Storage API id (Backup.php `backupPermanentFiles`). */
export const FILES_DIR = 'files';
/** What a source without branch metadata, triggers, notifications or permanent files has. */
export const NO_KEBOOLA_EXTRAS: KeboolaProjectExtras = { branchMetadata: [], triggers: [], notifications: [], permanentFiles: [] };

/** `in.c-main.customers` → `in/c-main/customers` (the table id with `.` → `/`). */
export function tablePath(table: TableDescriptor): string {
  const dot = table.bucketId.indexOf('.');
  const stage = table.bucketId.slice(0, dot);
  const bucketName = table.bucketId.slice(dot + 1);
  return `${stage}/${bucketName}/${table.name}`;
}

export function sliceKey(table: TableDescriptor, index: number): string {
  return `${tablePath(table)}.part_${index}.csv.gz`;
}

/** Every key a table's data may occupy, for finding stale parts of an earlier, larger run. */
export function isTableDataKey(key: string): boolean {
  return /\.part_\d+\.csv\.gz$/.test(key) || /^[^/]+\/[^/]+\/[^/]+\.csv\.gz$/.test(key);
}

/** The layout's own JSON files at the takeout root. */
const ROOT_FILES: readonly string[] = [BUCKETS_FILE, TABLES_FILE, CONFIGURATIONS_FILE, BRANCH_METADATA_FILE, TRIGGERS_FILE, NOTIFICATIONS_FILE, PERMANENT_FILES_FILE];

/** Whether the layout writes this key (table data, configurations, permanent files, the root JSON files); slice manifests and commit records are the manifests layer's. */
export function isLayoutKey(key: string): boolean {
  return isTableDataKey(key) || key.startsWith(`${CONFIGURATIONS_DIR}/`) || key.startsWith(`${FILES_DIR}/`) || ROOT_FILES.includes(key);
}

export function tableManifestKey(table: TableDescriptor): string {
  return `${MANIFESTS_DIR}/${table.id}.manifest`;
}

export function configurationKey(componentId: string, configId: string): string {
  return `${CONFIGURATIONS_DIR}/${componentId}/${configId}.json`;
}

/** Beside its configuration, only when it has metadata (Backup.php writes it then only; Restore.php reads it when listed). */
export function configurationMetadataKey(componentId: string, configId: string): string {
  return `${configurationKey(componentId, configId)}.metadata`;
}

export function permanentFileKey(file: PermanentFileDescriptor): string {
  return `${FILES_DIR}/${file.id}`;
}

/** permanentFiles.json: `[{id, name, tags}]`, what Restore.php uploads again from `files/<id>`. */
export function permanentFilesJson(files: readonly PermanentFileDescriptor[]): unknown[] {
  return files.map((f) => ({ id: f.id, name: f.name, tags: f.tags }));
}

/**
 * The prefix Keboola's restore engine lists a table's data by (S3Restore/AbsRestore/GcsRestore
 * `listTableFiles`: the table id with `.` → `/`, then `.`): any other key under it would be taken for a slice.
 */
export function tableDataPrefix(table: TableDescriptor): string {
  return `${tablePath(table)}.`;
}

export function stageOf(bucketId: string): string {
  return bucketId.slice(0, bucketId.indexOf('.'));
}

/** Keboola bucket ids: `in.c-main`, `out.c-reports`, `sys.c-keboola`. */
export const BUCKET_ID_PATTERN = /^(in|out|sys)\.c-[A-Za-z0-9_-]+$/;
/** Keboola table and bucket names: letters, digits, underscore and dash. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

/** The bucket of a `tables.json` item (a table or an alias): its `bucket.id`, else the first two parts of its id. */
export function bucketIdOf(t: Record<string, unknown>): string {
  const bucket = t.bucket as { id?: unknown } | undefined;
  return String(bucket?.id ?? String(t.id).split('.').slice(0, 2).join('.'));
}

/** A `tables.json` item (a Storage API table) as a table descriptor, the raw object kept for writing back. */
export function tableFromApi(t: Record<string, unknown>): TableDescriptor {
  const id = String(t.id);
  return {
    id,
    bucketId: bucketIdOf(t),
    name: String(t.name),
    columns: (t.columns as string[] | undefined) ?? [],
    primaryKey: (t.primaryKey as string[] | undefined) ?? [],
    ...(typeof t.rowsCount === 'number' ? { rowsCount: t.rowsCount } : {}),
    ...(typeof t.dataSizeBytes === 'number' ? { dataSizeBytes: t.dataSizeBytes } : {}),
    raw: t,
  };
}

export interface TableStats {
  rowsCount: number;
  dataSizeBytes: number;
}

function bucketObject(bucket: BucketDescriptor, stats?: { rowsCount: number; dataSizeBytes: number }): Record<string, unknown> {
  if (bucket.raw) return bucket.raw;
  return {
    uri: null,
    id: bucket.id,
    name: bucket.name,
    displayName: bucket.displayName ?? bucket.name.replace(/^c-/, ''),
    idBranch: null,
    stage: bucket.stage,
    description: bucket.description ?? '',
    tables: null,
    created: bucket.created ?? null,
    lastChangeDate: null,
    updated: null,
    isReadOnly: false,
    dataSizeBytes: stats?.dataSizeBytes ?? 0,
    rowsCount: stats?.rowsCount ?? 0,
    isMaintenance: false,
    backend: 'snowflake',
    sharing: null,
    hasExternalSchema: false,
    path: bucket.id,
    backendPath: [],
    isLinkedBucket: false,
    linkedBy: [],
    owner: null,
    color: null,
    metadata: bucket.metadata ?? [],
  };
}

/** buckets.json: `GET buckets?include=metadata`. */
export function bucketsJson(buckets: readonly BucketDescriptor[], tables: readonly TableDescriptor[], stats: Map<string, TableStats>): unknown[] {
  return buckets.map((bucket) => {
    let rowsCount = 0;
    let dataSizeBytes = 0;
    for (const t of tables) {
      if (t.bucketId !== bucket.id) continue;
      const s = stats.get(t.id);
      rowsCount += s?.rowsCount ?? t.rowsCount ?? 0;
      dataSizeBytes += s?.dataSizeBytes ?? t.dataSizeBytes ?? 0;
    }
    return bucketObject(bucket, { rowsCount, dataSizeBytes });
  });
}

/** tables.json: `GET tables?include=columns,buckets,metadata,columnMetadata`. */
export function tablesJson(
  tables: readonly TableDescriptor[],
  buckets: readonly BucketDescriptor[],
  stats: Map<string, TableStats>,
): unknown[] {
  const byId = new Map(buckets.map((b) => [b.id, b]));
  return tables.map((table) => {
    if (table.raw) return table.raw;
    const bucket = byId.get(table.bucketId);
    const s = stats.get(table.id);
    const { metadata: _bucketMetadata, ...bucketWithoutMetadata } = bucket ? (bucketObject(bucket) as { metadata?: unknown }) : {};
    const columnMetadata = table.columnMetadata && Object.keys(table.columnMetadata).length > 0 ? table.columnMetadata : [];
    return {
      uri: null,
      id: table.id,
      name: table.name,
      displayName: table.displayName ?? table.name,
      transactional: false,
      primaryKey: table.primaryKey,
      indexType: null,
      indexKey: [],
      distributionType: null,
      distributionKey: [],
      syntheticPrimaryKeyEnabled: false,
      created: table.created ?? null,
      lastImportDate: table.lastChangeDate ?? null,
      lastChangeDate: table.lastChangeDate ?? null,
      rowsCount: s?.rowsCount ?? table.rowsCount ?? 0,
      dataSizeBytes: s?.dataSizeBytes ?? table.dataSizeBytes ?? 0,
      isAlias: false,
      isAliasable: true,
      isTyped: false,
      timestampType: null,
      tableType: 'table',
      path: `/${table.id}`,
      columns: table.columns,
      bucket: bucketWithoutMetadata,
      metadata: [
        ...(table.description ? [{ key: 'KBC.description', value: table.description, provider: 'user' }] : []),
        ...(table.metadata ?? []),
      ],
      columnMetadata,
    };
  });
}

/** The current version's identifier when the source's newest version records one. */
function versionIdentifier(config: ConfigurationDescriptor): string | null {
  const newest = config.versions?.[0];
  return typeof newest?.versionIdentifier === 'string' ? newest.versionIdentifier : null;
}

function configurationSummary(config: ConfigurationDescriptor): Record<string, unknown> {
  if (config.raw) {
    const { rows: _rows, state: _state, _versions: _v, rowsSortOrder: _o, ...summary } = config.raw;
    return summary;
  }
  return {
    id: config.id,
    name: config.name,
    description: config.description ?? '',
    created: config.created ?? null,
    creatorToken: { id: 0, description: 'takeout' },
    version: config.version ?? 1,
    changeDescription: config.changeDescription ?? '',
    isDeleted: false,
    isDisabled: config.isDisabled ?? false,
    configuration: config.configuration,
    currentVersion: {
      created: config.created ?? null,
      creatorToken: { id: 0, description: 'takeout' },
      changeDescription: config.changeDescription ?? '',
      versionIdentifier: versionIdentifier(config),
    },
  };
}

/** configurations.json: `GET components?include=configuration`: components with configurations, no rows or state. */
export function configurationsJson(components: readonly ComponentDescriptor[]): unknown[] {
  return components.map((component) => {
    if (component.raw) return component.raw;
    return {
      id: component.id,
      type: component.type,
      name: component.name,
      description: '',
      ...component.extra,
      configurations: component.configurations.map(configurationSummary),
    };
  });
}

function rowObject(row: ConfigurationRowDescriptor): Record<string, unknown> {
  return {
    id: row.id,
    name: row.name ?? '',
    description: row.description ?? '',
    isDisabled: row.isDisabled ?? false,
    version: row.version ?? 1,
    created: row.created ?? null,
    creatorToken: { id: 0, description: 'takeout' },
    changeDescription: row.changeDescription ?? '',
    configuration: row.configuration,
    state: row.state ?? {},
    _versions: row.versions ?? [],
  };
}

/** configurations/<componentId>/<configId>.json: the configuration with rows, state and all versions. */
export function configurationFile(config: ConfigurationDescriptor): Record<string, unknown> {
  if (config.raw) return config.raw;
  return {
    ...configurationSummary(config),
    rowsSortOrder: config.rowsSortOrder ?? [],
    state: config.state ?? {},
    rows: (config.rows ?? []).map(rowObject),
    _versions: config.versions ?? [],
  };
}
