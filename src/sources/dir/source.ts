import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TakeoutError, toTakeoutError } from '../../errors.js';
import { BUCKETS_FILE } from '../../keboola/layout.js';
import { readCsvFolder } from './csv-folder.js';
import { openCsvStream, shownPath, type DirTable } from './entries.js';
import { readTakeoutFolder } from './takeout-folder.js';
import type { Source } from '../source.js';
import type { GzipSlice, TableBody } from '../../model.js';

/**
 * A local project folder, in one of two forms:
 * (a) CSV files `<folder>/<bucket>/<table>.csv[.gz]` (any case of the extension) with a header row, CSV
 *     files at the root as tables of ROOT_BUCKET_ID, plus an optional `project.yaml`;
 * (b) an existing takeout (it has `buckets.json`): its JSON files and gzipped parts are passed through.
 * Either way every entry is taken, refused with an error, or named in `skipped` with the reason.
 */

export function createDirSource(folder: string, label = folder): Source {
  let form: 'csv' | 'takeout' | undefined;
  let takeoutSlices: Map<string, GzipSlice[]> | undefined;

  return {
    description: `dir:${label}`,
    localPath: resolve(folder),

    async project() {
      const info = await stat(folder).catch((error: unknown) => {
        throw (error as NodeJS.ErrnoException).code === 'ENOENT'
          ? new TakeoutError('NOT_FOUND', `source folder ${label} does not exist`)
          : toTakeoutError(error, `source folder ${label}`);
      });
      if (!info.isDirectory()) throw new TakeoutError('USAGE', `source ${label} is not a folder`);
      const isTakeout = await stat(join(folder, BUCKETS_FILE)).then(
        () => true,
        () => false,
      );
      form = isTakeout ? 'takeout' : 'csv';
      if (isTakeout) {
        const result = await readTakeoutFolder(folder, label);
        takeoutSlices = result.slices;
        return result.project;
      }
      return readCsvFolder(folder, label);
    },

    async openTable(table, open) {
      if (open.query && Object.values(open.query).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0))) {
        throw new TakeoutError('USAGE', `${label}: a folder source exports whole tables; --columns, --where, --changed-*, --limit and --order-by need a database source`);
      }
      const t = table as DirTable;
      if (form === 'takeout' && !t.file) {
        return { kind: 'gzip-slices', slices: takeoutSlices?.get(table.id) ?? [] };
      }
      if (!t.file) throw new TakeoutError('FAILED', `table ${table.id} has no file`);
      const opened = openCsvStream(t.file, t.gzip ?? false);
      return {
        kind: 'csv',
        stream: opened.stream,
        hasHeader: true,
        origin: shownPath(t.file),
        ...(opened.sourceBytes ? { sourceBytes: opened.sourceBytes } : {}),
      } satisfies TableBody;
    },
  };
}
