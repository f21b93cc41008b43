/** What the CleverTap layout is asked for: its formats and the options it reads (shared by the layout and its event encoders). */
export const CLEVERTAP_FORMATS = ['JSON', 'CSV', 'XML', 'PARQUET'] as const;
export type ClevertapFormat = (typeof CLEVERTAP_FORMATS)[number];

export interface ClevertapLayoutOptions {
  format: ClevertapFormat;
  /** Column names as the table has them (resolved ignoring case by `resolveColumn`). */
  eventColumn: string;
  tsColumn: string;
  identityPriority: readonly string[];
  profileColumns: readonly string[];
  deviceColumns: readonly string[];
  /** The `<database-id>` of the file names; default: a hash of the source's description (which holds no secrets). */
  databaseId?: string;
  gzip: boolean;
  /** The source cannot filter on the ts column: the layout keeps only the rows in the export window itself. */
  filterWindow: boolean;
}
