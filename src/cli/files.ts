import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { Command } from 'commander';
import type { Store, StoreOptions } from '../stores/store.js';
import { findCaseCollision, printableKey } from '../stores/keys.js';
import { mistypedUrl, openStore } from '../stores/registry.js';
import { openSource } from '../sources/registry.js';
import { TakeoutError } from '../errors.js';
import { MANIFESTS_DIR, TAKEOUT_MANIFEST_FILE } from '../manifests/takeout.js';
import {
  duplicateEntries,
  parseManifestJson,
  readManifestFile,
  readManifestDocument,
  readManifestText,
  readTakeoutManifest,
  redshiftPlan,
  takeoutTablePlan,
  type MergePlan,
  type SliceEntry,
} from '../manifests/read.js';
import { DEFAULT_MAX_RATIO, mergeSlices, numberedOrder, type MergeResult } from '../pipeline/merge.js';
import { plural } from '../pipeline/units.js';
import { addOptions, COMMON_OPTIONS, destinationOptions, GROUP, resolveOptions, S3_ACCESS_OPTIONS, type OptionSpec, type Resolved } from './options.js';
import type { CommandContext } from './context.js';
import { addExamples } from './help.js';
import { openOutput, userModes } from './output.js';

/** One slice per core keeps both cores decompressing; measured on 1 GB: 2 → 3.14 s / 129 MB, 4 → 3.09 s / 145 MB, 8 → 2.96 s / 210 MB. */
const DEFAULT_MERGE_CONCURRENCY = Math.min(4, Math.max(2, availableParallelism()));

export const MERGE_OPTIONS: OptionSpec[] = [
  { key: 'output', flags: '-o, --output <file>', description: "output file, or '-' for stdout (default: stdout when it is not a terminal)", type: 'string', group: GROUP.destination },
  { key: 'gzip', flags: '--gzip', description: 'write gzip: the slices\' gzip members concatenated as they are, never decompressed', type: 'boolean', default: false, group: GROUP.format },
  { key: 'header', flags: '--header', description: 'write one header row (from --columns, the takeout manifest or the manifest schema; on by default when the columns are known)', negatedDescription: 'write no header row', type: 'boolean', negatable: true, group: GROUP.format },
  { key: 'columns', flags: '--columns <a,b,c>', description: 'column names for the header row', type: 'list', commaSeparated: true, group: GROUP.format },
  { key: 'table', flags: '-t, --table <id>', description: "the table to merge when MANIFEST is a takeout's takeout-manifest.json", type: 'string', group: GROUP.source },
  { key: 'concurrency', flags: '-c, --concurrency <n>', description: 'slices fetched and decompressed at once (more uses more memory: about 20 MB each)', type: 'int', default: DEFAULT_MERGE_CONCURRENCY, defaultText: 'one per core, 2 to 4', min: 1, max: 64 },
  { key: 'maxRatio', flags: '--max-ratio <n>', description: 'refuse a slice that decompresses to more than n× its size (gzip bomb guard) when the manifest does not give its size', type: 'int', default: DEFAULT_MAX_RATIO, min: 2, max: 100_000 },
  { key: 'overwrite', flags: '--overwrite', description: 'replace an existing output file (and, with --keep-slices, existing kept slices)', type: 'boolean', default: false, group: GROUP.destination },
  { key: 'verify', flags: '--no-verify', description: 'with --gzip: do not inflate slices that have no size or sha256 to check (by default each is inflated on the side to prove it whole)', type: 'boolean', default: true },
];

const DOWNLOAD_OPTIONS: OptionSpec[] = [
  ...MERGE_OPTIONS,
  { key: 'source', flags: '-s, --source <uri>', description: 'with a Storage API file id as MANIFEST: the project, keboola+https://STACK', type: 'string', group: GROUP.source },
  { key: 'token', flags: '--token <token>', description: 'Keboola Storage API token (prefer KBC_STORAGE_TOKEN)', type: 'string', secret: true, group: GROUP.source },
  { key: 'allowBucket', flags: '--allow-bucket <bucket>', description: "also accept entries in this bucket (default: only the manifest's own bucket)", type: 'list', default: [], group: GROUP.source },
  { key: 'keepSlices', flags: '--keep-slices <dir>', description: 'also keep the downloaded slices in this folder', type: 'string', group: GROUP.destination },
];

