import { DEFAULT_BLOCK_BYTES } from '../../formats/csv/blocks.js';
import { BRANCH_METADATA_FILE, BUCKETS_FILE, CONFIGURATIONS_FILE, FILES_DIR, NOTIFICATIONS_FILE, PERMANENT_FILES_FILE, TABLES_FILE, TRIGGERS_FILE, sliceKey } from '../../keboola/layout.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../../manifests/takeout.js';
import type { ProjectDescriptor, TableDescriptor } from '../../model.js';
import { COMPRESS_IN_FLIGHT } from '../compress.js';
import type { RunPlan } from '../events.js';
import { assertNoLiveLease } from '../lease.js';
import { COPY_CONCURRENCY, GUNZIP_CHUNK_BYTES } from '../table.js';
import { formatBytes, plural } from '../../units.js';
import type { RunOptions } from './options.js';
import { checkTakeout, estimateOf, type TakeoutPlan } from './plan.js';

/** A dry run: the plan and the preflight's read-only checks, reported as `run:plan`; nothing is written. */
export async function dryRunPlan(options: RunOptions, plan: TakeoutPlan): Promise<RunPlan> {
  const { destination, emit } = options;
  for (const message of plan.project.warnings ?? []) emit({ type: 'warning', message });
  const runPlan = buildPlan(options, plan.selected, plan.project, plan.withData);
  runPlan.checks = (await checkTakeout(options, plan, true)).checks;
  // A dry run writes nothing, no lease either; a live one refuses it as it would refuse the run.
  runPlan.checks.push(await assertNoLiveLease(destination));
  emit({ type: 'run:plan', plan: runPlan });
  return runPlan;
}

function buildPlan(options: RunOptions, selected: readonly TableDescriptor[], project: ProjectDescriptor, withData: (t: TableDescriptor) => boolean): RunPlan {
  const configurations = project.components.reduce((n, c) => n + c.configurations.length, 0);
  const tables = selected.map((t) => ({
    id: t.id,
    estimatedBytes: t.dataSizeBytes ?? null,
    columns: t.columns.length,
    data: withData(t),
    keyPattern: withData(t) ? sliceKey(t, 0).replace('part_0', 'part_<N>') : '(structure only)',
  }));
  const selectedIds = new Set(selected.map((t) => t.id));
  const bound = memoryBound(options, Math.min(options.concurrency, Math.max(1, selected.length)));
  return {
    source: options.source.description,
    destination: options.destination.description,
    tables,
    skipped: [...(project.skipped ?? []), ...project.tables.filter((t) => !selectedIds.has(t.id)).map((t) => ({ id: t.id, reason: 'not selected' }))],
    configurations,
    estimatedBytes: estimateOf(selected, withData),
    memoryBoundBytes: bound,
    memoryBound:
      `${formatBytes(bound)} = ${plural(Math.min(options.concurrency, Math.max(1, selected.length)), 'table')} × (${COMPRESS_IN_FLIGHT + 1} blocks × ${formatBytes(blockBytesFor(options))} × 2` +
      (options.partBytes > 0 ? ` + ${plural(options.partConcurrency + 1, 'upload part')} × ${formatBytes(options.partBytes)})` : ')'),
    files: [
      BUCKETS_FILE, TABLES_FILE, CONFIGURATIONS_FILE, 'configurations/<componentId>/<configId>.json[.metadata]',
      BRANCH_METADATA_FILE, TRIGGERS_FILE, NOTIFICATIONS_FILE, PERMANENT_FILES_FILE, `${FILES_DIR}/<fileId>`,
      `${MANIFESTS_DIR}/<tableId>.manifest`, TAKEOUT_MANIFEST_FILE,
    ],
  };
}

function blockBytesFor(options: RunOptions): number {
  return Math.min(DEFAULT_BLOCK_BYTES, options.sliceBytes);
}

/**
 * The bound on buffered data: per table at most COMPRESS_IN_FLIGHT blocks queued or compressing plus the one
 * being filled (raw and compressed copies: ×2) and the destination's parts in flight plus the one filling;
 * a table whose slices are copied as they are (Storage API) has COPY_CONCURRENCY uploads open instead.
 */
export function memoryBound(options: Pick<RunOptions, 'sliceBytes' | 'partBytes' | 'partConcurrency'>, tables: number): number {
  const block = Math.min(DEFAULT_BLOCK_BYTES, options.sliceBytes);
  const parts = options.partBytes > 0 ? (options.partConcurrency + 1) * options.partBytes : 0;
  return tables * Math.max((COMPRESS_IN_FLIGHT + 1) * block * 2 + parts, COPY_CONCURRENCY * (parts + GUNZIP_CHUNK_BYTES));
}
