import { execFileSync } from 'node:child_process';
import { mkdir, open, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectWriter } from '../src/stores/store.js';
import { mapFsError } from '../src/stores/local/fs-errors.js';
import { createLocalStore } from '../src/stores/local/store.js';
import { ERROR_CODES, TakeoutError } from '../src/errors.js';
import { MAX_MANIFEST_BYTES, readManifestDocument, readRedshiftManifest, type MergePlan } from '../src/manifests/read.js';
import { mergeSlices } from '../src/pipeline/merge.js';
import { DEMO_PROJECT, errorLines, removeTempFolders, runCli, tempFolder, walkFiles, type CliResult } from './helpers/cli.js';
import { redshiftManifest, warningLines } from './helpers/files-cli.js';

/**
 * Local paths the user names (--dest, -o, --keep-slices, a manifest file): nothing is made outside the
 * destination through a planted symlink, nothing is replaced without --overwrite, every file system refusal
 * has its own one-line message and exit code, and manifests are capped and merged in bounded memory.
 */

afterAll(removeTempFolders);

function context(result: CliResult): string {
  return `exit ${result.code}\nstderr: ${result.stderr}`;
}

/** Exactly one error line, naming `culprit` and matching `what`, and the exit code. */
function expectError(result: CliResult, code: number, culprit: string, what: RegExp): string {
  expect(result.code, context(result)).toBe(code);
  const errors = errorLines(result.stderr);
  expect(errors, context(result)).toHaveLength(1);
  expect(errors[0], context(result)).toContain(culprit);
  expect(errors[0], context(result)).toMatch(what);
  return errors[0]!;
}

describe('a symlink planted inside a local destination', () => {
  it('dest/in → an outside folder: the destination refuses it before creating anything there (FAILED, naming dest/in)', async () => {
    const root = await tempFolder('plant-in');
    const outside = await tempFolder('plant-outside');
    await symlink(outside, path.join(root, 'in'));
    const dest = createLocalStore(root);
    const error = await dest.put('in/c-main/orders/part.csv.gz', 'x').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TakeoutError);
    expect((error as TakeoutError).code).toBe('FAILED');
    expect((error as TakeoutError).message).toContain(path.join(root, 'in'));
    expect((error as TakeoutError).message).toMatch(/symlink/);
    expect(await readdir(outside)).toEqual([]);
  });

  it('takeout run with a symlink at dest/in: nothing is created outside, the tables under in/ fail naming dest/in, exit 3', async () => {
    const dest = path.join(await tempFolder('plant-run'), 'dest');
    const outside = await tempFolder('plant-run-outside');
    await mkdir(dest);
    await symlink(outside, path.join(dest, 'in'));
    const result = await runCli(['run', '--source', DEMO_PROJECT, '--dest', dest, '--no-progress']);
    expect(result.code, context(result)).toBe(ERROR_CODES.PARTIAL);
    const errors = errorLines(result.stderr);
    expect(errors.length, context(result)).toBeGreaterThan(0);
    for (const line of errors) expect(line).toContain(`${path.join(dest, 'in')} is reached through a symlink`);
    expect(await readdir(outside)).toEqual([]);
  });

  it('a file at dest/in: the folder is refused naming the file in the way', async () => {
    const root = await tempFolder('file-in');
    await writeFile(path.join(root, 'in'), 'a file');
    const error = (await createLocalStore(root).put('in/x/y.csv', 'x').catch((e: unknown) => e)) as TakeoutError;
    expect(error.code).toBe('FAILED');
    expect(error.message).toBe(`cannot create folder ${path.join(root, 'in')}: ${path.join(root, 'in')} is a file, not a folder`);
  });
});

