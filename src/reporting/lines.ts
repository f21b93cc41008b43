/**
 * The lines every reporter prints (errors, summaries, the plan, progress), as pure functions of what the
 * pipeline reports: the plain, the terminal and the --json reporters share them.
 */
import type { JobRecord } from '../manifests/jobs.js';
import { ERROR_CODES, type ErrorCode, type TakeoutError } from '../errors.js';
import type { CopySummary, MergeSummary, RunPlan, RunSummary, RestoreExtra, RestorePlan, RestoreSummary } from '../pipeline/events.js';
import { formatBytes, formatDuration, formatRate, plural, rateOf } from '../units.js';
import { whereIs } from '../stores/store.js';
import type { ProgressSnapshot } from './progress.js';
import { jsonLine, terminalLine } from './redact.js';

/** `[INTEGRITY, exit 6]`: an error's code and the exit code it means, on every error line (a table's too). */
export function codeTag(code: string): string {
  const exit = Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : undefined;
  return exit === undefined ? `[${code}]` : `[${code}, exit ${exit}]`;
}

/**
 * One line of --json output: the event with the envelope every line has (`type` first, `time` last, an ISO
 * 8601 UTC timestamp), escaped and redacted. The shapes are docs/events.schema.json.
 */
export function eventLine<T extends { type: string }>(event: T): string {
  return jsonLine({ ...event, time: new Date().toISOString() });
}

export function errorLine(error: TakeoutError): string {
  // Message and hint each as one escaped line: a name holding a line break cannot fake a second error.
  const hint = error.hint ? `\n  hint: ${terminalLine(error.hint)}` : '';
  return `${terminalLine(`takeout: error: ${error.message} ${codeTag(error.code)}`)}${hint}`;
}

export function summaryLines(summary: RunSummary): string[] {
  const lines = [
    `takeout ${summary.status}: ${plural(summary.tables, 'table')}` +
      (summary.tablesFailed ? ` (${summary.tablesFailed} failed)` : '') +
      (summary.tablesSkipped ? ` (${summary.tablesSkipped} structure only)` : '') +
      `, ${plural(summary.rows, 'row')}, ${formatBytes(summary.rawBytes)} → ${formatBytes(summary.bytes)}` +
      ` in ${plural(summary.slices, 'slice')}, ${formatDuration(summary.durationMs)}, ${rateOf(summary.rawBytes, summary.durationMs)}`,
    `manifest: ${summary.manifest}`,
  ];
  if (summary.reused) lines.push(`resumed: kept ${plural(summary.reused.slices, 'slice')} (${formatBytes(summary.reused.bytes)}) the interrupted run had landed`);
  for (const f of summary.failures) lines.push(`failed: ${f.table}: ${f.message} ${codeTag(f.code)}`);
  if (summary.hint) lines.push(`hint: ${summary.hint}`);
  return lines.map(terminalLine);
}

/** How a dataset export ended, in one line. */
export function datasetLine(job: JobRecord): string {
  return terminalLine(
    `export ${job.exportId} ${job.status}: ${plural(job.itemCount, 'item')}, ${formatBytes(job.billedSizeBytes)} in ${plural(job.files, 'file')}` +
      ` (${job.layout}, ${job.exportFormat}, ${job.exportType}) → ${whereIs({ description: job.destination }, job.outputPrefix)}`,
  );
}

export function mergeSummaryLine(s: MergeSummary): string {
  return terminalLine(
    `merged ${plural(s.slices, 'slice')}${s.skipped ? ` (${s.skipped} optional skipped)` : ''}: ` +
      `${formatBytes(s.bytes)} fetched → ${formatBytes(s.outputBytes)} written to ${s.output}, ${formatDuration(s.durationMs)}, ${rateOf(s.outputBytes, s.durationMs)}`,
  );
}

export function copyStartLine(event: { source: string; destination: string; objects: number; bytes: number }): string {
  return terminalLine(`takeout: copying ${plural(event.objects, 'object')} (${formatBytes(event.bytes)}): ${event.source} → ${event.destination}`);
}

/** What a copy moved inside the cloud and what went through this machine. */
export function copySummaryLine(s: CopySummary): string {
  const parts = [
    `${plural(s.serverSide.objects, 'object')}, ${formatBytes(s.serverSide.bytes)} server-side`,
    `${plural(s.throughMachine.objects, 'object')}, ${formatBytes(s.throughMachine.bytes)} through this machine`,
  ];
  const rewritten = s.rewrittenManifests ? ` (${plural(s.rewrittenManifests, 'slice manifest')} rewritten)` : '';
  if (s.dryRun) return terminalLine(`dry run: would copy ${plural(s.objects, 'object')} to ${s.destination}: ${parts.join('; ')}${rewritten}; nothing was written`);
  return terminalLine(`copied ${plural(s.objects, 'object')} to ${s.destination}: ${parts.join('; ')}${rewritten}, ${formatDuration(s.durationMs)}`);
}

export function restoreStartLine(event: { source: string; target: string; tables: number; rows: number; bytes: number; dryRun: boolean }): string {
  return terminalLine(`takeout: ${event.dryRun ? 'planning the restore of' : 'restoring'} ${plural(event.tables, 'table')} (${plural(event.rows, 'row')}, ${formatBytes(event.bytes)} stored): ${event.source} → ${event.target}`);
}

/** What the plan does with a table, in words. */
function planAction(t: RestorePlan['tables'][number]): string {
  if (t.action === 'skip') return 'loaded already';
  if (t.action === 'replace') return 'replace (left partial)';
  if (t.action === 'omit') return 'not restored';
  return t.action;
}

