import { TakeoutError } from '../errors.js';
import { TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import { copyTakeout } from '../pipeline/copy.js';
import type { CopySummary } from '../pipeline/events.js';
import { checkedStore, openStore } from '../stores/registry.js';
import { COMMON_OPTIONS, GROUP, destinationOptions, S3_OPTIONS, unthrottled, type OptionSpec, type OptionValues } from './options.js';
import type { CommandContext } from './context.js';
import { readManifest } from './verify.js';

export const COPY_OPTIONS = [
  { key: 'overwrite', flags: '--overwrite', description: 'replace a takeout already at DEST, removing its files the copy does not write', type: 'boolean', default: false, group: GROUP.destination },
  { key: 'concurrency', flags: '-c, --concurrency <n>', description: 'objects copied at once', type: 'int', default: 8, min: 1, max: 64 },
  { key: 'dryRun', flags: '--dry-run', description: 'check both ends and say what would be copied, and how (server-side or through this machine); write nothing', type: 'boolean', default: false },
] as const satisfies readonly OptionSpec[];

export const COPY_SPECS = [...COPY_OPTIONS, ...S3_OPTIONS, ...COMMON_OPTIONS] as const;

export type CopyOptions = OptionValues<typeof COPY_SPECS>;

/**
 * `takeout copy SOURCE DEST`: a committed takeout (takeout-manifest.json, status complete) to another folder or
 * prefix, server-side where the destination's store reaches the source's (copyTakeout says which objects went
 * how). A partial takeout is refused: copying it would make a second copy of a run that still has to finish.
 */
export async function copy(sourceArg: string, destArg: string, o: CopyOptions, context: CommandContext): Promise<CopySummary> {
  const from = checkedStore(sourceArg, 'SOURCE');
  const to = checkedStore(destArg, 'DEST');
  const source = await openStore(from, destinationOptions(o, unthrottled(context.network)));
  context.onClose(async () => source.close?.());
  const manifest = await readManifest(source, from);
  if (manifest.status !== 'complete') {
    const failed = manifest.tables.filter((t) => t.status === 'failed').map((t) => t.id);
    throw new TakeoutError('INVALID_INPUT', `${from}: the takeout is partial (${TAKEOUT_MANIFEST_FILE} says ${manifest.status}${failed.length ? `; failed: ${failed.slice(0, 5).join(', ')}` : ''}): only a complete takeout is copied`, {
      hint: 'finish it with takeout run --resume (the same options), then copy it',
    });
  }
  const destination = await openStore(to, destinationOptions(o, context.network));
  context.noteDestination(destination);
  context.onClose(async () => destination.close?.());
  return copyTakeout({
    source,
    destination,
    manifest,
    overwrite: o.overwrite,
    concurrency: o.concurrency,
    dryRun: o.dryRun,
    toolVersion: context.version,
    signal: context.signal,
    emit: (event) => context.reporter.emit(event),
  });
}