const MERGE_ONLY: OptionSpec[] = [
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
];

/** Where a manifest was read from, and how its relative entries and s3:// entries are reached. */
interface ManifestSource {
  plan: MergePlan;
  /** Relative entries are keys under this base. */
  base: { dest: string; prefix: string };
  /** Buckets whose s3:// entries may be read. */
  allowedBuckets: Set<string>;
  origin: string;
}

function splitS3(url: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.*)$/.exec(url);
  if (!match || !match[2]) throw new TakeoutError('USAGE', `${url} is not s3://bucket/key`);
  return { bucket: match[1]!, key: match[2] };
}

/** A slice manifest inside a takeout (`<root>/manifests/<tableId>.manifest`) is read with the takeout's checksums. */
function takeoutRootOf(manifestKey: string): string | undefined {
  const dir = manifestKey.includes('/') ? manifestKey.slice(0, manifestKey.lastIndexOf('/')) : '';
  const name = dir.slice(dir.lastIndexOf('/') + 1);
  if (name !== MANIFESTS_DIR) return undefined;
  return dir.slice(0, Math.max(0, dir.length - MANIFESTS_DIR.length)).replace(/\/$/, '');
}

async function loadManifest(
  arg: string,
  o: Resolved,
  open: (dest: string) => Promise<Store>,
): Promise<ManifestSource> {
  const allowed = new Set<string>((o.allowBucket as string[] | undefined) ?? []);
  let fetch: (key: string) => Promise<string | undefined>;
  let baseDest: string;
  let manifestKey: string;
  if (/^s3:\/\//i.test(arg)) {
    const { bucket, key } = splitS3(`s3://${arg.slice('s3://'.length)}`);
    allowed.add(bucket);
    baseDest = `s3://${bucket}/`;
    manifestKey = key;
    const store = await open(baseDest);
    fetch = async (k) => ((await store.head(k)) ? readManifestText(await store.get(k), `s3://${bucket}/${k}`) : undefined);
  } else {
    // A mistyped URL (`s3:/b/m.manifest`) is a usage error, not a missing local file.
    const mistyped = /^[a-z][a-z0-9+.-]*:\/\//i.test(arg) ? new TakeoutError('USAGE', `manifest ${JSON.stringify(arg)}: only s3:// URLs and local paths are read`) : mistypedUrl(arg, 'manifest');
    if (mistyped) throw mistyped;
    const file = resolve(arg);
    const info = await stat(file).catch(() => undefined);
    if (!info) throw new TakeoutError('NOT_FOUND', `manifest ${arg} does not exist`);
    if (info.isDirectory()) throw new TakeoutError('USAGE', `manifest ${arg} is a folder; give its takeout-manifest.json or a manifests/<table>.manifest`);
    baseDest = '/';
    manifestKey = file.slice(1);
    fetch = async (k) => readManifestFile(`/${k}`, k === manifestKey ? arg : `/${k}`);
  }
  const origin = arg;
  const text = await fetch(manifestKey);
  if (text === undefined) throw new TakeoutError('NOT_FOUND', `manifest ${arg} does not exist`);
  const document = readManifestDocument(text, origin);
  const value = document.value;
  const folder = manifestKey.includes('/') ? manifestKey.slice(0, manifestKey.lastIndexOf('/')) : '';
  const table = o.table as string | undefined;

  if (typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'takeout') {
    if (!table) throw new TakeoutError('USAGE', `${origin} is a takeout manifest: name the table with --table <id>`);
    const plan = takeoutTablePlan(readTakeoutManifest(value, origin), table, origin);
    return { plan, base: { dest: baseDest, prefix: folder }, allowedBuckets: allowed, origin };
  }
  if (table) throw new TakeoutError('USAGE', '--table applies only to a takeout manifest (takeout-manifest.json)');
  const root = takeoutRootOf(manifestKey);
  if (root !== undefined) {
    // A takeout's slice manifest: prefer the takeout manifest beside it, which has sha256 and raw sizes.
    const tableId = basename(manifestKey).replace(/\.manifest$/, '');
    const outer = await fetch(root ? `${root}/${TAKEOUT_MANIFEST_FILE}` : TAKEOUT_MANIFEST_FILE);
    if (outer !== undefined) {
      const takeout = readTakeoutManifest(parseManifestJson(outer, `${TAKEOUT_MANIFEST_FILE} beside ${origin}`), TAKEOUT_MANIFEST_FILE);
      if (takeout.tables.some((t) => t.id === tableId)) {
        const fromTakeout = takeoutTablePlan(takeout, tableId, TAKEOUT_MANIFEST_FILE);
        const own = redshiftPlan(document, origin);
        // The two must list the same slices; a slice manifest that disagrees is not trusted.
        if (own.entries.length !== fromTakeout.entries.length) {
          throw new TakeoutError('INTEGRITY', `${origin} lists ${plural(own.entries.length, 'slice')}, ${TAKEOUT_MANIFEST_FILE} ${fromTakeout.entries.length}`);
        }
        return { plan: fromTakeout, base: { dest: baseDest, prefix: root }, allowedBuckets: allowed, origin };
      }
    }
    return { plan: redshiftPlan(document, origin), base: { dest: baseDest, prefix: root }, allowedBuckets: allowed, origin };
  }
  return { plan: redshiftPlan(document, origin), base: { dest: baseDest, prefix: folder }, allowedBuckets: allowed, origin };
}

