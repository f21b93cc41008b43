import { openStore } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';
import { listJobs, readJob, type JobRecord, type JobStatus } from '../manifests/jobs.js';
import type { CommandContext } from './context.js';
import { COMMON_OPTIONS, destinationOptions, GROUP, pickSpecs, S3_ACCESS_OPTIONS, type OptionSpec, type OptionValues } from './options.js';
import { destWithPath } from './dataset-export.js';
import { LAYOUTS } from './dataset-layouts.js';

const JOB_STATUSES: readonly JobStatus[] = ['IN_PROGRESS', 'COMPLETED', 'FAILED', 'STOPPED'];

const LIST_OPTIONS = [
  { key: 'dest', flags: '-d, --dest <dest>', description: 'the destination exports were written to (required)', type: 'string', group: GROUP.destination },
  { key: 'path', flags: '--path <prefix>', description: 'prefix inside the destination', type: 'string', group: GROUP.destination },
  { key: 'table', flags: '--table <id>', description: 'only exports of this table', type: 'string' },
  {
    key: 'status',
    flags: '--status <status>',
    description: "only exports in this status: IN_PROGRESS, COMPLETED, FAILED or STOPPED, or a layout's own name for one (clevertap RUNNING, DONE; personalize ACTIVE, CREATE FAILED…), any case",
    type: 'string',
    // The layouts' names with spaces written with _ (CREATE_FAILED), which --status reads as the same name.
    completions: () => [...JOB_STATUSES, ...Object.values(LAYOUTS).flatMap((l) => Object.values(l.statusNames ?? {}).flat().map((n) => n.replace(/\s+/g, '_')))],
  },
] as const satisfies readonly OptionSpec[];

export const DATASET_EXPORTS_LIST_SPECS = [...LIST_OPTIONS, ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS] as const;
export type DatasetExportsListOptions = OptionValues<typeof DATASET_EXPORTS_LIST_SPECS>;

/** describe names one export: --table and --status do not apply. */
export const DATASET_EXPORTS_DESCRIBE_SPECS = [...pickSpecs(LIST_OPTIONS, ['dest', 'path']), ...S3_ACCESS_OPTIONS, ...COMMON_OPTIONS] as const;
export type DatasetExportsDescribeOptions = OptionValues<typeof DATASET_EXPORTS_DESCRIBE_SPECS>;

/** The status in the managed service's words when the layout has its own (clevertap: DONE for COMPLETED). */
export function layoutStatus(job: JobRecord): string | undefined {
  return LAYOUTS[job.layout]?.statusName?.(job.status);
}

/** `create in-progress`, `Create_In_Progress` and `CREATE IN_PROGRESS` are one name. */
function statusKey(text: string): string {
  return text.trim().toUpperCase().replace(/[\s_-]+/g, '_');
}

/**
 * `--status`: takeout's own status names, or any layout's name for one (CleverTap's RUNNING is IN_PROGRESS,
 * Personalize's ACTIVE is COMPLETED), in any case. An unknown name is refused with the list, never matched
 * to nothing (an empty list would read as "no exports in that status").
 */
export function parseStatus(text: string): JobStatus {
  const key = statusKey(text);
  const own = JOB_STATUSES.find((s) => s === key);
  if (own) return own;
  for (const layout of Object.values(LAYOUTS)) {
    for (const status of JOB_STATUSES) {
      const names = layout.statusNames?.[status] ?? [];
      if (names.some((name) => statusKey(name) === key)) return status;
    }
  }
  const layoutNames = Object.entries(LAYOUTS)
    .filter(([, l]) => l.statusNames)
    .map(([name, l]) => `${name}: ${Object.values(l.statusNames!).flat().join(', ')}`);
  throw new TakeoutError('USAGE', `--status ${JSON.stringify(text)} is not an export status`, {
    hint: `give ${JOB_STATUSES.join(', ')}, or a layout's own name (${layoutNames.join('; ')}); any case`,
  });
}

/** `takeout dataset exports list`: the exports recorded at the destination, newest first, narrowed by --table and --status. */
export async function datasetExportsList(o: DatasetExportsListOptions, context: CommandContext): Promise<JobRecord[]> {
  const destination = await openStore(destWithPath(o), destinationOptions(o, context.network));
  context.onClose(async () => destination.close?.());
  const status = typeof o.status === 'string' ? parseStatus(o.status) : undefined;
  return (await listJobs(destination)).filter((j) => (o.table === undefined || j.table === o.table) && (status === undefined || j.status === status));
}

/** `takeout dataset exports describe`: one export's record. */
export async function datasetExportsDescribe(exportId: string, o: DatasetExportsDescribeOptions, context: CommandContext): Promise<JobRecord> {
  const destination = await openStore(destWithPath(o), destinationOptions(o, context.network));
  context.onClose(async () => destination.close?.());
  const job = await readJob(destination, exportId);
  if (!job) throw new TakeoutError('NOT_FOUND', `export ${exportId} is not recorded at ${destination.description}`, { hint: 'takeout dataset exports list --dest … shows the exports there' });
  return job;
}
