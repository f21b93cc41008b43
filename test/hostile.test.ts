import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, DEMO_PROJECT, errorLines, removeTempFolders, runCli, tempFolder, walkFiles, type CliResult } from './helpers/cli.js';
import { ERROR_CODES } from '../src/errors.js';

/**
 * The real CLI against hostile conditions: an oversized record, a full disk, and secrets that must
 * not leak even with --debug. Runs `node bin/takeout.js`, so `npm run build` first.
 */

const MB = 1024 * 1024;
const DOCUMENTED_EXIT_CODES: number[] = Object.values(ERROR_CODES);

function context(result: CliResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr.slice(-3000)}`;
}

const tempLeftovers = (files: string[]): string[] => files.filter((f) => f.endsWith('.takeout-tmp'));

afterAll(async () => {
  await removeTempFolders();
});

describe('an unterminated quoted field of 100 MB', () => {
  let source: string;
  let dest: string;

  beforeAll(async () => {
    source = await tempFolder('hostile-quote');
    dest = path.join(await tempFolder('hostile-quote-out'), 'takeout');
    await mkdir(path.join(source, 'in.c-main'));
    const out = createWriteStream(path.join(source, 'in.c-main', 't.csv'));
    out.write('id,text\n1,"');
    const chunk = Buffer.alloc(MB, 'a');
    for (let i = 0; i < 100; i++) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  });

  it('fails with exit 7 and one error line about the record, quickly, leaving no manifest or temp file', async () => {
    const result = await runCli(['run', '--source', source, '--dest', dest, '--no-progress'], { timeoutMs: 30_000 });
    expect(result.code, context(result)).toBe(ERROR_CODES.INVALID_INPUT);
    const errors = errorLines(result.stderr);
    expect(errors, context(result)).toHaveLength(1);
    expect(errors[0]).toMatch(/larger than|unterminated quote/i);
    expect(errors[0]).toContain('t.csv');
    expect(result.durationMs, context(result)).toBeLessThan(10_000);
    const files = await walkFiles(dest);
    expect(files).not.toContain('takeout-manifest.json');
    expect(tempLeftovers(files)).toEqual([]);
  });
});

describe('merging slices with different column counts', () => {
  /**
   * Only each slice's first record is parsed (quote-aware): the first slice with a record sets the count
   * when no column names are known. The error names the odd slice, the output is never committed.
   */
  async function merge(files: Record<string, Buffer | string>, args: string[]): Promise<{ result: CliResult; folder: string }> {
    const folder = await tempFolder('hostile-ragged');
    for (const [name, data] of Object.entries(files)) await writeFile(path.join(folder, name), data);
    const result = await runCli(['files', 'merge', ...args, '--no-progress'], { cwd: folder });
    return { result, folder };
  }

  function expectRefused(result: CliResult, message: string): void {
    expect(result.code, context(result)).toBe(ERROR_CODES.INTEGRITY);
    const errors = errorLines(result.stderr);
    expect(errors, context(result)).toHaveLength(1);
    expect(errors[0]).toBe(`takeout: error: ${message} [INTEGRITY, exit 6]`);
  }

  it('gzip slices (a,b then a,b,c): exit 6 naming the slice, no output and no temp file', async () => {
    const { result, folder } = await merge({ 'a.csv.gz': gzipSync('a,b\n1,2\n'), 'b.csv.gz': gzipSync('a,b,c\n1,2,3\n') }, ['a.csv.gz', 'b.csv.gz', '-o', 'out.csv']);
    expectRefused(result, 'slice b.csv.gz: 3 columns, expected 2 as in slice a.csv.gz');
    expect(await walkFiles(folder)).toEqual(['a.csv.gz', 'b.csv.gz']);
  });

  it('gzip slices kept as gzip (--gzip, inflated on the side only for the first record): refused the same way', async () => {
    const rows = Array.from({ length: 50_000 }, (_, i) => `"${i}","${'x'.repeat(i % 50)}"\n`).join('');
    const files = { 'a.csv.gz': gzipSync(rows), 'b.csv.gz': gzipSync(`"1","2","3"\n${rows}`) };
    for (const extra of [[], ['--no-verify']]) {
      const { result, folder } = await merge(files, ['a.csv.gz', 'b.csv.gz', '--gzip', ...extra, '-o', 'out.csv.gz']);
      expectRefused(result, 'slice b.csv.gz: 3 columns, expected 2 as in slice a.csv.gz');
      expect(await walkFiles(folder)).toEqual(['a.csv.gz', 'b.csv.gz']);
    }
  });

  it('plain slices, with quoted commas and newlines in the first record: the odd slice is named whatever its place', async () => {
    const files = {
      'p0.csv': '"1","a, with comma","line\nbreak"\n"2","b","c"\n',
      'p1.csv': '3,"d ""quoted"", x",e\r\n',
      'p2.csv': '4,"only two, fields"\n5,f\n',
      'p3.csv': '',
    };
    // --order given: the empty p3.csv stays first (numbered slices are otherwise merged in the order of their numbers).
    const { result, folder } = await merge(files, ['p3.csv', 'p0.csv', 'p1.csv', 'p2.csv', '--order', 'given', '-o', 'out.csv']);
    expectRefused(result, 'slice p2.csv: 2 columns, expected 3 as in slice p0.csv');
    expect((await walkFiles(folder)).sort()).toEqual(['p0.csv', 'p1.csv', 'p2.csv', 'p3.csv']);

    // Without the odd one, the same slices merge: quotes are understood, not counted as separators.
    const ok = await runCli(['files', 'merge', 'p0.csv', 'p3.csv', 'p1.csv', '--order', 'given', '-o', 'out.csv', '--no-progress'], { cwd: folder });
    expect(ok.code, context(ok)).toBe(0);
    expect(await readFile(path.join(folder, 'out.csv'), 'utf8')).toBe(`${files['p0.csv']}${files['p1.csv']}`);
  });

  it('checks against the column names when they are known (--columns), so the first slice can be the odd one', async () => {
    const { result, folder } = await merge({ 'a.csv.gz': gzipSync('1,2\n'), 'b.csv.gz': gzipSync('1,2,3\n') }, ['a.csv.gz', 'b.csv.gz', '--columns', 'x,y,z', '-o', 'out.csv']);
    expectRefused(result, 'slice a.csv.gz: 2 columns, expected 3 as in the column names');
    expect(await walkFiles(folder)).toEqual(['a.csv.gz', 'b.csv.gz']);
  });
});

describe('a full disk (ENOSPC on a 256 KiB tmpfs)', () => {
  const mounts: string[] = [];
  let skipReason: string | undefined;

  beforeAll(async () => {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
      skipReason = 'not running as root: cannot mount a tmpfs';
      return;
    }
    for (const name of ['run', '--source', 'demo', 'merge']) {
      const dir = await tempFolder(`hostile-enospc-${name}`);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { stdio: 'pipe' });
        mounts.push(dir);
      } catch (error) {
        skipReason = `mount -t tmpfs failed: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
        return;
      }
    }
  });

  afterAll(() => {
    for (const dir of mounts.splice(0)) {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
    }
  });

  function needMounts(ctx: { skip: (note?: string) => void }): void {
    if (skipReason !== undefined || mounts.length < 2) {
      console.warn(`skipping ENOSPC test: ${skipReason ?? 'no tmpfs'}`);
      ctx.skip(skipReason);
    }
  }

  it('takeout run of the demo project fails with a documented code and one "disk is full" line naming the path', async (ctx) => {
    needMounts(ctx);
    const dest = path.join(mounts[0]!, 't');
    const result = await runCli(['run', '--source', DEMO_PROJECT, '--dest', dest, '--no-progress'], { timeoutMs: 60_000 });
    expect(result.code, context(result)).not.toBe(0);
    // PARTIAL (3) when other tables completed and the manifest could still be written; FAILED (1) otherwise.
    expect([ERROR_CODES.PARTIAL, ERROR_CODES.FAILED], context(result)).toContain(result.code);
    const errors = errorLines(result.stderr);
    expect(errors, context(result)).toHaveLength(1);
    expect(errors[0]).toMatch(/disk is full/);
    expect(errors[0]).toContain(dest);
    const files = await walkFiles(dest);
    expect(tempLeftovers(files)).toEqual([]);
  });

  // A full disk fails the table being written, like any table failure: the others are finished if they
  // fit, and the manifest (status partial) names the failed table — nothing looks complete.
  it('takeout run onto a full disk: the failed table is named and the takeout is never marked complete', async (ctx) => {
    needMounts(ctx);
    const dest = path.join(mounts[0]!, 't2');
    await runCli(['run', '--source', DEMO_PROJECT, '--dest', dest, '--no-progress'], { timeoutMs: 60_000 });
    const files = await walkFiles(dest);
    if (files.includes('takeout-manifest.json')) {
      const manifest = JSON.parse(await readFile(path.join(dest, 'takeout-manifest.json'), 'utf8')) as { status: string; tables: { status: string }[] };
      expect(manifest.status).toBe('partial');
      expect(manifest.tables.some((t) => t.status === 'failed')).toBe(true);
    }
  });

  it('takeout files merge into a full disk fails with one "disk is full" line and leaves no output', async (ctx) => {
    needMounts(ctx);
    const slices = await tempFolder('hostile-enospc-slices');
    const names: string[] = [];
    for (let s = 0; s < 2; s++) {
      const rows = Array.from({ length: 12_000 }, (_, i) => `${s * 100_000 + i},"row ${i} of slice ${s}, padded ${'x'.repeat(i % 40)}"\n`).join('');
      const file = path.join(slices, `t.part_${s}.csv.gz`);
      await writeFile(file, gzipSync(rows));
      names.push(file);
    }
    const out = path.join(mounts[1]!, 'out.csv');
    const result = await runCli(['files', 'merge', ...names, '-o', out, '--no-progress'], { timeoutMs: 60_000 });
    expect(result.code, context(result)).not.toBe(0);
    expect(DOCUMENTED_EXIT_CODES).toContain(result.code);
    const errors = errorLines(result.stderr);
    expect(errors, context(result)).toHaveLength(1);
    expect(errors[0]).toMatch(/disk is full/);
    expect(errors[0]).toContain(out);
    const files = await walkFiles(mounts[1]!);
    expect(files).not.toContain('out.csv');
    expect(tempLeftovers(files)).toEqual([]);
  });
});

describe('secrets with --debug', () => {
  it('never prints the secret access key or the session token, even in stack traces', async () => {
    const port = await closedPort();
    const result = await runCli(
      [
        'run', '--source', 'demo',
        '--dest', 's3://takeout-test/x/',
        '--endpoint-url', `http://127.0.0.1:${port}`,
        '--access-key-id', 'S3RVER',
        '--secret-access-key', 'CANARY-SECRET-XYZ987',
        '--session-token', 'CANARY-TOKEN-ABC123',
        '--debug',
        '--json',
      ],
      { timeoutMs: 60_000 },
    );
    expect(result.code, context(result)).not.toBe(0);
    for (const canary of ['CANARY-SECRET-XYZ987', 'CANARY-TOKEN-ABC123', 'XYZ987', 'ABC123']) {
      expect(result.stdout, 'stdout').not.toContain(canary);
      expect(result.stderr, 'stderr').not.toContain(canary);
    }
    // --debug did print a stack trace, so the check above covered it.
    expect(result.stderr).toMatch(/\n\s+at /);
  });
});
