import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { whereIs, type Store, type StoreOptions } from '../stores/store.js';
import { findCaseCollision, printableKey } from '../stores/keys.js';
import { openStore } from '../stores/registry.js';
import { openSource } from '../sources/registry.js';
import { TakeoutError } from '../errors.js';
import { duplicateEntries, type EntryLocation, type MergePlan, type SliceEntry } from '../manifests/read.js';
import { DEFAULT_MAX_RATIO, mergeSlices, numberedOrder, type MergeResult } from '../pipeline/merge.js';
import type { CommandContext } from './context.js';
import { COMMON_OPTIONS, destinationOptions, GROUP, S3_ACCESS_OPTIONS, type OptionSpec, type OptionValues } from './options.js';
import { openOutput, userModes } from './output.js';
import { containerOf, loadManifest } from './merge-manifest.js';

/** One slice per core keeps both cores decompressing; measured on 1 GB: 2 → 3.14 s / 129 MB, 4 → 3.09 s / 145 MB, 8 → 2.96 s / 210 MB. */
const DEFAULT_MERGE_CONCURRENCY = Math.min(4, Math.max(2, availableParallelism()));

export const MERGE_OPTIONS = [
  { key: 'output', flags: '-o, --output <file>', description: "output file, or '-' for stdout (default: stdout when it is not a terminal)", type: 'string', group: GROUP.destination },
  { key: 'gzip', flags: '--gzip', description: 'write gzip: the slices\' gzip members concatenated as they are, never decompressed', type: 'boolean', default: false, group: GROUP.format },
  { key: 'header', flags: '--header', description: 'write one header row (from --columns, the takeout manifest or the manifest schema; on by default when the columns are known)', negatedDescription: 'write no header row', type: 'boolean', negatable: true, group: GROUP.format },
  { key: 'columns', flags: '--columns <a,b,c>', description: 'column names for the header row', type: 'list', commaSeparated: true, group: GROUP.format },
  { key: 'table', flags: '-t, --table <id>', description: "the table to merge when MANIFEST is a takeout's takeout-manifest.json", type: 'string', group: GROUP.source },
  { key: 'concurrency', flags: '-c, --concurrency <n>', description: 'slices fetched and decompressed at once (more uses more memory: about 20 MB each)', type: 'int', default: DEFAULT_MERGE_CONCURRENCY, defaultText: 'one per core, 2 to 4', min: 1, max: 64 },
  { key: 'maxRatio', flags: '--max-ratio <n>', description: 'refuse a slice that decompresses to more than n× its size (gzip bomb guard) when the manifest does not give its size', type: 'int', default: DEFAULT_MAX_RATIO, min: 2, max: 100_000 },
  { key: 'overwrite', flags: '--overwrite', description: 'replace an existing output file (and, with --keep-slices, existing kept slices)', type: 'boolean', default: false, group: GROUP.destination },
  { key: 'verify', flags: '--no-verify', description: 'with --gzip: do not inflate slices that have no size or sha256 to check (by default each is inflated on the side to prove it whole)', type: 'boolean', default: true },
] as const satisfies readonly OptionSpec[];

const DOWNLOAD_OPTIONS = [
  ...MERGE_OPTIONS,
  { key: 'source', flags: '-s, --source <uri>', description: 'with a Storage API file id as MANIFEST: the project, keboola+https://STACK', type: 'string', group: GROUP.source },
  { key: 'token', flags: '--token <token>', description: 'Keboola Storage API token (prefer KBC_STORAGE_TOKEN)', type: 'string', secret: true, group: GROUP.source },
  { key: 'allowBucket', flags: '--allow-bucket <bucket>', description: "also accept entries in this bucket (S3 or GCS) or Azure ACCOUNT/CONTAINER (default: only the manifest's own)", type: 'list', default: [], group: GROUP.source },
  { key: 'keepSlices', flags: '--keep-slices <dir>', description: 'also keep the downloaded slices in this folder', type: 'string', group: GROUP.destination },
] as const satisfies readonly OptionSpec[];

