import { Command } from 'commander';
import type { JobRecord } from '../manifests/jobs.js';
import { whereIs } from '../stores/store.js';
import { datasetExport, DATASET_EXPORT_SPECS, withS3Aliases } from '../commands/dataset-export.js';
import { datasetExportsDescribe, datasetExportsList, DATASET_EXPORTS_DESCRIBE_SPECS, DATASET_EXPORTS_LIST_SPECS, layoutStatus } from '../commands/dataset-exports.js';
import { formatBytes, plural } from '../units.js';
import { terminalLine } from '../reporting/redact.js';
import { eventLine } from '../reporting/lines.js';
import type { CliContext } from './context.js';
import { addExamples } from './help.js';
import { addOptions, resolveOptions } from './options.js';

/** Rows under a header, each column as wide as its widest cell (numbers aligned right), as `gh run list` prints them. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], right: ReadonlySet<number> = new Set()): string {
  const cells = [header, ...rows].map((row) => row.map((cell) => terminalLine(cell)));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => [...(row[i] ?? '')].length)));
  return cells
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

function describeLines(job: JobRecord): string[] {
  const shown = layoutStatus(job);
  const lines = [
    `export ${job.exportId}: ${job.status}${shown !== undefined ? ` (${job.layout}: ${shown})` : ''}`,
    `  table        ${job.table} (${job.source})`,
    `  layout       ${job.layout}, ${job.exportFormat}, ${job.exportType}${job.exportViewType ? `, ${job.exportViewType}` : ''}`,
    `  destination  ${whereIs({ description: job.destination }, job.outputPrefix)}`,
    `  started      ${job.startTime}${job.endTime ? `, ended ${job.endTime}` : ''}`,
  ];
  if (job.exportTime) lines.push(`  export time  ${job.exportTime}`);
  if (job.exportFromTime) lines.push(`  window       ${job.exportFromTime} … ${job.exportToTime ?? ''}`);
  lines.push(`  items        ${job.itemCount.toLocaleString('en-US')} in ${plural(job.files, 'file')}, ${formatBytes(job.billedSizeBytes)}`);
  if (job.manifest) lines.push(`  manifest     ${job.manifest}`);
  if (job.clientToken) lines.push(`  client token ${job.clientToken}`);
  if (job.failureCode) lines.push(`  failure      ${job.failureCode}: ${job.failureMessage ?? ''}`);
  return lines;
}

/** DescribeExport's shape, for --json. */
function exportDescription(job: JobRecord): Record<string, unknown> {
  return {
    ExportArn: job.exportArn,
    ExportStatus: job.status,
    ...(layoutStatus(job) !== undefined ? { [`${job.layout.charAt(0).toUpperCase()}${job.layout.slice(1)}Status`]: layoutStatus(job) } : {}),
    StartTime: job.startTime,
    ...(job.endTime ? { EndTime: job.endTime } : {}),
    ...(job.manifest ? { ExportManifest: job.manifest } : {}),
    ...(job.exportTime ? { ExportTime: job.exportTime } : {}),
    ...(job.clientToken ? { ClientToken: job.clientToken } : {}),
    ...(job.failureCode ? { FailureCode: job.failureCode, FailureMessage: job.failureMessage } : {}),
    ExportFormat: job.exportFormat,
    ExportType: job.exportType,
    ...(job.exportFromTime ? { IncrementalExportSpecification: { ExportFromTime: job.exportFromTime, ExportToTime: job.exportToTime, ExportViewType: job.exportViewType } } : {}),
    BilledSizeBytes: job.billedSizeBytes,
    ItemCount: job.itemCount,
    Takeout: job,
  };
}

