import { resolve } from 'node:path';
import { TakeoutError } from '../errors.js';
import { checkedStore, openStore, parseStore } from '../stores/registry.js';
import { DEFAULT_COMPRESSION_LEVEL } from '../pipeline/compress.js';
import type { RunPlan, RunSummary } from '../pipeline/events.js';
import { runTakeout } from '../pipeline/run.js';
import { DEMO_SOURCE, openSource } from '../sources/registry.js';
import { COMMON_OPTIONS, GROUP, STORE_FORMS, destinationOptions, DYNAMODB_OPTIONS, S3_OPTIONS, sourceOptions, unthrottled, type OptionSpec, type OptionValues } from './options.js';
import type { CommandContext } from './context.js';

const MiB = 1024 * 1024;

/** Keboola's own exports slice at 200 MB; 256 MB keeps parts few while any one slice stays easy to handle. */
const DEFAULT_SLICE_SIZE = '256MB';
/** Below this a slice holds too little for a good gzip ratio and the manifest grows large. */
const MIN_SLICE_BYTES = 16 * 1024;
/** S3 copies objects up to 5 GiB in one request; larger slices could not be copied server-side later. */
const MAX_SLICE_BYTES = 5 * 1024 * MiB;

export const RUN_OPTIONS = [
  { key: 'source', flags: '-s, --source <uri>', description: 'project to take out: a folder (or dir:PATH) of CSV files, an existing takeout, postgres://user@host:port/db, sqlite:PATH, keboola+https://STACK, dynamodb:TABLE (dynamodb: for every table), or demo (the bundled demo project, which a bare `takeout run` takes out)', type: 'string', group: GROUP.source },
  { key: 'schema', flags: '--schema <name>', description: 'database sources: only this schema', type: 'list', group: GROUP.source },
  { key: 'token', flags: '--token <token>', description: 'Keboola Storage API token (prefer KBC_STORAGE_TOKEN)', type: 'string', secret: true, group: GROUP.source },
  { key: 'dest', flags: '-d, --dest <dest>', description: `${STORE_FORMS} (default: a new folder ./takeout-<time>)`, type: 'string', group: GROUP.destination },
  { key: 'path', flags: '--path <prefix>', description: "prefix inside the destination; '', '/' and 'a/b/' are normalised", type: 'string', group: GROUP.destination },
  { key: 'structureOnly', flags: '--structure-only', description: 'metadata and configurations only (plus sys-stage table data, as Keboola does)', type: 'boolean', default: false, group: GROUP.source },
  { key: 'include', flags: '-i, --include <glob>', description: 'take only tables whose id or bucket id matches (* any characters, ? one, {a,b} either)', type: 'list', default: [], group: GROUP.source },
  { key: 'exclude', flags: '-x, --exclude <glob>', description: 'leave out tables whose id or bucket id matches; wins over --include', type: 'list', default: [], group: GROUP.source },
  { key: 'dryRun', flags: '-n, --dry-run', description: 'a preflight: check the destination as the run would (credentials, bucket, a takeout or other files there, overlap with the source folder, free disk space), print the plan (tables, estimated bytes, memory bound, keys); write nothing; exit as the run would', type: 'boolean', default: false },
  { key: 'overwrite', flags: '--overwrite', description: 'replace a takeout already at the destination, removing its stale parts', type: 'boolean', default: false, group: GROUP.destination },
  { key: 'resume', flags: '--resume', description: 'go on with an interrupted or partial run at the destination (same options), writing only the slices and tables that are missing; takes over the lease of a run that died', type: 'boolean', default: false, group: GROUP.destination },
  { key: 'sliceSize', flags: '--slice-size <size>', description: 'cut slices at this many compressed bytes', type: 'size', default: DEFAULT_SLICE_SIZE, min: MIN_SLICE_BYTES, max: MAX_SLICE_BYTES, group: GROUP.format },
  { key: 'sliceRows', flags: '--slice-rows <n>', description: 'also cut slices at this many rows', type: 'int', min: 1, max: Number.MAX_SAFE_INTEGER, group: GROUP.format },
  { key: 'compressionLevel', flags: '--compression-level <0-9>', description: 'gzip level (0 stores without compressing)', type: 'int', default: DEFAULT_COMPRESSION_LEVEL, min: 0, max: 9, group: GROUP.format },
  { key: 'quoteAll', flags: '--quote-all', description: 'rewrite CSV input with every value quoted, as Keboola exports do (default: pass valid CSV bytes through, faster)', type: 'boolean', default: false, group: GROUP.format },
  { key: 'lineEnding', flags: '--line-ending <lf|crlf>', description: 'row terminator for rows takeout encodes (with --quote-all, or sources that give values)', type: 'string', default: 'lf', choices: ['lf', 'crlf'], group: GROUP.format },
  { key: 'concurrency', flags: '-c, --concurrency <n>', description: 'tables exported at once', type: 'int', default: 4, min: 1, max: 64 },
  { key: 'failFast', flags: '--fail-fast', description: 'stop at the first failed table (default: finish the others, exit 3)', type: 'boolean', default: false },
] as const satisfies readonly OptionSpec[];

