import type { RunPlan, RunSummary } from './events.js';
import { acquireLease } from './lease.js';
import { checkReach } from './preflight.js';
import { commitTakeout } from './run/commit.js';
import { dryRunPlan } from './run/dry-run.js';
import { exportTables } from './run/export-tables.js';
import type { RunOptions } from './run/options.js';
import { openRun, planTakeout, type TakeoutPlan } from './run/plan.js';

export type { RunOptions } from './run/options.js';

/**
 * A takeout: every selected table's data, then the layout's JSON files, then the manifest last. Three phases
 * (run/): plan (selection, preflight, resume state), export tables (slices, journal), commit (layout files,
 * stale files, manifest, summary); a dry run stops after the plan.
 */
export async function runTakeout(options: RunOptions): Promise<RunSummary | RunPlan> {
  const { source, destination, emit } = options;
  const plan = await planTakeout(options);
  if (options.dryRun) return dryRunPlan(options, plan);

  await checkReach(source, destination, false, options.signal);
  // The lease first: nothing else is read or written at the destination by a run that does not hold it.
  const lease = await acquireLease(destination, {
    runId: plan.runId,
    command: options.command ?? 'run',
    toolVersion: options.toolVersion,
    scope: { kind: 'run' },
    takeOver: options.resume === true || options.overwrite,
    emit,
    ...(options.leaseTiming ? { timing: options.leaseTiming } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  // A lost lease stops the run like Ctrl-C does, and is then the error reported.
  const signal = options.signal ? AbortSignal.any([options.signal, lease.signal]) : lease.signal;
  try {
    return await leasedTakeout({ ...options, signal }, plan);
  } catch (error) {
    throw lease.failure ?? error;
  } finally {
    await lease.release(emit);
  }
}

/** The run once it holds the lease: every write to the destination happens in here. */
async function leasedTakeout(options: RunOptions, plan: TakeoutPlan): Promise<RunSummary> {
  const state = await openRun(options, plan);
  try {
    const exported = await exportTables(options, plan, state);
    return await commitTakeout(options, plan, state, exported);
  } catch (error) {
    await state.journal.settle();
    throw error;
  }
}
