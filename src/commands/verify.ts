import type { Readable } from 'node:stream';
import type { Store } from '../stores/store.js';
import { openStore } from '../stores/registry.js';
import { TakeoutError, toTakeoutError } from '../errors.js';
import { TAKEOUT_MANIFEST_FILE, type TakeoutManifest } from '../manifests/takeout.js';
import { MAX_MANIFEST_BYTES, parseManifestJson, readManifestText, readTakeoutManifest } from '../manifests/read.js';
import { listJobs, readJob, type JobRecord } from '../manifests/jobs.js';
import { verifyExports, verifyTakeout, type VerifyReport } from '../manifests/verify.js';
import { COMMON_OPTIONS, destinationOptions, S3_ACCESS_OPTIONS, type OptionSpec, type OptionValues } from './options.js';
import type { CommandContext } from './context.js';

export const VERIFY_OPTIONS = [
  { key: 'concurrency', flags: '-c, --concurrency <n>', description: 'files read and checked at once', type: 'int', default: 4, min: 1, max: 16 },
  { key: 'export', flags: '--export <export-id>', description: 'check this dataset export (default: every export recorded there, when DEST holds no takeout)', type: 'string' },
] as const satisfies readonly OptionSpec[];

export const VERIFY_SPECS = [...VERIFY_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS] as const;

export type VerifyOptions = OptionValues<typeof VERIFY_SPECS>;

/** What verify found: a takeout against its manifest, or dataset exports against their job records. */
export type VerifyResult =
  | { kind: 'takeout'; destination: string; report: VerifyReport; manifest: TakeoutManifest; failedTables: string[] }
  | { kind: 'exports'; destination: string; report: VerifyReport; jobs: JobRecord[]; unfinished: JobRecord[] };

/** The takeout manifest at `dest`, complete or partial: NOT_FOUND when there is none, INTEGRITY when it is not one. */
export async function readManifest(destination: Store, dest: string): Promise<TakeoutManifest> {
  const origin = `${dest.replace(/\/+$/, '')}/${TAKEOUT_MANIFEST_FILE}`;
  const info = await destination.head(TAKEOUT_MANIFEST_FILE);
  if (!info) {
    throw new TakeoutError('NOT_FOUND', `${dest}: no ${TAKEOUT_MANIFEST_FILE}: not a takeout, or an unfinished one`, {
      hint: `${TAKEOUT_MANIFEST_FILE} is written last; a run that was interrupted leaves none`,
    });
  }
  if (info.size > MAX_MANIFEST_BYTES) throw new TakeoutError('INTEGRITY', `${origin}: larger than ${MAX_MANIFEST_BYTES} bytes, not a manifest`);
  let stream: Readable;
  try {
    stream = await destination.get(TAKEOUT_MANIFEST_FILE);
  } catch (error) {
    throw toTakeoutError(error, origin);
  }
  const manifest = readTakeoutManifest(parseManifestJson(await readManifestText(stream, origin), origin), origin);
  if (manifest.status !== 'complete' && manifest.status !== 'partial') {
    throw new TakeoutError('INTEGRITY', `${origin}: status ${JSON.stringify(manifest.status)} is neither complete nor partial`);
  }
  return manifest;
}

function failedTables(manifest: TakeoutManifest): string[] {
  return manifest.tables.filter((t) => t.status === 'failed').map((t) => t.id);
}

/**
 * `takeout verify`: every file of a takeout against takeout-manifest.json, or, where there is none (or with
 * --export), every file of each COMPLETED dataset export against its job record. The CLI says what was found.
 */
export async function verify(dest: string, o: VerifyOptions, context: CommandContext): Promise<VerifyResult> {
  const destination = await openStore(dest, destinationOptions(o, context.network));
  context.onClose(async () => destination.close?.());
  if (typeof o.export === 'string' || !(await destination.head(TAKEOUT_MANIFEST_FILE))) {
    const jobs = typeof o.export === 'string' ? [await readJob(destination, o.export)].filter((j): j is JobRecord => j !== undefined) : await listJobs(destination);
    if (typeof o.export === 'string' && jobs.length === 0) throw new TakeoutError('NOT_FOUND', `export ${o.export} is not recorded at ${destination.description}`);
    if (jobs.length > 0) {
      const report = await verifyExports({ destination, jobs, concurrency: o.concurrency, signal: context.signal });
      return { kind: 'exports', destination: destination.description, report, jobs, unfinished: jobs.filter((j) => j.status !== 'COMPLETED') };
    }
  }
  const manifest = await readManifest(destination, dest);
  const report = await verifyTakeout({ destination, manifest, concurrency: o.concurrency, signal: context.signal });
  return { kind: 'takeout', destination: destination.description, report, manifest, failedTables: failedTables(manifest) };
}
