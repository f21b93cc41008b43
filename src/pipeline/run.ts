import { createHash, randomUUID } from 'node:crypto';
import picomatch from 'picomatch';
import { nearest } from './suggest.js';
import type { Store } from '../stores/store.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { DEFAULT_BLOCK_BYTES } from '../formats/csv/blocks.js';
import { BUCKETS_FILE, CONFIGURATIONS_FILE, TABLES_FILE, bucketsJson, configurationFile, configurationKey, configurationsJson, isTableDataKey, sliceKey, stageOf, tableManifestKey, tablePath, tablesJson, type TableStats } from '../keboola/layout.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import { sliceManifest, TAKEOUT_MANIFEST_VERSION, type ManifestTable, type TakeoutManifest } from '../manifests/takeout.js';
import type { Source } from '../sources/source.js';
import type { ProjectDescriptor, TableDescriptor, TableQuery } from '../model.js';
import { COMPRESS_IN_FLIGHT } from './compress.js';
import { tableStart, type Emit, type RunPlan, type RunSummary } from './events.js';
import { mapLimit } from './limit.js';
import { acquireLease, assertNoLiveLease, type LeaseTiming } from './lease.js';
import { checkReach, preflight } from './preflight.js';
import { startJournal } from './resume.js';
import { landedSlice, SliceChanged } from './slicer.js';
import type { SliceRecord } from '../model.js';
import { COPY_CONCURRENCY, GUNZIP_CHUNK_BYTES, writeTableSlices } from './table.js';
import { formatBytes, plural } from './units.js';

export interface RunOptions {
  source: Source;
  destination: Store;
  structureOnly: boolean;
  include: readonly string[];
  exclude: readonly string[];
  sliceBytes: number;
  sliceRows?: number;
  compressionLevel: number;
  lineEnding: '\n' | '\r\n';
  /** Rewrite CSV input with every value quoted instead of passing its bytes through. */
  requote: boolean;
  /** Tables exported at once. */
  concurrency: number;
  overwrite: boolean;
  /** Go on with the run a journal at the destination records, writing only what is missing. */
  resume?: boolean;
  dryRun: boolean;
  /** Stop everything at the first failed table instead of finishing the others. */
  failFast: boolean;
  /** For the memory bound: bytes per upload part and parts in flight per upload (S3). */
  partBytes: number;
  partConcurrency: number;
  toolVersion: string;
  /** Recorded in the manifest as given (already free of secrets). */
  recordedOptions: Record<string, unknown>;
  /** The command as typed (`run`, `table export`), recorded in the lease. */
  command?: string;
  /** The lease's heartbeat and stale times; the defaults (LEASE_HEARTBEAT_MS, LEASE_STALE_MS) unless a test shortens them. */
  leaseTiming?: Partial<LeaseTiming>;
  /** A subset of each table (`takeout table export`). */
  query?: TableQuery;
  /** Write component configurations (default true; a single-table export leaves them out). */
  configurations?: boolean;
  signal?: AbortSignal;
  emit: Emit;
}

