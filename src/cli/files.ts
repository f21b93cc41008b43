import { Command } from 'commander';
import { filesDownload, filesMerge, FILES_DOWNLOAD_SPECS, FILES_MERGE_SPECS } from '../commands/files.js';
import type { CliContext } from './context.js';
import { addOptions, resolveOptions } from './options.js';
import { addExamples } from './help.js';

export function filesCommand(context: CliContext): Command {
  const files = new Command('files')
    .summary('download and merge sliced exports into one file')
    .description('Turn sliced exports (a takeout, a Redshift UNLOAD or Storage API manifest, gzip slices on disk) into one file.');
  addExamples(files, [
    ["one table of a takeout in S3, as one CSV", 'takeout files download s3://backups/kbc/takeout-manifest.json \\\n      -t in.c-main.orders -o orders.csv'],
    ['slices on disk, as one gzip file', 'takeout files merge --gzip -o all.csv.gz slice_*.csv.gz'],
  ]);

  const download = new Command('download')
    .argument('<manifest>', 'a manifest: local path or s3://, azure:// or gs:// URL (Redshift/Storage API form, a takeout\'s manifests/<table>.manifest, or takeout-manifest.json with --table), or a Storage API file id with --source keboola+https://STACK')
    .summary('fetch the slices a manifest lists and merge them into one file')
    .description(
      'Fetch the slices a manifest lists, in parallel, and write them in manifest order to one output: plain ' +
        'CSV (each slice gunzipped; slices that are not gzip pass through) or, with --gzip, the gzip members as ' +
        'they are.\n\n' +
        "Entries must be s3://, gs:// or azure:// URLs in the manifest's own bucket or container (or one given " +
        'with --allow-bucket), read with your own credentials for that cloud, or keys ' +
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
  addOptions(download, FILES_DOWNLOAD_SPECS);
  download.action(async (manifestArg: string) => {
    const o = resolveOptions(download, FILES_DOWNLOAD_SPECS);
    await context.configure(o);
    await filesDownload(manifestArg, o, context);
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
  addOptions(merge, FILES_MERGE_SPECS);
  merge.action(async (slices: string[]) => {
    const o = resolveOptions(merge, FILES_MERGE_SPECS);
    await context.configure(o);
    await filesMerge(slices, o, context);
  });

  files.addCommand(download);
  files.addCommand(merge);
  return files;
}
