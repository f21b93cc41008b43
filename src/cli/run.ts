import { Command } from 'commander';
import { ERROR_CODES, TakeoutError } from '../errors.js';
import { run, RUN_SPECS } from '../commands/run.js';
import { addOptions, resolveOptions } from './options.js';
import type { CliContext } from './context.js';
import { addExamples } from './help.js';

/**
 * `takeout run SOURCE DEST`, as `aws s3 cp` and `rclone copy` take them: the same as --source and --dest.
 * Given twice (a positional and its flag) is a usage error naming both: neither silently wins.
 */
export function takePositionals(command: Command, given: { source?: string | undefined; dest?: string | undefined }): void {
  const both = [
    { key: 'source', flag: '--source', name: 'SOURCE', what: 'what to take out' },
    { key: 'dest', flag: '--dest', name: 'DEST', what: 'the destination' },
  ] as const;
  for (const { key, flag, name, what } of both) {
    const value = given[key];
    if (value === undefined) continue;
    if (command.getOptionValueSource(key) === 'cli') {
      const flagValue = String(command.opts<Record<string, unknown>>()[key]);
      throw new TakeoutError('USAGE', `${flag} ${JSON.stringify(flagValue)} and the argument ${name} ${JSON.stringify(value)} both say ${what}: give one`, {
        hint: 'takeout run SOURCE DEST, or takeout run --source SOURCE --dest DEST (a lone argument is the SOURCE)',
      });
    }
    command.setOptionValueWithSource(key, value, 'cli');
  }
}

export function runCommand(context: CliContext): Command {
  const command = new Command('run')
    .argument('[source]', 'what to take out, as --source (a lone argument is the SOURCE)')
    .argument('[dest]', 'where it goes, as --dest')
    .summary('take out a whole project: buckets, tables, configurations, table data')
    .description(
      'Take out every bucket, table and component configuration of a project in the Keboola Data Takeout ' +
        'layout: buckets.json, tables.json, configurations.json, configurations/<componentId>/<configId>.json ' +
        'and table data as gzipped CSV slices <stage>/<bucket>/<table>.part_<N>.csv.gz, with what Keboola\'s ' +
        'restore engine reads too (defaultBranchMetadata.json, triggers.json, notifications.json, ' +
        'permanentFiles.json and files/<fileId>); takeout-manifest.json is written last.\n\n' +
        'SOURCE and DEST may be given as arguments (takeout run SOURCE DEST, as aws s3 cp and rclone copy ' +
        'take them) or as --source and --dest; not both. A bare takeout run takes out the bundled demo ' +
        'project into a new folder; a DEST needs a SOURCE.',
    );
  addOptions(command, RUN_SPECS);
  addExamples(command, [
    ['the bundled demo project into ./takeout-<time>', 'takeout run'],
    ['a folder of CSV files into S3', 'takeout run ./project s3://backups/kbc/ --region eu-central-1'],
    ['a Keboola project into Azure (credentials as the az CLI reads them)', 'takeout run keboola+https://connection.north-europe.azure.keboola.com \\\n      azure://backups/kbc/'],
  ]);
  command.action(async (sourceArg: string | undefined, destArg: string | undefined) => {
    takePositionals(command, { source: sourceArg, dest: destArg });
    const o = resolveOptions(command, RUN_SPECS);
    await context.configure(o);
    const summary = await run(o, context);
    if ('status' in summary && summary.status === 'partial') context.setExitCode(ERROR_CODES.PARTIAL);
  });
  return command;
}
