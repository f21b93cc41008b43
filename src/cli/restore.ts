import { Command } from 'commander';
import { restore, RESTORE_SPECS } from '../commands/restore.js';
import { addOptions, resolveOptions } from './options.js';
import type { CliContext } from './context.js';
import { addExamples } from './help.js';

export function restoreCommand(context: CliContext): Command {
  const command = new Command('restore')
    .argument('<takeout>', 'a complete takeout: a local folder, s3://, azure:// or gs:// prefix holding takeout-manifest.json')
    .summary('bring a takeout back into SQLite, PostgreSQL, DuckDB or a Keboola project')
    .description(
      'Restore a complete takeout into a database: one table per Keboola table (in PostgreSQL and DuckDB a ' +
        'schema per bucket, "in.c-main"."orders"; in SQLite the table id as the name, "in.c-main.orders"), ' +
        'columns typed from KBC.datatype.basetype metadata where the takeout has it (else text), primary keys, ' +
        'and the rest (buckets, table and column metadata, configurations, the layout files) in _takeout ' +
        'tables. Each slice is checked as it is read (size, sha256, rows) and each table is loaded in one ' +
        'transaction, committed only when all its slices passed: a corrupt takeout is never half-restored ' +
        '(exit 6).\n\n' +
        'An empty value is \'\' in a text column and NULL in a typed one. A target that already holds a table ' +
        'being restored is refused (exit 9) and nothing is changed; after an interruption, --resume skips the ' +
        'tables loaded whole.\n\n' +
        'Into a Keboola project (--to keboola+https://STACK, token from KBC_STORAGE_TOKEN or --token), in the order ' +
        "of Keboola's restore engine: project metadata, buckets, configurations, tables (five at once, uploaded " +
        'to the stack\'s file storage), aliases, triggers, notification subscriptions, permanent files. The project ' +
        'is marked while it restores: --resume goes on after an interruption and makes nothing twice.',
    );
  addOptions(command, RESTORE_SPECS);
  addExamples(command, [
    ['a local takeout into one SQLite file', 'takeout restore ./takeout-20250101-120000 --to sqlite:project.sqlite'],
    ['the main bucket of a takeout in S3 into PostgreSQL', 'takeout restore s3://backups/kbc/ --to postgres://me@localhost:5432/poc --include in.c-main'],
    ['what a restore into DuckDB would create', 'takeout restore ./takeout --to duckdb:poc.duckdb --dry-run'],
    ['a takeout in GCS into an empty Keboola project', 'KBC_STORAGE_TOKEN=… takeout restore gs://backups/kbc/ --to keboola+https://connection.keboola.com'],
  ]);
  command.action(async (takeout: string) => {
    const o = resolveOptions(command, RESTORE_SPECS);
    await context.configure(o);
    await restore(takeout, o, context);
  });
  return command;
}
