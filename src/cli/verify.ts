import { Command } from 'commander';
import { ERROR_CODES, TakeoutError } from '../errors.js';
import { verify, VERIFY_SPECS, type VerifyOptions, type VerifyResult } from '../commands/verify.js';
import { problemLine, type VerifyReport } from '../manifests/verify.js';
import { formatBytes, plural } from '../units.js';
import { terminalLine } from '../reporting/redact.js';
import { errorLine, eventLine } from '../reporting/lines.js';
import { addOptions, resolveOptions } from './options.js';
import { STORE_FORMS } from '../commands/options.js';
import type { CliContext } from './context.js';
import { addExamples } from './help.js';

export function verifyCommand(context: CliContext, stderr: NodeJS.WritableStream): Command {
  const command = new Command('verify')
    .argument('<dest>', `the takeout: ${STORE_FORMS}`)
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
  addOptions(command, VERIFY_SPECS);
  addExamples(command, [
    ['a local takeout', 'takeout verify ./takeout-20250101-120000'],
    ['a takeout in S3, the report as JSON', 'takeout verify s3://backups/kbc/ --region eu-central-1 --json'],
    ['one dataset export', 'takeout verify s3://exports/ddb/ --export 01768385930622-efd1a093'],
  ]);
  command.action(async (dest: string) => {
    const o = resolveOptions(command, VERIFY_SPECS);
    await context.configure(o);
    const result = await verify(dest, o, context);
    const out: Out = { stdout: context.io.stdout, stderr, line: (text) => stderr.write(`${terminalLine(text)}\n`) };
    const code = result.kind === 'exports' ? exportsOutcome(result, o, out) : takeoutOutcome(result, o, out);
    if (code !== undefined) context.setExitCode(code);
  });
  return command;
}

/** Where verify's answer goes: the --json report on stdout, the lines (made safe for a terminal) on stderr. */
interface Out {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  line(text: string): void;
}

/** What the CLI says of a verified takeout, and the exit code unless 0; problems without --json are the error. */
function takeoutOutcome(result: Extract<VerifyResult, { kind: 'takeout' }>, o: VerifyOptions, { stdout, line, stderr }: Out): number | undefined {
  const { report, manifest, failedTables: failed } = result;
  const json = o.json;
  if (json) {
    stdout.write(`${eventLine({ type: 'verify', ...report, takeout: manifest.status, ...(manifest.status === 'partial' ? { failedTables: failed } : {}) })}\n`);
  } else {
    for (const problem of report.problems) line(problemLine(problem));
  }
  if (manifest.status === 'partial') {
    line(`takeout: warning: the takeout is partial: ${plural(failed.length, 'table')} failed when it was taken${failed.length ? ` (${failed.join(', ')})` : ''}`);
  }
  const files = `${plural(report.checked, 'file')}, ${formatBytes(report.bytes)}`;
  if (report.status === 'problems') return problems(report, files, result.destination, json, stderr);
  if (!o.quiet && !json) line(`verified ${files}: all good`);
  return manifest.status === 'partial' ? ERROR_CODES.PARTIAL : undefined;
}

/** What the CLI says of verified dataset exports: every file of each COMPLETED export against its job record. */
function exportsOutcome(result: Extract<VerifyResult, { kind: 'exports' }>, o: VerifyOptions, { stdout, line, stderr }: Out): number | undefined {
  const { report, jobs, unfinished } = result;
  if (o.json) {
    stdout.write(`${eventLine({ type: 'verify', ...report, exports: jobs.map((j) => ({ exportId: j.exportId, status: j.status, files: j.dataFiles?.length ?? 0 })) })}\n`);
  } else {
    for (const problem of report.problems) line(problemLine(problem));
  }
  for (const job of unfinished) line(`takeout: warning: export ${job.exportId} is ${job.status}${job.failureCode ? ` (${job.failureCode})` : ''}: not complete, not checked`);
  const files = `${plural(report.checked, 'file')} of ${plural(jobs.length - unfinished.length, 'export')}, ${formatBytes(report.bytes)}`;
  if (report.status === 'problems') return problems(report, files, result.destination, o.json, stderr);
  if (!o.quiet && !o.json) line(`verified ${files}: all good`);
  return unfinished.length > 0 ? ERROR_CODES.PARTIAL : undefined;
}

/** Problems found: the error, thrown; with --json the report on stdout is the whole answer, so the error goes to stderr only. */
function problems(report: VerifyReport, files: string, destination: string, json: boolean, stderr: NodeJS.WritableStream): number {
  const n = report.problems.length;
  const error = new TakeoutError('INTEGRITY', `verified ${files}: ${plural(n, 'problem')} in ${destination}`);
  if (!json) throw error;
  stderr.write(`${errorLine(error)}\n`);
  return ERROR_CODES.INTEGRITY;
}
