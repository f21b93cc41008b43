import { TakeoutError } from '../errors.js';
import { preparesStructure, restoresExtras } from '../targets/target.js';
import type { RestoreSummary } from './events.js';
import { loadTable } from './restore/load-tables.js';
import { planRestore, type RestoreOptions } from './restore/plan.js';

export type { RestoreOptions } from './restore/plan.js';

/**
 * `takeout restore`: a takeout back into a target, in three phases as a run has: plan (restore/plan.ts: the
 * layout checked, tables selected, conflicts refused before anything is written), load tables
 * (restore/load-tables.ts: one transaction per table, every slice checked before the commit), commit (the
 * `_takeout` record: buckets, tables, configurations and the layout files, last, so a target holding it
 * holds the whole restore). --dry-run stops after the plan; --resume skips what a crashed restore committed.
 */
export async function restoreTakeout(options: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const { target, emit } = options;
  const state = await planRestore(options);
  const { plan } = state;
  emit({ type: 'restore:start', source: options.source, target: target.description, tables: plan.tables.length, rows: plan.rows, bytes: plan.bytes, dryRun: options.dryRun });
  const summary: RestoreSummary = {
    source: options.source,
    target: target.description,
    dryRun: options.dryRun,
    tables: 0,
    skipped: 0,
    rows: 0,
    bytes: 0,
    configurations: 0,
    metadata: false,
    durationMs: 0,
  };
  if (plan.extras) summary.extras = plan.extras;
  if (options.dryRun) {
    emit({ type: 'restore:plan', plan });
    summary.durationMs = Date.now() - started;
    emit({ type: 'restore:done', summary });
    return summary;
  }
  if (preparesStructure(target) && !options.dataOnly) await target.prepare(state.metadata);
  for (const planned of state.tables) {
    if (planned.action === 'skip') {
      summary.skipped++;
      emit({ type: 'table:skip', table: planned.table.id, reason: `already restored in ${planned.location} (${planned.table.rows} rows)` });
      continue;
    }
    const tableStarted = Date.now();
    // Progress counts the takeout's stored bytes read; a table with none (empty, --structure-only) has no measure.
    const bytes = options.structureOnly ? 0 : planned.manifest.bytes;
    emit({ type: 'table:start', table: planned.table.id, ...(bytes > 0 ? { estimatedBytes: bytes, measure: 'bytes' as const } : {}), ...(planned.table.rows > 0 ? { estimatedRows: planned.table.rows } : {}) });
    try {
      const loaded = await loadTable(options, planned);
      summary.tables++;
      summary.rows += loaded.rows;
      summary.bytes += loaded.bytes;
      emit({ type: 'table:done', table: planned.table.id, rows: loaded.rows, rawBytes: options.structureOnly ? 0 : planned.manifest.rawBytes, bytes: loaded.bytes, slices: options.structureOnly ? 0 : planned.manifest.slices.length, durationMs: Date.now() - tableStarted });
    } catch (error) {
      const failure = error instanceof TakeoutError ? error : new TakeoutError('FAILED', (error as Error).message, { cause: error });
      emit({ type: 'table:error', table: planned.table.id, code: failure.code, message: failure.message, ...(failure.hint ? { hint: failure.hint } : {}) });
      if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `restore into ${target.description} was interrupted: ${planned.table.id} was rolled back; --resume goes on`);
      throw failure;
    }
  }
  if (plan.metadata) {
    await target.writeMetadata(state.metadata);
    summary.metadata = true;
    summary.configurations = state.metadata.configurations.length;
    if (restoresExtras(target)) {
      summary.extras = target.restoredExtras();
      // Configurations the project did not get (left to Keboola's Migrate apps, a component the stack lacks) are not counted as restored.
      summary.configurations -= summary.extras.filter((e) => e.kind === 'configuration' && e.action === 'skip').length;
    }
  }
  summary.durationMs = Date.now() - started;
  emit({ type: 'restore:done', summary });
  return summary;
}
