import { TakeoutError, toTakeoutError } from '../../errors.js';
import { sliceKey, tablePath } from '../../keboola/layout.js';
import type { ManifestTable } from '../../manifests/takeout.js';
import type { SliceRecord, TableDescriptor } from '../../model.js';
import { isLocalFolder } from '../../stores/store.js';
import { tableStart } from '../events.js';
import { mapLimit } from '../limit.js';
import { landedSlice, SliceChanged } from '../slicer.js';
import { writeTableSlices } from '../table.js';
import type { RunOptions } from './options.js';
import type { RunState, TakeoutPlan } from './plan.js';

/** What the export phase hands to the commit: every selected table's entry, in the plan's order. */
export interface ExportedTables {
  tables: ManifestTable[];
  failed: ManifestTable[];
  /** Keys this run wrote or kept from the interrupted run; the commit adds its own and removes the rest of `stale`. */
  written: Set<string>;
}

/** What one table's export shares with the others. */
interface TableRun {
  options: RunOptions;
  state: RunState;
  /** Stops every table: fail-fast, an AUTH failure, Ctrl-C, a journal that can no longer be written. */
  tablesAbort: AbortController;
  written: Set<string>;
}

type WriteResult = Awaited<ReturnType<typeof writeTableSlices>>;

/**
 * The export phase: every selected table's data into slices, `concurrency` tables at once, each slice
 * recorded in the journal as it lands. A failed table is an entry with its error; an interrupted run, and
 * with --fail-fast (or when every table failed) the first failure, is thrown.
 */
export async function exportTables(options: RunOptions, plan: TakeoutPlan, state: RunState): Promise<ExportedTables> {
  const { source, emit } = options;
  const { project, selected, withData } = plan;
  const { journal } = state;
  // Fail-fast stops the other tables through their own signal; Ctrl-C reaches them through the parent's.
  const tablesAbort = new AbortController();
  const abortTables = (): void => tablesAbort.abort();
  options.signal?.addEventListener('abort', abortTables, { once: true });
  // A journal that can no longer be written stops the tables too: data it does not record could not be resumed.
  journal.failed.addEventListener('abort', abortTables, { once: true });

  for (const message of project.warnings ?? []) emit({ type: 'warning', message });
  for (const s of project.skipped ?? []) emit({ type: 'table:skip', table: s.id, reason: s.reason });
  await source.prepare?.(selected.filter(withData), { signal: tablesAbort.signal, ...(options.query ? { query: options.query } : {}) });
  const run: TableRun = { options, state, tablesAbort, written: new Set<string>() };
  const results = await mapLimit(selected, options.concurrency, (table) => exportTable(table, withData(table), run));
  options.signal?.removeEventListener('abort', abortTables);
  journal.failed.removeEventListener('abort', abortTables);
  if (!options.signal?.aborted) journal.check();
  if (options.signal?.aborted) {
    // A local folder has temp files to remove and no uploads to abort (Azure's manifests have no URLs, but uploads).
    const undone = isLocalFolder(options.destination) ? 'temp files were removed' : 'open uploads were aborted';
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
  return { tables, failed, written: run.written };
}

/** One table: skipped (structure only, or finished before the interruption), exported, or failed. */
async function exportTable(table: TableDescriptor, withData: boolean, run: TableRun): Promise<ManifestTable> {
  const { options, state, tablesAbort, written } = run;
  const { emit } = options;
  const { journal, reused } = state;
  const base = { id: table.id, columns: table.columns, primaryKey: table.primaryKey };
  if (!withData) {
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
    let result: WriteResult;
    try {
      result = await writeTable(table, state.previous !== undefined, run);
    } catch (error) {
      if (!(error instanceof SliceChanged)) throw error;
      // The data is not what the interrupted run read: its landed slices cannot be mixed with new ones.
      emit({ type: 'warning', message: `table ${table.id} changed since the interrupted run; taking it out again from its first slice` });
      journal.setTable(table.id, undefined);
      result = await writeTable(table, false, run);
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
}

/** The table's slices, from the first one, or (resuming) past the ones the journal says landed intact. */
async function writeTable(table: TableDescriptor, resuming: boolean, run: TableRun): Promise<WriteResult> {
  const { options, state, tablesAbort, written } = run;
  const { source, destination, emit } = options;
  const { journal, reused } = state;
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
    ifNoneMatch: state.createOnly,
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
}

function sliceSummary(s: SliceRecord): ManifestTable['slices'][number] {
  return { key: s.key, bytes: s.bytes, rawBytes: s.rawBytes, rows: s.rows, sha256: s.sha256 };
}
