import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { canCleanLeftovers, type Leftover } from '../stores/store.js';
import { openStore } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import { acquireLease, describeHolder, liveLeases, nestedLeases } from '../pipeline/lease.js';
import { parseDuration, plural } from '../pipeline/units.js';
import { terminalLine } from '../reporting/redact.js';
import { eventLine } from '../reporting/lines.js';
import { addOptions, COMMON_OPTIONS, destinationOptions, resolveOptions, S3_ACCESS_OPTIONS, type OptionSpec } from './options.js';
import type { CommandContext } from './context.js';
import { addExamples } from './help.js';

export const CLEANUP_OPTIONS: OptionSpec[] = [
  { key: 'olderThan', flags: '--older-than <age>', description: 'only leftovers older than this: 30m, 24h, 7d, 1w, or 0 for all', type: 'string', default: '24h' },
  { key: 'dryRun', flags: '-n, --dry-run', description: 'list what would be aborted or removed, change nothing', type: 'boolean', default: false },
];

const ALL = [...CLEANUP_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS];

/** `30m`, `24h`, `7d`, `1w`, `90s` or `0` → milliseconds (parseDuration: a bare number other than 0 has no unit). */
export function parseAge(text: string, origin = '--older-than'): number {
  const age = parseDuration(text, origin);
  if (!age.ok) throw age.error;
  return age.value;
}

/** A key as it can be shown on one line: quoted when it holds control characters. */
function shownKey(key: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(key) ? JSON.stringify(key) : key;
}

function itemLine(item: Leftover, dryRun: boolean): string {
  const key = shownKey(item.key);
  if (item.kind === 'multipart-upload') {
    const started = item.started ? ` (started ${item.started.toISOString()})` : '';
    return `${dryRun ? 'would abort' : 'aborted'} multipart upload ${key}${started}`;
  }
  return `${dryRun ? 'would remove' : 'removed'} temp file ${key}`;
}

export function cleanupCommand(context: CommandContext, stderr: NodeJS.WritableStream): Command {
  const command = new Command('cleanup')
    .argument('<dest>', 'a destination: a local folder or s3://bucket/prefix')
    .summary('abort incomplete multipart uploads and remove temp files that crashed runs left behind')
    .description(
      'A run killed with SIGKILL (or a crashed machine) cannot abort its uploads. Under an S3 prefix this ' +
        'lists the incomplete multipart uploads (ListMultipartUploads) initiated more than --older-than ago and ' +
        'aborts them; in a local folder it removes takeout temp files (.NAME.RANDOM.takeout-tmp) last modified ' +
        'that long ago. Nothing else is touched. --dry-run only lists. With --json one object per item goes to ' +
        'stdout, the summary last.\n\n' +
        'A run in progress holds a lease (takeout-lease.json): cleanup is refused (exit 9) while a run holds ' +
        "the destination's, and leaves alone what lies under a folder whose lease is live; a stale lease is " +
        'taken over.',
    );
  addOptions(command, ALL);
  addExamples(command, [
    ['what would go under an S3 prefix', 'takeout cleanup s3://backups/kbc/ --region eu-central-1 --dry-run'],
    ['every temp file in a folder, however recent', 'takeout cleanup ./takeouts --older-than 0'],
    ['as JSON, one object per item', 'takeout cleanup s3://backups/kbc/ --older-than 7d --json'],
  ]);
  command.action(async (dest: string) => {
    const o = resolveOptions(command, ALL);
    const olderThanMs = parseAge(String(o.olderThan ?? '24h'));
    await context.configure(o);
    const json = o.json === true;
    const quiet = o.quiet === true;
    const dryRun = o.dryRun === true;
    const line = (text: string): void => {
      stderr.write(`${terminalLine(text)}\n`);
    };
    const emit = (value: { type: string } & Record<string, unknown>): void => {
      context.io.stdout.write(`${eventLine(value)}\n`);
    };
    const destination = await openStore(dest, destinationOptions(o, context.network));
    context.onClose(async () => destination.close?.());
    if (!canCleanLeftovers(destination)) {
      throw new TakeoutError('USAGE', `${destination.description} cannot be cleaned up: it does not list leftovers`);
    }
    const leftovers = destination.leftovers.bind(destination);
    const removeLeftover = destination.removeLeftover.bind(destination);
    let uploads = 0;
    let temps = 0;
    let kept = 0;
    const clean = async (): Promise<void> => {
      // A run under a folder of this prefix (cleanup s3://backups/ while a run writes to s3://backups/kbc/).
      const holderOf = nestedLeases(destination);
      for (const item of found) {
        if (context.signal.aborted) throw new TakeoutError('INTERRUPTED', 'cleanup interrupted');
        if (lease?.failure) throw lease.failure;
        const holder = await holderOf(item.key);
        if (holder) {
          kept += 1;
          if (json) emit({ type: 'cleanup:item', action: 'kept', kind: item.kind, key: item.key, reason: `live lease of ${holder.folder}`, holder: holder.lease.runId });
          else if (!quiet) line(`left alone ${item.kind === 'multipart-upload' ? 'multipart upload' : 'temp file'} ${shownKey(item.key)}: ${shownKey(holder.folder)} is in use by ${describeHolder(holder.lease)}`);
          continue;
        }
        if (!dryRun) await removeLeftover(item);
        if (item.kind === 'multipart-upload') uploads += 1;
        else temps += 1;
        if (json) {
          emit({
            type: 'cleanup:item',
            action: item.kind === 'multipart-upload' ? (dryRun ? 'would-abort' : 'aborted') : dryRun ? 'would-remove' : 'removed',
            kind: item.kind,
            key: item.key,
            ...(item.started ? { started: item.started.toISOString() } : {}),
            ...(item.id === undefined ? {} : { uploadId: item.id }),
          });
        } else if (!quiet) {
          line(itemLine(item, dryRun));
        }
      }
      if (json) {
        emit({ type: 'cleanup:summary', destination: destination.description, dryRun, olderThanMs, multipartUploads: uploads, tempFiles: temps, keptForLiveRuns: kept });
      } else if (!quiet) {
        const what = `${plural(uploads, 'incomplete multipart upload')}, ${plural(temps, 'temp file')}`;
        const age = olderThanMs === 0 ? '' : ` older than ${String(o.olderThan)}`;
        const left = kept > 0 ? `; left ${plural(kept, 'item')} alone (runs in progress)` : '';
        line(`${dryRun ? 'would clean up' : 'cleaned up'} ${what}${age} in ${destination.description}${left}`);
      }
    };
    // A live run's uploads look just like a dead one's: cleanup holds the lease while it works, so no run
    // starts meanwhile, and is refused (exit 9) while a run holds it. A dry run only says so.
    const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomUUID().slice(0, 8)}`;
    // Listed first: a folder with nothing to clean is not created by writing a lease into it.
    const found: Leftover[] = [];
    for await (const item of leftovers(olderThanMs)) {
      if (context.signal.aborted) throw new TakeoutError('INTERRUPTED', 'cleanup interrupted');
      found.push(item);
    }
    const lease = dryRun || found.length === 0
      ? undefined
      : await acquireLease(destination, { runId, command: 'cleanup', toolVersion: context.version, scope: { kind: 'run' }, takeOver: true, takeOverWith: 'cleanup', emit: (event) => context.reporter.emit(event), signal: context.signal });
    if (dryRun) {
      for (const holder of await liveLeases(destination)) line(`${destination.description} is in use by ${describeHolder(holder)}: a cleanup now would be refused`);
    }
    try {
      await clean();
    } finally {
      await lease?.release((event) => context.reporter.emit(event));
    }
  });
  return command;
}

