import { Command } from 'commander';
import { copy, COPY_SPECS } from '../commands/copy.js';
import { addOptions, resolveOptions } from './options.js';
import type { CliContext } from './context.js';
import { addExamples } from './help.js';

export function copyCommand(context: CliContext): Command {
  const command = new Command('copy')
    .argument('<source>', 'a complete takeout: a local folder, s3://, azure:// or gs:// prefix holding takeout-manifest.json')
    .argument('<dest>', 'where the copy goes: a folder or prefix without a takeout')
    .summary('copy a takeout to another folder or prefix, server-side within one cloud')
    .description(
      'Copy a complete takeout (takeout-manifest.json says complete) to another folder or prefix: every slice ' +
        'and layout file its manifest lists. Within one cloud and one account or endpoint, with one set of ' +
        'credentials, objects are copied server-side (S3 CopyObject and UploadPartCopy, Azure Copy Blob, GCS ' +
        'rewrite, a kernel file copy between folders) and no byte passes through this machine; otherwise they ' +
        'are read and written through it, their sha256 checked. Slice manifests are rewritten to name the ' +
        'copies, and takeout-manifest.json (noting copiedFrom) is written last: an interrupted copy leaves none.\n\n' +
        'A partial takeout is refused, and so is a DEST that holds a takeout unless --overwrite; other files at ' +
        'DEST are left alone. Sizes are checked for every object.',
    );
  addOptions(command, COPY_SPECS);
  addExamples(command, [
    ['to another prefix of the same bucket: nothing passes through this machine', 'takeout copy s3://backups/kbc/2026-12-01/ s3://backups/kbc/keep/'],
    ['a local takeout into Azure', 'takeout copy ./takeout-20250101-120000 azure://backups/kbc/'],
  ]);
  command.action(async (source: string, dest: string) => {
    const o = resolveOptions(command, COPY_SPECS);
    await context.configure(o);
    await copy(source, dest, o, context);
  });
  return command;
}
