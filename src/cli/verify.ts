import type { Readable } from 'node:stream';
import { Command } from 'commander';
import type { Store } from '../stores/store.js';
import { openStore } from '../stores/registry.js';
import { ERROR_CODES, TakeoutError, toTakeoutError } from '../errors.js';
import { TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import { MAX_MANIFEST_BYTES, parseManifestJson,
  readManifestText, readTakeoutManifest } from '../manifests/read.js';
import type { TakeoutManifest } from '../manifests/takeout.js';
import { listJobs, readJob, type JobRecord } from '../manifests/jobs.js';
import { problemLine, verifyExports, verifyTakeout, type VerifyReport } from '../manifests/verify.js';
import { formatBytes, plural } from '../pipeline/units.js';
import { terminalLine } from '../reporting/redact.js';
import { errorLine, eventLine } from '../reporting/lines.js';
import { addOptions, COMMON_OPTIONS, destinationOptions, resolveOptions, S3_ACCESS_OPTIONS, type OptionSpec } from './options.js';
import type { CommandContext } from './context.js';
import { addExamples } from './help.js';

export const VERIFY_OPTIONS: OptionSpec[] = [
  { key: 'concurrency', flags: '-c, --concurrency <n>', description: 'files read and checked at once', type: 'int', default: 4, min: 1, max: 16 },
  { key: 'export', flags: '--export <export-id>', description: 'check this dataset export (default: every export recorded there, when DEST holds no takeout)', type: 'string' },
];

const ALL = [...VERIFY_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS];

async function readManifest(destination: Store, dest: string): Promise<TakeoutManifest> {
  const origin = `${dest.replace(/\/+$/, '')}/${TAKEOUT_MANIFEST_FILE}`;
  const info = await destination.head(TAKEOUT_MANIFEST_FILE);
  if (!info) {
    throw new TakeoutError('NOT_FOUND', `${dest}: no ${TAKEOUT_MANIFEST_FILE}: not a takeout, or an unfinished one`, {
      hint: `${TAKEOUT_MANIFEST_FILE} is written last; a run that was interrupted leaves none`,
    });
  }
  if (info.size > MAX_MANIFEST_BYTES) throw new TakeoutError('INTEGRITY', `${origin}: larger than ${MAX_MANIFEST_BYTES} bytes, not a manifest`);
  let stream: Readable;
  try {
    stream = await destination.get(TAKEOUT_MANIFEST_FILE);
  } catch (error) {
    throw toTakeoutError(error, origin);
  }
  const manifest = readTakeoutManifest(parseManifestJson(await readManifestText(stream, origin), origin), origin);
  if (manifest.status !== 'complete' && manifest.status !== 'partial') {
    throw new TakeoutError('INTEGRITY', `${origin}: status ${JSON.stringify(manifest.status)} is neither complete nor partial`);
  }
  return manifest;
}

function failedTables(manifest: TakeoutManifest): string[] {
  return manifest.tables.filter((t) => t.status === 'failed').map((t) => t.id);
}

export function verifyCommand(context: CommandContext, stderr: NodeJS.WritableStream): Command {
  const command = new Command('verify')
    .argument('<dest>', 'the takeout: a local folder or s3://bucket/prefix')
    .summary('check a takeout or dataset exports against their manifests: missing, extra and corrupt files')
    .description(
      'Re-read a takeout and check every file against takeout-manifest.json: the size and sha256 of every ' +
        'file, and for table slices gzip integrity, the bytes they inflate to and their row counts. Files the ' +
        'manifest does not list are reported as extra. Exits 6 (integrity) when anything is wrong, 3 when the ' +
        'takeout verifies but is partial (some tables failed when it was taken), 0 otherwise. With --json one ' +
        'report goes to stdout.\n\n' +
        'A destination of dataset exports (takeout-exports/) is checked against the job records: every file ' +
        'of each COMPLETED export (size and sha256); unfinished exports are named and make the exit code 3.',
    );
  addOptions(command, ALL);
  addExamples(command, [
    ['a local takeout', 'takeout verify ./takeout-20250101-120000'],
    ['a takeout in S3, the report as JSON', 'takeout verify s3://backups/kbc/ --region eu-central-1 --json'],
    ['one dataset export', 'takeout verify s3://exports/ddb/ --export 01768385930622-efd1a093'],
  ]);
  command.action(async (dest: string) => {
    const o = resolveOptions(command, ALL);
    await context.configure(o);
    const json = o.json === true;
    const quiet = o.quiet === true;
    const line = (text: string): void => {
      stderr.write(`${terminalLine(text)}\n`);
    };
    const destination = await openStore(dest, destinationOptions(o, context.network));
    context.onClose(async () => destination.close?.());
    if (typeof o.export === 'string' || !(await destination.head(TAKEOUT_MANIFEST_FILE))) {
      const jobs = typeof o.export === 'string' ? [await readJob(destination, o.export)].filter((j): j is JobRecord => j !== undefined) : await listJobs(destination);
      if (typeof o.export === 'string' && jobs.length === 0) throw new TakeoutError('NOT_FOUND', `export ${o.export} is not recorded at ${destination.description}`);
      if (jobs.length > 0) {
        await verifyDatasetExports(context, destination, jobs, { json, quiet, concurrency: o.concurrency as number, line, stderr });
        return;
      }
    }
    const manifest = await readManifest(destination, dest);
    const report: VerifyReport = await verifyTakeout({ destination, manifest, concurrency: o.concurrency as number, signal: context.signal });
    const failed = failedTables(manifest);

    if (json) {
      context.io.stdout.write(
        `${eventLine({ type: 'verify', ...report, takeout: manifest.status, ...(manifest.status === 'partial' ? { failedTables: failed } : {}) })}\n`,
      );
    } else {
      for (const problem of report.problems) line(problemLine(problem));
    }
    if (manifest.status === 'partial') {
      line(`takeout: warning: the takeout is partial: ${plural(failed.length, 'table')} failed when it was taken${failed.length ? ` (${failed.join(', ')})` : ''}`);
    }
    const files = `${plural(report.checked, 'file')}, ${formatBytes(report.bytes)}`;
    if (report.status === 'problems') {
      const n = report.problems.length;
      const error = new TakeoutError('INTEGRITY', `verified ${files}: ${plural(n, 'problem')} in ${destination.description}`);
      if (!json) throw error;
      // The report on stdout is the whole answer; an error object there too would make it two.
      stderr.write(`${errorLine(error)}\n`);
      context.setExitCode(ERROR_CODES.INTEGRITY);
      return;
    }
    if (!quiet && !json) line(`verified ${files}: all good`);
    if (manifest.status === 'partial') context.setExitCode(ERROR_CODES.PARTIAL);
  });
  return command;
}

/** `takeout verify` of dataset exports: every file of each COMPLETED export against its job record. */
async function verifyDatasetExports(
  context: CommandContext,
  destination: Store,
  jobs: readonly JobRecord[],
  o: { json: boolean; quiet: boolean; concurrency: number; line: (text: string) => void; stderr: NodeJS.WritableStream },
): Promise<void> {
  const report = await verifyExports({ destination, jobs, concurrency: o.concurrency, signal: context.signal });
  const unfinished = jobs.filter((j) => j.status !== 'COMPLETED');
  if (o.json) {
    context.io.stdout.write(`${eventLine({ type: 'verify', ...report, exports: jobs.map((j) => ({ exportId: j.exportId, status: j.status, files: j.dataFiles?.length ?? 0 })) })}\n`);
  } else {
    for (const problem of report.problems) o.line(problemLine(problem));
  }
  for (const job of unfinished) o.line(`takeout: warning: export ${job.exportId} is ${job.status}${job.failureCode ? ` (${job.failureCode})` : ''}: not complete, not checked`);
  const files = `${plural(report.checked, 'file')} of ${plural(jobs.length - unfinished.length, 'export')}, ${formatBytes(report.bytes)}`;
  if (report.status === 'problems') {
    const n = report.problems.length;
    const error = new TakeoutError('INTEGRITY', `verified ${files}: ${plural(n, 'problem')} in ${destination.description}`);
    if (!o.json) throw error;
    o.stderr.write(`${errorLine(error)}\n`);
    context.setExitCode(ERROR_CODES.INTEGRITY);
    return;
  }
  if (!o.quiet && !o.json) o.line(`verified ${files}: all good`);
  if (unfinished.length > 0) context.setExitCode(ERROR_CODES.PARTIAL);
}
