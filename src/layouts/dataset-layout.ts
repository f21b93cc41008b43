import type { LineEncoder, RecordColumn } from '../formats/typed-records.js';
import type { JobRecord } from '../manifests/jobs.js';
import type { SliceRecord } from '../model.js';
import type { Row, TableDescriptor } from '../model.js';

/**
 * A dataset export layout: where an export's files go, how rows become files, and which files come
 * before and after the data. The runner (src/pipeline/dataset-export.ts) owns everything else: the job record,
 * the journal and resume, the source, the pipeline, and writing the files in order.
 */
export interface DatasetLayout {
  readonly name: string;
  /** As the job record and `dataset exports` show it: DYNAMODB_JSON, ION, CSV, JSON, XML, PARQUET. */
  readonly exportFormat: string;
  /** This export's folder, relative to the destination, ending with `/`. */
  readonly outputPrefix: string;
  /** The commit record (written last among the layout's files), relative to the destination. */
  readonly manifestKey: string;
  /** Files written before any data (DynamoDB's `_started`). */
  startFiles?(): LayoutFile[];
  readonly data: LineFiles | BlockFiles;
  /**
   * Optional row selection over the whole export (Personalize's deduplication). With `observe`, the
   * source is read twice: every row is observed first, then `keep` decides on the second read.
   */
  readonly filter?: RowFilter;
  /** Files written after the data, in order; the commit record (`manifestKey`) among them, sidecars after it. */
  finishFiles(files: readonly DataFile[], job: JobRecord): LayoutFile[];
}

export interface LayoutFile {
  key: string;
  body: string | Buffer;
  contentType?: string;
}

/** A data file as it landed: its key, stored size, records, checksums; `series` names its group. */
export type DataFile = SliceRecord & { series: string };

/** Formats written record by record: each file is `prologue`, records, `epilogue`, gzipped or not. */
export interface LineFiles {
  kind: 'lines';
  /** One series of files per value (CleverTap: the event name); one series `''` when absent. */
  seriesOf?(row: Row): string;
  encoder: LineEncoder;
  /** Text that starts each file of a series (a CSV header, CleverTap's event-name line, an XML prolog). */
  prologue?(series: string): string;
  /** Text that ends each file (a closing XML element). */
  epilogue?(series: string): string;
  /** Key of file `index` (0, 1, …) of a series, relative to the destination. */
  fileKey(series: string, index: number): string;
  gzip: boolean;
}

/** Formats built a whole file at a time (Parquet): rows in, bytes out when the file is full. */
export interface BlockFiles {
  kind: 'blocks';
  seriesOf?(row: Row): string;
  open(series: string): FileBuilder;
  fileKey(series: string, index: number): string;
}

export interface FileBuilder {
  add(rows: readonly Row[]): void;
  /** At most the file's size if it were finished now (pending rows counted at their text size). */
  readonly boundBytes: number;
  /** At most what adding `row` adds to `boundBytes`: the runner closes the file first when it would pass --max-file-size. */
  rowBytes(row: Row): number;
  /** Encode what is pending, so `boundBytes` is exact but for the footer. */
  settle(): void;
  finish(): Uint8Array;
}

export interface RowFilter {
  observe?(row: Row): void;
  keep(row: Row): boolean;
  /**
   * Called before each read `keep` decides on: a resumed export whose source changed reads the table again
   * from its start, and a `keep` with state (records already written) must forget it.
   */
  rewind?(): void;
}

/** What a layout is built from. */
export interface LayoutContext {
  exportId: string;
  table: TableDescriptor;
  /** The exported columns, typed. */
  columns: readonly RecordColumn[];
  source: string;
  /** For manifests that name objects by bucket and full key; null and '' for a local folder. */
  bucket: string | null;
  prefix: string;
  startTime: Date;
  /**
   * The export window on the window column, [from, to), as the job record states it. The source applies it,
   * unless the export was started with `windowInSource: false`: then the layout keeps only those rows itself.
   */
  window?: { from?: Date; to?: Date };
}
