import { TakeoutError } from '../../errors.js';
import { bucketIdOf, NOTIFICATIONS_FILE, PERMANENT_FILES_FILE, TABLES_FILE, TRIGGERS_FILE } from '../../keboola/layout.js';
import { TAKEOUT_MANIFEST_FILE } from '../../manifests/takeout.js';
import type { StorageClient } from '../../sources/keboola/client.js';
import type { RestoreExtra, TakeoutMetadata } from '../target.js';
import { listFile, type Json } from './api.js';
import { bucketSkipReason } from './buckets.js';
import { configurationSkipReason } from './configurations.js';
import { createSubscription, planNotification, subscriptionTarget, type SubscriptionTarget } from './notifications.js';
import { permanentFilesOf, planPermanentFile, uploadPermanentFile } from './permanent-files.js';
import { createTrigger, planTrigger, type TriggerContext } from './triggers.js';
import type { UploadOptions } from './files.js';

/**
 * What a Keboola project gets after its tables and aliases, in the order of Keboola's restore engine
 * (keboola/app-project-restore Application.php run: restoreTriggers, restoreNotifications, restorePermanentFiles),
 * and the same decisions for the plan (--dry-run): which configurations are left out, which triggers cannot be
 * made, what each step creates.
 */

/** The tables (and aliases) a restore of these metadata gives the project: the selected ones outside skipped buckets. */
export function restoredTables(metadata: TakeoutMetadata): Set<string> {
  const skipped = new Set(metadata.buckets.filter((b) => bucketSkipReason(b) !== undefined).map((b) => String(b.id)));
  const tables = new Set(metadata.tables.map((t) => t.raw).filter((t) => !skipped.has(bucketIdOf(t))).map((t) => String(t.id)));
  for (const alias of listFile(metadata, TABLES_FILE)) {
    if (alias.isAlias === true && tables.has(String((alias.sourceTable as Json | undefined)?.id)) && !skipped.has(bucketIdOf(alias))) tables.add(String(alias.id));
  }
  return tables;
}

/** The configurations left out, named as the restore names them. */
export function configurationExtras(metadata: TakeoutMetadata, stackComponents: ReadonlySet<string>, stack: string): RestoreExtra[] {
  const out: RestoreExtra[] = [];
  for (const c of metadata.configurations) {
    const reason = configurationSkipReason(c.componentId, stackComponents, stack);
    if (reason) out.push({ kind: 'configuration', name: `${c.componentId}/${c.configurationId}`, action: 'skip', reason });
  }
  return out;
}

/** The plan: configurations left out, then each trigger, subscription and permanent file. */
export function planExtras(metadata: TakeoutMetadata, stackComponents: ReadonlySet<string>, stack: string): RestoreExtra[] {
  const skippedConfigs = configurationExtras(metadata, stackComponents, stack);
  const left = new Set(skippedConfigs.map((e) => e.name));
  const context: TriggerContext = {
    tables: restoredTables(metadata),
    configurations: new Set(metadata.configurations.map((c) => `${c.componentId}/${c.configurationId}`).filter((c) => !left.has(c))),
  };
  return [
    ...skippedConfigs,
    ...listFile(metadata, TRIGGERS_FILE).map((t) => planTrigger(t, context)),
    ...listFile(metadata, NOTIFICATIONS_FILE).map(planNotification),
    ...permanentFilesOf(listFile(metadata, PERMANENT_FILES_FILE)).map(planPermanentFile),
  ];
}

/** Each file's size as the takeout manifest lists it (files/prepare `sizeBytes` of a permanent file). */
function listedSizes(metadata: TakeoutMetadata): Map<string, number> {
  const manifest = JSON.parse(metadata.files.find((f) => f.key === TAKEOUT_MANIFEST_FILE)?.text ?? '{}') as { files?: { key: string; bytes: number }[] };
  return new Map((manifest.files ?? []).map((f) => [f.key, f.bytes]));
}

export interface ExtrasRun {
  client: StorageClient;
  /** `<component>/<configurationId>` of the configurations created. */
  configurations: ReadonlySet<string>;
  upload: UploadOptions;
  warn: (message: string) => void;
  /** --resume: how many of the triggers, subscriptions and permanent files (in this order) the interrupted restore made. */
  alreadyDone: number;
  /** Told after each is made (or named as not made): the mark's count, so --resume makes none twice. */
  onDone: (done: number) => Promise<void>;
}

/** Triggers, then notification subscriptions, then permanent files; answers what each became. */
export async function restoreExtras(metadata: TakeoutMetadata, run: ExtrasRun): Promise<RestoreExtra[]> {
  const { client, warn } = run;
  const done: RestoreExtra[] = [];
  let index = 0;
  /** Each step once: one the interrupted restore made is named, not made again. */
  const step = async (planned: RestoreExtra, make: () => Promise<RestoreExtra>): Promise<void> => {
    if (index < run.alreadyDone) done.push({ ...planned, action: 'skip', reason: 'made before the interruption' });
    else {
      done.push(await make());
      await run.onDone(index + 1);
    }
    index++;
  };
  const context: TriggerContext = { tables: restoredTables(metadata), configurations: run.configurations };
  for (const trigger of listFile(metadata, TRIGGERS_FILE)) await step(planTrigger(trigger, context), () => createTrigger(client, trigger, context, warn));
  const subscriptions = listFile(metadata, NOTIFICATIONS_FILE);
  let target: SubscriptionTarget | undefined;
  for (const subscription of subscriptions) {
    await step(planNotification(subscription), async () => createSubscription(client, subscription, (target ??= await subscriptionTarget(client)), warn));
  }
  const files = permanentFilesOf(listFile(metadata, PERMANENT_FILES_FILE));
  if (files.length > 0 && !metadata.openListed) throw new TakeoutError('FAILED', `${run.upload.description}: the takeout's permanent files cannot be read`);
  const sizes = files.length > 0 ? listedSizes(metadata) : new Map<string, number>();
  for (const file of files) {
    await step(planPermanentFile(file), async () => {
      await uploadPermanentFile(client, file, sizes.get(`files/${file.id}`) ?? 0, metadata.openListed!, run.upload);
      return planPermanentFile(file);
    });
  }
  return done;
}
