import { Command } from 'commander';
import { tableExport, TABLE_EXPORT_SPECS } from '../commands/table-export.js';
import type { CliContext } from './context.js';
import { addOptions, resolveOptions } from './options.js';
import { addExamples } from './help.js';

export function tableCommand(context: CliContext): Command {
  const table = new Command('table').summary('export one table').description('Export one table, whole or filtered: as slices with a manifest, or as one file.');
  addExamples(table, [
    ['the paid orders, as one CSV file', 'takeout table export public.orders -s postgres://reader@db/shop \\\n      -w "status eq paid" -o paid.csv'],
    ['one table of a folder project as slices in S3', 'takeout table export in.c-main.orders -s ./project -d s3://exports/orders/'],
  ]);
  const exportCommand = new Command('export')
    .argument('<table-id>', 'the table: in.c-bucket.table, or schema.table for a database source')
    .summary('export one table, whole or filtered, as slices with a manifest or merged into one file')
    .description(
      "Export one table with the Storage API's export options: --columns, --where, --changed-since/--changed-until, " +
        '--limit, --order-by.\n\n' +
        'With --dest it writes the takeout layout for that table (slices, manifests/<id>.manifest, ' +
        'takeout-manifest.json); with -o it writes one CSV file with one header row (or - for stdout).',
    );
  addOptions(exportCommand, TABLE_EXPORT_SPECS);
  addExamples(exportCommand, [
    ['the paid and shipped orders, as one CSV file', "takeout table export public.orders -s postgres://reader@db/shop \\\n      --where 'status eq paid,shipped' -o paid.csv"],
    ['what changed in the last day, as slices in S3', 'takeout table export public.events -s postgres://reader@db/shop \\\n      --changed-column updated_at --changed-since -1d -d s3://exports/events/'],
    ['the first 10 rows to the terminal', 'takeout table export in.c-main.orders -s ./project --limit 10 -o -'],
  ]);
  exportCommand.action(async (tableId: string) => {
    const o = resolveOptions(exportCommand, TABLE_EXPORT_SPECS);
    await context.configure(o);
    await tableExport(tableId, o, context);
  });
  table.addCommand(exportCommand);
  return table;
}