describe('local destinations and outputs: each file system refusal has its own message and exit code', () => {
  let readOnly: string | undefined;
  let skipReason: string | undefined;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) {
      skipReason = 'not running as root: cannot mount a read-only tmpfs';
      return;
    }
    const dir = await tempFolder('ro-mount');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', dir], { stdio: 'pipe' });
      readOnly = dir;
    } catch (error) {
      skipReason = `mount -t tmpfs -o ro failed: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
    }
  });

  afterAll(() => {
    if (readOnly === undefined) return;
    try {
      execFileSync('umount', [readOnly], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', readOnly], { stdio: 'pipe' });
    }
  });

  // Node's recursive mkdir answers ENOENT under a read-only mount: the run used to say "does not exist".
  it('--dest <read-only mount>/new: "read-only", naming the folder, exit 4 (AUTH); -o there too', async (ctx) => {
    if (readOnly === undefined) {
      console.warn(`skipping read-only test: ${skipReason ?? 'no mount'}`);
      ctx.skip(skipReason);
      return;
    }
    const dest = path.join(readOnly, 'new');
    expectError(await runCli(['run', '--source', DEMO_PROJECT, '--dest', dest, '--no-progress']), ERROR_CODES.AUTH, dest, /read-only/);
    const deeper = path.join(readOnly, 'new', 'deeper');
    expectError(await runCli(['run', '--source', DEMO_PROJECT, '--dest', deeper, '--no-progress']), ERROR_CODES.AUTH, dest, /read-only/);
    const out = path.join(readOnly, 'out.csv');
    expectError(await runCli(['files', 'merge', path.join(DEMO_PROJECT, 'project.yaml'), '-o', out, '--no-progress']), ERROR_CODES.AUTH, out, /read-only/);
  });

  it('a file in the way of --dest (ENOTDIR): names the file, exit 1; --dest a file: exit 1', async () => {
    const parent = await tempFolder('in-the-way');
    const file = path.join(parent, 'file');
    await writeFile(file, 'x');
    const dest = path.join(file, 'new', 'deeper');
    const line = expectError(await runCli(['run', '--source', DEMO_PROJECT, '--dest', dest, '--no-progress']), ERROR_CODES.FAILED, file, /is a file, not a folder/);
    expect(line).toContain(`cannot create folder ${path.join(file, 'new')}`);
    expectError(await runCli(['run', '--source', DEMO_PROJECT, '--dest', file, '--no-progress']), ERROR_CODES.FAILED, file, /exists and is not a folder/);
    expect(await readFile(file, 'utf8')).toBe('x');
  });

  it('a name too long (ENAMETOOLONG): exit 2; a symlink loop (ELOOP): exit 1, each naming the path', async () => {
    const parent = await tempFolder('names');
    const long = path.join(parent, 'n'.repeat(300));
    expectError(await runCli(['run', '--source', DEMO_PROJECT, '--dest', long, '--no-progress']), ERROR_CODES.USAGE, long, /name is too long/);
    const loop = path.join(parent, 'loop');
    await symlink('loop', loop);
    expectError(await runCli(['run', '--source', DEMO_PROJECT, '--dest', path.join(loop, 'x'), '--no-progress']), ERROR_CODES.FAILED, loop, /symlink loop/);
  });

  it('maps each errno to its own one-line message naming the path and a documented code', () => {
    const cases: [string, string, RegExp][] = [
      ['EROFS', 'AUTH', /read-only/],
      ['EACCES', 'AUTH', /permission denied/],
      ['EPERM', 'AUTH', /permission denied/],
      ['ENOTDIR', 'FAILED', /a file is in the way/],
      ['EEXIST', 'FAILED', /already exists/],
      ['ENOSPC', 'FAILED', /disk is full/],
      ['EDQUOT', 'FAILED', /quota/],
      ['EISDIR', 'FAILED', /it is a folder/],
      ['ENAMETOOLONG', 'USAGE', /name is too long/],
      ['ELOOP', 'FAILED', /symlink loop/],
      ['ENOENT', 'NOT_FOUND', /does not exist/],
    ];
    const messages = new Set<string>();
    for (const [errno, code, message] of cases) {
      const error = mapFsError(Object.assign(new Error(`${errno}: raw`), { code: errno }), '/out/x.csv', 'write');
      expect(error.code, errno).toBe(code);
      expect(error.message, errno).toMatch(message);
      expect(error.message, errno).toContain('/out/x.csv');
      expect(error.message, errno).not.toContain('\n');
      messages.add(error.message.replace(/EACCES|EPERM/, ''));
    }
    // EACCES and EPERM share one message; every other errno has its own.
    expect(messages.size).toBe(cases.length - 1);
  });
});

/** Two gzip slices and a Redshift manifest listing them by relative key. */
async function slicesWithManifest(name: string, urls?: string[]): Promise<{ dir: string; manifest: string }> {
  const dir = await tempFolder(name);
  await writeFile(path.join(dir, 'a.csv.gz'), gzipSync('1,a\n'));
  await writeFile(path.join(dir, 'b.csv.gz'), gzipSync('2,b\n'));
  const manifest = path.join(dir, 'slices.manifest');
  await writeFile(manifest, redshiftManifest((urls ?? ['a.csv.gz', 'b.csv.gz']).map((url) => ({ url, mandatory: true }))));
  return { dir, manifest };
}

describe('files download --keep-slices: create-only unless --overwrite', () => {
  it('a kept name already taken: exit 9 naming it before anything is fetched, the file untouched; --overwrite replaces it', async () => {
    const { manifest } = await slicesWithManifest('keep-exists');
    const out = await tempFolder('keep-exists-out');
    const keep = path.join(out, 'kept');
    await mkdir(keep);
    await writeFile(path.join(keep, 'b.csv.gz'), 'mine');
    const refused = await runCli(['files', 'download', manifest, '--keep-slices', keep, '-o', path.join(out, 'out.csv'), '--no-progress']);
    expectError(refused, ERROR_CODES.EXISTS, path.join(keep, 'b.csv.gz'), /already exists/);
    expect(await readFile(path.join(keep, 'b.csv.gz'), 'utf8')).toBe('mine');
    expect(await walkFiles(out)).toEqual(['kept/b.csv.gz']);

    const replaced = await runCli(['files', 'download', manifest, '--keep-slices', keep, '-o', path.join(out, 'out.csv'), '--overwrite', '--no-progress']);
    expect(replaced.code, context(replaced)).toBe(0);
    expect(await readFile(path.join(keep, 'b.csv.gz'))).toEqual(gzipSync('2,b\n'));
    expect(await readFile(path.join(out, 'out.csv'), 'utf8')).toBe('1,a\n2,b\n');
  });
});

describe('manifests: capped wherever they are read, entries listed twice said out loud', () => {
  it(`a local manifest over ${MAX_MANIFEST_BYTES} bytes is refused before it is read (exit 6), as on S3`, async () => {
    const dir = await tempFolder('big-manifest');
    const manifest = path.join(dir, 'huge.manifest');
    // Sparse: the size is what is checked, no 64 MiB is written.
    const handle = await open(manifest, 'w');
    await handle.truncate(MAX_MANIFEST_BYTES + 1);
    await handle.close();
    const out = path.join(dir, 'out.csv');
    expectError(await runCli(['files', 'merge', '--manifest', manifest, '-o', out, '--no-progress']), ERROR_CODES.INTEGRITY, manifest, /larger than 67108864 bytes/);
    expectError(await runCli(['files', 'download', manifest, '-o', out, '--no-progress']), ERROR_CODES.INTEGRITY, manifest, /larger than 67108864 bytes/);
    expect(await walkFiles(dir)).toEqual(['huge.manifest']);
  });

  it('a takeout folder as the source: an oversized takeout-manifest.json fails the run (exit 6) instead of being ignored', async () => {
    const parent = await tempFolder('big-takeout-manifest');
    const first = path.join(parent, 'first');
    expect((await runCli(['run', '--source', DEMO_PROJECT, '--dest', first, '--no-progress'])).code).toBe(0);
    const manifest = path.join(first, 'takeout-manifest.json');
    const handle = await open(manifest, 'r+');
    await handle.truncate(MAX_MANIFEST_BYTES + 1);
    await handle.close();
    const again = path.join(parent, 'again');
    expectError(await runCli(['run', '--source', first, '--dest', again, '--no-progress']), ERROR_CODES.INTEGRITY, manifest, /larger than 67108864 bytes/);
    expect(await walkFiles(parent).then((files) => files.filter((f) => f.startsWith('again/')))).toEqual([]);
  });

  it('an entry listed twice gets one warning naming it, and is merged twice (as Redshift COPY loads it)', async () => {
    const { dir, manifest } = await slicesWithManifest('dup-manifest', ['a.csv.gz', 'b.csv.gz', 'a.csv.gz', 'a.csv.gz']);
    const out = path.join(dir, 'out.csv');
    const result = await runCli(['files', 'download', manifest, '-o', out, '--no-progress']);
    expect(result.code, context(result)).toBe(0);
    const warnings = warningLines(result.stderr);
    expect(warnings, context(result)).toEqual(['takeout: warning: slice "a.csv.gz" is listed 3 times: its rows are merged 3 times, as Redshift COPY would load them']);
    expect(await readFile(out, 'utf8')).toBe('1,a\n2,b\n1,a\n1,a\n');
  });
});

describe('merging a manifest of many entries in bounded memory', () => {
  /** V8's gc(), without starting the test process with --expose-gc. */
  function gc(): () => void {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  }

  it('holds only the slices in flight: live heap mid-merge grows by less than 64 bytes per slice already written', async () => {
    const collect = gc();
    const n = 20_000;
    const slice = gzipSync('1,a\n');
    const plan = readRedshiftManifest(
      { entries: Array.from({ length: n }, (_, i) => ({ url: `s3://bucket/export/table.csv.gz.${String(i).padStart(7, '0')}_part`, mandatory: true, meta: { content_length: slice.length } })) },
      'generated',
    );
    let written = 0;
    const output: ObjectWriter = {
      write: async (chunk) => void (written += chunk.length),
      finish: async () => ({ key: 'out', size: written }),
      abort: async () => undefined,
    };
    collect();
    const before = process.memoryUsage().heapUsed;
    let quarter = 0;
    let threeQuarters = 0;
    await mergeSlices({
      plan,
      open: async () => Readable.from([slice]),
      output,
      gzipOutput: false,
      concurrency: 2,
      onProgress: (p) => {
        if (p.slicesDone === n / 4) {
          collect();
          quarter = process.memoryUsage().heapUsed;
        } else if (p.slicesDone === (3 * n) / 4) {
          collect();
          threeQuarters = process.memoryUsage().heapUsed;
        }
      },
    });
    expect(written).toBe(4 * n);
    const perSlice = (threeQuarters - quarter) / (n / 2);
    console.log(`merge of ${n} slices: heap ${((quarter - before) / 1e6).toFixed(1)} MB after 1/4, +${perSlice.toFixed(0)} B per slice written from 1/4 to 3/4`);
    expect(perSlice).toBeLessThan(64);
  }, 60_000);
});

