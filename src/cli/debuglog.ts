import { closeSync, openSync, writeSync } from 'node:fs';
import { TakeoutError } from '../errors.js';
import type { RequestRecord } from '../stores/network.js';
import { terminalLine } from '../reporting/redact.js';

/**
 * Where `--debug` lines go: stderr, or with `--log-file FILE` that file (appended, created 0600 since it
 * names buckets and keys, never coloured). Every line is redacted and escaped as a terminal line is.
 */
export interface DebugLog {
  /** Lines go to a --log-file, not stderr. */
  readonly toFile: boolean;
  line(text: string): void;
  close(): void;
}

const OPEN_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'its folder does not exist',
  ENOTDIR: 'its folder does not exist',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a folder',
  EROFS: 'read-only file system',
};

/** `debug: GET https://host/path?query 200 123 ms (attempt 2)`. */
export function requestLine(record: RequestRecord): string {
  const outcome = [record.status === undefined ? undefined : String(record.status), record.error].filter(Boolean).join(' ') || 'no answer';
  const attempt = record.attempt > 1 ? ` (attempt ${record.attempt})` : '';
  return `debug: ${record.method} ${record.url} ${outcome} ${Math.round(record.ms)} ms${attempt}`;
}

/** Log lines to `file` when given, else to `toStderr` (the reporter's, so progress bars stay whole). */
export function openDebugLog(file: string | undefined, toStderr: (text: string) => void): DebugLog {
  if (file === undefined) return { toFile: false, line: (text) => toStderr(terminalLine(text)), close: () => undefined };
  let fd: number;
  try {
    fd = openSync(file, 'a', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === undefined ? (error as Error).message : (OPEN_ERRORS[code] ?? code);
    throw new TakeoutError('USAGE', `--log-file ${JSON.stringify(file)}: ${why}`, { cause: error });
  }
  let open = true;
  return {
    toFile: true,
    // Synchronous: lines keep their order and survive a process.exit right after them.
    line: (text) => {
      if (open) writeSync(fd, `${new Date().toISOString()} ${terminalLine(text)}\n`);
    },
    close: () => {
      if (open) closeSync(fd);
      open = false;
    },
  };
}