/** Column names from --columns, else from the manifest. */
function knownColumns(o: Resolved, plan: MergePlan): string[] | undefined {
  const given = o.columns as string[] | undefined;
  return given && given.length > 0 ? given : plan.columns;
}

function headerColumns(o: Resolved, plan: MergePlan): string[] | undefined {
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
    throw new TakeoutError('EXISTS', `--keep-slices: ${keepDest.description}${name} already exists`, {
      hint: 'choose an empty folder, or pass --overwrite to replace the kept slices',
      details: { path: `${keepDest.description}${name}` },
    });
  }
}

async function runMerge(
  context: CommandContext,
  o: Resolved,
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
    if (o.overwrite !== true) await refuseKeptOverwrite(keepDest, keepNames ?? []);
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
      gzipOutput: o.gzip === true,
      verifyGzip: o.verify !== false,
      ...(header ? { header } : {}),
      ...(columns ? { columns: columns.length } : {}),
      concurrency: o.concurrency as number,
      maxRatio: o.maxRatio as number,
      // Create-only unless --overwrite, like -o: a file that appears meanwhile is refused at commit, not replaced.
      ...(keepDest && keepNames ? { keep: (_entry, index) => keepDest.writer(keepNames[index]!, { ifNoneMatch: o.overwrite !== true }) } : {}),
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

function s3Cache(dOptions: StoreOptions): (dest: string) => Promise<Store> {
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

export function filesCommand(context: CommandContext): Command {
  const files = new Command('files')
    .summary('download and merge sliced exports into one file')
    .description('Turn sliced exports (a takeout, a Redshift UNLOAD or Storage API manifest, gzip slices on disk) into one file.');
  addExamples(files, [
    ["one table of a takeout in S3, as one CSV", 'takeout files download s3://backups/kbc/takeout-manifest.json \\\n      -t in.c-main.orders -o orders.csv'],
    ['slices on disk, as one gzip file', 'takeout files merge --gzip -o all.csv.gz slice_*.csv.gz'],
  ]);

  const download = new Command('download')
    .argument('<manifest>', 'a manifest: local path or s3:// URL (Redshift/Storage API form, a takeout\'s manifests/<table>.manifest, or takeout-manifest.json with --table), or a Storage API file id with --source keboola+https://STACK')
    .summary('fetch the slices a manifest lists and merge them into one file')
    .description(
      'Fetch the slices a manifest lists, in parallel, and write them in manifest order to one output: plain ' +
        'CSV (each slice gunzipped; slices that are not gzip pass through) or, with --gzip, the gzip members as ' +
        'they are.\n\n' +
        "Entries must be s3:// URLs in the manifest's own bucket (or one given with --allow-bucket), or keys " +
        "relative to the manifest's takeout; http(s):, file: and keys that escape the folder are refused. Sizes " +
        'are checked against meta.content_length and sha256 against a takeout manifest. A missing mandatory ' +
        'slice fails the run; a missing optional one is skipped with a warning (Redshift COPY semantics). The ' +
        'output is written to a temp file beside the target and renamed only when complete.',
    );
  addExamples(download, [
    ['a Redshift UNLOAD manifest, as one CSV with a header row', 'takeout files download s3://unload/orders/manifest -o orders.csv'],
    ["one table of a takeout, as gzip", 'takeout files download ./takeout/takeout-manifest.json -t in.c-main.orders \\\n      --gzip -o orders.csv.gz'],
    ['a Storage API file by id', 'takeout files download 123456 -s keboola+https://connection.keboola.com \\\n      -o file.csv'],
  ]);
  const downloadSpecs = [...DOWNLOAD_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS];
  addOptions(download, downloadSpecs);
  download.action(async (manifestArg: string) => {
    const o = resolveOptions(download, downloadSpecs);
    await context.configure(o);
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
      await runMerge(context, file.header ? { ...o, header: false } : o, plan, (entry) => byLabel.get(entry.label)!.open(), o.keepSlices as string | undefined);
      return;
    }
    const open = s3Cache(destinationOptions(o, context.network));
    const source = await loadManifest(manifestArg, o, open);
    await runMerge(
      context,
      o,
      source.plan,
      async (entry) => {
        if (entry.location.kind === 's3') {
          const { bucket, key } = entry.location;
          if (!source.allowedBuckets.has(bucket)) {
            throw new TakeoutError('USAGE', `slice ${entry.label} is in bucket ${bucket}, which this manifest may not read`, {
              hint: `entries may point only into the manifest's own bucket; pass --allow-bucket ${bucket} if that bucket is meant`,
            });
          }
          return (await open(`s3://${bucket}/`)).get(key);
        }
        const base = await open(source.base.dest);
        return base.get(source.base.prefix ? `${source.base.prefix}/${entry.location.key}` : entry.location.key);
      },
      o.keepSlices as string | undefined,
    );
  });

  const merge = new Command('merge')
    .argument('[slices...]', 'local slice files: a numbered sequence (part_0 … part_12) in the order of its numbers, others in the order given')
    .summary('merge slices already on disk into one file')
    .description(
      'Merge local slices (gzip or plain CSV) into one output with at most one header row, in the order given ' +
        'or in the order a local manifest (--manifest) lists them; the same checks as files download. Slices named as one ' +
        'numbered sequence (part_0, part_1 … part_10) are merged in the order of their numbers, since a shell glob ' +
        'sorts part_10 before part_2; --order given keeps the order given.',
    );
  addExamples(merge, [
    ['slices in the order given, to stdout', 'takeout files merge part_0.csv.gz part_1.csv.gz > orders.csv'],
    ['the slices a local manifest lists, with a header row', 'takeout files merge -m ./takeout/manifests/in.c-main.orders.manifest \\\n      -o orders.csv'],
  ]);
  const mergeSpecs = [...MERGE_ONLY, ...COMMON_OPTIONS];
  addOptions(merge, mergeSpecs);
  merge.action(async (slices: string[]) => {
    const o = resolveOptions(merge, mergeSpecs);
    await context.configure(o);
    const manifest = o.manifest as string | undefined;
    if (manifest && slices.length > 0) throw new TakeoutError('USAGE', 'give either SLICES or --manifest, not both');
    if (!manifest && slices.length === 0) throw new TakeoutError('USAGE', 'give the slices to merge, or --manifest FILE');
    if (manifest) {
      const local = s3Cache({});
      const source = await loadManifest(manifest, { ...o, allowBucket: [] }, local);
      await runMerge(context, o, source.plan, async (entry) => {
        if (entry.location.kind === 's3') {
          throw new TakeoutError('USAGE', `slice ${entry.label} is on S3: use takeout files download`);
        }
        return (await local(source.base.dest)).get(source.base.prefix ? `${source.base.prefix}/${entry.location.key}` : entry.location.key);
      });
      return;
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
    await runMerge(context, o, plan, async (entry) => {
      const path = resolve(entry.label);
      const info = await stat(path).catch(() => undefined);
      if (!info) throw new TakeoutError('NOT_FOUND', `slice ${entry.label} does not exist`);
      if (!info.isFile()) throw new TakeoutError('USAGE', `slice ${entry.label} is not a file`);
      return createReadStream(path, { highWaterMark: 1 << 20 });
    });
  });

  files.addCommand(download);
  files.addCommand(merge);
  return files;
}
