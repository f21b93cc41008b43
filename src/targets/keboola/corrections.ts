import type { Json } from './api.js';

/**
 * What Keboola's restore engine changes in a configuration before it sends it (php-kbc-project-restore
 * StorageApi/ConfigurationCorrector.php and StackSpecificComponentIdTranslator.php), so that a restored project
 * does not act on the source project's behalf: an OAuth authorization's id (bound to the source project) and a
 * data app's id are removed, and a flow's tasks name the Snowflake writer the destination stack has. Flows
 * (`keboola.orchestrator`) are also restored disabled (Restore.php: "so restored flows do not start").
 * Each change is said, so the user knows what to do by hand.
 */

export const FLOW_COMPONENT = 'keboola.orchestrator';
const DATA_APPS_COMPONENT = 'keboola.data-apps';

/** Writers whose component differs per stack (StackSpecificComponentIdTranslator STACK_SPECIFIC_COMPONENTS). */
const STACK_SPECIFIC: Record<string, Record<string, string>> = {
  'keboola.wr-db-snowflake': {
    'connection.europe-west3.gcp.keboola.com': 'keboola.wr-db-snowflake-gcs',
    'connection.us-east4.gcp.keboola.com': 'keboola.wr-db-snowflake-gcs',
    'connection.europe-west2.gcp.keboola.com': 'keboola.wr-db-snowflake-gcs',
    'connection.us-central1.gcp.keboola.dev': 'keboola.wr-db-snowflake-gcs',
  },
  'keboola.wr-snowflake-blob-storage': {
    'connection.europe-west3.gcp.keboola.com': 'keboola.wr-db-snowflake-gcs',
    'connection.us-east4.gcp.keboola.com': 'keboola.wr-db-snowflake-gcs',
    'connection.europe-west2.gcp.keboola.com': 'keboola.wr-db-snowflake-gcs',
    'connection.us-central1.gcp.keboola.dev': 'keboola.wr-db-snowflake-gcs',
    'connection.keboola.com': 'keboola.wr-db-snowflake',
    'connection.eu-central-1.keboola.com': 'keboola.wr-db-snowflake',
  },
};
/** GCP stacks whose Snowflake-backed projects write through the `-s3` variant (STACK_ALLOW_GCS_S3_WRITER). */
const GCS_S3_WRITER_STACKS = new Set(['connection.europe-west3.gcp.keboola.com', 'connection.us-east4.gcp.keboola.com']);

/** A flow task's component for the destination stack (its host) and the project's default backend. */
export function stackComponentId(componentId: string, stackHost: string, backend: string): string {
  const byStack = STACK_SPECIFIC[componentId];
  const translated = byStack?.[stackHost];
  if (translated === undefined) return componentId;
  return translated === 'keboola.wr-db-snowflake-gcs' && backend === 'snowflake' && GCS_S3_WRITER_STACKS.has(stackHost) ? `${translated}-s3` : translated;
}

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The configuration to send (a copy; the takeout's stays as it is) and what was changed, in words. */
export function correctConfiguration(componentId: string, configuration: unknown, stackHost: string, backend: string): { configuration: unknown; changes: string[] } {
  if (!isObject(configuration)) return { configuration, changes: [] };
  const copy = structuredClone(configuration);
  const changes: string[] = [];
  if (componentId === FLOW_COMPONENT && Array.isArray(copy.tasks)) {
    for (const task of copy.tasks as unknown[]) {
      const inner = isObject(task) && isObject(task.task) ? task.task : undefined;
      if (!inner || typeof inner.componentId !== 'string') continue;
      const to = stackComponentId(inner.componentId, stackHost, backend);
      if (to !== inner.componentId) {
        changes.push(`a task's component ${inner.componentId} is ${to} on this stack`);
        inner.componentId = to;
      }
    }
  }
  if (componentId === DATA_APPS_COMPONENT && isObject(copy.parameters) && 'id' in copy.parameters) {
    delete copy.parameters.id;
    changes.push("the data app's id was removed (the stack gives it a new one)");
  }
  const oauth = isObject(copy.authorization) && isObject(copy.authorization.oauth_api) ? copy.authorization.oauth_api : undefined;
  if (oauth && 'id' in oauth) {
    delete oauth.id;
    changes.push('its OAuth authorization was removed: authorize it again in the project');
  }
  return { configuration: copy, changes };
}
