import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { StoreOptions, ObjectWriter } from '../stores/store.js';
import { mistypedUrl } from '../stores/registry.js';
import { TakeoutError } from '../errors.js';

/**
 * An ObjectWriter on stdout: back-pressure honoured; nothing can be taken back on failure. A reader
 * that goes away (EPIPE, closed pipe) fails the pending and later writes instead of hanging.
 */
function stdoutWriter(stdout: NodeJS.WritableStream): ObjectWriter {
  let size = 0;
  let broken: TakeoutError | undefined;
  const waiting = new Set<(error?: Error) => void>();
  const fail = (): void => {
    broken ??= new TakeoutError('INTERRUPTED', 'stdout was closed by its reader');
    for (const settle of waiting) settle(broken);
    waiting.clear();
  };
  stdout.once('error', fail);
  stdout.once('close', fail);
  return {
    async write(chunk) {
      if (broken) throw broken;
      size += chunk.length;
      if (stdout.write(chunk)) return;
      await new Promise<void>((resolve, reject) => {
        const settle = (error?: Error): void => {
          waiting.delete(settle);
          stdout.removeListener('drain', onDrain);
          if (error) reject(error);
          else resolve();
        };
        const onDrain = (): void => settle();
        waiting.add(settle);
        stdout.once('drain', onDrain);
      });
    },
    async finish() {
      if (broken) throw broken;
      return { key: '-', size };
    },
    async abort() {},
  };
}

let umask: number | undefined;

/**
 * Modes for files and folders the user names (`-o FILE`, `--keep-slices DIR`): 0666 and 0777 less the umask,
 * as `cat > file` and `mkdir` create them (POSIX open(2)/mkdir(2)), so a shared group or a 0022 umask gets what
 * it expects. The takeout's own folders and files keep the destination's 0700/0600: they may hold data the
 * user has not looked at yet. The umask is read once (process.umask() with no argument sets it to 0 and back
 * for a moment, which is why Node discourages reading it in worker threads; this is the main thread).
 */
export function userModes(): Required<Pick<StoreOptions, 'fileMode' | 'dirMode'>> {
  umask ??= process.umask();
  return { fileMode: 0o666 & ~umask, dirMode: 0o777 & ~umask };
}

/** The options that say where one file goes: `-o`, and what --json and --overwrite change about it. */
export interface OutputValues {
  output?: string | undefined;
  json?: boolean | undefined;
  overwrite?: boolean | undefined;
}

/** `-o` names a local file or `-`: a URL (`s3://…`) or a mistyped one (`s3:/b/x.csv`) is a usage error, not a file. */
export function checkOutputPath(o: OutputValues): void {
  const output = o.output;
  if (output === undefined || output === '-') return;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(output) && !/^file:/i.test(output)) {
    throw new TakeoutError('USAGE', `-o ${JSON.stringify(output)}: -o writes one local file`, { hint: 'write slices to a store with --dest DEST' });
  }
  const mistyped = /^file:/i.test(output) ? undefined : mistypedUrl(output, '-o');
  if (mistyped) throw mistyped;
}

export async function openOutput(o: OutputValues, io: { stdoutIsTTY: boolean; stdout: NodeJS.WritableStream }): Promise<{ writer: ObjectWriter; label: string }> {
  const output = o.output;
  if ((output === undefined || output === '-') && o.json === true) {
    throw new TakeoutError('USAGE', '--json writes events to stdout: give the data an -o FILE');
  }
  if (output === undefined || output === '-') {
    if (output === undefined && io.stdoutIsTTY) {
      throw new TakeoutError('USAGE', 'stdout is a terminal: give -o FILE (or -o - to print anyway)');
    }
    return { writer: stdoutWriter(io.stdout), label: 'stdout' };
  }
  checkOutputPath(o);
  const file = resolve(output);
  const existing = await stat(file).catch(() => undefined);
  if (existing?.isDirectory()) throw new TakeoutError('USAGE', `-o ${output} is a folder`);
  if (existing && o.overwrite !== true) {
    throw new TakeoutError('EXISTS', `${output} already exists`, { hint: 'pass --overwrite to replace it' });
  }
  const { createLocalStore } = await import('../stores/local/store.js');
  const { removeOrphanTemps } = await import('../stores/local/temp-files.js');
  // A run killed before its rename left a temp file beside the target: this run replaces it.
  await removeOrphanTemps(file);
  // Create-only unless --overwrite: a file that appears at the target meanwhile is refused, not replaced.
  const writer = await createLocalStore(dirname(file), userModes()).writer(basename(file), { ifNoneMatch: o.overwrite !== true });
  return { writer, label: file };
}

