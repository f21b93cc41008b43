import { TakeoutError } from '../errors.js';
import { loadsAtOnce, preparesStructure, restoresExtras } from '../targets/target.js';
import { mapLimit } from './limit.js';
import type { RestoreSummary } from './events.js';
import { loadTable } from './restore/load-tables.js';
import { planRestore, type PlannedTable, type RestoreOptions } from './restore/plan.js';

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
  emit({ type: 'restore:start', source: options.source, target: target.description, tables: plan.tables.filter((t) => t.action !== 'omit' && t.action !== 'skip').length, rows: plan.rows, bytes: plan.bytes, dryRun: options.dryRun });
  const summary: RestoreSummary = {
    source: options.source,
    target: target.description,
    dryRun: options.dryRun,
    tables: 0,
    skipped: 0,
    omitted: 0,
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
    if (planned.action === 'omit') {
      summary.omitted++;
      emit({ type: 'table:skip', table: planned.table.id, reason: `not restored: ${planned.reason ?? 'the target does not take it'}` });
    } else if (planned.action === 'skip') {
      summary.skipped++;
      emit({ type: 'table:skip', table: planned.table.id, reason: `already restored in ${planned.location} (${planned.table.rows} rows)` });
    }
  }
  const toLoad = interleaveBuckets(state.tables.filter((p) => p.action !== 'omit' && p.action !== 'skip'));
  // After the first failure no other table starts; those under way end (committed or rolled back) first.
  let failure: TakeoutError | undefined;
  await mapLimit(toLoad, loadsAtOnce(target), async (planned) => {
    if (failure) return;
    if (options.signal?.aborted) {
      failure ??= new TakeoutError('INTERRUPTED', `restore into ${target.description} was interrupted before ${planned.table.id}; --resume goes on`);
      return;
    }
    try {
      await restoreTable(options, planned, summary);
    } catch (error) {
      failure ??= error as TakeoutError;
    }
  });
  if (failure) throw failure;
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

/** One table loaded and committed, its events emitted, the summary counted; a failure is emitted and thrown as a TakeoutError. */
async function restoreTable(options: RestoreOptions, planned: PlannedTable, summary: RestoreSummary): Promise<void> {
  const { emit, target } = options;
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
    // Ctrl-C is said as such, whatever the step it cut short answered (an aborted fetch, a job no longer waited for).
    const failure = options.signal?.aborted
      ? new TakeoutError('INTERRUPTED', `restore into ${target.description} was interrupted: ${planned.table.id} was rolled back; --resume goes on`, { cause: error })
      : error instanceof TakeoutError
        ? error
        : new TakeoutError('FAILED', (error as Error).message, { cause: error });
    emit({ type: 'table:error', table: planned.table.id, code: failure.code, message: failure.message, ...(failure.hint ? { hint: failure.hint } : {}) });
    throw failure;
  }
}

/**
 * Tables in an order where the next one is in another bucket where it can be: loaded several at once, tables
 * of one bucket do not queue behind each other (Keboola's restore engine interleaves them: "Snowflake locks
 * schema metadata", php-kbc-project-restore Restore.php restoreTables).
 */
export function interleaveBuckets(tables: readonly PlannedTable[]): PlannedTable[] {
  const byBucket = new Map<string, PlannedTable[]>();
  for (const t of tables) {
    const queue = byBucket.get(t.table.bucketId);
    if (queue) queue.push(t);
    else byBucket.set(t.table.bucketId, [t]);
  }
  const queues = [...byBucket.values()];
  const out: PlannedTable[] = [];
  for (let round = 0; out.length < tables.length; round++) for (const q of queues) if (q[round]) out.push(q[round]!);
  return out;
}