/** A takeout: every selected table's data, then the layout's JSON files, then the manifest last. */
export async function runTakeout(options: RunOptions): Promise<RunSummary | RunPlan> {
  const { source, destination, emit } = options;
  const started = new Date();
  const runId = `${started.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomUUID().slice(0, 8)}`;
  const project = await source.project(options.signal ? { signal: options.signal } : {});
  const columns = options.query?.columns;
  // With --columns the slices hold only those columns, and every listing must say so.
  const narrow = (t: TableDescriptor): TableDescriptor => (columns?.length ? { ...t, columns: [...columns], primaryKey: t.primaryKey.filter((k) => columns.includes(k)) } : t);
  const selected = selectTables(project.tables, options.include, options.exclude).map(narrow);
  assertSomethingToTakeOut(source.description, project, selected.length);
  const withData = (t: TableDescriptor): boolean => !options.structureOnly || stageOf(t.bucketId) === 'sys';

  const fingerprint = fingerprintOf(options, source.description);
  // One set of checks before any data moves, read-only in a dry run: see preflight.ts.
  const checked = (dryRun: boolean): ReturnType<typeof preflight> =>
    preflight({ source, destination, tables: selected.filter(withData), fingerprint, overwrite: options.overwrite, resume: options.resume === true, dryRun, estimatedBytes: estimateOf(selected, withData), emit });
  if (options.dryRun) {
    for (const message of project.warnings ?? []) emit({ type: 'warning', message });
    const plan = buildPlan(options, selected, project, withData);
    plan.checks = (await checked(true)).checks;
    // A dry run writes nothing, no lease either; a live one refuses it as it would refuse the run.
    plan.checks.push(await assertNoLiveLease(destination));
    emit({ type: 'run:plan', plan });
    return plan;
  }

  await checkReach(source, destination, false);
  // The lease first: nothing else is read or written at the destination by a run that does not hold it.
  const lease = await acquireLease(destination, {
    runId,
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
    return await leasedTakeout({ ...options, signal }, { runId, started, project, selected, withData, fingerprint, checked });
  } catch (error) {
    throw lease.failure ?? error;
  } finally {
    await lease.release(emit);
  }
}

/** The run once it holds the lease: every write to the destination happens in here. */
async function leasedTakeout(
  options: RunOptions,
  run: {
    runId: string;
    started: Date;
    project: Awaited<ReturnType<Source['project']>>;
    selected: TableDescriptor[];
    withData: (t: TableDescriptor) => boolean;
    fingerprint: Record<string, unknown>;
    checked: (dryRun: boolean) => ReturnType<typeof preflight>;
  },
): Promise<RunSummary> {
  const { source, destination, emit } = options;
  const { runId, started, project, selected, withData, fingerprint } = run;
  const { previous } = await run.checked(false);
  const stale = await prepareDestination(destination, { overwrite: options.overwrite || previous !== undefined, resume: options.resume === true });
  const journal = await startJournal(destination, previous, { runId, fingerprint, emit, ...(options.signal ? { signal: options.signal } : {}) });
  // What this run reads: a resumed run leaves out the tables the interrupted one finished.
  const toTake = selected.filter((t) => journal.table(t.id)?.status !== 'complete');
  emit({ type: 'run:start', runId, source: source.description, destination: destination.description, tables: selected.length, dryRun: false, estimatedBytes: estimateOf(toTake, withData) });
  if (previous) emit({ type: 'warning', message: `resuming run ${previous.runId} (started ${previous.startedAt})` });
  const reused = { slices: 0, bytes: 0 };
  // A fresh run onto a destination checked empty creates every object: one that appears meanwhile (a
  // concurrent run) is refused by the store instead of replaced. Replacing is what --overwrite and --resume do.
  const createOnly = !options.overwrite && previous === undefined;
  /** Layout files (buckets.json, tables.json, …) this run wrote; removed again when the run fails before its manifest. */
  const layoutKeys: string[] = [];
  let committed = false;
  try {

    // Fail-fast stops the other tables through their own signal; Ctrl-C reaches them through the parent's.
    const tablesAbort = new AbortController();
    const abortTables = (): void => tablesAbort.abort();
    options.signal?.addEventListener('abort', abortTables, { once: true });
    // A journal that can no longer be written stops the tables too: data it does not record could not be resumed.
    journal.failed.addEventListener('abort', abortTables, { once: true });

    for (const message of project.warnings ?? []) emit({ type: 'warning', message });
    for (const s of project.skipped ?? []) emit({ type: 'table:skip', table: s.id, reason: s.reason });
    await source.prepare?.(selected.filter(withData), { signal: tablesAbort.signal, ...(options.query ? { query: options.query } : {}) });
    const written = new Set<string>();
    const results = await mapLimit(selected, options.concurrency, async (table): Promise<ManifestTable> => {
      const base = { id: table.id, columns: table.columns, primaryKey: table.primaryKey };
      if (!withData(table)) {
        emit({ type: 'table:skip', table: table.id, reason: 'structure only' });
        return { ...base, status: 'structure-only', rows: 0, rawBytes: 0, bytes: 0, slices: [] };
      }
      tablesAbort.signal.throwIfAborted();
      const finished = journal.table(table.id);
      if (finished?.status === 'complete' && finished.manifest) {
        for (const slice of finished.slices) written.add(slice.key);
        reused.slices += finished.slices.length;
        reused.bytes += finished.manifest.bytes;
        emit({ type: 'table:skip', table: table.id, reason: 'taken out before the interruption' });
        return finished.manifest;
      }
      const t0 = Date.now();
      emit(tableStart(table));
      try {
        const write = async (resuming: boolean): Promise<Awaited<ReturnType<typeof writeTableSlices>>> => {
          const landed = new Map((resuming ? (journal.table(table.id)?.slices ?? []) : []).map((s) => [s.index, s]));
          const body = await source.openTable(table, { signal: tablesAbort.signal, ...(options.query ? { query: options.query } : {}) });
          return writeTableSlices(table, body, {
            destination,
            keyFor: (index) => sliceKey(table, index),
            sliceBytes: options.sliceBytes,
            ...(options.sliceRows !== undefined ? { sliceRows: options.sliceRows } : {}),
            compressionLevel: options.compressionLevel,
            lineEnding: options.lineEnding,
            requote: options.requote,
            signal: tablesAbort.signal,
            ...(landed.size > 0 ? { landed: (index: number) => landed.get(index) } : {}),
            keepLanded: true,
            ifNoneMatch: createOnly,
            onSlice: (slice) => {
              written.add(slice.key);
              if (slice.reused) {
                reused.slices++;
                reused.bytes += slice.bytes;
                return;
              }
              journal.slice(table.id, landedSlice(slice));
              emit({ type: 'table:slice', table: table.id, slice: { key: slice.key, bytes: slice.bytes, rows: slice.rows, sha256: slice.sha256 } });
            },
            onProgress: (delta) => emit({ type: 'table:progress', table: table.id, ...delta }),
          });
        };
        let result: Awaited<ReturnType<typeof writeTableSlices>>;
        try {
          result = await write(previous !== undefined);
        } catch (error) {
          if (!(error instanceof SliceChanged)) throw error;
          // The data is not what the interrupted run read: its landed slices cannot be mixed with new ones.
          emit({ type: 'warning', message: `table ${table.id} changed since the interrupted run; taking it out again from its first slice` });
          journal.setTable(table.id, undefined);
          result = await write(false);
        }
        emit({
          type: 'table:done',
          table: table.id,
          rows: result.rows,
          rawBytes: result.rawBytes,
          bytes: result.bytes,
          slices: result.slices.length,
          durationMs: Date.now() - t0,
        });
        const entry: ManifestTable = { ...base, status: 'complete', rows: result.rows, rawBytes: result.rawBytes, bytes: result.bytes, slices: result.slices.map(sliceSummary) };
        journal.complete(entry);
        return entry;
      } catch (error) {
        const failure = toTakeoutError(error, `table ${table.id}`);
        if (options.signal?.aborted || failure.code === 'INTERRUPTED') throw new TakeoutError('INTERRUPTED', 'interrupted');
        // The failed table's slices were removed; an older takeout's parts of it are then stale too.
        const parts = `${tablePath(table)}.part_`;
        for (const key of [...written]) if (key.startsWith(parts)) written.delete(key);
        emit({ type: 'table:error', table: table.id, code: failure.code, message: failure.message, ...(failure.hint ? { hint: failure.hint } : {}) });
        // Credentials that fail for one table fail for every table: stop the others instead of repeating the error.
        if (options.failFast || failure.code === 'AUTH') tablesAbort.abort();
        return { ...base, status: 'failed', rows: 0, rawBytes: 0, bytes: 0, slices: [], error: { code: failure.code, message: failure.message } };
      }
    });
    options.signal?.removeEventListener('abort', abortTables);
    journal.failed.removeEventListener('abort', abortTables);
    if (!options.signal?.aborted) journal.check();
    if (options.signal?.aborted) {
      // A local folder has temp files to remove and no uploads to abort.
      const undone = options.destination.urlFor('') === undefined ? 'temp files were removed' : 'open uploads were aborted';
      throw new TakeoutError('INTERRUPTED', `interrupted: ${undone}, no manifest was written`, { hint: 'run again with --resume to go on from the slices that landed' });
    }

    const tables: ManifestTable[] = results.map((r, i) =>
      r.status === 'fulfilled'
        ? r.value
        : {
            id: selected[i]!.id,
            columns: selected[i]!.columns,
            primaryKey: selected[i]!.primaryKey,
            status: 'failed',
            rows: 0,
            rawBytes: 0,
            bytes: 0,
            slices: [],
            error: { code: toTakeoutError(r.reason).code, message: toTakeoutError(r.reason).message },
          },
    );
    const failed = tables.filter((t) => t.status === 'failed');
    // When every table failed there is nothing to commit: no layout files and no manifest, which would make
    // the destination look taken out (and refuse a rerun with EXISTS). Its table:error line was the report.
    const allFailed = failed.length > 0 && failed.length === tables.length;
    if ((options.failFast || allFailed) && failed.length > 0) {
      const first = failed.find((t) => t.error?.code !== 'INTERRUPTED') ?? failed[0]!;
      throw new TakeoutError((first.error?.code ?? 'FAILED') as TakeoutError['code'], first.error?.message ?? 'failed', {
        details: { alreadyReported: true },
      });
    }

    // The layout's JSON files, with the row counts and sizes this run measured.
    const stats = new Map<string, TableStats>(tables.filter((t) => t.status === 'complete').map((t) => [t.id, { rowsCount: t.rows, dataSizeBytes: t.bytes }]));
    const files: TakeoutManifest['files'] = [];
    const putJson = async (key: string, value: unknown): Promise<void> => {
      const body = Buffer.from(JSON.stringify(value));
      await destination.put(key, body, { contentType: 'application/json', ifNoneMatch: createOnly });
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
      }
    }
    for (const t of tables) {
      if (t.status !== 'complete') continue;
      const key = tableManifestKey({ id: t.id } as TableDescriptor);
      await putJson(key, sliceManifest(t.slices as SliceRecord[], t.columns, (k) => destination.urlFor(k), options.toolVersion));
      t.manifest = key;
    }

    // Parts of an earlier, larger run would be read back as data: remove what this run did not write,
    // except the slices the journal keeps for a --resume of the tables that failed.
    for (const t of failed) for (const slice of journal.table(t.id)?.slices ?? []) written.add(slice.key);
    const staleKeys = stale.filter((key) => !written.has(key));
    if (staleKeys.length > 0) {
      await destination.delete(staleKeys);
      emit({ type: 'warning', message: `removed ${plural(staleKeys.length, 'file')} left by an earlier takeout at this destination` });
    }

    const finished = new Date();
    const totals = {
      tables: tables.length,
      tablesFailed: failed.length,
      rows: tables.reduce((n, t) => n + t.rows, 0),
      rawBytes: tables.reduce((n, t) => n + t.rawBytes, 0),
      bytes: tables.reduce((n, t) => n + t.bytes, 0),
      slices: tables.reduce((n, t) => n + t.slices.length, 0),
    };
    const manifest: TakeoutManifest = {
      formatVersion: TAKEOUT_MANIFEST_VERSION,
      kind: 'takeout',
      tool: { name: 'takeout', version: options.toolVersion, node: process.version },
      runId,
      ...(previous ? { resumed: { runId: previous.runId, attempts: previous.attempts + 1, reusedSlices: reused.slices, reusedBytes: reused.bytes } } : {}),
      status: failed.length === 0 ? 'complete' : 'partial',
      source: source.description,
      destination: destination.description,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      options: options.recordedOptions,
      project: {
        ...(project.id !== undefined ? { id: project.id } : {}),
        ...(project.name !== undefined ? { name: project.name } : {}),
        ...(project.meta ? { meta: project.meta } : {}),
        ...(project.skipped?.length ? { skipped: project.skipped } : {}),
      },
      totals,
      tables,
      files,
    };
    await journal.flush();
    await destination.put(TAKEOUT_MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`, { contentType: 'application/json', ifNoneMatch: createOnly });
    committed = true;
    // A partial run keeps its journal: --resume then retries only the tables that failed. The manifest is
    // the commit: a journal that cannot be removed after it is a leftover to mention, not a failed run.
    if (failed.length === 0) {
      await journal.remove().catch((error: unknown) => {
        emit({ type: 'warning', message: `the takeout is complete, but its journal could not be removed: ${toTakeoutError(error).message}` });
      });
    }

    const durationMs = finished.getTime() - started.getTime();
    const summary: RunSummary = {
      runId,
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
      manifest: destination.urlFor(TAKEOUT_MANIFEST_FILE) ?? `${destination.description.replace(/\/?$/, '/')}${TAKEOUT_MANIFEST_FILE}`,
      failures: failed.map((t) => ({ table: t.id, code: t.error?.code ?? 'FAILED', message: t.error?.message ?? '' })),
      ...(previous ? { reused } : {}),
      ...(failed.length > 0 ? { hint: 'run again with --resume to retry only the failed tables' } : {}),
    };
    emit({ type: 'run:done', summary });
    return summary;
  } catch (error) {
    // The layout's JSON files without the manifest would make the destination look taken out (a rerun
    // is refused with EXISTS): remove the ones this run wrote. The slices stay, for --resume.
    if (!committed && layoutKeys.length > 0) await destination.delete(layoutKeys).catch(() => undefined);
    await journal.settle();
    throw error;
  }
}

function sliceSummary(s: SliceRecord): ManifestTable['slices'][number] {
  return { key: s.key, bytes: s.bytes, rawBytes: s.rawBytes, rows: s.rows, sha256: s.sha256 };
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

/**
 * Table selection: a pattern matches a table when it matches the whole table id or its bucket id
 * (`in.c-main` selects that bucket). `*` matches any run of characters, `?` one, `{a,b}` either.
 * A table is taken when it matches some --include (or none are given) and no --exclude.
 */
export function selectTables(tables: readonly TableDescriptor[], include: readonly string[], exclude: readonly string[]): TableDescriptor[] {
  const compile = (pattern: string): ((t: TableDescriptor) => boolean) => {
    const match = picomatch(pattern, { dot: true, nocase: false });
    return (t) => match(t.id) || match(t.bucketId);
  };
  const includes = include.map((p) => ({ pattern: p, test: compile(p) }));
  const excludes = exclude.map(compile);
  for (const { pattern, test } of includes) {
    if (!tables.some(test)) throw new TakeoutError('USAGE', `--include '${pattern}' matches no table`, { hint: includeHint(pattern, tables) });
  }
  return tables
    .filter((t) => (includes.length === 0 || includes.some((i) => i.test(t))) && !excludes.some((e) => e(t)))
    .sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * What to say about an --include that matches nothing: the real ids (tables and buckets) it nearly matches,
 * its literal characters mistyped (`in.c-mian.*` → in.c-main.customers, in.c-main.orders, in.c-main); else an example id.
 */
export function includeHint(pattern: string, tables: readonly TableDescriptor[]): string {
  const ids = [...tables.map((t) => t.id), ...tables.map((t) => t.bucketId)];
  const near = nearest(pattern, ids, { glob: true });
  if (near.length > 0) return `closest ids: ${near.join(', ')}`;
  const example = tables[0];
  return example ? `table ids look like ${example.id} (bucket ${example.bucketId}); --dry-run lists them` : 'the source has no table';
}

/**
 * A run that takes out nothing is a mistake (an empty folder, a wrong schema, patterns that exclude every
 * table), not a success: it is refused. A project with configurations and no table is a structure-only
 * project, which Keboola allows, and its takeout is its configurations.
 */
export function assertSomethingToTakeOut(source: string, project: ProjectDescriptor, selected: number): void {
  if (selected > 0) return;
  const configurations = project.components.reduce((n, c) => n + c.configurations.length, 0);
  if (project.tables.length === 0) {
    if (configurations > 0) return;
    const skipped = project.skipped ?? [];
    const named = skipped.slice(0, 5).map((s) => `${s.id} (${s.reason})`);
    throw new TakeoutError('USAGE', `${source} has no table and no configuration: nothing to take out`, {
      hint: named.length ? `left out: ${named.join(', ')}${skipped.length > named.length ? ` and ${skipped.length - named.length} more` : ''}` : 'check --source',
    });
  }
  throw new TakeoutError('USAGE', `--include/--exclude leave none of the ${project.tables.length} table${project.tables.length === 1 ? '' : 's'} of ${source}`, {
    hint: `see what they select with --dry-run${configurations > 0 ? '; to take out the configurations alone, use --structure-only' : ''}`,
  });
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
    if (isTableDataKey(k) || k.startsWith(`${MANIFESTS_DIR}/`) || k.startsWith('configurations/') || k === TAKEOUT_MANIFEST_FILE) keys.push(k);
  }
  // Until the new manifest lands, the destination must not look like a complete takeout.
  await destination.delete([TAKEOUT_MANIFEST_FILE]);
  return keys.filter((k) => k !== TAKEOUT_MANIFEST_FILE);
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
    files: [BUCKETS_FILE, TABLES_FILE, CONFIGURATIONS_FILE, 'configurations/<componentId>/<configId>.json', `${MANIFESTS_DIR}/<tableId>.manifest`, TAKEOUT_MANIFEST_FILE],
  };
}

/** The selected tables' data as the source sizes it (before compression); tables of unknown size count 0. */
function estimateOf(selected: readonly TableDescriptor[], withData: (t: TableDescriptor) => boolean): number {
  return selected.reduce((n, t) => n + (withData(t) ? (t.dataSizeBytes ?? 0) : 0), 0);
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
