import type { SliceRecord } from '../model.js';

/** The commit record's name at the root of a takeout, written last. */
export const TAKEOUT_MANIFEST_FILE = 'takeout-manifest.json';
/** The folder of per-table slice manifests, beside the takeout manifest. */
export const MANIFESTS_DIR = 'manifests';

/** Bumped when the manifest's shape changes incompatibly; readers refuse versions they do not know. */
export const TAKEOUT_MANIFEST_VERSION = 1;

export interface TakeoutManifest {
  formatVersion: typeof TAKEOUT_MANIFEST_VERSION;
  kind: 'takeout';
  tool: { name: 'takeout'; version: string; node: string };
  runId: string;
  /** Present when this run resumed an interrupted one: that run's id, and what it had landed that was kept. */
  resumed?: { runId: string; attempts: number; reusedSlices: number; reusedBytes: number };
  /** `complete` only when every selected table and file landed; this file is the commit record. */
  status: 'complete' | 'partial';
  source: string;
  destination: string;
  startedAt: string;
  finishedAt: string;
  options: Record<string, unknown>;
  project: { id?: string | number; name?: string; meta?: Record<string, unknown>; skipped?: { id: string; reason: string }[] };
  totals: { tables: number; tablesFailed: number; rows: number; rawBytes: number; bytes: number; slices: number };
  tables: ManifestTable[];
  /** The layout's own files (buckets.json, tables.json, configurations, slice manifests). */
  files: { key: string; bytes: number; sha256: string }[];
  /** Present when `takeout copy` wrote this takeout: where from (the run's id is the source's `runId`). */
  copiedFrom?: CopiedFrom;
}

export interface CopiedFrom {
  source: string;
  runId: string;
  copiedAt: string;
  tool: { name: 'takeout'; version: string };
}

export interface ManifestTable {
  id: string;
  status: 'complete' | 'failed' | 'structure-only';
  columns: string[];
  primaryKey: string[];
  rows: number;
  rawBytes: number;
  bytes: number;
  /** Key of the Redshift-style slice manifest for this table. */
  manifest?: string;
  slices: Pick<SliceRecord, 'key' | 'bytes' | 'rawBytes' | 'rows' | 'sha256'>[];
  error?: { code: string; message: string };
}

/** A Redshift COPY … MANIFEST compatible slice list; `url` is `s3://…`, or for local takeouts a key relative to the takeout root. */
export interface SliceManifest {
  entries: { url: string; mandatory: boolean; meta?: { content_length?: number; record_count?: number } }[];
  schema?: { elements: { name: string; type: { base: string } }[] };
  meta?: { content_length: number; record_count: number };
  author?: { name: string; version: string };
}

export function sliceManifest(
  slices: readonly SliceRecord[],
  columns: readonly string[],
  urlFor: (key: string) => string | undefined,
  toolVersion: string,
): SliceManifest {
  return {
    entries: slices.map((s) => ({
      url: urlFor(s.key) ?? s.key,
      mandatory: true,
      meta: { content_length: s.bytes, record_count: s.rows },
    })),
    schema: { elements: columns.map((name) => ({ name, type: { base: 'character varying' } })) },
    meta: {
      content_length: slices.reduce((n, s) => n + s.bytes, 0),
      record_count: slices.reduce((n, s) => n + s.rows, 0),
    },
    author: { name: 'takeout', version: toolVersion },
  };
}