const MERGE_ONLY = [
  ...MERGE_OPTIONS,
  { key: 'manifest', flags: '-m, --manifest <file>', description: 'a local manifest listing the slices (instead of SLICES)', type: 'string', group: GROUP.source },
  {
    key: 'order',
    flags: '--order <order>',
    description: 'numeric: SLICES that are one numbered sequence (part_2, part_10) are merged in the order of their numbers, whatever order a shell glob gave them in; given: exactly as given',
    type: 'string',
    choices: ['numeric', 'given'],
    default: 'numeric',
  },
] as const satisfies readonly OptionSpec[];

export const FILES_DOWNLOAD_SPECS = [...DOWNLOAD_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS] as const;
export type FilesDownloadOptions = OptionValues<typeof FILES_DOWNLOAD_SPECS>;

export const FILES_MERGE_SPECS = [...MERGE_ONLY, ...COMMON_OPTIONS] as const;
export type FilesMergeOptions = OptionValues<typeof FILES_MERGE_SPECS>;

/** What a merge reads of the options, whichever command merges. */
type MergeValues = OptionValues<typeof MERGE_OPTIONS> & { json: boolean };

/** Column names from --columns, else from the manifest. */
function knownColumns(o: MergeValues, plan: MergePlan): string[] | undefined {
  const given = o.columns;
  return given && given.length > 0 ? given : plan.columns;
}

function headerColumns(o: MergeValues, plan: MergePlan): string[] | undefined {
  const columns = knownColumns(o, plan);
  if (o.header === false) return undefined;
  if (o.header === true && !columns) {
    throw new TakeoutError('USAGE', '--header: the manifest has no column names; give them with --columns a,b,c');
  }
  return columns;
}

/**
 * The names `--keep-slices` stores the slices under: each slice's file name, prefixed with its index when
 * an earlier slice has the same name. Names that differ only in case (or in Unicode normalisation) would
 * be one file on macOS or Windows, so they are refused before anything is written.
 */
function keptNames(entries: readonly SliceEntry[]): string[] {
  const names: string[] = [];
  const taken = new Set<string>();
  entries.forEach((entry, index) => {
    let name = basename(entry.label);
    if (taken.has(name)) name = `${index}_${name}`;
    taken.add(name);
    names.push(name);
  });
  const collision = findCaseCollision(names);
  if (collision) {
    const first = entries[names.indexOf(collision[0])]!.label;
    const second = entries[names.lastIndexOf(collision[1])]!.label;
    throw new TakeoutError(
      'INVALID_INPUT',
      `--keep-slices: slices ${first} and ${second} differ only in letter case and would be one file on a case-insensitive file system`,
      { details: { slices: [first, second] } },
    );
  }
  return names;
}

/** --keep-slices without --overwrite: refuse before anything is fetched when a kept name is already taken. */
async function refuseKeptOverwrite(keepDest: Store, names: readonly string[]): Promise<void> {
  for (const name of names) {
    if ((await keepDest.head(name)) === undefined) continue;
    throw new TakeoutError('EXISTS', `--keep-slices: ${whereIs(keepDest, name)} already exists`, {
      hint: 'choose an empty folder, or pass --overwrite to replace the kept slices',
      details: { path: whereIs(keepDest, name) },
    });
  }
}

