import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { SliceManifest, TakeoutManifest } from '../src/manifests/takeout.js';
import {
  allFiles,
  errorLines,
  keboolaHeader,
  putObject,
  redshiftManifest,
  referenceMerge,
  removeTemps,
  takeout,
  takeoutClosingStdout,
  tempDir,
  warningLines,
  type FilesResult,
} from './helpers/files-cli.js';
import { OTHER_BUCKET, rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * `takeout files download` and `takeout files merge`, end to end through the built CLI: every merged
 * output is compared byte for byte with a reference made here with node:zlib (`cat` of the gunzipped
 * slices, one Keboola-quoted header row first), and every failure must exit with its documented code,
 * print one error line naming the culprit, and leave nothing — no output, no temp file — behind.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const S3 = s3CliArgs(endpoint);
const ORDERS = 'in.c-main.orders';
const CONTACTS = 'in.c-crm.contacts';
const EMPTY = 'in.c-crm.empty_table';

/** A local takeout of the demo project (small slices, so orders has several). */
let local: string;
let localManifest: TakeoutManifest;
/** The same on S3: `s3://takeout-test/<s3Root>`. */
let s3Root: string;
let s3Manifest: TakeoutManifest;

function context(result: FilesResult): string {
  return `exit ${result.code}\nstderr: ${result.stderr}`;
}

function expectOk(result: FilesResult): void {
  expect(result.code, context(result)).toBe(0);
  expect(errorLines(result.stderr), context(result)).toEqual([]);
}

/** The exit code, exactly one error line naming `culprit`, and nothing left in `outDir` (no output, no temp file). */
async function expectFailure(result: FilesResult, code: number, culprit: string | RegExp, outDir: string): Promise<string> {
  expect(result.code, context(result)).toBe(code);
  const errors = errorLines(result.stderr);
  expect(errors, context(result)).toHaveLength(1);
  if (typeof culprit === 'string') expect(errors[0], context(result)).toContain(culprit);
  else expect(errors[0], context(result)).toMatch(culprit);
  expect(await allFiles(outDir), 'output folder after a failure').toEqual([]);
  return errors[0]!;
}

function tableOf(manifest: TakeoutManifest, id: string): TakeoutManifest['tables'][number] {
  const table = manifest.tables.find((t) => t.id === id);
  if (!table) throw new Error(`no table ${id} in the takeout`);
  return table;
}

async function localParts(id: string): Promise<Buffer[]> {
  return Promise.all(tableOf(localManifest, id).slices.map((s) => readFile(path.join(local, ...s.key.split('/')))));
}

async function getS3(bucket: string, key: string): Promise<Buffer> {
  const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await result.Body!.transformToByteArray());
}

async function s3Parts(id: string): Promise<Buffer[]> {
  return Promise.all(tableOf(s3Manifest, id).slices.map((s) => getS3(TEST_BUCKET, `${s3Root}${s.key}`)));
}

/** A fresh, empty output folder and the output file path in it. */
async function output(name: string, file = 'out.csv'): Promise<{ dir: string; file: string }> {
  const dir = await tempDir(name);
  return { dir, file: path.join(dir, file) };
}

/** Upload hand-made slices under a fresh prefix; returns their s3:// URLs. */
async function uploadSlices(name: string, slices: readonly Buffer[], bucket = TEST_BUCKET): Promise<{ prefix: string; urls: string[] }> {
  const prefix = uniquePrefix(name);
  const urls: string[] = [];
  await Promise.all(
    slices.map(async (body, i) => {
      const key = `${prefix}slices/part_${String(i).padStart(3, '0')}${body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b ? '.csv.gz' : '.csv'}`;
      await putObject(client, bucket, key, body);
      urls[i] = `s3://${bucket}/${key}`;
    }),
  );
  return { prefix, urls };
}

/** Put a manifest on S3; returns its s3:// URL. */
async function uploadManifest(prefix: string, body: string, name = 'slices.manifest'): Promise<string> {
  await putObject(client, TEST_BUCKET, `${prefix}${name}`, body);
  return `s3://${TEST_BUCKET}/${prefix}${name}`;
}

// ---------------------------------------------------------------------------------------------
// Hand-made slices: gzip and plain mixed, CRLF, UTF-8, quoted newlines, empty files.

const gz = (text: string | Buffer): Buffer => gzipSync(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);

/** A larger slice, past zlib's and the reader's chunk sizes, with varied bytes. */
function bigCsv(rows: number, seed: number): string {
  let out = '';
  let x = seed;
  for (let i = 0; i < rows; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out += `${seed}-${i},"val ${x.toString(36)} ""q"", ž"\r\n`;
  }
  return out;
}

const HAND_SLICES: Buffer[] = [
  gz('1,"Zoë, ""the"" first"\r\n2,plain\r\n'),
  Buffer.from('3,日本語 テキスト\n4,"multi\nline 🚀"\n', 'utf8'),
  Buffer.alloc(0),
  gz(''),
  Buffer.concat([gz('5,member one\n'), gz('6,member two\n')]),
  gz(bigCsv(40_000, 7)),
  Buffer.from('7,"crlf ✓"\r\n8,last-without-newline', 'utf8'),
];

