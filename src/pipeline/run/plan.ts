import { randomUUID } from 'node:crypto';
import type { Store } from '../../stores/store.js';
import { FILES_DIR, isTableDataKey, stageOf } from '../../keboola/layout.js';
import type { Journal } from '../../manifests/journal.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../../manifests/takeout.js';
import type { ProjectDescriptor, TableDescriptor } from '../../model.js';
import type { JournalWriter } from '../journal.js';
import { preflight, type PreflightResult } from '../preflight.js';
import { startJournal } from '../resume.js';
import type { RunOptions } from './options.js';
import { assertSomethingToTakeOut, selectTables } from './select.js';

/**
 * The plan phase, before the lease: what the source has, which tables are taken and with data, and what
 * decides the slices' bytes. Nothing is written; a dry run stops here.
 */
export interface TakeoutPlan {
  runId: string;
  started: Date;
  project: ProjectDescriptor;
  /** The selected tables in id order, narrowed to --columns when given. */
  selected: TableDescriptor[];
  /** Whether a table's data is taken (--structure-only keeps only the `sys` stage's). */
  withData: (t: TableDescriptor) => boolean;
  /** What decides the bytes of every slice: a --resume must agree on all of it. */
  fingerprint: Record<string, unknown>;
}

/** The run's state at the destination once it holds the lease: what the phases after the plan share. */
export interface RunState {
  /** The interrupted run's journal a --resume goes on with. */
  previous: Journal | undefined;
  /** Keys an earlier takeout left that this run may have to remove (see prepareDestination). */
  stale: string[];
  journal: JournalWriter;
  /** Every object is created, never replaced: a fresh run onto a destination checked empty. */
  createOnly: boolean;
  /** Slices (and their stored bytes) an interrupted run landed and this one keeps; counted while tables export. */
  reused: { slices: number; bytes: number };
}

export async function planTakeout(options: RunOptions): Promise<TakeoutPlan> {
  const { source } = options;
  const started = new Date();
  const runId = `${started.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomUUID().slice(0, 8)}`;
  const project = await source.project(options.signal ? { signal: options.signal } : {});
  const columns = options.query?.columns;
  // With --columns the slices hold only those columns, and every listing must say so.
  const narrow = (t: TableDescriptor): TableDescriptor => (columns?.length ? { ...t, columns: [...columns], primaryKey: t.primaryKey.filter((k) => columns.includes(k)) } : t);
  const selected = selectTables(project.tables, options.include, options.exclude).map(narrow);
  assertSomethingToTakeOut(source.description, project, selected.length);
  const withData = (t: TableDescriptor): boolean => !options.structureOnly || stageOf(t.bucketId) === 'sys';
  return { runId, started, project, selected, withData, fingerprint: fingerprintOf(options, source.description) };
}

/** One set of checks before any data moves, read-only in a dry run: see preflight.ts. */
export function checkTakeout(options: RunOptions, plan: TakeoutPlan, dryRun: boolean): Promise<PreflightResult> {
  const { source, destination, emit } = options;
  return preflight({
    source,
    destination,
    tables: plan.selected.filter(plan.withData),
    fingerprint: plan.fingerprint,
    overwrite: options.overwrite,
    resume: options.resume === true,
    dryRun,
    estimatedBytes: estimateOf(plan.selected, plan.withData),
    emit,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * The resume state, under the lease: the preflight, the keys an earlier takeout may leave stale, the journal
 * (new, or the interrupted run's), then `run:start`.
 */
export async function openRun(options: RunOptions, plan: TakeoutPlan): Promise<RunState> {
  const { source, destination, emit } = options;
  const { runId, selected, withData, fingerprint } = plan;
  const { previous } = await checkTakeout(options, plan, false);
  const stale = await prepareDestination(destination, { overwrite: options.overwrite || previous !== undefined, resume: options.resume === true });
  const journal = await startJournal(destination, previous, { runId, fingerprint, emit, ...(options.signal ? { signal: options.signal } : {}) });
  // What this run reads: a resumed run leaves out the tables the interrupted one finished.
  const toTake = selected.filter((t) => journal.table(t.id)?.status !== 'complete');
  emit({ type: 'run:start', runId, source: source.description, destination: destination.description, tables: selected.length, dryRun: false, estimatedBytes: estimateOf(toTake, withData) });
  if (previous) emit({ type: 'warning', message: `resuming run ${previous.runId} (started ${previous.startedAt})` });
  // A fresh run onto a destination checked empty creates every object: one that appears meanwhile (a
  // concurrent run) is refused by the store instead of replaced. Replacing is what --overwrite and --resume do.
  const createOnly = !options.overwrite && previous === undefined;
  return { previous, stale, journal, createOnly, reused: { slices: 0, bytes: 0 } };
}

/** What decides the bytes of every slice: a --resume must agree on all of it. */
function fingerprintOf(options: RunOptions, source: string): Record<string, unknown> {
  return {
    source,
    sliceBytes: options.sliceBytes,
    sliceRows: options.sliceRows ?? null,
    compressionLevel: options.compressionLevel,
    lineEnding: options.lineEnding,
    requote: options.requote,
    query: options.query ?? null,
  };
}

/** The selected tables' data as the source sizes it (before compression); tables of unknown size count 0. */
export function estimateOf(selected: readonly TableDescriptor[], withData: (t: TableDescriptor) => boolean): number {
  return selected.reduce((n, t) => n + (withData(t) ? (t.dataSizeBytes ?? 0) : 0), 0);
}

/**
 * The keys a replaced (--overwrite) or resumed takeout may leave stale: a resumed run lists them too, its
 * slices may now be fewer. A destination holding a takeout without either was refused by the preflight.
 */
async function prepareDestination(destination: Store, mode: { overwrite: boolean; resume: boolean }): Promise<string[]> {
  if (!mode.overwrite) return [];
  const keys: string[] = [];
  for await (const object of destination.list('')) {
    const k = object.key;
    if (isTableDataKey(k) || k.startsWith(`${MANIFESTS_DIR}/`) || k.startsWith('configurations/') || k.startsWith(`${FILES_DIR}/`) || k === TAKEOUT_MANIFEST_FILE) keys.push(k);
  }
  // Until the new manifest lands, the destination must not look like a complete takeout.
  await destination.delete([TAKEOUT_MANIFEST_FILE]);
  return keys.filter((k) => k !== TAKEOUT_MANIFEST_FILE);
}