describe('readManifestDocument: each entry parsed alone, the same documents accepted as by JSON.parse', () => {
  /** What JSON.parse then readRedshiftManifest make of a text: the plan, the value, or a refusal. */
  function reference(text: string): unknown {
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch {
      return 'refused';
    }
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && Array.isArray((value as { entries?: unknown }).entries)) {
      try {
        return readRedshiftManifest(value, 'm');
      } catch {
        return 'refused';
      }
    }
    return value;
  }

  function scanned(text: string): unknown {
    try {
      const document = readManifestDocument(text, 'm');
      return document.redshift ?? document.value;
    } catch (error) {
      expect(error).toBeInstanceOf(TakeoutError);
      expect((error as TakeoutError).code).toBe('INTEGRITY');
      return 'refused';
    }
  }

  const entry = fc.record(
    {
      url: fc.oneof(fc.constantFrom('a.csv.gz', 'dir/b.gz', 's3://bucket/k/c.gz', 'http://x/y', '../up', ''), fc.string()),
      mandatory: fc.oneof(fc.boolean(), fc.constant('yes')),
      meta: fc.record({ content_length: fc.oneof(fc.nat(), fc.constant(-1)), record_count: fc.nat() }, { requiredKeys: [] }),
    },
    { requiredKeys: ['url'] },
  );
  const documents = fc
    .record({ entries: fc.array(entry, { maxLength: 6 }), schema: fc.jsonValue(), other: fc.jsonValue() }, { requiredKeys: [] })
    .chain((doc) => fc.constantFrom(JSON.stringify(doc), JSON.stringify(doc, null, 2), ` \n${JSON.stringify(doc)}\t`));

  it('valid documents: the same plan (or value) as JSON.parse then readRedshiftManifest', () => {
    fc.assert(
      fc.property(documents, (text) => {
        expect(scanned(text)).toEqual(reference(text));
      }),
      { numRuns: 300 },
    );
  });

  it('damaged documents (a character cut, doubled or replaced): refused exactly when JSON.parse refuses them', () => {
    const damaged = documents.chain((text) =>
      fc.tuple(fc.nat({ max: Math.max(0, text.length - 1) }), fc.constantFrom('cut', 'double', ',', '}', ']', '"', ':', '\\', 'x')).map(([at, how]) => {
        if (how === 'cut') return text.slice(0, at) + text.slice(at + 1);
        if (how === 'double') return text.slice(0, at + 1) + text.slice(at);
        return text.slice(0, at) + how + text.slice(at + 1);
      }),
    );
    fc.assert(
      fc.property(damaged, (text) => {
        const expected = reference(text);
        const actual = scanned(text);
        if (expected === 'refused' || actual === 'refused') expect(actual).toBe(expected);
        else expect(actual).toEqual(expected);
      }),
      { numRuns: 1000 },
    );
    for (const text of ['{"entries":[{"url":"a"},]}', '{"entries":[{"url":"a"}]', '{"entries":[{"url":"a"}]} x', '{"a":1,}', '{"entries":[{"url":"a"} {"url":"b"}]}', '{"entries" [] }', '']) {
      expect(scanned(text), text).toBe('refused');
    }
    // A repeated key keeps its last value, as in JSON.parse.
    expect((scanned('{"entries":[{"url":"a"}],"entries":[{"url":"b"},{"url":"c"}]}') as MergePlan).entries.map((e) => e.label)).toEqual(['b', 'c']);
  });
});
