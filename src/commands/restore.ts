import { TakeoutError } from '../errors.js';
import { TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import type { RestoreSummary } from '../pipeline/events.js';
import { restoreTakeout } from '../pipeline/restore.js';
import { checkedStore, openStore } from '../stores/registry.js';
import { openTarget, TARGET_FORMS } from '../targets/registry.js';
import { COMMON_OPTIONS, GROUP, destinationOptions, S3_ACCESS_OPTIONS, unthrottled, type OptionSpec, type OptionValues } from './options.js';
import type { CommandContext } from './context.js';
import { readManifest } from './verify.js';

export const RESTORE_OPTIONS = [
  { key: 'to', flags: '--to <target>', description: `where the takeout goes (required): ${TARGET_FORMS}`, type: 'string', group: GROUP.destination },
  { key: 'include', flags: '-i, --include <glob>', description: 'restore only tables whose id or bucket id matches (* any characters, ? one, {a,b} either)', type: 'list', default: [], group: GROUP.source },
  { key: 'exclude', flags: '-x, --exclude <glob>', description: 'leave out tables whose id or bucket id matches; wins over --include', type: 'list', default: [], group: GROUP.source },
  { key: 'structureOnly', flags: '--structure-only', description: 'create the tables (and the _takeout record) without their rows', type: 'boolean', default: false },
  { key: 'dataOnly', flags: '--data-only', description: 'load rows into tables that exist and are empty; create nothing, write no _takeout record', type: 'boolean', default: false },
  { key: 'dryRun', flags: '-n, --dry-run', description: 'read and check the layout, ask the target what it holds, print the plan (tables, where each goes, rows, bytes); write nothing', type: 'boolean', default: false },
  { key: 'token', flags: '--token <token>', description: 'keboola+https://STACK: the Storage API token of the project restored into (prefer KBC_STORAGE_TOKEN)', type: 'string', secret: true, group: GROUP.destination },
  { key: 'resume', flags: '--resume', description: 'go on after an interrupted restore: tables already loaded whole (their row count is the takeout\'s) are skipped; in a Keboola project what the interruption left partial is completed', type: 'boolean', default: false, group: GROUP.destination },
] as const satisfies readonly OptionSpec[];

export const RESTORE_SPECS = [...RESTORE_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS] as const;

export type RestoreOptions = OptionValues<typeof RESTORE_SPECS>;

/**
 * `takeout restore TAKEOUT --to TARGET`: a complete takeout (any store) into a database. The takeout is
 * checked as it is read (restoreTakeout); a partial one is refused, as copy refuses it.
 */
export async function restore(takeoutArg: string, o: RestoreOptions, context: CommandContext): Promise<RestoreSummary> {
  if (typeof o.to !== 'string' || o.to === '') throw new TakeoutError('USAGE', 'takeout restore needs --to TARGET', { hint: `give ${TARGET_FORMS}` });
  if (o.structureOnly && o.dataOnly) throw new TakeoutError('USAGE', 'give --structure-only or --data-only, not both');
  const from = checkedStore(takeoutArg, 'TAKEOUT');
  const store = await openStore(from, destinationOptions(o, unthrottled(context.network)));
  context.onClose(async () => store.close?.());
  const manifest = await readManifest(store, from);
  if (manifest.status !== 'complete') {
    throw new TakeoutError('INVALID_INPUT', `${from}: the takeout is partial (${TAKEOUT_MANIFEST_FILE} says ${manifest.status}): only a complete takeout is restored`, {
      hint: 'finish it with takeout run --resume (the same options), then restore it',
    });
  }
  const target = await openTarget(o.to, {
    ...(o.token ? { token: o.token } : {}),
    warn: (message) => context.reporter.emit({ type: 'warning', message }),
    ...(context.signal ? { signal: context.signal } : {}),
    ...(context.network.onRequest ? { onRequest: context.network.onRequest } : {}),
  });
  context.onClose(async () => target.close());
  context.noteRestore();
  return restoreTakeout({
    store,
    source: from,
    manifest,
    target,
    include: o.include,
    exclude: o.exclude,
    structureOnly: o.structureOnly,
    dataOnly: o.dataOnly,
    dryRun: o.dryRun,
    resume: o.resume,
    signal: context.signal,
    emit: (event) => context.reporter.emit(event),
  });
}
