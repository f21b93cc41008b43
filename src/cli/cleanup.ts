import { Command } from 'commander';
import type { Leftover } from '../stores/store.js';
import { cleanup, CLEANUP_SPECS, parseAge, type CleanupEvent } from '../commands/cleanup.js';
import { describeHolder } from '../pipeline/lease.js';
import { plural } from '../units.js';
import { terminalLine } from '../reporting/redact.js';
import { eventLine } from '../reporting/lines.js';
import { addOptions, resolveOptions } from './options.js';
import { STORE_FORMS } from '../commands/options.js';
import type { CliContext } from './context.js';
import { addExamples } from './help.js';

/** A key as it can be shown on one line: quoted when it holds control characters. */
function shownKey(key: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(key) ? JSON.stringify(key) : key;
}

/**
 * What an unfinished upload is called where it lies (the JSON keeps one kind, `multipart-upload`): S3's
 * incomplete multipart uploads, Azure's blobs with uncommitted blocks (discarded by the service after 7 days
 * otherwise: learn.microsoft.com "Put Block"), GCS's resumable upload sessions (never listed: they expire).
 */
function uploadNoun(destination: string): [string, string] {
  if (destination.startsWith('azure://')) return ['blob with uncommitted blocks', 'blobs with uncommitted blocks'];
  if (destination.startsWith('gs://')) return ['open resumable upload', 'open resumable uploads'];
  return ['incomplete multipart upload', 'incomplete multipart uploads'];
}

function itemLine(item: Leftover, dryRun: boolean, destination: string): string {
  const key = shownKey(item.key);
  if (item.kind === 'multipart-upload') {
    const started = item.started ? ` (started ${item.started.toISOString()})` : '';
    if (destination.startsWith('azure://')) return `${dryRun ? 'would discard' : 'discarded'} the uncommitted blocks of ${key}${started}`;
    return `${dryRun ? 'would abort' : 'aborted'} multipart upload ${key}${started}`;
  }
  return `${dryRun ? 'would remove' : 'removed'} temp file ${key}`;
}

export function cleanupCommand(context: CliContext, stderr: NodeJS.WritableStream): Command {
  const command = new Command('cleanup')
    .argument('<dest>', `a destination: ${STORE_FORMS}`)
    .summary('abort incomplete multipart uploads and remove temp files that crashed runs left behind')
    .description(
      'A run killed with SIGKILL (or a crashed machine) cannot abort its uploads. Under an S3 prefix this ' +
        'lists the incomplete multipart uploads (ListMultipartUploads) initiated more than --older-than ago and ' +
        'aborts them; under an Azure prefix it discards the uncommitted blocks of blobs never committed; GCS ' +
        'resumable upload sessions cannot be listed and expire on their own; in a local folder it removes ' +
        'takeout temp files (.NAME.RANDOM.takeout-tmp) last modified ' +
        'that long ago. Nothing else is touched. --dry-run only lists. With --json one object per item goes to ' +
        'stdout, the summary last.\n\n' +
        'A run in progress holds a lease (takeout-lease.json): cleanup is refused (exit 9) while a run holds ' +
        "the destination's, and leaves alone what lies under a folder whose lease is live; a stale lease is " +
        'taken over.',
    );
  addOptions(command, CLEANUP_SPECS);
  addExamples(command, [
    ['what would go under an S3 prefix', 'takeout cleanup s3://backups/kbc/ --region eu-central-1 --dry-run'],
    ['every temp file in a folder, however recent', 'takeout cleanup ./takeouts --older-than 0'],
    ['as JSON, one object per item', 'takeout cleanup s3://backups/kbc/ --older-than 7d --json'],
  ]);
  command.action(async (dest: string) => {
    const o = resolveOptions(command, CLEANUP_SPECS);
    const olderThanMs = parseAge(o.olderThan);
    await context.configure(o);
    const line = (text: string): void => {
      stderr.write(`${terminalLine(text)}\n`);
    };
    await cleanup(dest, o, olderThanMs, context, (event) => {
      // Said whatever the output options: a dry run tells that the real one would be refused.
      if (event.kind === 'in-use') line(`${event.destination} is in use by ${describeHolder(event.holder)}: a cleanup now would be refused`);
      else if (o.json) context.io.stdout.write(`${eventLine(eventObject(event))}\n`);
      else if (!o.quiet) line(eventText(event, o.olderThan, dest));
    });
  });
  return command;
}

/** An event as --json prints it: one object per item, the summary last. */
function eventObject(event: Exclude<CleanupEvent, { kind: 'in-use' }>): { type: string } & Record<string, unknown> {
  if (event.kind === 'summary') return { type: 'cleanup:summary', ...event.summary };
  const { item } = event;
  if (event.kind === 'kept') return { type: 'cleanup:item', action: 'kept', kind: item.kind, key: item.key, reason: `live lease of ${event.folder}`, holder: event.holder.runId };
  const dryRun = event.dryRun;
  return {
    type: 'cleanup:item',
    action: item.kind === 'multipart-upload' ? (dryRun ? 'would-abort' : 'aborted') : dryRun ? 'would-remove' : 'removed',
    kind: item.kind,
    key: item.key,
    ...(item.started ? { started: item.started.toISOString() } : {}),
    ...(item.id === undefined ? {} : { uploadId: item.id }),
  };
}

/** An event as a line on stderr. */
function eventText(event: Exclude<CleanupEvent, { kind: 'in-use' }>, olderThan: string, destination: string): string {
  if (event.kind === 'kept') {
    return `left alone ${event.item.kind === 'multipart-upload' ? (destination.startsWith('azure://') ? 'blob with uncommitted blocks' : 'multipart upload') : 'temp file'} ${shownKey(event.item.key)}: ${shownKey(event.folder)} is in use by ${describeHolder(event.holder)}`;
  }
  if (event.kind === 'cleaned') return itemLine(event.item, event.dryRun, destination);
  const { summary } = event;
  const what = `${plural(summary.multipartUploads, ...uploadNoun(summary.destination))}, ${plural(summary.tempFiles, 'temp file')}`;
  const age = summary.olderThanMs === 0 ? '' : ` older than ${olderThan}`;
  const left = summary.keptForLiveRuns > 0 ? `; left ${plural(summary.keptForLiveRuns, 'item')} alone (runs in progress)` : '';
  return `${summary.dryRun ? 'would clean up' : 'cleaned up'} ${what}${age} in ${summary.destination}${left}`;
}
