import { gunzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { headerLine, REPO_ROOT, runCli, tempFolder } from './cli.js';

/**
 * Helpers for the `takeout files download|merge` tests: run the built CLI (`node bin/takeout.js`,
 * so `npm run build` first) with stdout kept as bytes (merged output may be gzip), build reference
 * outputs with node:zlib alone, and look for leftovers (temp files) in an output folder.
 */

export { REPO_ROOT };

export interface FilesResult {
  code: number;
  /** stdout as bytes: with `-o -` it is the merged data. */
  stdout: Buffer;
  stderr: string;
  durationMs: number;
}

/** Run `takeout <args>` to completion (killed after `timeoutMs`), stdout as bytes. */
export async function takeout(args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<FilesResult> {
  const result = await runCli(args, { ...options, timeoutMs: options.timeoutMs ?? 30_000, bytes: true });
  return { code: result.code, stdout: result.stdoutBytes ?? Buffer.alloc(0), stderr: result.stderr, durationMs: result.durationMs };
}

export function warningLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('takeout: warning:'));
}

/** A fresh folder under the OS temp folder, removed by `removeTemps`. */
export const tempDir = (name: string): Promise<string> => tempFolder(`files-${name}`);
export { errorLines, removeTempFolders as removeTemps } from './cli.js';

/** Every file under `root` (hidden ones and temp files included), relative, sorted. */
export { walkFiles as allFiles } from './cli.js';

/** A header row as Keboola writes it: every name quoted (`"` doubled), LF. */
export function keboolaHeader(columns: readonly string[]): Buffer {
  return Buffer.from(headerLine(columns), 'utf8');
}

function isGzip(data: Buffer): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** The reference merge: `cat` of the gunzipped slices (plain ones as they are), the header first. */
export function referenceMerge(slices: readonly Buffer[], columns?: readonly string[]): Buffer {
  const parts = slices.map((s) => (isGzip(s) ? gunzipSync(s) : s));
  return Buffer.concat([...(columns ? [keboolaHeader(columns)] : []), ...parts]);
}

/** A Redshift/Storage API manifest listing `urls`, with content_length when `sizes` has one. */
export function redshiftManifest(
  entries: readonly { url: string; mandatory?: boolean; contentLength?: number }[],
  columns?: readonly string[],
): string {
  return JSON.stringify({
    entries: entries.map((e) => ({
      url: e.url,
      ...(e.mandatory === undefined ? {} : { mandatory: e.mandatory }),
      ...(e.contentLength === undefined ? {} : { meta: { content_length: e.contentLength } }),
    })),
    ...(columns ? { schema: { elements: columns.map((name) => ({ name, type: { base: 'character varying' } })) } } : {}),
  });
}

export async function putObject(client: S3Client, bucket: string, key: string, body: Buffer | string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body }));
}

/**
 * Run `takeout <args>` (data on stdout) and close our end of its stdout after `afterBytes` bytes,
 * as `takeout … -o - | head -c N` does.
 */
export async function takeoutClosingStdout(args: readonly string[], afterBytes: number, timeoutMs = 20_000): Promise<FilesResult> {
  const result = await runCli(args, { timeoutMs, closeStdoutAfter: afterBytes });
  return { code: result.code, stdout: Buffer.alloc(0), stderr: result.stderr, durationMs: result.durationMs };
}
