import { TakeoutError, toTakeoutError } from '../../errors.js';
import { registerSecret } from '../../secrets.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import type { RestoreExtra } from '../target.js';
import type { Json } from './api.js';

/**
 * Triggers as Keboola's restore engine restores them (php-kbc-project-restore Restore.php restoreTriggers): one
 * without tables skipped (named); for each other, a token of its own to run with (`POST tokens`, the engine's
 * description and rights), then `POST triggers` with it (apiary.apib "Triggers / Create": runWithTokenId, component,
 * configurationId, coolDownPeriodMinutes, tableIds). Takeout differs in one rule: a trigger whose configuration or
 * tables the project did not get (a bucket skipped, --include/--exclude, a component the stack lacks) is not created
 * — it would watch tables that are not there or run a configuration that is not — and is named instead.
 */

export interface TriggerContext {
  /** Tables (and aliases) the project gets from this restore. */
  tables: ReadonlySet<string>;
  /** `<component>/<configurationId>` of the configurations it gets. */
  configurations: ReadonlySet<string>;
}

const tableIdsOf = (trigger: Json): string[] => (Array.isArray(trigger.tables) ? (trigger.tables as Json[]).map((t) => String(t.tableId)) : []);

export function triggerName(trigger: Json): string {
  return `${String(trigger.id)} (${String(trigger.component)}/${String(trigger.configurationId)})`;
}

/** Whether a trigger is created, and why not: the same answer for the plan and the restore. */
export function planTrigger(trigger: Json, context: TriggerContext): RestoreExtra {
  const name = triggerName(trigger);
  const tables = tableIdsOf(trigger);
  if (tables.length === 0) return { kind: 'trigger', name, action: 'skip', reason: 'it watches no tables' };
  const config = `${String(trigger.component)}/${String(trigger.configurationId)}`;
  if (!context.configurations.has(config)) return { kind: 'trigger', name, action: 'skip', reason: `its configuration ${config} is not restored` };
  const missing = tables.filter((t) => !context.tables.has(t));
  if (missing.length > 0) return { kind: 'trigger', name, action: 'skip', reason: `its table${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not restored` };
  return { kind: 'trigger', name, action: 'create' };
}

/** A 4xx answer (the project refused the trigger): a named warning, as the engine's `Trigger cannot be restored`. */
function refused(error: unknown): TakeoutError | undefined {
  const failure = toTakeoutError(error);
  const status = (failure.details as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500 ? failure : undefined;
}

/** Creates one trigger (its token first); answers what happened. */
export async function createTrigger(client: StorageClient, trigger: Json, context: TriggerContext, warn: (message: string) => void): Promise<RestoreExtra> {
  const planned = planTrigger(trigger, context);
  if (planned.action === 'skip') {
    warn(`trigger ${planned.name} is not restored: ${planned.reason}`);
    return planned;
  }
  let tokenId: string | undefined;
  try {
    // The engine's token for it (TokenCreateOptions: description, canManageBuckets, canReadAllFileUploads; apiary.apib "Create token").
    const token = await client.post<Json>('tokens', {
      body: { description: `[_internal] Token for triggering ${String(trigger.configurationId)}`, canManageBuckets: true, canReadAllFileUploads: true },
    });
    // The token's secret is never needed here, and never printed.
    if (typeof token.token === 'string') registerSecret(token.token);
    if (token.id === undefined) throw new TakeoutError('FAILED', `trigger ${planned.name}: POST tokens answered no token id`);
    tokenId = String(token.id);
    await client.post('triggers', {
      body: {
        runWithTokenId: Number(token.id),
        component: trigger.component,
        configurationId: String(trigger.configurationId),
        coolDownPeriodMinutes: trigger.coolDownPeriodMinutes,
        tableIds: tableIdsOf(trigger),
      },
    });
    return planned;
  } catch (error) {
    const failure = refused(error);
    if (!failure) throw error;
    // A refused trigger leaves no token behind for nothing to run with (apiary.apib "Delete Token"); the engine keeps it.
    if (tokenId !== undefined) await client.request('DELETE', `tokens/${encodeURIComponent(tokenId)}`).catch(() => undefined);
    warn(`trigger ${planned.name} is not restored: ${failure.message}`);
    return { ...planned, action: 'skip', reason: failure.message };
  }
}
