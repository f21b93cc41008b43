import { createHash } from 'node:crypto';
import {
  BRANCH_METADATA_FILE,
  NO_KEBOOLA_EXTRAS,
  NOTIFICATIONS_FILE,
  PERMANENT_FILES_FILE,
  TRIGGERS_FILE,
  permanentFileKey,
  permanentFilesJson,
} from '../../keboola/layout.js';
import type { TakeoutManifest } from '../../manifests/takeout.js';
import type { KeboolaProjectExtras, PermanentFileDescriptor } from '../../model.js';
import type { RunOptions } from './options.js';
import type { TakeoutPlan } from './plan.js';

/**
 * The files Keboola's restore engine reads besides buckets, tables and configurations
 * (keboola/php-kbc-project-restore `src/Restore.php`: restoreProjectMetadata, restoreTriggers,
 * restoreNotifications, restorePermanentFiles): written by every takeout, with the empty lists
 * keboola/php-kbc-project-backup writes for a project that has none, so a missing file never fails a restore.
 */

type PutJson = (key: string, value: unknown) => Promise<void>;

export interface ExtrasWriter {
  putJson: PutJson;
  /** Keys this run wrote, removed again when the run fails before its manifest. */
  layoutKeys: string[];
  written: Set<string>;
  files: TakeoutManifest['files'];
  createOnly: boolean;
}

/** The project's extras, or the empty ones: a single-table export (`configurations: false`) takes none. */
export function extrasOf(options: RunOptions, plan: TakeoutPlan): KeboolaProjectExtras {
  if (options.configurations === false) return NO_KEBOOLA_EXTRAS;
  return plan.project.keboola ?? NO_KEBOOLA_EXTRAS;
}

export async function writeKeboolaExtras(options: RunOptions, plan: TakeoutPlan, out: ExtrasWriter): Promise<void> {
  const extras = extrasOf(options, plan);
  await out.putJson(BRANCH_METADATA_FILE, extras.branchMetadata);
  await out.putJson(TRIGGERS_FILE, extras.triggers);
  await out.putJson(NOTIFICATIONS_FILE, extras.notifications);
  const taken: PermanentFileDescriptor[] = [];
  for (const file of extras.permanentFiles) {
    if (await writePermanentFile(options, file, out)) taken.push(file);
  }
  // Listed only once its bytes are at the destination: Restore.php reads `files/<id>` for each entry.
  await out.putJson(PERMANENT_FILES_FILE, permanentFilesJson(taken));
}

/**
 * One permanent file's bytes, streamed from the project's file storage into `files/<id>` (never held whole),
 * with its size and sha256 for the manifest. A sliced file (a manifest and its slices) is left out with a
 * warning: Backup.php would store the manifest's JSON, which a restore would upload as the file.
 */
async function writePermanentFile(options: RunOptions, file: PermanentFileDescriptor, out: ExtrasWriter): Promise<boolean> {
  const { source, destination, emit, signal } = options;
  let open = file.open;
  if (open === undefined) {
    if (!source.openFile) return false;
    const body = await source.openFile(String(file.id), signal ? { signal } : {});
    const only = body.slices[0];
    if (!body.header || body.slices.length !== 1 || only === undefined) {
      emit({ type: 'warning', message: `permanent file ${file.id} (${file.name}) is sliced: left out of permanentFiles.json` });
      return false;
    }
    open = only.open;
  }
  const key = permanentFileKey(file);
  const hash = createHash('sha256');
  let bytes = 0;
  const writer = await destination.writer(key, {
    contentType: 'application/octet-stream',
    ifNoneMatch: out.createOnly,
    ...(signal ? { signal } : {}),
  });
  try {
    const stream = await open();
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      await writer.write(chunk);
    }
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  out.layoutKeys.push(key);
  out.written.add(key);
  out.files.push({ key, bytes, sha256: hash.digest('hex') });
  emit({ type: 'file:written', key, bytes });
  return true;
}
