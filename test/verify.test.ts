import { cp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TakeoutManifest } from '../src/manifests/takeout.js';
import { errorLines, removeTempFolders, runCli, sha256, tempFolder, type CliResult } from './helpers/cli.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * `takeout verify DEST`, end to end through the built CLI on real takeouts of the demo project: a clean
 * one exits 0; every kind of damage (flipped byte, truncation, deletion, a stray file, a tampered JSON
 * file, a manifest that disagrees) exits 6 naming the file; no manifest exits 5; --json gives one report.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const S3 = s3CliArgs(endpoint);
const MANIFEST = 'takeout-manifest.json';
const ORDERS = 'in.c-main.orders';

/** A clean takeout of the demo project with small slices (orders has several); each test damages a copy. */
let pristine: string;
let manifest: TakeoutManifest;

function context(result: CliResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout.slice(0, 2000)}\nstderr: ${result.stderr}`;
}

async function copy(name: string): Promise<string> {
  const dir = path.join(await tempFolder(`verify-${name}`), 'takeout');
  await cp(pristine, dir, { recursive: true });
  return dir;
}

function orderPart(index: number): string {
  const key = manifest.tables.find((t) => t.id === ORDERS)!.slices[index]!.key;
  return key;
}

function file(dir: string, key: string): string {
  return path.join(dir, ...key.split('/'));
}

async function editManifest(dir: string, edit: (m: TakeoutManifest) => void): Promise<void> {
  const m = JSON.parse(await readFile(file(dir, MANIFEST), 'utf8')) as TakeoutManifest;
  edit(m);
  await writeFile(file(dir, MANIFEST), JSON.stringify(m, null, 2));
}

/** Exit 6, the problem line naming `key`, one error line. */
function expectProblem(result: CliResult, line: RegExp): void {
  expect(result.code, context(result)).toBe(6);
  expect(result.stderr.split('\n'), context(result)).toContainEqual(expect.stringMatching(line));
  expect(errorLines(result.stderr), context(result)).toHaveLength(1);
  expect(errorLines(result.stderr)[0], context(result)).toContain('INTEGRITY, exit 6');
}

function escape(key: string): string {
  return key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

beforeAll(async () => {
  pristine = path.join(await tempFolder('verify-pristine'), 'takeout');
  const result = await runCli(['run', '--source', 'demo', '--dest', pristine, '--slice-size', '64KB', '-q']);
  expect(result.code, context(result)).toBe(0);
  manifest = JSON.parse(await readFile(file(pristine, MANIFEST), 'utf8')) as TakeoutManifest;
  expect(manifest.tables.find((t) => t.id === ORDERS)!.slices.length).toBeGreaterThan(2);
});

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

describe('takeout verify on a local takeout', () => {
  it('a clean takeout verifies: exit 0 and one summary line', async () => {
    const result = await runCli(['verify', pristine]);
    expect(result.code, context(result)).toBe(0);
    const files = manifest.files.length + manifest.tables.reduce((n, t) => n + t.slices.length, 0);
    expect(result.stderr.trim(), context(result)).toMatch(new RegExp(`^verified ${files} files, .+: all good$`));
    expect(result.stdout).toBe('');
  });

  it('a flipped byte in a part: exit 6, the part named as corrupt', async () => {
    const dir = await copy('flip');
    const key = orderPart(1);
    const handle = await open(file(dir, key), 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 300);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, 300);
    await handle.close();
    expectProblem(await runCli(['verify', dir]), new RegExp(`^corrupt: ${escape(key)}: sha256 .* does not match`));
  });

  it('a truncated part: exit 6', async () => {
    const dir = await copy('truncate');
    const key = orderPart(2);
    const size = manifest.tables.find((t) => t.id === ORDERS)!.slices[2]!.bytes;
    await truncate(file(dir, key), size - 100);
    expectProblem(await runCli(['verify', dir]), new RegExp(`^corrupt: ${escape(key)}: ${(size - 100).toLocaleString('en-US')} bytes, the manifest says ${size.toLocaleString('en-US')}$`));
  });

  it('a deleted part: exit 6, reported missing', async () => {
    const dir = await copy('delete');
    const key = orderPart(0);
    await rm(file(dir, key));
    expectProblem(await runCli(['verify', dir]), new RegExp(`^missing: ${escape(key)}$`));
  });

  it('a stray file: exit 6, reported extra', async () => {
    const dir = await copy('extra');
    await writeFile(file(dir, 'in/c-main/stray.csv.gz'), gzipSync('a,b\n'));
    expectProblem(await runCli(['verify', dir]), /^extra: in\/c-main\/stray\.csv\.gz$/);
  });

  it('a tampered tables.json (same size): exit 6', async () => {
    const dir = await copy('tables');
    const text = await readFile(file(dir, 'tables.json'), 'utf8');
    const tampered = text.replace('in.c-main.orders', 'in.c-main.ordexs');
    expect(tampered).not.toBe(text);
    await writeFile(file(dir, 'tables.json'), tampered);
    expectProblem(await runCli(['verify', dir]), /^corrupt: tables\.json: sha256 .* does not match/);
  });

  it('a part whose gzip is broken, with no sha256 to compare: exit 6, reported as gzip', async () => {
    const dir = await copy('gzip');
    const key = orderPart(1);
    const data = await readFile(file(dir, key));
    // Corrupt the CRC32 in the gzip trailer: same size, the deflate stream intact, the member not.
    data[data.length - 8] = data[data.length - 8]! ^ 0xff;
    await writeFile(file(dir, key), data);
    await editManifest(dir, (m) => {
      delete (m.tables.find((t) => t.id === ORDERS)!.slices[1] as { sha256?: string }).sha256;
    });
    const result = await runCli(['verify', dir, '--json']);
    expect(result.code, context(result)).toBe(6);
    const report = JSON.parse(result.stdout) as { problems: { kind: string; key: string }[] };
    expect(report.problems, context(result)).toEqual([expect.objectContaining({ kind: 'gzip', key })]);
  });

  it('a manifest whose row count disagrees: exit 6, reported as rows', async () => {
    const dir = await copy('rows');
    const key = orderPart(0);
    await editManifest(dir, (m) => {
      m.tables.find((t) => t.id === ORDERS)!.slices[0]!.rows += 1;
    });
    expectProblem(await runCli(['verify', dir]), new RegExp(`^corrupt: ${escape(key)}: [\\d,]+ rows, the manifest says [\\d,]+$`));
  });

  it('no takeout-manifest.json: exit 5', async () => {
    const dir = await copy('nomanifest');
    await rm(file(dir, MANIFEST));
    const result = await runCli(['verify', dir]);
    expect(result.code, context(result)).toBe(5);
    expect(errorLines(result.stderr), context(result)).toEqual([expect.stringContaining('no takeout-manifest.json: not a takeout, or an unfinished one')]);
  });

  it('an unreadable manifest or one of another version: exit 6', async () => {
    const dir = await copy('badmanifest');
    await writeFile(file(dir, MANIFEST), '{"kind":"takeout",');
    const broken = await runCli(['verify', dir]);
    expect(broken.code, context(broken)).toBe(6);
    expect(errorLines(broken.stderr), context(broken)).toEqual([expect.stringContaining('not valid JSON')]);
    await writeFile(file(dir, MANIFEST), JSON.stringify({ ...manifest, formatVersion: 99 }));
    const future = await runCli(['verify', dir]);
    expect(future.code, context(future)).toBe(6);
    expect(errorLines(future.stderr), context(future)).toEqual([expect.stringContaining('format version 99')]);
  });

  it('a partial takeout that verifies clean: exit 3 with a warning naming the failed table', async () => {
    const dir = await copy('partial');
    await editManifest(dir, (m) => {
      m.status = 'partial';
      m.tables.push({ id: 'in.c-main.broken', status: 'failed', columns: [], primaryKey: [], rows: 0, rawBytes: 0, bytes: 0, slices: [], error: { code: 'INVALID_INPUT', message: 'ragged row' } });
    });
    const result = await runCli(['verify', dir]);
    expect(result.code, context(result)).toBe(3);
    expect(result.stderr, context(result)).toMatch(/warning: the takeout is partial: 1 table failed .*in\.c-main\.broken/);
    expect(result.stderr, context(result)).toMatch(/all good/);
  });

  it('--json: one report on stdout with status, checked, bytes and problems', async () => {
    const clean = await runCli(['verify', pristine, '--json']);
    expect(clean.code, context(clean)).toBe(0);
    const lines = clean.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const ok = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(ok).toMatchObject({ status: 'ok', problems: [] });
    expect(ok.checked).toBe(manifest.files.length + manifest.tables.reduce((n, t) => n + t.slices.length, 0));
    expect(ok.bytes).toBe(manifest.files.reduce((n, f) => n + f.bytes, 0) + manifest.totals.bytes);

    const dir = await copy('json');
    const missing = orderPart(0);
    await rm(file(dir, missing));
    await writeFile(file(dir, 'stray.txt'), 'x');
    const bad = await runCli(['verify', dir, '--json']);
    expect(bad.code, context(bad)).toBe(6);
    expect(bad.stdout.trim().split('\n')).toHaveLength(1);
    const report = JSON.parse(bad.stdout) as { status: string; problems: { kind: string; key: string; message: string }[] };
    expect(report.status).toBe('problems');
    expect(report.problems).toEqual([
      { kind: 'missing', key: missing, message: expect.any(String) as string },
      { kind: 'extra', key: 'stray.txt', message: expect.any(String) as string },
    ]);
  });

  it('files the manifest lists are checked by sha256 too (a configuration)', async () => {
    const dir = await copy('config');
    const config = manifest.files.find((f) => f.key.startsWith('configurations/'))!;
    const text = await readFile(file(dir, config.key));
    const flipped = Buffer.from(text);
    flipped[flipped.length - 2] = flipped[flipped.length - 2] === 0x20 ? 0x09 : 0x20;
    expect(sha256(flipped)).not.toBe(config.sha256);
    await writeFile(file(dir, config.key), flipped);
    expectProblem(await runCli(['verify', dir]), new RegExp(`^corrupt: ${escape(config.key)}: sha256`));
  });
});

describe('takeout verify on S3', () => {
  it('a clean S3 takeout verifies; a deleted part and a stray object exit 6', async () => {
    const prefix = uniquePrefix('verify');
    const dest = `s3://${TEST_BUCKET}/${prefix}`;
    const run = await runCli(['run', '--source', 'demo', '--dest', dest, '--include', 'in.c-main.*', '--slice-size', '64KB', '-q', ...S3]);
    expect(run.code, context(run)).toBe(0);
    const clean = await runCli(['verify', dest, ...S3]);
    expect(clean.code, context(clean)).toBe(0);
    expect(clean.stderr).toMatch(/all good/);

    await client.send(new DeleteObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}${orderPart(1)}` }));
    await client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}extra/stray.bin`, Body: 'x' }));
    const bad = await runCli(['verify', dest, '--json', ...S3]);
    expect(bad.code, context(bad)).toBe(6);
    const report = JSON.parse(bad.stdout) as { problems: { kind: string; key: string }[] };
    expect(report.problems.map((p) => `${p.kind} ${p.key}`)).toEqual([`missing ${orderPart(1)}`, 'extra extra/stray.bin']);
  });
});