/** run's own: --source and --dest are also its SOURCE and DEST arguments (the other commands share the flags only). */
const POSITIONAL_NOTES: Record<string, string> = { source: '; or the SOURCE argument', dest: '; or the DEST argument' };

export const RUN_SPECS = [
  ...RUN_OPTIONS.map((spec) => (POSITIONAL_NOTES[spec.key] ? { ...spec, description: spec.description + POSITIONAL_NOTES[spec.key]! } : spec)),
  ...S3_OPTIONS,
  ...DYNAMODB_OPTIONS,
  ...COMMON_OPTIONS,
] as const;

export type RunOptions = OptionValues<typeof RUN_SPECS>;

/** --resume keeps what landed, --overwrite throws it away: together they contradict each other. */
export function assertResumeOrOverwrite(o: { resume: boolean; overwrite: boolean }): void {
  if (o.resume === true && o.overwrite === true) throw new TakeoutError('USAGE', 'give --resume (go on) or --overwrite (start over), not both');
}

/** `a/b/`, `/a//b`, `` and `/` → `a/b` or ``. */
export function normalisePrefix(path: string | undefined): string {
  return (path ?? '').split(/[\\/]+/).filter(Boolean).join('/');
}

/**
 * `--dest` with `--path` inside it (`path` already normalised): a sub-prefix of an S3 URL, or a subfolder.
 * The destination is checked first: a mistyped URL (`s3:/b/x`) is a usage error, not a folder.
 */
export function destinationWithPath(given: string, path: string): string {
  const dest = checkedStore(given);
  if (!path) return dest;
  return /^(s3|azure|https):\/\//.test(dest) ? `${dest.replace(/\/+$/, '')}/${path}/` : `${dest.replace(/\/+$/, '')}/${path}`;
}

/**
 * The demo project is taken out only by a bare `takeout run` (the README's first command, into a new local
 * folder) or by `--source demo`: `--dest` without a source is refused, so a forgotten or misspelled source
 * (`TAKEOUT_SORCE`) never puts the demo into someone's bucket.
 */
export function sourceOrDemo(o: { source: string | undefined; dest: string | undefined }): string {
  const source = o.source;
  if (source !== undefined) return source;
  if (o.dest !== undefined) {
    throw new TakeoutError('USAGE', '--dest without --source: nothing says what to take out', {
      hint: 'give --source (a folder, postgres://…, sqlite:PATH, keboola+https://STACK, dynamodb:TABLE), or --source demo for the bundled demo project',
    });
  }
  return DEMO_SOURCE;
}

function defaultDestination(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return resolve(`takeout-${stamp}`);
}

/**
 * `takeout run`: the whole project from the source into the destination (or, with --dry-run, its plan).
 * A partial run returns its summary with status partial; the CLI makes that exit 3.
 */
export async function run(o: RunOptions, context: CommandContext): Promise<RunSummary | RunPlan> {
  assertResumeOrOverwrite(o);
  const dest = destinationWithPath(o.dest ?? defaultDestination(), normalisePrefix(o.path));
  const sourceUri = sourceOrDemo(o);
  const source = await openSource(sourceUri, { ...sourceOptions(o, unthrottled(context.network)), onWarning: (message) => context.reporter.emit({ type: 'warning', message }) });
  const dOptions = destinationOptions(o, context.network);
  const destination = await openStore(dest, dOptions);
  context.noteDestination(destination);
  context.onClose(async () => {
    await destination.close?.();
    await source.close?.();
  });
  return runTakeout({
    source,
    destination,
    structureOnly: o.structureOnly,
    include: o.include,
    exclude: o.exclude,
    sliceBytes: o.sliceSize,
    ...(typeof o.sliceRows === 'number' ? { sliceRows: o.sliceRows } : {}),
    compressionLevel: o.compressionLevel,
    lineEnding: o.lineEnding === 'crlf' ? '\r\n' : '\n',
    requote: o.quoteAll,
    concurrency: o.concurrency,
    overwrite: o.overwrite,
    resume: o.resume,
    dryRun: o.dryRun,
    failFast: o.failFast,
    // S3 parts and Azure blocks alike (same flags, same defaults).
    partBytes: parseStore(dest).kind !== 'local' ? (dOptions.s3?.partSize ?? 8 * MiB) : 0,
    partConcurrency: parseStore(dest).kind !== 'local' ? (dOptions.s3?.partConcurrency ?? 4) : 0,
    toolVersion: context.version,
    recordedOptions: {
      structureOnly: o.structureOnly,
      include: o.include,
      exclude: o.exclude,
      sliceSize: o.sliceSize,
      sliceRows: o.sliceRows ?? null,
      compressionLevel: o.compressionLevel,
      lineEnding: o.lineEnding,
      quoteAll: o.quoteAll,
      sse: o.sse ?? null,
      expectedBucketOwner: o.expectedBucketOwner ?? null,
    },
    signal: context.signal,
    emit: (event) => context.reporter.emit(event),
  });
}
