import { TakeoutError, toTakeoutError } from '../../errors.js';
import { ListedBytesCheck } from '../../manifests/listed-bytes.js';
import type { ManifestTable } from '../../manifests/takeout.js';
import { whereIs } from '../../stores/store.js';
import type { TableLoad } from '../../targets/target.js';
import type { PlannedTable, RestoreOptions } from './plan.js';

/**
 * Phase 2 of `takeout restore`: each table created and filled in one transaction of the target. Every slice
 * is streamed from the takeout through a check (size and sha256 as the manifest lists them, then the rows
 * the target loaded against the slice's row count), and the table is committed only when all its slices
 * passed: a corrupt slice rolls the table back (exit 6) and nothing of it is left. How many tables load at
 * once is the target's (`ParallelLoads`: a Keboola project 5, a database one).
 */

type Slice = ManifestTable['slices'][number];

/** One slice into an open load; the rows the target took are checked against the manifest. */
async function loadSlice(options: RestoreOptions, planned: PlannedTable, load: TableLoad, slice: Slice): Promise<number> {
  const origin = whereIs(options.store, slice.key);
  const check = new ListedBytesCheck(slice, origin, (n) => options.emit({ type: 'table:progress', table: planned.table.id, readBytes: n, rawBytes: 0, bytes: 0, rows: 0 }));
  let rows: number;
  try {
    const body = await options.store.get(slice.key);
    body.on('error', (error) => check.destroy(error));
    body.pipe(check);
    rows = await load.slice(check, origin);
  } catch (error) {
    check.destroy();
    // A gzip or CSV error on bytes that also fail their size or sha256 is a corrupt slice, said as such.
    const code = (error as { code?: string }).code;
    if (code?.startsWith('Z_') || (error instanceof TakeoutError && error.code === 'INVALID_INPUT' && check.bytes !== slice.bytes)) {
      throw new TakeoutError('INTEGRITY', `${origin}: not a whole gzip CSV slice (${(error as Error).message})`, { cause: error, hint: 'check the takeout with takeout verify' });
    }
    throw toTakeoutError(error, origin);
  }
  if (rows !== slice.rows) {
    throw new TakeoutError('INTEGRITY', `${origin}: ${rows} rows loaded, the takeout manifest lists ${slice.rows}`, { hint: 'check the takeout with takeout verify' });
  }
  return rows;
}

/** One table: created (or opened with --data-only), every slice loaded and checked, committed; rolled back on any failure. */
export async function loadTable(options: RestoreOptions, planned: PlannedTable): Promise<{ rows: number; bytes: number }> {
  const { table, manifest } = planned;
  const replace = planned.action === 'replace';
  const load = await options.target.load(table, { create: planned.action === 'create' || replace, data: !options.structureOnly, ...(replace ? { replace } : {}) });
  let rows = 0;
  let bytes = 0;
  try {
    if (!options.structureOnly) {
      for (const slice of manifest.slices) {
        if (options.signal?.aborted) throw new TakeoutError('INTERRUPTED', `restore of ${table.id} was interrupted: rolled back`);
        rows += await loadSlice(options, planned, load, slice);
        bytes += slice.bytes;
      }
      if (rows !== manifest.rows) throw new TakeoutError('INTEGRITY', `${table.id}: ${rows} rows loaded, the takeout manifest lists ${manifest.rows}`);
    }
    await load.commit();
  } catch (error) {
    await load.rollback();
    throw error;
  }
  return { rows, bytes };
}