export function restorePlanLines(plan: RestorePlan): string[] {
  const lines = [`dry run: restore ${plan.source} → ${plan.target}`];
  for (const t of plan.tables) {
    const typed = t.typedColumns ? `, ${t.typedColumns} typed` : '';
    if (t.action === 'omit') {
      lines.push(`  ${planAction(t)}  ${t.id}: ${t.reason ?? 'the target does not take it'}`);
      continue;
    }
    lines.push(`  ${planAction(t)}  ${t.id} → ${t.target}  ${plural(t.rows, 'row')}, ${formatBytes(t.bytes)} in ${plural(t.slices, 'slice')}${typed}`);
  }
  const leftOut = (plan.extras ?? []).filter((e) => e.kind === 'configuration' && e.action === 'skip').length;
  lines.push(`  configurations: ${plan.configurations}${leftOut > 0 ? `, ${leftOut} left out (below)` : ''}${!plan.metadata ? '' : intoKeboola(plan.target) ? ' (created in the project after its buckets; encrypted values listed to re-enter)' : ' (kept in _takeout with buckets, tables and the layout files)'}`);
  for (const e of plan.extras ?? []) lines.push(`  ${e.action === 'skip' ? 'leave out' : e.action}  ${e.kind} ${e.name}${e.reason ? `: ${e.reason}` : ''}`);
  lines.push(`  to load: ${plural(plan.rows, 'row')}, ${formatBytes(plan.bytes)} stored`);
  lines.push('  nothing was written');
  return lines.map(terminalLine);
}

/** A Keboola project keeps no `_takeout` record: buckets, configurations and metadata are made in it, the takeout's files stay where they are. */
function intoKeboola(target: string): boolean {
  return target.startsWith('keboola+');
}

export function restoreSummaryLine(s: RestoreSummary): string {
  if (s.dryRun) return terminalLine(`dry run of the restore into ${s.target}: nothing was written`);
  const notes = [...(s.skipped ? [`${s.skipped} loaded already, skipped`] : []), ...(s.omitted ? [`${s.omitted} not restored, named above`] : [])];
  const skipped = notes.length > 0 ? ` (${notes.join('; ')})` : '';
  const kept = intoKeboola(s.target) ? ' with buckets and metadata' : ' and the metadata kept in _takeout';
  // A Keboola project keeps no _takeout record of where it came from: the takeout stays where it is.
  const where = intoKeboola(s.target) ? ' (no _takeout record in the project; the takeout stays where it is)' : '';
  const meta = s.metadata ? `, ${plural(s.configurations, 'configuration')}${kept}${extrasPart(s.extras ?? [])}${where}` : '';
  return terminalLine(`restored ${plural(s.tables, 'table')}${skipped}, ${plural(s.rows, 'row')} into ${s.target}${meta}, ${formatDuration(s.durationMs)}`);
}

/** `, 1 trigger, 2 notifications, 1 permanent file, 3 left out (named above)` */
function extrasPart(extras: readonly RestoreExtra[]): string {
  const created = (kind: RestoreExtra['kind']): number => extras.filter((e) => e.kind === kind && e.action === 'create').length;
  const kinds = ['trigger', 'notification', 'permanent file'] as const;
  const parts = extras.length === 0 ? '' : kinds.map((k) => `, ${plural(created(k), k)}`).join('');
  const left = extras.filter((e) => e.action === 'skip').length;
  return `${parts}${left > 0 ? `, ${left} left out (named above)` : ''}`;
}

export function planLines(plan: RunPlan): string[] {
  const lines = [`dry run: ${plan.source} → ${plan.destination}`];
  for (const t of plan.tables) {
    lines.push(`  ${t.id}  ${plural(t.columns, 'column')}  ~${t.estimatedBytes === null ? '?' : formatBytes(t.estimatedBytes)}  → ${t.keyPattern}`);
  }
  const notSelected = plan.skipped.filter((s) => s.reason === 'not selected');
  for (const s of plan.skipped) if (s.reason !== 'not selected') lines.push(`  left out: ${s.id}: ${s.reason}`);
  if (notSelected.length > 0) lines.push(`  not selected: ${notSelected.map((s) => s.id).join(', ')}`);
  lines.push(`  configurations: ${plan.configurations}`);
  lines.push(`  files: ${plan.files.join(', ')}`);
  lines.push(`  estimated data: ${formatBytes(plan.estimatedBytes)} before compression`);
  lines.push(`  memory bound: ${plan.memoryBound}`);
  for (const check of plan.checks ?? []) lines.push(`  checked: ${check}`);
  lines.push('  nothing was written');
  return lines.map(terminalLine);
}

/**
 * A progress snapshot as one line: `progress: 45.0% 101 MiB of 224 MiB read, 1,234,567 rows, 12.3 MiB/s,
 * 38.0 MiB written, 1 min 5 s elapsed, ETA 1 min 20 s` (no percent or ETA while they are unknown).
 */
export function progressLine(p: ProgressSnapshot): string {
  const read = p.totalBytes !== undefined ? `${p.percent!.toFixed(1)}% ${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)} read` : `${formatBytes(p.doneBytes)} read`;
  const rows = p.rows !== undefined ? `, ${plural(p.rows, 'row')}` : '';
  const eta = p.etaMs !== undefined ? `, ETA ${formatDuration(p.etaMs)}` : '';
  return `progress: ${read}${rows}, ${formatRate(p.bytesPerSecond)}, ${formatBytes(p.writtenBytes)} written, ${formatDuration(p.elapsedMs)} elapsed${eta}`;
}
