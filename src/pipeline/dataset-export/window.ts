/** Which rows a dataset export takes (its window), and what makes two runs the same export definition or client token. */
import { createHash } from 'node:crypto';
import { TakeoutError } from '../../errors.js';
import { listJobs, type JobRecord } from '../../manifests/jobs.js';
import type { TableQuery } from '../../model.js';
import type { DatasetExportOptions } from './options.js';

export interface ExportWindow {
  fields: Pick<JobRecord, 'exportTime' | 'exportFromTime' | 'exportToTime'>;
  query: TableQuery | undefined;
}

function windowQuery(options: DatasetExportOptions, since: Date | undefined, until: Date | undefined): TableQuery | undefined {
  if (!options.windowColumn || options.windowInSource === false) return options.query;
  return { ...options.query, changedColumn: options.windowColumn, ...(since ? { changedSince: since } : {}), ...(until ? { changedUntil: until } : {}) };
}

/**
 * The rows an export takes. Full: everything (or, with a window column, what changed before the export
 * time). Incremental: what changed in [from, to); --recurring starts where the last completed run of the
 * same definition ended, so consecutive runs leave no gap and take nothing twice.
 */
export async function exportWindow(options: DatasetExportOptions, definitionId: string, started: Date): Promise<ExportWindow> {
  if (options.exportType === 'FULL_EXPORT') {
    const at = options.exportTime ?? started;
    return { fields: { exportTime: at.toISOString() }, query: windowQuery(options, undefined, options.windowColumn ? at : undefined) };
  }
  if (!options.windowColumn) throw new TakeoutError('USAGE', 'incremental exports need --changed-column (the column with each row\'s last change time)');
  let from = options.exportFromTime;
  if (options.recurring) {
    const last = (await listJobs(options.destination)).find((j) => j.definitionId === definitionId && j.status === 'COMPLETED' && j.exportToTime);
    from = last?.exportToTime ? new Date(last.exportToTime) : (from ?? new Date(0));
  }
  if (!from) throw new TakeoutError('USAGE', 'incremental exports need --export-from-time (or --recurring)');
  const to = options.recurring ? started : (options.exportToTime ?? started);
  if (to.getTime() <= from.getTime()) throw new TakeoutError('USAGE', `--export-to-time ${to.toISOString()} is not after --export-from-time ${from.toISOString()}`);
  return { fields: { exportFromTime: from.toISOString(), exportToTime: to.toISOString() }, query: windowQuery(options, from, to) };
}

/** The window as times, for the layout: [from, to), or up to the export time when a full export has a window column. */
export function windowRange(fields: ExportWindow['fields'], options: DatasetExportOptions): { from?: Date; to?: Date } {
  if (fields.exportFromTime && fields.exportToTime) return { from: new Date(fields.exportFromTime), to: new Date(fields.exportToTime) };
  return options.windowColumn && fields.exportTime ? { to: new Date(fields.exportTime) } : {};
}

/** A resumed export takes the window it was started with, so it writes the same rows again. */
export function windowOf(job: JobRecord, options: DatasetExportOptions): ExportWindow {
  if (job.exportFromTime && job.exportToTime) {
    return { fields: { exportFromTime: job.exportFromTime, exportToTime: job.exportToTime }, query: windowQuery(options, new Date(job.exportFromTime), new Date(job.exportToTime)) };
  }
  const at = new Date(job.exportTime ?? job.startTime);
  return { fields: { exportTime: at.toISOString() }, query: windowQuery(options, undefined, options.windowColumn ? at : undefined) };
}

/** What makes two runs the same export definition (recurring runs share it). */
export function definitionOf(o: DatasetExportOptions): Record<string, unknown> {
  return {
    layout: o.layoutName,
    layoutOptions: o.layoutOptions,
    table: o.table.id,
    source: o.source.description,
    destination: o.destination.description,
    type: o.exportType,
    windowColumn: o.windowColumn ?? null,
    query: o.query ?? null,
  };
}

/** Everything a client token must agree on: the definition plus this run's window and file settings. */
export function parametersOf(o: DatasetExportOptions): string {
  const value = {
    ...definitionOf(o),
    exportTime: o.exportTime?.toISOString() ?? null,
    from: o.exportFromTime?.toISOString() ?? null,
    to: o.exportToTime?.toISOString() ?? null,
    recurring: o.recurring,
    maxFileBytes: o.maxFileBytes,
    compressionLevel: o.compressionLevel,
  };
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

