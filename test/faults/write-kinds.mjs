/**
 * One classifier of takeout's writes by key (relative to the destination root), shared by the fault
 * tests and the faulty destination their CLI child processes load. A new kind of write (the lease
 * file, say) is one line here and one row in test/write-faults.test.ts.
 * Depends on nothing in src/, on purpose: it states what the tests expect the keys to be.
 */

/** @type {ReadonlyArray<readonly [import('./write-kinds.d.mts').WriteKind, RegExp]>} */
const RULES = [
  // A create-only lease object at the destination; its final key is not settled yet, so any name saying lock or lease.
  ['lock', /(^|\/)[^/]*(lock|lease)[^/]*$/i],
  ['journal', /(^|\/)takeout-journal\.json$|^takeout-exports\/[^/]+\.journal\.json$/],
  ['job', /^takeout-exports\/(tokens\/)?[^/]+\.json$/],
  ['manifest', /^takeout-manifest\.json$/],
  ['slice', /\.part_\d+\.csv(\.gz)?$/],
  // Keboola's layout files, those its restore engine reads too (defaultBranchMetadata, triggers, …), permanent files.
  ['layout', /^(buckets|tables|configurations|defaultBranchMetadata|triggers|notifications|permanentFiles)\.json$|^configurations\/.+\.json(\.metadata)?$|^manifests\/.+\.manifest$|^files\/[^/]+$/],
  // Dataset exports: data files end in a part number (part-00000.csv.gz, …-0-<db>.json), the rest is the layout's.
  ['dataset-file', /(^|\/)(part-\d+[^/]*|[^/]+-\d+-[^/]+\.(json|csv|xml|parquet)(\.gzip|\.gz)?|[^/]+\.(csv|jsonl|json|ion|parquet)(\.gz|\.gzip)?)$/],
];

const DATASET_LAYOUT = /(^|\/)(_manifest\.json|manifest|_SUCCESS|manifest-files\.json|manifest-summary\.json|[^/]*\.md5|[^/]*manifest[^/]*)$/;

/** The kind of write a key is; `other` for a key no row of the fault matrix covers. */
export function writeKind(key) {
  // The layout's own files first: their names (manifest-files.json) would otherwise look like data.
  if (DATASET_LAYOUT.test(key) && !/^manifests\//.test(key) && key !== 'takeout-manifest.json') return 'dataset-layout';
  for (const [kind, pattern] of RULES) if (pattern.test(key)) return kind;
  return 'other';
}