export function datasetCommand(context: CliContext): Command {
  const dataset = new Command('dataset')
    .summary('export jobs in the layouts of managed exports (DynamoDB export to S3, …)')
    .description("Export a table as a job in a managed export's layout (DynamoDB export to S3, Amazon Personalize, CleverTap, plain files), and list and describe the jobs recorded at a destination.");
  addExamples(dataset, [
    ["a table in DynamoDB's export layout", 'takeout dataset export in.c-main.orders -s ./project -d s3://exports/ddb/'],
    ['the exports recorded there', 'takeout dataset exports list -d s3://exports/ddb/'],
  ]);

  const exportCommand = new Command('export')
    .argument('<table-id>', 'the table: in.c-bucket.table, or schema.table for a database source')
    .summary('export one table as a job in a managed export\'s layout, with a job record at the destination')
    .description(
      "Export one table as a job in a managed export's layout: --layout dynamodb (DynamoDB's export to S3, " +
        'DYNAMODB_JSON or ION, full or incremental), personalize (Amazon Personalize CSV with its ' +
        'deduplication), clevertap (CleverTap event files per event name: JSON, CSV, XML, Parquet) or plain (a ' +
        'key template, CSV, JSON lines or Parquet, Hive partitions).\n\n' +
        'Each export has a record, takeout-exports/<exportId>.json: IN_PROGRESS, COMPLETED, FAILED or ' +
        'STOPPED; takeout dataset exports list and describe read it.',
    );
  addOptions(exportCommand, DATASET_EXPORT_SPECS);
  addExamples(exportCommand, [
    ['a full export in DynamoDB\'s layout, idempotent by its client token', 'takeout dataset export in.c-main.orders -s ./project -d s3://exports/ddb/ \\\n      --client-token nightly-2026-11-23'],
    ['what changed since the last run of the same export', 'takeout dataset export public.orders -s postgres://reader@db/shop \\\n      -d s3://exports/ddb/ --export-type INCREMENTAL_EXPORT \\\n      --changed-column updated_at --recurring'],
    ['Parquet files in Hive partitions', 'takeout dataset export in.c-main.events -s ./project -d ./lake \\\n      --layout plain --export-format PARQUET --partition-by country'],
  ]);
  exportCommand.action(async (tableId: string) => {
    const o = withS3Aliases(resolveOptions(exportCommand, DATASET_EXPORT_SPECS));
    await context.configure(o);
    await datasetExport(tableId, o, context);
  });
  dataset.addCommand(exportCommand);

  const exportsGroup = new Command('exports')
    .summary('list and describe the export jobs recorded at a destination')
    .description('List and describe the export jobs recorded at a destination (takeout-exports/<exportId>.json).');
  addExamples(exportsGroup, [
    ['every export there, newest first', 'takeout dataset exports list -d s3://exports/ddb/'],
    ["one export's record", 'takeout dataset exports describe 01768385930622-efd1a093 -d s3://exports/ddb/'],
  ]);
  const list = new Command('list')
    .summary('every export recorded at the destination, newest first')
    .description('Every export recorded at the destination, newest first; --table and --status narrow the list.');
  addOptions(list, DATASET_EXPORTS_LIST_SPECS);
  addExamples(list, [
    ['every export there', 'takeout dataset exports list -d s3://exports/ddb/'],
    ['the failed exports of one table, as JSON', 'takeout dataset exports list -d ./exports --table in.c-main.orders \\\n      --status FAILED --json'],
  ]);
  list.action(async () => {
    const o = resolveOptions(list, DATASET_EXPORTS_LIST_SPECS);
    await context.configure(o);
    const jobs = await datasetExportsList(o, context);
    const stdout = context.io.stdout;
    if (o.json) {
      stdout.write(`${eventLine({ type: 'dataset:exports', ExportSummaries: jobs.map((j) => ({ ExportArn: j.exportArn, ExportStatus: j.status, ExportType: j.exportType, Takeout: j })) })}\n`);
      return;
    }
    if (jobs.length === 0) {
      stdout.write('no exports recorded here\n');
      return;
    }
    const rows = jobs.map((j) => [j.exportId, j.status, j.exportType, `${j.layout}/${j.exportFormat}`, j.table, j.itemCount.toLocaleString('en-US'), j.startTime]);
    stdout.write(`${table(['EXPORT ID', 'STATUS', 'TYPE', 'LAYOUT', 'TABLE', 'ITEMS', 'STARTED'], rows, new Set([5]))}\n`);
  });
  const describe = new Command('describe')
    .argument('<export-id>', 'the export id (like 01768385930622-efd1a093)')
    .summary("one export's record")
    .description("One export's record: its status, table, layout, destination, times, items and files; with --json in DescribeExport's shape.");
  addOptions(describe, DATASET_EXPORTS_DESCRIBE_SPECS);
  addExamples(describe, [
    ['one export', 'takeout dataset exports describe 01768385930622-efd1a093 -d s3://exports/ddb/'],
    ["as JSON, in DescribeExport's shape", 'takeout dataset exports describe 01768385930622-efd1a093 \\\n      -d s3://exports/ddb/ --json'],
  ]);
  describe.action(async (exportId: string) => {
    // Resolved as list's options (a --table or --status in the environment or config is read, not refused).
    const o = resolveOptions(describe, DATASET_EXPORTS_LIST_SPECS);
    await context.configure(o);
    const job = await datasetExportsDescribe(exportId, o, context);
    if (o.json) context.io.stdout.write(`${eventLine({ type: 'dataset:export', ExportDescription: exportDescription(job) })}\n`);
    else context.io.stdout.write(`${describeLines(job).map(terminalLine).join('\n')}\n`);
  });
  exportsGroup.addCommand(list);
  exportsGroup.addCommand(describe);
  dataset.addCommand(exportsGroup);
  return dataset;
}