beforeAll(async () => {
  const root = await tempDir('takeout');
  local = path.join(root, 'local');
  s3Root = uniquePrefix('files-takeout');
  const [a, b] = await Promise.all([
    takeout(['run', '--source', 'demo', '--dest', local, '--slice-size', '64KB', '-q']),
    takeout(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${s3Root}`, '--slice-size', '64KB', '-q', ...S3]),
  ]);
  expectOk(a);
  expectOk(b);
  localManifest = JSON.parse(await readFile(path.join(local, 'takeout-manifest.json'), 'utf8')) as TakeoutManifest;
  s3Manifest = JSON.parse((await getS3(TEST_BUCKET, `${s3Root}takeout-manifest.json`)).toString('utf8')) as TakeoutManifest;
  // The fixtures the tests below rely on.
  expect(tableOf(localManifest, ORDERS).slices.length).toBeGreaterThanOrEqual(4);
  expect(tableOf(s3Manifest, ORDERS).slices.length).toBeGreaterThanOrEqual(4);
  expect(tableOf(localManifest, EMPTY).slices).toEqual([]);
});

afterAll(async () => {
  client.destroy();
  await removeTemps();
});

describe('files download: a local takeout', () => {
  it('merges manifests/<id>.manifest into the gunzipped parts, header first, byte for byte', async () => {
    const out = await output('local-orders');
    const result = await takeout(['files', 'download', path.join(local, 'manifests', `${ORDERS}.manifest`), '-o', out.file]);
    expectOk(result);
    const expected = referenceMerge(await localParts(ORDERS), tableOf(localManifest, ORDERS).columns);
    expect((await readFile(out.file)).equals(expected)).toBe(true);
    expect(await allFiles(out.dir)).toEqual(['out.csv']);
  });

  it('keeps CRLF rows and UTF-8 as they are (contacts)', async () => {
    const out = await output('local-contacts');
    const result = await takeout(['files', 'download', path.join(local, 'manifests', `${CONTACTS}.manifest`), '-o', out.file]);
    expectOk(result);
    const expected = referenceMerge(await localParts(CONTACTS), tableOf(localManifest, CONTACTS).columns);
    // The fixture really has both.
    expect(expected.includes('\r\n')).toBe(true);
    expect(expected.some((byte) => byte >= 0x80)).toBe(true);
    expect((await readFile(out.file)).equals(expected)).toBe(true);
  });

  it('merges takeout-manifest.json --table <id> the same way', async () => {
    const out = await output('local-table');
    const result = await takeout(['files', 'download', path.join(local, 'takeout-manifest.json'), '--table', ORDERS, '-o', out.file]);
    expectOk(result);
    const expected = referenceMerge(await localParts(ORDERS), tableOf(localManifest, ORDERS).columns);
    expect((await readFile(out.file)).equals(expected)).toBe(true);
  });

  it('writes only the header for an empty table, both ways', async () => {
    const columns = tableOf(localManifest, EMPTY).columns;
    const viaTable = await output('local-empty');
    expectOk(await takeout(['files', 'download', path.join(local, 'takeout-manifest.json'), '-t', EMPTY, '-o', viaTable.file]));
    expect(await readFile(viaTable.file)).toEqual(keboolaHeader(columns));
    const viaManifest = await output('local-empty-manifest');
    expectOk(await takeout(['files', 'download', path.join(local, 'manifests', `${EMPTY}.manifest`), '-o', viaManifest.file]));
    expect(await readFile(viaManifest.file)).toEqual(keboolaHeader(columns));
  });

  it('--no-header writes the data only', async () => {
    const out = await output('local-no-header');
    expectOk(await takeout(['files', 'download', path.join(local, 'manifests', `${ORDERS}.manifest`), '--no-header', '-o', out.file]));
    expect((await readFile(out.file)).equals(referenceMerge(await localParts(ORDERS)))).toBe(true);
  });

  it('--columns overrides the known column names (quoted like Keboola)', async () => {
    const out = await output('local-columns');
    const result = await takeout(['files', 'download', path.join(local, 'manifests', `${CONTACTS}.manifest`), '--columns', 'a,b "x",č,d,e', '-o', out.file]);
    expectOk(result);
    const data = await readFile(out.file);
    expect(data.subarray(0, 30).toString('utf8')).toMatch(/^"a","b ""x""","č","d","e"\n/);
    expect(data.equals(referenceMerge(await localParts(CONTACTS), ['a', 'b "x"', 'č', 'd', 'e']))).toBe(true);
  });

  it('--gzip concatenates the gzip parts as they are, after a gzip member holding the header', async () => {
    const out = await output('local-gzip', 'out.csv.gz');
    expectOk(await takeout(['files', 'download', path.join(local, 'manifests', `${ORDERS}.manifest`), '--gzip', '-o', out.file]));
    const parts = Buffer.concat(await localParts(ORDERS));
    const data = await readFile(out.file);
    const columns = tableOf(localManifest, ORDERS).columns;
    expect(data.length).toBeGreaterThan(parts.length);
    expect(data.subarray(data.length - parts.length).equals(parts)).toBe(true);
    expect(gunzipSync(data.subarray(0, data.length - parts.length))).toEqual(keboolaHeader(columns));
    expect(gunzipSync(data).equals(referenceMerge(await localParts(ORDERS), columns))).toBe(true);
  });

  it('--gzip --no-header is exactly the parts concatenated', async () => {
    const out = await output('local-gzip-raw', 'out.csv.gz');
    expectOk(await takeout(['files', 'download', path.join(local, 'manifests', `${ORDERS}.manifest`), '--gzip', '--no-header', '-o', out.file]));
    expect((await readFile(out.file)).equals(Buffer.concat(await localParts(ORDERS)))).toBe(true);
  });

  it('-o - streams the merged data to stdout and nothing else', async () => {
    const result = await takeout(['files', 'download', path.join(local, 'manifests', `${CONTACTS}.manifest`), '-o', '-']);
    expectOk(result);
    expect(result.stdout.equals(referenceMerge(await localParts(CONTACTS), tableOf(localManifest, CONTACTS).columns))).toBe(true);
  });

  it('-o - --gzip streams binary gzip to stdout', async () => {
    const result = await takeout(['files', 'download', path.join(local, 'manifests', `${ORDERS}.manifest`), '--gzip', '--no-header', '-o', '-']);
    expectOk(result);
    expect(result.stdout.equals(Buffer.concat(await localParts(ORDERS)))).toBe(true);
  });

  it('reads a slice manifest with no takeout-manifest.json beside it (relative keys, sizes from content_length)', async () => {
    const copy = path.join(await tempDir('local-bare'), 'takeout');
    await cp(local, copy, { recursive: true });
    await rm(path.join(copy, 'takeout-manifest.json'));
    const out = await output('local-bare-out');
    expectOk(await takeout(['files', 'download', path.join(copy, 'manifests', `${CONTACTS}.manifest`), '-o', out.file]));
    expect((await readFile(out.file)).equals(referenceMerge(await localParts(CONTACTS), tableOf(localManifest, CONTACTS).columns))).toBe(true);
  });

  it('--keep-slices DIR keeps every part as fetched', async () => {
    const out = await output('local-keep');
    const keep = path.join(out.dir, 'kept');
    expectOk(await takeout(['files', 'download', path.join(local, 'manifests', `${ORDERS}.manifest`), '--keep-slices', keep, '-o', out.file]));
    const slices = tableOf(localManifest, ORDERS).slices;
    expect(await allFiles(keep)).toEqual(slices.map((s) => path.posix.basename(s.key)).sort());
    for (const s of slices) {
      expect((await readFile(path.join(keep, path.posix.basename(s.key)))).equals(await readFile(path.join(local, ...s.key.split('/'))))).toBe(true);
    }
  });

  it('refuses an existing output (9) and leaves it as it was; --overwrite replaces it', async () => {
    const out = await output('local-exists');
    await writeFile(out.file, 'keep me\n');
    const manifest = path.join(local, 'manifests', `${CONTACTS}.manifest`);
    const refused = await takeout(['files', 'download', manifest, '-o', out.file]);
    expect(refused.code, context(refused)).toBe(9);
    expect(errorLines(refused.stderr)).toHaveLength(1);
    expect(errorLines(refused.stderr)[0]).toContain(out.file);
    expect(await readFile(out.file, 'utf8')).toBe('keep me\n');
    expect(await allFiles(out.dir)).toEqual(['out.csv']);

    expectOk(await takeout(['files', 'download', manifest, '--overwrite', '-o', out.file]));
    expect((await readFile(out.file)).equals(referenceMerge(await localParts(CONTACTS), tableOf(localManifest, CONTACTS).columns))).toBe(true);
    expect(await allFiles(out.dir)).toEqual(['out.csv']);
  });
});

describe('files download: from S3', () => {
  it("merges a takeout's s3:// manifests/<id>.manifest (s3:// entries) byte for byte", async () => {
    const sliceManifest = JSON.parse((await getS3(TEST_BUCKET, `${s3Root}manifests/${ORDERS}.manifest`)).toString('utf8')) as SliceManifest;
    expect(sliceManifest.entries.every((e) => e.url.startsWith(`s3://${TEST_BUCKET}/${s3Root}`))).toBe(true);
    const out = await output('s3-orders');
    const result = await takeout(['files', 'download', `s3://${TEST_BUCKET}/${s3Root}manifests/${ORDERS}.manifest`, '-o', out.file, ...S3]);
    expectOk(result);
    expect((await readFile(out.file)).equals(referenceMerge(await s3Parts(ORDERS), tableOf(s3Manifest, ORDERS).columns))).toBe(true);
    expect(await allFiles(out.dir)).toEqual(['out.csv']);
  });

  it('merges an s3:// takeout-manifest.json --table (CRLF and UTF-8) byte for byte', async () => {
    const out = await output('s3-contacts');
    const result = await takeout(['files', 'download', `s3://${TEST_BUCKET}/${s3Root}takeout-manifest.json`, '--table', CONTACTS, '-o', out.file, ...S3]);
    expectOk(result);
    expect((await readFile(out.file)).equals(referenceMerge(await s3Parts(CONTACTS), tableOf(s3Manifest, CONTACTS).columns))).toBe(true);
  });

  it('merges a hand-made Redshift manifest: gzip and plain mixed, empty slices, multi-member gzip, CRLF, UTF-8', async () => {
    const { prefix, urls } = await uploadSlices('hand-mixed', HAND_SLICES);
    const manifest = await uploadManifest(
      prefix,
      redshiftManifest(urls.map((url, i) => ({ url, mandatory: true, ...(i % 2 === 0 ? { contentLength: HAND_SLICES[i]!.length } : {}) }))),
    );
    const out = await output('s3-hand');
    const result = await takeout(['files', 'download', manifest, '--columns', 'a,b', '-o', out.file, ...S3]);
    expectOk(result);
    const data = await readFile(out.file);
    expect(data.subarray(0, 8).toString()).toBe('"a","b"\n');
    expect(data.equals(referenceMerge(HAND_SLICES, ['a', 'b']))).toBe(true);
  });

  it('merges a manifest of one slice, with the header from the manifest schema', async () => {
    const slice = gz('1,"x"\r\n2,"ü"\r\n');
    const { prefix, urls } = await uploadSlices('hand-one', [slice]);
    const manifest = await uploadManifest(prefix, redshiftManifest([{ url: urls[0]!, mandatory: true, contentLength: slice.length }], ['id', 'na"me']));
    const result = await takeout(['files', 'download', manifest, '-o', '-', ...S3]);
    expectOk(result);
    expect(result.stdout.toString('utf8')).toBe('"id","na""me"\n1,"x"\r\n2,"ü"\r\n');
  });

  it("resolves relative entries of an s3:// manifest against the manifest's folder", async () => {
    const slices = [gz('1,rel\n'), Buffer.from('2,ï\r\n')];
    const { prefix, urls } = await uploadSlices('hand-relative', slices);
    const manifest = await uploadManifest(prefix, redshiftManifest(urls.map((url) => ({ url: url.slice(`s3://${TEST_BUCKET}/${prefix}`.length), mandatory: true }))));
    const result = await takeout(['files', 'download', manifest, '-o', '-', ...S3]);
    expectOk(result);
    expect(result.stdout.equals(referenceMerge(slices))).toBe(true);
  });

  it('a local manifest of s3:// entries (a saved Storage API manifest) needs --allow-bucket for their bucket', async () => {
    const slices = [gz('1,a\r\n'), Buffer.from('2,€\n')];
    const { urls } = await uploadSlices('hand-local-manifest', slices);
    const dir = await tempDir('local-s3-manifest');
    const file = path.join(dir, 'saved.manifest');
    await writeFile(file, redshiftManifest(urls.map((url, i) => ({ url, mandatory: true, contentLength: slices[i]!.length }))));
    const refused = await output('local-s3-refused');
    await expectFailure(await takeout(['files', 'download', file, '-o', refused.file, ...S3]), 2, urls[0]!, refused.dir);
    const allowed = await output('local-s3-allowed');
    expectOk(await takeout(['files', 'download', file, '--allow-bucket', TEST_BUCKET, '--columns', 'a,b', '-o', allowed.file, ...S3]));
    expect((await readFile(allowed.file)).equals(referenceMerge(slices, ['a', 'b']))).toBe(true);
  });

  it('keeps manifest order across many slices fetched in parallel', async () => {
    // Early slices are the largest, so later ones finish downloading first.
    const slices = Array.from({ length: 24 }, (_, i) => (i % 3 === 2 ? Buffer.from(`plain-${i},"plain ${i}"\n`) : gz(bigCsv((24 - i) * 300, i))));
    const { prefix, urls } = await uploadSlices('hand-many', slices);
    const manifest = await uploadManifest(prefix, redshiftManifest(urls.map((url) => ({ url, mandatory: true }))));
    const out = await output('s3-many');
    const result = await takeout(['files', 'download', manifest, '--concurrency', '8', '-o', out.file, ...S3]);
    expectOk(result);
    expect((await readFile(out.file)).equals(referenceMerge(slices))).toBe(true);
  });

  it('--gzip of gzip slices is their bytes concatenated, and gunzips to the plain output', async () => {
    const slices = [gz('1,a\r\n'), gz('2,ß\n'), gz(''), gz(bigCsv(5_000, 3))];
    const { prefix, urls } = await uploadSlices('hand-gzip', slices);
    const manifest = await uploadManifest(prefix, redshiftManifest(urls.map((url) => ({ url, mandatory: true }))));
    const out = await output('s3-gzip', 'out.csv.gz');
    expectOk(await takeout(['files', 'download', manifest, '--gzip', '-o', out.file, ...S3]));
    const data = await readFile(out.file);
    expect(data.equals(Buffer.concat(slices))).toBe(true);

    const plain = await output('s3-gzip-plain');
    expectOk(await takeout(['files', 'download', manifest, '-o', plain.file, ...S3]));
    expect(gunzipSync(data).equals(await readFile(plain.file))).toBe(true);
    expect((await readFile(plain.file)).equals(referenceMerge(slices))).toBe(true);

    const withHeader = await output('s3-gzip-header', 'out.csv.gz');
    expectOk(await takeout(['files', 'download', manifest, '--gzip', '--columns', 'a,b', '-o', withHeader.file, ...S3]));
    const headed = await readFile(withHeader.file);
    expect(headed.subarray(headed.length - data.length).equals(data)).toBe(true);
    expect(gunzipSync(headed.subarray(0, headed.length - data.length))).toEqual(Buffer.from('"a","b"\n'));
  });

  it('--gzip of mixed slices gunzips to the plain output', async () => {
    const { prefix, urls } = await uploadSlices('hand-gzip-mixed', HAND_SLICES);
    const manifest = await uploadManifest(prefix, redshiftManifest(urls.map((url) => ({ url, mandatory: true }))));
    const out = await output('s3-gzip-mixed', 'out.csv.gz');
    expectOk(await takeout(['files', 'download', manifest, '--gzip', '--columns', 'a,b', '-o', out.file, ...S3]));
    expect(gunzipSync(await readFile(out.file)).equals(referenceMerge(HAND_SLICES, ['a', 'b']))).toBe(true);
  });

  it('an empty manifest is an empty table: the header only with --columns, an empty file without', async () => {
    const prefix = uniquePrefix('hand-empty');
    const manifest = await uploadManifest(prefix, '{"entries":[]}');
    const out = await output('s3-empty');
    expectOk(await takeout(['files', 'download', manifest, '--columns', 'a,b', '-o', out.file, ...S3]));
    expect(await readFile(out.file, 'utf8')).toBe('"a","b"\n');
    const bare = await output('s3-empty-bare');
    expectOk(await takeout(['files', 'download', manifest, '-o', bare.file, ...S3]));
    expect(await readFile(bare.file)).toEqual(Buffer.alloc(0));
  });

  it('an empty local manifest with --columns a,b writes just the header to stdout', async () => {
    const dir = await tempDir('local-empty-manifest');
    await writeFile(path.join(dir, 'empty.manifest'), '{"entries":[]}');
    const result = await takeout(['files', 'download', path.join(dir, 'empty.manifest'), '--columns', 'a,b', '-o', '-']);
    expectOk(result);
    expect(result.stdout.toString()).toBe('"a","b"\n');
  });

  it('--keep-slices DIR keeps the fetched bytes of every slice', async () => {
    const slices = [gz('1,a\n'), Buffer.from('2,b\r\n'), Buffer.alloc(0)];
    const { prefix, urls } = await uploadSlices('hand-keep', slices);
    const manifest = await uploadManifest(prefix, redshiftManifest(urls.map((url) => ({ url, mandatory: true }))));
    const out = await output('s3-keep');
    const keep = path.join(out.dir, 'kept');
    expectOk(await takeout(['files', 'download', manifest, '--keep-slices', keep, '-o', out.file, ...S3]));
    expect((await readFile(out.file)).equals(referenceMerge(slices))).toBe(true);
    const names = urls.map((u) => path.posix.basename(u));
    expect(await allFiles(keep)).toEqual([...names].sort());
    for (const [i, name] of names.entries()) expect((await readFile(path.join(keep, name))).equals(slices[i]!)).toBe(true);
  });

  it('skips a missing optional slice with a warning naming it (exit 0)', async () => {
    const slices = [gz('1,a\n'), gz('3,c\n')];
    const { prefix, urls } = await uploadSlices('hand-optional', slices);
    const missing = `s3://${TEST_BUCKET}/${prefix}slices/missing.csv.gz`;
    const manifest = await uploadManifest(
      prefix,
      redshiftManifest([{ url: urls[0]!, mandatory: true }, { url: missing, mandatory: false }, { url: urls[1]! }]),
    );
    const out = await output('s3-optional');
    const result = await takeout(['files', 'download', manifest, '-o', out.file, ...S3]);
    expectOk(result);
    const warnings = warningLines(result.stderr);
    expect(warnings, result.stderr).toHaveLength(1);
    expect(warnings[0]).toContain(missing);
    expect(await readFile(out.file, 'utf8')).toBe('1,a\n3,c\n');
  });

  it('reads a slice in another bucket only when --allow-bucket names it', async () => {
    const own = await uploadSlices('hand-own', [gz('1,own\n')]);
    const other = await uploadSlices('hand-other', [gz('2,other\n')], OTHER_BUCKET);
    const manifest = await uploadManifest(own.prefix, redshiftManifest([{ url: own.urls[0]!, mandatory: true }, { url: other.urls[0]!, mandatory: true }]));

    const refused = await output('s3-other-bucket');
    const result = await takeout(['files', 'download', manifest, '-o', refused.file, ...S3]);
    await expectFailure(result, 2, other.urls[0]!, refused.dir);

    const allowed = await output('s3-allow-bucket');
    expectOk(await takeout(['files', 'download', manifest, '--allow-bucket', OTHER_BUCKET, '-o', allowed.file, ...S3]));
    expect(await readFile(allowed.file, 'utf8')).toBe('1,own\n2,other\n');
  });
});

describe('files merge', () => {
  it('merges local slices given as arguments, in that order', async () => {
    const dir = await tempDir('merge-args');
    const names = HAND_SLICES.map((s, i) => `s${i}${s.length >= 2 && s[0] === 0x1f ? '.csv.gz' : '.csv'}`);
    await Promise.all(HAND_SLICES.map((s, i) => writeFile(path.join(dir, names[i]!), s)));
    const out = await output('merge-args-out');
    const order = [6, 0, 1, 2, 3, 4, 5];
    const result = await takeout(['files', 'merge', ...order.map((i) => names[i]!), '--columns', 'a,b', '-o', out.file], { cwd: dir });
    expectOk(result);
    expect((await readFile(out.file)).equals(referenceMerge(order.map((i) => HAND_SLICES[i]!), ['a', 'b']))).toBe(true);

    const gzOut = await output('merge-args-gzip', 'out.csv.gz');
    const gzNames = names.filter((_, i) => HAND_SLICES[i]![0] === 0x1f);
    expectOk(await takeout(['files', 'merge', ...gzNames.map((n) => path.join(dir, n)), '--gzip', '-o', gzOut.file]));
    expect((await readFile(gzOut.file)).equals(Buffer.concat(HAND_SLICES.filter((s) => s[0] === 0x1f)))).toBe(true);
  });

  it("merges a takeout's parts via --manifest manifests/<id>.manifest and via takeout-manifest.json --table", async () => {
    const expected = referenceMerge(await localParts(ORDERS), tableOf(localManifest, ORDERS).columns);
    const a = await output('merge-manifest');
    expectOk(await takeout(['files', 'merge', '--manifest', path.join(local, 'manifests', `${ORDERS}.manifest`), '-o', a.file]));
    expect((await readFile(a.file)).equals(expected)).toBe(true);
    const b = await output('merge-takeout-manifest');
    expectOk(await takeout(['files', 'merge', '--manifest', path.join(local, 'takeout-manifest.json'), '--table', ORDERS, '-o', b.file]));
    expect((await readFile(b.file)).equals(expected)).toBe(true);
  });

  it('merges a hand-made local Redshift manifest of relative keys', async () => {
    const dir = await tempDir('merge-redshift');
    await mkdir(path.join(dir, 'parts'));
    const keys = HAND_SLICES.map((_, i) => `parts/p${i}`);
    await Promise.all(HAND_SLICES.map((s, i) => writeFile(path.join(dir, keys[i]!), s)));
    await writeFile(
      path.join(dir, 'slices.manifest'),
      redshiftManifest(keys.map((url, i) => ({ url, mandatory: true, contentLength: HAND_SLICES[i]!.length })), ['a', 'b']),
    );
    const out = await output('merge-redshift-out');
    expectOk(await takeout(['files', 'merge', '--manifest', path.join(dir, 'slices.manifest'), '-o', out.file]));
    expect((await readFile(out.file)).equals(referenceMerge(HAND_SLICES, ['a', 'b']))).toBe(true);
  });

  it('refuses SLICES together with --manifest (2), and a missing slice argument (5)', async () => {
    const dir = await tempDir('merge-usage');
    await writeFile(path.join(dir, 'a.csv'), '1\n');
    await writeFile(path.join(dir, 'm.manifest'), redshiftManifest([{ url: 'a.csv', mandatory: true }]));
    const out = await output('merge-usage-out');
    await expectFailure(await takeout(['files', 'merge', 'a.csv', '--manifest', 'm.manifest', '-o', out.file], { cwd: dir }), 2, '--manifest', out.dir);
    await expectFailure(await takeout(['files', 'merge', 'a.csv', 'nope.csv', '-o', out.file], { cwd: dir }), 5, 'nope.csv', out.dir);
  });
});

describe('failures: exit code, one line naming the slice, nothing left behind', () => {
  it('a missing mandatory slice (5), after others were already written', async () => {
    const { prefix, urls } = await uploadSlices('fail-missing', [gz(bigCsv(2_000, 1)), gz(bigCsv(2_000, 2))]);
    const missing = `s3://${TEST_BUCKET}/${prefix}slices/gone.csv.gz`;
    const manifest = await uploadManifest(prefix, redshiftManifest([...urls.map((url) => ({ url, mandatory: true })), { url: missing, mandatory: true }]));
    const out = await output('fail-missing');
    await expectFailure(await takeout(['files', 'download', manifest, '-o', out.file, ...S3]), 5, missing, out.dir);
  });

  it('a part missing from a local takeout (5), merged either way', async () => {
    const copy = path.join(await tempDir('fail-missing-part'), 'takeout');
    await cp(local, copy, { recursive: true });
    const victim = tableOf(localManifest, ORDERS).slices.at(-1)!;
    await rm(path.join(copy, ...victim.key.split('/')));
    for (const args of [
      ['files', 'download', path.join(copy, 'manifests', `${ORDERS}.manifest`)],
      ['files', 'merge', '--manifest', path.join(copy, 'takeout-manifest.json'), '--table', ORDERS],
    ]) {
      const out = await output('fail-missing-part-out');
      await expectFailure(await takeout([...args, '-o', out.file]), 5, victim.key, out.dir);
    }
  });

  it('--keep-slices with slice names that differ only in case (7): both named, nothing written', async () => {
    const slices = await tempDir('fail-case');
    await writeFile(path.join(slices, 'part.csv.gz'), gz('1,a\n'));
    await mkdir(path.join(slices, 'upper'));
    await writeFile(path.join(slices, 'upper', 'PART.csv.gz'), gz('2,b\n'));
    await writeFile(path.join(slices, 'slices.manifest'), redshiftManifest([{ url: 'part.csv.gz' }, { url: 'upper/PART.csv.gz' }]));
    const out = await output('fail-case-out');
    const result = await takeout(['files', 'download', path.join(slices, 'slices.manifest'), '--keep-slices', path.join(out.dir, 'kept'), '-o', out.file]);
    const line = await expectFailure(result, 7, 'slices part.csv.gz and upper/PART.csv.gz differ only in letter case', out.dir);
    expect(line).toBe(
      'takeout: error: --keep-slices: slices part.csv.gz and upper/PART.csv.gz differ only in letter case and would be one file on a case-insensitive file system [INVALID_INPUT, exit 7]',
    );
    // The same manifest without --keep-slices writes one file, which cannot collide.
    expectOk(await takeout(['files', 'download', path.join(slices, 'slices.manifest'), '-o', out.file]));
    expect(await readFile(out.file, 'utf8')).toBe('1,a\n2,b\n');
  });

  it("a slice manifest that disagrees with its takeout's manifest (6)", async () => {
    const copy = path.join(await tempDir('fail-disagree'), 'takeout');
    await cp(local, copy, { recursive: true });
    const file = path.join(copy, 'manifests', `${ORDERS}.manifest`);
    const manifest = JSON.parse(await readFile(file, 'utf8')) as SliceManifest;
    manifest.entries.pop();
    await writeFile(file, JSON.stringify(manifest));
    const out = await output('fail-disagree-out');
    await expectFailure(await takeout(['files', 'download', file, '-o', out.file]), 6, `${ORDERS}.manifest`, out.dir);
  });

  it('a slice larger or smaller than its content_length (6)', async () => {
    const slice = gz('1,a\n2,b\n');
    const { prefix, urls } = await uploadSlices('fail-size', [slice]);
    for (const contentLength of [slice.length - 1, slice.length + 1]) {
      const manifest = await uploadManifest(prefix, redshiftManifest([{ url: urls[0]!, mandatory: true, contentLength }]), `size-${contentLength}.manifest`);
      const out = await output('fail-size');
      await expectFailure(await takeout(['files', 'download', manifest, '-o', out.file, ...S3]), 6, urls[0]!, out.dir);
    }
  });

  it("a part whose sha256 does not match the takeout manifest (6), however it is merged", async () => {
    const copy = path.join(await tempDir('fail-sha'), 'takeout');
    await cp(local, copy, { recursive: true });
    const victim = tableOf(localManifest, ORDERS).slices[2]!;
    const file = path.join(copy, ...victim.key.split('/'));
    const data = await readFile(file);
    // Same size, still a valid gzip of the same rows: only the header's OS byte differs.
    data[9] = data[9] === 0xff ? 0x03 : 0xff;
    await writeFile(file, data);
    expect(gunzipSync(data).length).toBe(victim.rawBytes);

    const runs: string[][] = [
      ['files', 'download', path.join(copy, 'manifests', `${ORDERS}.manifest`)],
      ['files', 'download', path.join(copy, 'takeout-manifest.json'), '--table', ORDERS],
      ['files', 'merge', '--manifest', path.join(copy, 'manifests', `${ORDERS}.manifest`)],
    ];
    for (const args of runs) {
      const out = await output('fail-sha-out');
      const line = await expectFailure(await takeout([...args, '-o', out.file]), 6, victim.key, out.dir);
      expect(line).toContain('sha256');
    }
  });

  it('a truncated gzip slice (6)', async () => {
    const whole = gz(bigCsv(3_000, 5));
    const { prefix, urls } = await uploadSlices('fail-truncated', [gz('1,a\n'), whole.subarray(0, whole.length - 100)]);
    const manifest = await uploadManifest(prefix, redshiftManifest(urls.map((url) => ({ url, mandatory: true }))));
    const out = await output('fail-truncated');
    await expectFailure(await takeout(['files', 'download', manifest, '-o', out.file, ...S3]), 6, urls[1]!, out.dir);
  });

  // With --gzip the members are copied as they are: a truncated slice whose size the manifest does not give
  // must still be caught (each member is inflated on the side to prove it whole), not concatenated unnoticed.
  it('a truncated gzip slice with --gzip (6)', async () => {
    const whole = gz(bigCsv(3_000, 6));
    const { prefix, urls } = await uploadSlices('fail-truncated-gz', [whole.subarray(0, whole.length - 100)]);
    const manifest = await uploadManifest(prefix, redshiftManifest(urls.map((url) => ({ url, mandatory: true }))));
    const out = await output('fail-truncated-gz', 'out.csv.gz');
    await expectFailure(await takeout(['files', 'download', manifest, '--gzip', '-o', out.file, ...S3]), 6, urls[0]!, out.dir);
  });

  it('refuses http(s):, file: and 169.254.169.254 entries before fetching anything (6)', async () => {
    const prefix = uniquePrefix('fail-http');
    for (const url of ['http://169.254.169.254/x', 'https://example.com/a.csv.gz', 'file:///etc/passwd']) {
      const manifest = await uploadManifest(prefix, redshiftManifest([{ url, mandatory: true }]), `${url.split(':')[0]}.manifest`);
      const out = await output('fail-http');
      await expectFailure(await takeout(['files', 'download', manifest, '-o', out.file, ...S3]), 6, url, out.dir);
    }
  });

  it('refuses a slice in an Azure container or GCS bucket the manifest may not read, before fetching anything (2)', async () => {
    const { prefix, urls } = await uploadSlices('fail-cloud', [gz('1,a\n')]);
    for (const url of ['azure://kbcfiles.blob.core.windows.net/exp-2/1.csv.gz0000_part_00', 'gs://kbc-files/exp-2/1.csv.gz0000_part_00']) {
      // The S3 slice first: refused before it is fetched all the same.
      const manifest = await uploadManifest(prefix, redshiftManifest([{ url: urls[0]!, mandatory: true }, { url, mandatory: true }]), `${url.split(':')[0]}.manifest`);
      const out = await output('fail-cloud');
      const line = await expectFailure(await takeout(['files', 'download', manifest, '-o', out.file, ...S3]), 2, url, out.dir);
      expect(line).toMatch(url.startsWith('azure') ? /Azure Blob Storage/ : /Google Cloud Storage/);
    }
  });

  it("refuses '../' and absolute keys in a local manifest, and '..' in s3:// keys (6)", async () => {
    const dir = await tempDir('fail-keys');
    await writeFile(path.join(dir, 'secret.csv'), 'secret\n');
    const inner = path.join(dir, 'inner');
    await mkdir(inner);
    for (const url of ['../secret.csv', 'a/../../secret.csv', path.join(dir, 'secret.csv'), `s3://${TEST_BUCKET}/x/../y.csv`]) {
      await writeFile(path.join(inner, 'm.manifest'), redshiftManifest([{ url, mandatory: true }]));
      for (const command of ['download', 'merge']) {
        const out = await output('fail-keys');
        const args = command === 'download' ? ['files', 'download', path.join(inner, 'm.manifest')] : ['files', 'merge', '--manifest', path.join(inner, 'm.manifest')];
        await expectFailure(await takeout([...args, '-o', out.file]), 6, url, out.dir);
      }
    }
  });

  it('malformed manifest JSON, local and on S3 (6)', async () => {
    const dir = await tempDir('fail-json');
    const file = path.join(dir, 'bad.manifest');
    await writeFile(file, '{"entries":[{"url":"s3://takeout-test/a.csv",');
    const out = await output('fail-json');
    await expectFailure(await takeout(['files', 'download', file, '-o', out.file]), 6, 'bad.manifest', out.dir);

    const s3 = await uploadManifest(uniquePrefix('fail-json'), '{"entries": nope}', 'bad.manifest');
    await expectFailure(await takeout(['files', 'download', s3, '-o', out.file, ...S3]), 6, 'bad.manifest', out.dir);

    // Valid JSON, wrong shape.
    await writeFile(file, '{"entries":{"url":"a.csv"}}');
    await expectFailure(await takeout(['files', 'download', file, '-o', out.file]), 6, 'bad.manifest', out.dir);
  });

  it('stops a gzip bomb quickly (6) when the manifest gives no raw size', async () => {
    const dir = await tempDir('fail-bomb');
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
    expect(bomb.length * 200).toBeLessThan(50 * 1024 * 1024);
    await writeFile(path.join(dir, 'bomb.csv.gz'), bomb);
    await writeFile(path.join(dir, 'bomb.manifest'), redshiftManifest([{ url: 'bomb.csv.gz', mandatory: true, contentLength: bomb.length }]));
    const out = await output('fail-bomb');
    const result = await takeout(['files', 'download', path.join(dir, 'bomb.manifest'), '-o', out.file]);
    const line = await expectFailure(result, 6, 'bomb.csv.gz', out.dir);
    expect(line).toMatch(/gzip bomb/);
    expect(result.durationMs).toBeLessThan(10_000);
    const merged = await output('fail-bomb-merge');
    await expectFailure(await takeout(['files', 'merge', path.join(dir, 'bomb.csv.gz'), '-o', merged.file]), 6, 'bomb.csv.gz', merged.dir);
  });

  it('--header without known column names (2)', async () => {
    const { prefix, urls } = await uploadSlices('fail-header', [gz('1,a\n')]);
    const manifest = await uploadManifest(prefix, redshiftManifest([{ url: urls[0]!, mandatory: true }]));
    const out = await output('fail-header');
    await expectFailure(await takeout(['files', 'download', manifest, '--header', '-o', out.file, ...S3]), 2, '--columns', out.dir);
  });

  it('a takeout manifest without --table (2)', async () => {
    const out = await output('fail-no-table');
    await expectFailure(await takeout(['files', 'download', path.join(local, 'takeout-manifest.json'), '-o', out.file]), 2, '--table', out.dir);
  });

  it('a manifest that does not exist, local or on S3 (5)', async () => {
    const out = await output('fail-no-manifest');
    const localMissing = path.join(out.dir, 'nope', 'x.manifest');
    await expectFailure(await takeout(['files', 'download', localMissing, '-o', out.file]), 5, localMissing, out.dir);
    const s3Missing = `s3://${TEST_BUCKET}/${uniquePrefix('fail-no-manifest')}x.manifest`;
    await expectFailure(await takeout(['files', 'download', s3Missing, '-o', out.file, ...S3]), 5, s3Missing, out.dir);
  });

  // A reader of `-o -` that goes away (`takeout files download … -o - | head`) must not leave the stdout writer
  // waiting for a 'drain' that never comes, nor end in an unhandled EPIPE with a stack trace.
  it('a reader of -o - that goes away early ends the run with a documented code and no stack trace', async () => {
    const result = await takeoutClosingStdout(['files', 'download', path.join(local, 'manifests', `${ORDERS}.manifest`), '-o', '-'], 64 * 1024);
    expect(result.stderr).not.toMatch(/Unhandled 'error' event|\n\s+at /);
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130, 141]).toContain(result.code);
    expect(result.stderr.split('\n').filter((line) => line.startsWith('takeout: error:')).length).toBeLessThanOrEqual(1);
  });
});
