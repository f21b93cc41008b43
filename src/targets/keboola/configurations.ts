import type { StorageClient } from '../../sources/keboola/client.js';
import type { Json } from './api.js';

/**
 * Configurations as Keboola's restore engine makes them (php-kbc-project-restore Restore.php restoreConfigs),
 * on the default branch (`branch/default/…`, apiary.apib "Components and Configurations"): created with
 * its id and name, then its body (`PUT`), its state, each row in order (create, body, state), the rows'
 * sort order, then its metadata. Encrypted values (`#` keys, `KBC::ProjectSecure::…` ciphertexts) are
 * sent as they are: they are bound to the source project, so they are listed to be re-entered
 * (help.keboola.com "Project migration": all encrypted values must be re-entered).
 */

const BRANCH = 'branch/default/components';

/**
 * Components whose configurations Keboola's restore engine does not restore (keboola/app-project-restore
 * Application.php COMPONENTS_WITH_CUSTOM_RESTORE), with the app it names for moving them: their configurations
 * point at what belongs to the source project (an orchestration's tasks, a GoodData project, a Snowflake
 * writer's provisioned workspace), which those apps translate and a plain copy would not.
 */
export const COMPONENTS_WITH_CUSTOM_RESTORE: ReadonlyMap<string, string> = new Map([
  ['orchestrator', 'Orchestrator Migrate App'],
  ['gooddata-writer', 'GoodData Writer Migrate App'],
  ['keboola.wr-db-snowflake', 'Snowflake Writer Migrate App'],
  ['keboola.wr-snowflake-blob-storage', 'Snowflake Writer Migrate App'],
  ['keboola.wr-db-snowflake-gcs', 'Snowflake Writer Migrate App'],
  ['keboola.wr-db-snowflake-gcs-s3', 'Snowflake Writer Migrate App'],
]);

/** Why a configuration is not restored (left to a Migrate app, or its component missing on the stack), or undefined. */
export function configurationSkipReason(componentId: string, stackComponents: ReadonlySet<string>, stack: string): string | undefined {
  const app = COMPONENTS_WITH_CUSTOM_RESTORE.get(componentId);
  if (app !== undefined) return `Keboola's restore engine leaves ${componentId} configurations to the ${app}; move them with it`;
  if (!stackComponents.has(componentId)) return `component ${componentId} does not exist on ${stack}`;
  return undefined;
}

/** `[]` (PHP's empty object in a decoded backup) becomes `{}`, as the engine sends it. */
function object(value: unknown): unknown {
  return Array.isArray(value) && value.length === 0 ? {} : value;
}

/** The paths of every `#` key holding a value, for the list of values to re-enter. */
export function encryptedKeys(value: unknown, path = ''): string[] {
  if (typeof value !== 'object' || value === null) return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value as Json)) {
    const here = path === '' ? key : `${path}.${key}`;
    if (key.startsWith('#') && typeof v === 'string' && v !== '') out.push(here);
    else out.push(...encryptedKeys(v, here));
  }
  return out;
}

export interface ConfigurationToRestore {
  componentId: string;
  configurationId: string;
  body: Json;
  /** `configurations/<c>/<id>.json.metadata` when the takeout has it: `[{key, value, …}]`. */
  metadata?: unknown;
}

/**
 * Creates one configuration with its rows, state and metadata; answers the `#` values to re-enter. With
 * `existing` (--resume: what an interrupted restore of the same takeout left, as `GET …/configs/{id}`
 * answers it), what is there is set again and what is missing is created: every step but the creations is
 * an update, so going through it again ends where one uninterrupted pass would.
 */
export async function createConfiguration(client: StorageClient, config: ConfigurationToRestore, signal?: AbortSignal, existing?: Json): Promise<string[]> {
  const { componentId, configurationId, body } = config;
  const at = `${BRANCH}/${encodeURIComponent(componentId)}/configs`;
  const id = encodeURIComponent(configurationId);
  const s = signal ? { signal } : {};
  const name = typeof body.name === 'string' ? body.name : configurationId;
  const description = typeof body.description === 'string' ? body.description : '';
  if (!existing) await client.post(at, { body: { name, description, configurationId }, ...s });
  const heldRows = new Set(((existing?.rows as Json[] | undefined) ?? []).map((r) => String(r.id)));
  const update = {
    name,
    description,
    configuration: object(body.configuration ?? {}),
    changeDescription: `Configuration ${configurationId} restored from a takeout`,
    ...(typeof body.isDisabled === 'boolean' ? { isDisabled: body.isDisabled } : {}),
  };
  await client.request('PUT', `${at}/${id}`, { body: update, ...s });
  if (body.state !== undefined && body.state !== null) await client.request('PUT', `${at}/${id}/state`, { body: { state: object(body.state) }, ...s });
  const rows = Array.isArray(body.rows) ? (body.rows as Json[]) : [];
  const secrets = encryptedKeys(body.configuration).map((k) => `configuration ${componentId}/${configurationId}: ${k}`);
  for (const row of rows) {
    const rowId = String(row.id);
    if (!heldRows.has(rowId)) await client.post(`${at}/${id}/rows`, { body: { rowId, ...(typeof row.name === 'string' ? { name: row.name } : {}) }, ...s });
    await client.request('PUT', `${at}/${id}/rows/${encodeURIComponent(rowId)}`, {
      body: {
        name: typeof row.name === 'string' ? row.name : '',
        description: typeof row.description === 'string' ? row.description : '',
        configuration: object(row.configuration ?? {}),
        isDisabled: row.isDisabled === true,
        changeDescription: `Row ${rowId} restored from a takeout`,
      },
      ...s,
    });
    if (row.state !== undefined && row.state !== null) await client.request('PUT', `${at}/${id}/rows/${encodeURIComponent(rowId)}/state`, { body: { state: object(row.state) }, ...s });
    secrets.push(...encryptedKeys(row.configuration).map((k) => `configuration ${componentId}/${configurationId} row ${rowId}: ${k}`));
  }
  const order = Array.isArray(body.rowsSortOrder) ? body.rowsSortOrder : [];
  if (order.length > 0) {
    await client.request('PUT', `${at}/${id}`, { body: { ...update, rowsSortOrder: order, changeDescription: 'Rows sort order restored from a takeout' }, ...s });
  }
  if (Array.isArray(config.metadata) && config.metadata.length > 0) {
    // The engine drops `id` and `timestamp`, which the stack assigns.
    const metadata = (config.metadata as Json[]).map((m) => ({ key: m.key, value: m.value }));
    await client.post(`${at}/${id}/metadata`, { body: { metadata }, ...s });
  }
  return secrets;
}
