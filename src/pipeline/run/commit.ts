import { createHash } from 'node:crypto';
import { toTakeoutError } from '../../errors.js';
import { BUCKETS_FILE, CONFIGURATIONS_FILE, TABLES_FILE, bucketsJson, configurationFile, configurationKey, configurationMetadataKey, configurationsJson, tableManifestKey, tablesJson, type TableStats } from '../../keboola/layout.js';
import { sliceManifest, TAKEOUT_MANIFEST_FILE, TAKEOUT_MANIFEST_VERSION, type ManifestTable, type TakeoutManifest } from '../../manifests/takeout.js';
import type { SliceRecord, TableDescriptor } from '../../model.js';
import { whereIs } from '../../stores/store.js';
import type { RunSummary } from '../events.js';
import { plural } from '../../units.js';
import type { ExportedTables } from './export-tables.js';
import { writeKeboolaExtras } from './keboola-extras.js';
import type { RunOptions } from './options.js';
import type { RunState, TakeoutPlan } from './plan.js';

/**
 * The commit phase: the layout's JSON files, the removal of what an earlier takeout left stale, then the
 * takeout manifest last (the commit itself), the journal's removal and the summary. Layout files written
 * before a failure that keeps the manifest from landing are removed again.
 */
export async function commitTakeout(options: RunOptions, plan: TakeoutPlan, state: RunState, exported: ExportedTables): Promise<RunSummary> {
  const { destination, emit } = options;
  const { journal } = state;
  const { tables, failed } = exported;
  /** Layout files (buckets.json, tables.json, …) this run wrote; removed again when the run fails before its manifest. */
  const layoutKeys: string[] = [];
  let manifest: TakeoutManifest;
  let finished: Date;
  try {
    const files = await writeLayoutFiles(options, plan, state, exported, layoutKeys);
    await removeStale(options, state, exported);
    finished = new Date();
    manifest = manifestOf(options, plan, state, tables, files, finished);
    await journal.flush();
    await destination.put(TAKEOUT_MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`, { contentType: 'application/json', ifNoneMatch: state.createOnly });
  } catch (error) {
    // The layout's JSON files without the manifest would make the destination look taken out (a rerun
    // is refused with EXISTS): remove the ones this run wrote. The slices stay, for --resume.
    if (layoutKeys.length > 0) await destination.delete(layoutKeys).catch(() => undefined);
    throw error;
  }
  // A partial run keeps its journal: --resume then retries only the tables that failed. The manifest is
  // the commit: a journal that cannot be removed after it is a leftover to mention, not a failed run.
  if (failed.length === 0) {
    await journal.remove().catch((error: unknown) => {
      emit({ type: 'warning', message: `the takeout is complete, but its journal could not be removed: ${toTakeoutError(error).message}` });
    });
  }
  const summary = summaryOf(options, plan, state, manifest, failed, finished);
  emit({ type: 'run:done', summary });
  return summary;
}

/** The layout's JSON files, with the row counts and sizes this run measured; each one's key goes into `layoutKeys` as it lands. */
async function writeLayoutFiles(options: RunOptions, plan: TakeoutPlan, state: RunState, exported: ExportedTables, layoutKeys: string[]): Promise<TakeoutManifest['files']> {
  const { destination, emit } = options;
  const { project, selected } = plan;
  const { tables, written } = exported;
  const stats = new Map<string, TableStats>(tables.filter((t) => t.status === 'complete').map((t) => [t.id, { rowsCount: t.rows, dataSizeBytes: t.bytes }]));
  const files: TakeoutManifest['files'] = [];
  const putJson = async (key: string, value: unknown): Promise<void> => {
    const body = Buffer.from(JSON.stringify(value));
    await destination.put(key, body, { contentType: 'application/json', ifNoneMatch: state.createOnly });
    layoutKeys.push(key);
    written.add(key);
    files.push({ key, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    emit({ type: 'file:written', key, bytes: body.length });
  };
  const selectedBuckets = new Set(selected.map((t) => t.bucketId));
  const filtering = options.include.length > 0 || options.exclude.length > 0;
  const buckets = filtering ? project.buckets.filter((b) => selectedBuckets.has(b.id)) : project.buckets;
  await putJson(BUCKETS_FILE, bucketsJson(buckets, selected, stats));
  await putJson(TABLES_FILE, tablesJson(selected, buckets, stats));
  const components = options.configurations === false ? [] : project.components;
  await putJson(CONFIGURATIONS_FILE, configurationsJson(components));
  for (const component of components) {
    for (const config of component.configurations) {
      await putJson(configurationKey(component.id, config.id), configurationFile(config));
      if (config.metadata && config.metadata.length > 0) await putJson(configurationMetadataKey(component.id, config.id), config.metadata);
    }
  }
  await writeKeboolaExtras(options, plan, { putJson, layoutKeys, written, files, createOnly: state.createOnly });
  for (const t of tables) {
    if (t.status !== 'complete') continue;
    const key = tableManifestKey({ id: t.id } as TableDescriptor);
    await putJson(key, sliceManifest(t.slices as SliceRecord[], t.columns, (k) => destination.urlFor(k), options.toolVersion));
    t.manifest = key;
  }
  return files;
}

/**
 * Parts of an earlier, larger run would be read back as data: remove what this run did not write,
 * except the slices the journal keeps for a --resume of the tables that failed.
 */
async function removeStale(options: RunOptions, state: RunState, exported: ExportedTables): Promise<void> {
  const { written, failed } = exported;
  for (const t of failed) for (const slice of state.journal.table(t.id)?.slices ?? []) written.add(slice.key);
  const staleKeys = state.stale.filter((key) => !written.has(key));
  if (staleKeys.length > 0) {
    await options.destination.delete(staleKeys);
    options.emit({ type: 'warning', message: `removed ${plural(staleKeys.length, 'file')} left by an earlier takeout at this destination` });
  }
}

function manifestOf(options: RunOptions, plan: TakeoutPlan, state: RunState, tables: ManifestTable[], files: TakeoutManifest['files'], finished: Date): TakeoutManifest {
  const { project } = plan;
  const { previous, reused } = state;
  const failed = tables.filter((t) => t.status === 'failed');
  return {
    formatVersion: TAKEOUT_MANIFEST_VERSION,
    kind: 'takeout',
    tool: { name: 'takeout', version: options.toolVersion, node: process.version },
    runId: plan.runId,
    ...(previous ? { resumed: { runId: previous.runId, attempts: previous.attempts + 1, reusedSlices: reused.slices, reusedBytes: reused.bytes } } : {}),
    status: failed.length === 0 ? 'complete' : 'partial',
    source: options.source.description,
    destination: options.destination.description,
    startedAt: plan.started.toISOString(),
    finishedAt: finished.toISOString(),
    options: options.recordedOptions,
    project: {
      ...(project.id !== undefined ? { id: project.id } : {}),
      ...(project.name !== undefined ? { name: project.name } : {}),
      ...(project.meta ? { meta: project.meta } : {}),
      ...(project.skipped?.length ? { skipped: project.skipped } : {}),
    },
    totals: {
      tables: tables.length,
      tablesFailed: failed.length,
      rows: tables.reduce((n, t) => n + t.rows, 0),
      rawBytes: tables.reduce((n, t) => n + t.rawBytes, 0),
      bytes: tables.reduce((n, t) => n + t.bytes, 0),
      slices: tables.reduce((n, t) => n + t.slices.length, 0),
    },
    tables,
    files,
  };
}

function summaryOf(options: RunOptions, plan: TakeoutPlan, state: RunState, manifest: TakeoutManifest, failed: readonly ManifestTable[], finished: Date): RunSummary {
  const { source, destination } = options;
  const { totals, tables } = manifest;
  const durationMs = finished.getTime() - plan.started.getTime();
  return {
    runId: plan.runId,
    status: manifest.status === 'complete' ? 'complete' : totals.tables === failed.length && totals.tables > 0 ? 'failed' : 'partial',
    source: source.description,
    destination: destination.description,
    tables: totals.tables,
    tablesFailed: failed.length,
    tablesSkipped: tables.filter((t) => t.status === 'structure-only').length,
    rows: totals.rows,
    rawBytes: totals.rawBytes,
    bytes: totals.bytes,
    slices: totals.slices,
    durationMs,
    throughputMBps: durationMs > 0 ? totals.rawBytes / 1e6 / (durationMs / 1000) : 0,
    manifest: whereIs(destination, TAKEOUT_MANIFEST_FILE),
    failures: failed.map((t) => ({ table: t.id, code: t.error?.code ?? 'FAILED', message: t.error?.message ?? '' })),
    ...(state.previous ? { reused: state.reused } : {}),
    ...(failed.length > 0 ? { hint: 'run again with --resume to retry only the failed tables' } : {}),
  };
}
