/** What a dataset export job is given: the source table, the layout, the window and the file settings. */
import type { Store } from '../../stores/store.js';
import type { DatasetLayout, LayoutContext } from '../../layouts/dataset-layout.js';
import type { Source } from '../../sources/source.js';
import type { TableDescriptor, TableQuery } from '../../model.js';
import type { Emit } from '../events.js';

export interface DatasetExportOptions {
  source: Source;
  destination: Store;
  table: TableDescriptor;
  /** Columns and filters (the table export options); the export window is added to it. */
  query?: TableQuery;
  /** The layout's name and every layout option that changes its files (for the definition and the client token). */
  layoutName: string;
  layoutOptions: Record<string, unknown>;
  buildLayout(ctx: LayoutContext): DatasetLayout;
  /** FULL_EXPORT takes every row (up to exportTime, with a change column); INCREMENTAL_EXPORT a window. */
  exportType: 'FULL_EXPORT' | 'INCREMENTAL_EXPORT';
  /** The column the window is on (a row's change time, or an event's time). */
  windowColumn?: string;
  /**
   * false: the source is not asked to filter on the window column (it cannot, or cannot read the column's
   * values as times); the layout gets the window in its context and keeps the rows in it itself.
   */
  windowInSource?: boolean;
  exportTime?: Date;
  exportFromTime?: Date;
  exportToTime?: Date;
  /** Each run takes what changed since the last completed run of the same definition. */
  recurring: boolean;
  clientToken?: string;
  /**
   * Replace files an earlier export left at the same keys (a key template without {export_id}). Without it a
   * fresh export writes create-only: its manifest key taken is refused before anything is written (EXISTS),
   * and a data file or manifest that appears meanwhile at commit. A resumed export replaces its own files.
   */
  overwrite?: boolean;
  maxFileBytes: number;
  compressionLevel: number;
  /** For the manifests' bucket and keys: null and '' for a local folder. */
  bucket: string | null;
  prefix: string;
  exportArn(exportId: string): string;
  toolVersion: string;
  /** Recorded in the job record as given (already free of secrets). */
  recordedOptions: Record<string, unknown>;
  signal?: AbortSignal;
  emit: Emit;
}