async function runMerge(
  context: CommandContext,
  o: MergeValues,
  plan: MergePlan,
  open: (entry: SliceEntry) => Promise<Readable>,
  keepDir?: string,
): Promise<MergeResult> {
  const header = headerColumns(o, plan);
  const columns = knownColumns(o, plan);
  const keepNames = keepDir ? keptNames(plan.entries) : undefined;
  let keepDest: Store | undefined;
  if (keepDir) {
    const { createLocalStore } = await import('../stores/local/store.js');
    keepDest = createLocalStore(resolve(keepDir), userModes());
    if (!o.overwrite) await refuseKeptOverwrite(keepDest, keepNames ?? []);
  }
  const { writer, label } = await openOutput(o, context.io);
  const sizes = plan.entries.map((entry) => entry.bytes);
  const listed = sizes.every((n) => n !== undefined) ? sizes.reduce<number>((a, n) => a + (n ?? 0), 0) : undefined;
  context.reporter.emit({ type: 'merge:start', slices: plan.entries.length, output: label, ...(listed !== undefined ? { totalBytes: listed } : {}) });
  for (const { label: entry, count } of duplicateEntries(plan.entries)) {
    context.reporter.emit({ type: 'warning', message: `slice ${printableKey(entry)} is listed ${count} times: its rows are merged ${count} times, as Redshift COPY would load them` });
  }
  const t0 = Date.now();
  try {
    const result = await mergeSlices({
      plan,
      open,
      output: writer,
      gzipOutput: o.gzip,
      verifyGzip: o.verify,
      ...(header ? { header } : {}),
      ...(columns ? { columns: columns.length } : {}),
      concurrency: o.concurrency,
      maxRatio: o.maxRatio,
      // Create-only unless --overwrite, like -o: a file that appears meanwhile is refused at commit, not replaced.
      ...(keepDest && keepNames ? { keep: (_entry, index) => keepDest.writer(keepNames[index]!, { ifNoneMatch: !o.overwrite }) } : {}),
      signal: context.signal,
      onProgress: (p) => context.reporter.emit({ type: 'merge:progress', ...p }),
      onWarning: (message) => context.reporter.emit({ type: 'warning', message }),
    });
    await writer.finish();
    const durationMs = Date.now() - t0;
    context.reporter.emit({
      type: 'merge:done',
      summary: {
        output: label,
        slices: result.slices,
        skipped: result.skipped.length,
        bytes: result.bytes,
        outputBytes: result.outputBytes,
        durationMs,
        throughputMBps: durationMs > 0 ? result.outputBytes / 1e6 / (durationMs / 1000) : 0,
      },
    });
    return result;
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

const CLOUD_NAMES = { s3: 'S3', azure: 'Azure Blob Storage', gs: 'Google Cloud Storage' } as const;

/** Before anything is fetched: every slice lies in a bucket or container the manifest may read, or the first that does not is named. */
function checkEntryContainers(entries: readonly SliceEntry[], allowed: ReadonlySet<string>): void {
  for (const entry of entries) {
    const container = containerOf(entry.location);
    if (container === undefined || entry.location.kind === 'relative' || allowed.has(container)) continue;
    const flag = entry.location.kind === 'azure' ? `${entry.location.account}/${entry.location.container}` : container.replace(/^[a-z0-9]+:\/\//, '');
    const where = entry.location.kind === 'azure' ? 'container' : 'bucket';
    throw new TakeoutError('USAGE', `slice ${entry.label} is in ${CLOUD_NAMES[entry.location.kind]} ${where} ${flag}, which this manifest may not read`, {
      hint: `entries may point only into the manifest's own ${where}; pass --allow-bucket ${flag} if that ${where} is meant`,
    });
  }
}

/** The store URL that reads an entry's bucket or container with the user's own credentials for that cloud. */
function entryStoreUrl(location: Exclude<EntryLocation, { kind: 'relative' }>, label: string): string {
  if (location.kind !== 'azure') return `${location.kind}://${location.bucket}/`;
  // The entry's own host (a sovereign cloud's suffix included); the credentials are the user's AZURE_STORAGE_*.
  const host = /^azure:\/\/([^/]+)\//i.exec(label)?.[1] ?? `${location.account}.blob.core.windows.net`;
  return `https://${host}/${location.container}/`;
}

/** A slice in a folder only: `files merge` reads no cloud (files download does). */
function cloudEntryRefused(label: string, kind: 's3' | 'azure' | 'gs'): TakeoutError {
  return new TakeoutError('USAGE', `slice ${label} is on ${CLOUD_NAMES[kind]}: use takeout files download`);
}

function storeCache(dOptions: StoreOptions): (dest: string) => Promise<Store> {
  const cache = new Map<string, Promise<Store>>();
  return (dest) => {
    let d = cache.get(dest);
    if (!d) {
      d = openStore(dest, dOptions);
      cache.set(dest, d);
    }
    return d;
  };
}

/**
 * `takeout files download`: the slices a manifest lists (local or s3://), or a Storage API file by id
 * (with --source), merged into one file.
 */
export async function filesDownload(manifestArg: string, o: FilesDownloadOptions, context: CommandContext): Promise<MergeResult> {
  if (typeof o.source === 'string') {
    // A Storage API file by id: its slices (or its one object, which has its own header) from the project's S3.
    const project = await openSource(o.source, { ...context.network, ...(typeof o.token === 'string' ? { token: o.token } : {}), onWarning: (message) => context.reporter.emit({ type: 'warning', message }) });
    context.onClose(async () => project.close?.());
    if (!project.openFile) throw new TakeoutError('USAGE', `--source ${project.description} has no files to download by id`);
    const file = await project.openFile(manifestArg, { signal: context.signal });
    const byLabel = new Map(file.slices.map((slice) => [slice.origin, slice]));
    const plan: MergePlan = {
      form: 'redshift',
      entries: file.slices.map((slice) => ({ location: { kind: 'relative', key: slice.origin }, label: slice.origin, mandatory: true })),
    };
    return runMerge(context, file.header ? { ...o, header: false } : o, plan, (entry) => byLabel.get(entry.label)!.open(), o.keepSlices);
  }
  const storeOptions = destinationOptions(o, context.network);
  const open = storeCache(storeOptions);
  const source = await loadManifest(manifestArg, o, open, storeOptions.azure);
  checkEntryContainers(source.plan.entries, source.allowedBuckets);
  return runMerge(
    context,
    o,
    source.plan,
    async (entry) => {
      if (entry.location.kind !== 'relative') return (await open(entryStoreUrl(entry.location, entry.label))).get(entry.location.key);
      const base = await open(source.base.dest);
      return base.get(source.base.prefix ? `${source.base.prefix}/${entry.location.key}` : entry.location.key);
    },
    o.keepSlices,
  );
}

/** `takeout files merge`: local slices, as given (a numbered sequence in its numbers' order) or as a local manifest lists them. */
export async function filesMerge(slices: readonly string[], o: FilesMergeOptions, context: CommandContext): Promise<MergeResult> {
  const manifest = o.manifest;
  if (manifest && slices.length > 0) throw new TakeoutError('USAGE', 'give either SLICES or --manifest, not both');
  if (!manifest && slices.length === 0) throw new TakeoutError('USAGE', 'give the slices to merge, or --manifest FILE');
  if (manifest) {
    const local = storeCache({});
    const source = await loadManifest(manifest, { allowBucket: [], table: o.table }, local);
    const remote = source.plan.entries.find((entry) => entry.location.kind !== 'relative');
    if (remote !== undefined && remote.location.kind !== 'relative') throw cloudEntryRefused(remote.label, remote.location.kind);
    return runMerge(context, o, source.plan, async (entry) => {
      if (entry.location.kind !== 'relative') throw cloudEntryRefused(entry.label, entry.location.kind);
      return (await local(source.base.dest)).get(source.base.prefix ? `${source.base.prefix}/${entry.location.key}` : entry.location.key);
    });
  }
  let ordered = slices;
  if (o.order !== 'given') {
    const numbered = numberedOrder(slices);
    ordered = numbered.names;
    if (numbered.moved) {
      context.reporter.emit({
        type: 'warning',
        message: `merging the slices in the order of their numbers, not as given: ${printableKey(numbered.moved.first)} before ${printableKey(numbered.moved.second)} (--order given keeps the order given)`,
      });
    }
  }
  const plan: MergePlan = {
    form: 'redshift',
    entries: ordered.map((path) => ({ location: { kind: 'relative', key: path }, label: path, mandatory: true })),
  };
  return runMerge(context, o, plan, async (entry) => {
    const path = resolve(entry.label);
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new TakeoutError('NOT_FOUND', `slice ${entry.label} does not exist`);
    if (!info.isFile()) throw new TakeoutError('USAGE', `slice ${entry.label} is not a file`);
    return createReadStream(path, { highWaterMark: 1 << 20 });
  });
}
