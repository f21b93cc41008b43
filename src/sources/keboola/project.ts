/**
 * A Keboola project as the Storage API lists it: buckets, tables and component configurations with every
 * version. What Keboola's own takeout leaves out (linked and external buckets, aliases) is named in
 * `skipped`, and the tables among it kept in `exportableSkipped` for `takeout table export`.
 */
import { toTakeoutError } from '../../errors.js';
import { tableFromApi } from '../../keboola/layout.js';
import type { BucketDescriptor, ComponentDescriptor, ConfigurationDescriptor, ProjectDescriptor, TableDescriptor } from '../../model.js';
import type { StorageClient } from './client.js';
import { listExtras } from './extras.js';

/** Version pages: large first, halved when the API fails on big configurations (the reference tools always ask for 2). */
const VERSION_PAGE_SIZES = [100, 20, 2];

type Json = Record<string, unknown>;
type Skipped = { id: string; reason: string }[];

/** Every version of a configuration (or a row), in pages that get smaller when the API fails on large ones. */
async function versions(client: StorageClient, path: string, include: string): Promise<Json[]> {
  for (const limit of VERSION_PAGE_SIZES) {
    try {
      const all: Json[] = [];
      for (let offset = 0; ; offset += limit) {
        const page = await client.get<Json[]>(path, { query: { include, limit, offset } });
        if (!Array.isArray(page) || page.length === 0) return all;
        all.push(...page);
        if (page.length < limit) return all;
      }
    } catch (error) {
      const failure = toTakeoutError(error);
      if (failure.code !== 'NETWORK' || limit === VERSION_PAGE_SIZES[VERSION_PAGE_SIZES.length - 1]) throw failure;
    }
  }
  return [];
}

/** Every table with its columns and metadata: in one listing, or bucket by bucket when that times out. */
async function listRawTables(client: StorageClient, rawBuckets: Json[]): Promise<Json[]> {
  const include = 'columns,buckets,metadata,columnMetadata';
  try {
    return await client.get<Json[]>('tables', { query: { include } });
  } catch (error) {
    // The full listing times out on large projects (php-kbc-project-backup 5999640): list per bucket.
    if (toTakeoutError(error).code === 'AUTH') throw error;
    const rawTables: Json[] = [];
    for (const b of rawBuckets) rawTables.push(...(await client.get<Json[]>(`buckets/${encodeURIComponent(String(b.id))}/tables`, { query: { include } })));
    return rawTables;
  }
}

/** The buckets a takeout takes; linked and external-schema buckets are named in `skipped`, with their reasons by id. */
function takenBuckets(rawBuckets: Json[], skipped: Skipped): { buckets: BucketDescriptor[]; skippedBuckets: Map<string, string> } {
  const skippedBuckets = new Map<string, string>();
  const buckets: BucketDescriptor[] = [];
  for (const b of rawBuckets) {
    const id = String(b.id);
    if (b.sourceBucket) {
      skipped.push({ id, reason: 'linked bucket' });
      skippedBuckets.set(id, 'linked bucket');
    } else if (b.hasExternalSchema === true) {
      skipped.push({ id, reason: 'external schema' });
      skippedBuckets.set(id, 'external schema');
    } else buckets.push({ id, stage: String(b.stage), name: String(b.name), raw: b });
  }
  return { buckets, skippedBuckets };
}

/** The tables a takeout takes, and those it leaves out (named in `skipped`) that export-async still reads. */
function takenTables(rawTables: Json[], skippedBuckets: Map<string, string>, skipped: Skipped): { tables: TableDescriptor[]; exportableSkipped: TableDescriptor[] } {
  const tables: TableDescriptor[] = [];
  // Left out of a takeout like Keboola's own (php-kbc-project-backup), yet readable with export-async:
  // aliases export their source's rows (storage-api-php-client tests/Backend/CommonPart2/SimpleAliasTest.php),
  // tables of linked buckets work like aliases (connection-docs src/content/docs/catalog/index.md), and
  // tables of external buckets export too (tests/Backend/ExternalBuckets/SnowflakeRegisterBucketTest.php).
  const exportableSkipped: TableDescriptor[] = [];
  for (const t of rawTables) {
    const table = tableFromApi(t);
    const { id, bucketId } = table;
    const bucketReason = skippedBuckets.get(bucketId);
    if (bucketReason !== undefined) {
      skipped.push({ id, reason: `in ${bucketId} (${bucketReason})` });
      exportableSkipped.push(table);
      continue;
    }
    if (t.isAlias === true) {
      skipped.push({ id, reason: `alias of ${String((t.sourceTable as Json | undefined)?.id ?? 'another table')}` });
      exportableSkipped.push(table);
      continue;
    }
    tables.push(table);
  }
  return { tables, exportableSkipped };
}

/** Every component with its configurations, each with its rows, state and every version of both. */
async function listComponents(client: StorageClient): Promise<ComponentDescriptor[]> {
  const summaries = await client.get<Json[]>('components', { query: { include: 'configuration' } });
  const full = await client.get<Json[]>('components', { query: { include: 'configuration,rows,state' } });
  const components: ComponentDescriptor[] = [];
  for (const component of summaries) {
    const detail = full.find((c) => c.id === component.id);
    const configs: ConfigurationDescriptor[] = [];
    for (const config of (detail?.configurations as Json[] | undefined) ?? []) {
      const base = `components/${encodeURIComponent(String(component.id))}/configs/${encodeURIComponent(String(config.id))}`;
      const rows: Json[] = [];
      for (const row of (config.rows as Json[] | undefined) ?? []) {
        rows.push({ ...row, _versions: await versions(client, `${base}/rows/${encodeURIComponent(String(row.id))}/versions`, 'configuration') });
      }
      configs.push({
        id: String(config.id),
        name: String(config.name ?? ''),
        configuration: {},
        raw: { ...config, rows, _versions: await versions(client, `${base}/versions`, 'name,description,configuration,state') },
      });
    }
    components.push({ id: String(component.id), type: String(component.type ?? ''), name: String(component.name ?? ''), configurations: configs, raw: component });
  }
  return components;
}

/** The project behind the token: its buckets, tables and configurations, in the order the API lists them. */
export async function listProject(client: StorageClient, baseUrl: string): Promise<ProjectDescriptor> {
  const verified = await client.get<{ owner?: { id?: number; name?: string; region?: string } }>('tokens/verify');
  const rawBuckets = await client.get<Json[]>('buckets', { query: { include: 'metadata' } });
  const rawTables = await listRawTables(client, rawBuckets);
  const skipped: Skipped = [];
  const { buckets, skippedBuckets } = takenBuckets(rawBuckets, skipped);
  const { tables, exportableSkipped } = takenTables(rawTables, skippedBuckets, skipped);
  const components = await listComponents(client);
  const warnings: string[] = [];
  const keboola = await listExtras(client, components, warnings);
  return {
    ...(verified.owner?.id !== undefined ? { id: verified.owner.id } : {}),
    ...(verified.owner?.name ? { name: verified.owner.name } : {}),
    buckets,
    tables,
    components,
    skipped,
    exportableSkipped,
    keboola,
    ...(warnings.length > 0 ? { warnings } : {}),
    meta: { stack: baseUrl, region: verified.owner?.region ?? null },
  };
}
