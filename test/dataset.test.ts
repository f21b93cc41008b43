import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import * as ion from 'ion-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { DEMO_PROJECT, errorLines, jsonLines, parseCsv, removeTempFolders, runCli, s3Store, startCli, tempFolder, walkFiles, localStore, type Store, exportIdOf } from './helpers/cli.js';
import { startFaultProxy } from './faults/proxy.js';
import { rawS3Client, S3RVER_SECRET_ACCESS_KEY, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * Dataset exports in DynamoDB's export layout, read back by independent readers: the SDK's own
 * `unmarshall` for items, MD5 for the manifests' checksums and sidecars, the job records through the CLI.
 */

const endpoint = inject('s3Endpoint');
const pgUrl = inject('pgUrl');
const client = rawS3Client(endpoint);
const s3Args = s3CliArgs(endpoint);

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('base64');

interface Export {
  exportId: string;
  keys: string[];
  summary: Record<string, unknown>;
  files: { itemCount: number; md5Checksum: string; etag: string; dataFileS3Key: string }[];
  items: Record<string, unknown>[];
  records: Record<string, Record<string, AttributeValue>>[];
}

/** Reads one export back: its manifests (checked against their .md5 files), every data file (checked against the manifest). */
async function readExport(store: Store, exportId: string, prefix = ''): Promise<Export> {
  const keys = await store.list();
  const folder = `AWSDynamoDB/${exportId}`;
  const summaryText = (await store.get(`${folder}/manifest-summary.json`)).toString();
  expect((await store.get(`${folder}/manifest-summary.md5`)).toString()).toBe(md5(summaryText));
  const filesText = (await store.get(`${folder}/manifest-files.json`)).toString();
  expect((await store.get(`${folder}/manifest-files.md5`)).toString()).toBe(md5(filesText));
  expect(filesText.endsWith('\n') || filesText === '').toBe(true);
  const files = filesText.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Export['files'][number]);
  const records: Export['records'] = [];
  for (const file of files) {
    expect(file.dataFileS3Key.startsWith(prefix)).toBe(true);
    const body = await store.get(file.dataFileS3Key.slice(prefix.length));
    expect(md5(body)).toBe(file.md5Checksum);
    const lines = gunzipSync(body).toString().split('\n').filter(Boolean);
    expect(lines).toHaveLength(file.itemCount);
    for (const line of lines) records.push(JSON.parse(line) as Export['records'][number]);
  }
  const summary = JSON.parse(summaryText) as Record<string, unknown>;
  expect(summary.itemCount).toBe(records.length);
  return { exportId, keys, summary, files, records, items: records.map((r) => (r.Item ? unmarshall(r.Item) : {})) };
}


describe('dataset export --layout dynamodb (full export)', () => {
  it('writes the DynamoDB export layout to S3 that unmarshall reads back row for row', async () => {
    const prefix = uniquePrefix('ddb-full');
    const dest = `s3://${TEST_BUCKET}/${prefix}`;
    const result = await runCli(['dataset', 'export', 'in.c-main.customers', '--source', DEMO_PROJECT, '--dest', dest, '--json', ...s3Args]);
    expect(result.code, result.stderr).toBe(0);
    const exportId = exportIdOf(result.stdout);
    expect(exportId).toMatch(/^\d{14}-[0-9a-f]{8}$/);
    const store = s3Store(client, TEST_BUCKET, prefix);
    const exported = await readExport(store, exportId, prefix);
    expect(exported.keys).toContain(`AWSDynamoDB/${exportId}/_started`);
    expect(exported.files.every((f) => /^AWSDynamoDB\/\d{14}-[0-9a-f]{8}\/data\/[a-z2-7]{26}\.json\.gz$/.test(f.dataFileS3Key.slice(prefix.length)))).toBe(true);
    expect(exported.summary).toMatchObject({
      version: '2020-06-30',
      exportArn: expect.stringMatching(new RegExp(`^arn:aws:dynamodb:us-east-1:\\d{12}:table/customers/export/${exportId}$`)),
      s3Bucket: TEST_BUCKET,
      s3Prefix: prefix.replace(/\/$/, ''),
      outputFormat: 'DYNAMODB_JSON',
      manifestFilesS3Key: `${prefix}AWSDynamoDB/${exportId}/manifest-files.json`,
    });
    expect(exported.summary).not.toHaveProperty('exportType');
    // Every row of the source, every value typed from the column metadata.
    const rows = parseCsv(await readFile(path.join(DEMO_PROJECT, 'crm', '..', 'in.c-main', 'customers.csv')));
    const header = rows[0]!;
    expect(exported.items).toHaveLength(rows.length - 1);
    const byId = new Map(exported.items.map((item) => [String(item[header[0]!]), item]));
    for (const row of rows.slice(1)) {
      const item = byId.get(row[0]!)!;
      expect(item, row.join(',')).toBeDefined();
      for (const [i, name] of header.entries()) {
        const value = item[name];
        expect(value === null ? '' : String(value)).toBe(row[i]);
      }
    }
    // The job record says COMPLETED, with the counts of the manifest.
    const described = await runCli(['dataset', 'exports', 'describe', exportId, '--dest', dest, '--json', ...s3Args]);
    expect(described.code, described.stderr).toBe(0);
    const description = (JSON.parse(described.stdout) as { ExportDescription: Record<string, unknown> }).ExportDescription;
    expect(description).toMatchObject({ ExportStatus: 'COMPLETED', ItemCount: exported.items.length, ExportFormat: 'DYNAMODB_JSON', ExportType: 'FULL_EXPORT', ExportManifest: `AWSDynamoDB/${exportId}/manifest-summary.json` });
  });

  it('lists and describes exports from any machine; --client-token makes a retried export idempotent', async () => {
    const out = path.join(await tempFolder('ddb-token'), 'out');
    const args = ['dataset', 'export', 'in.c-main.orders', '--source', DEMO_PROJECT, '--dest', out, '--client-token', 'nightly-1', '--json'];
    const first = await runCli(args);
    expect(first.code, first.stderr).toBe(0);
    const exportId = exportIdOf(first.stdout);
    const again = await runCli(args);
    expect(again.code, again.stderr).toBe(0);
    expect(exportIdOf(again.stdout)).toBe(exportId);
    expect(jsonLines(again.stdout).some((e) => e.type === 'warning' && /already complete/.test(String(e.message)))).toBe(true);
    expect((await walkFiles(out)).filter((f) => f.endsWith('manifest-summary.json'))).toHaveLength(1);

    const other = await runCli(['dataset', 'export', 'in.c-main.customers', '--source', DEMO_PROJECT, '--dest', out, '--client-token', 'nightly-1']);
    expect(other.code).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(other.stderr)[0]).toContain(`--client-token was used for export ${exportId} with other parameters`);

    const second = await runCli(['dataset', 'export', 'in.c-main.customers', '--source', DEMO_PROJECT, '--dest', out, '--json']);
    const secondId = exportIdOf(second.stdout);
    const list = await runCli(['dataset', 'exports', 'list', '--dest', out]);
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n').slice(1);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(secondId);
    expect(lines[1]).toMatch(new RegExp(`^${exportId}\\s+COMPLETED\\s+FULL_EXPORT`));
    const filtered = await runCli(['dataset', 'exports', 'list', '--dest', out, '--table', 'in.c-main.orders', '--json']);
    expect((JSON.parse(filtered.stdout) as { ExportSummaries: unknown[] }).ExportSummaries).toHaveLength(1);
    const plain = await runCli(['dataset', 'exports', 'describe', exportId, '--dest', out]);
    expect(plain.stdout).toMatch(/COMPLETED/);
    expect(plain.stdout).toMatch(/client token nightly-1/);
    const missing = await runCli(['dataset', 'exports', 'describe', '01700000000000-deadbeef', '--dest', out]);
    expect(missing.code).toBe(ERROR_CODES.NOT_FOUND);
    const bad = await runCli(['dataset', 'exports', 'describe', 'nope', '--dest', out]);
    expect(bad.code).toBe(ERROR_CODES.USAGE);
  });

  it('an interrupted export says STOPPED and leaves no manifest-summary.json; the same --client-token completes it', async () => {
    const out = path.join(await tempFolder('ddb-stop'), 'out');
    const args = ['dataset', 'export', 'in.c-main.orders', '--source', DEMO_PROJECT, '--dest', out, '--client-token', 'stop-1', '--max-file-size', '32KB', '--compression-level', '9'];
    const cli = startCli([...args, '--json']);
    await cli.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > 3);
    cli.child.kill('SIGINT');
    const stopped = await cli.done;
    expect(stopped.code, stopped.stderr).toBe(ERROR_CODES.INTERRUPTED);
    expect(stopped.stderr).toContain('--client-token stop-1');
    const files = await walkFiles(out);
    expect(files.some((f) => f.endsWith('manifest-summary.json'))).toBe(false);
    const record = JSON.parse(await readFile(path.join(out, files.find((f) => /^takeout-exports\/\d{14}-[0-9a-f]{8}\.json$/.test(f))!), 'utf8')) as { status: string; exportId: string; failureCode: string };
    expect(record.status).toBe('STOPPED');
    expect(record.failureCode).toBe('INTERRUPTED');
    const unfinished = await runCli(['verify', out]);
    expect(unfinished.code).toBe(ERROR_CODES.PARTIAL);
    expect(unfinished.stderr).toContain(`export ${record.exportId} is STOPPED (INTERRUPTED): not complete, not checked`);

    const resumed = await runCli([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(exportIdOf(resumed.stdout)).toBe(record.exportId);
    expect(jsonLines(resumed.stdout).find((e) => e.type === 'dataset:start')).toMatchObject({ resumed: true });
    const exported = await readExport(localStore(out), record.exportId);
    expect(exported.items).toHaveLength(25_000);
    expect(new Set(exported.items.map((i) => i.order_id)).size).toBe(25_000);
    // Exactly the files the manifest lists are in the export's data folder: none from the interrupted run left over.
    const data = (await walkFiles(out)).filter((f) => f.startsWith(`AWSDynamoDB/${record.exportId}/data/`));
    expect(data.sort()).toEqual(exported.files.map((f) => f.dataFileS3Key).sort());
    // takeout verify re-reads every file of the export against its job record.
    const verified = await runCli(['verify', out]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stderr).toMatch(/verified \d+ files of 1 export, .*: all good/);
    await writeFile(path.join(out, data[0]!), 'garbage');
    const corrupt = await runCli(['verify', out, '--export', record.exportId]);
    expect(corrupt.code).toBe(ERROR_CODES.INTEGRITY);
    expect(corrupt.stderr).toContain(data[0]!);
    const described = await runCli(['dataset', 'exports', 'describe', record.exportId, '--dest', out, '--json']);
    expect((JSON.parse(described.stdout) as { ExportDescription: { Takeout: { attempts: number; status: string } } }).ExportDescription.Takeout).toMatchObject({ attempts: 2, status: 'COMPLETED' });
  }, 60_000);

  it('--export-format ION writes $ion_1_0 lines in .ion.gz files that ion-js reads back, numbers as decimals', async () => {
    const out = path.join(await tempFolder('ddb-ion'), 'out');
    const result = await runCli(['dataset', 'export', 'in.c-main.orders', '--source', DEMO_PROJECT, '--dest', out, '--export-format', 'ION', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const exportId = exportIdOf(result.stdout);
    const store = localStore(out);
    const summary = JSON.parse((await store.get(`AWSDynamoDB/${exportId}/manifest-summary.json`)).toString()) as { outputFormat: string; itemCount: number };
    expect(summary.outputFormat).toBe('ION');
    const files = (await store.get(`AWSDynamoDB/${exportId}/manifest-files.json`)).toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { dataFileS3Key: string; itemCount: number });
    let count = 0;
    for (const file of files) {
      expect(file.dataFileS3Key).toMatch(/\.ion\.gz$/);
      const lines = gunzipSync(await store.get(file.dataFileS3Key)).toString().split('\n').filter(Boolean);
      expect(lines).toHaveLength(file.itemCount);
      for (const line of lines) {
        expect(line.startsWith('$ion_1_0 ')).toBe(true);
        const value = ion.load(line) as unknown as { get(name: string): { get(name: string): { getType(): { name: string } } | null } | null };
        const item = value.get('Item')!;
        expect(item.get('amount')!.getType().name).toBe('decimal');
        expect(item.get('status')!.getType().name).toBe('string');
        count++;
      }
    }
    expect(count).toBe(summary.itemCount);
    expect(count).toBe(25_000);
  });

  it('a bucket that does not exist: exit 5 with the managed exports\' message', async () => {
    const result = await runCli(['dataset', 'export', 'in.c-main.orders', '--source', DEMO_PROJECT, '--dest', 's3://no-such-bucket-takeout/x/', ...s3Args]);
    expect(result.code).toBe(ERROR_CODES.NOT_FOUND);
    expect(errorLines(result.stderr)[0]).toContain('404 The specified S3 bucket does not exist');
  });

  it('access denied while writing data: exit 4 "All access to this object has been disabled", the job record FAILED with the code', async () => {
    const prefix = uniquePrefix('ddb-denied');
    const proxy = await startFaultProxy(endpoint);
    try {
      proxy.rules.push({ match: (req) => req.method === 'PUT' && (req.url ?? '').includes('/data/'), action: { kind: 'status', status: 403, code: 'AccessDenied', message: 'Access Denied' } });
      const args = s3CliArgs(proxy.url);
      const result = await runCli(['dataset', 'export', 'in.c-main.orders', '--source', DEMO_PROJECT, '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...args]);
      expect(result.code).toBe(ERROR_CODES.AUTH);
      expect(errorLines(result.stderr)[0]).toContain('403 All access to this object has been disabled');
    } finally {
      await proxy.stop();
    }
    const store = s3Store(client, TEST_BUCKET, prefix);
    const keys = await store.list();
    expect(keys.some((k) => k.endsWith('manifest-summary.json'))).toBe(false);
    const recordKey = keys.find((k) => /^takeout-exports\/\d{14}-[0-9a-f]{8}\.json$/.test(k))!;
    const record = JSON.parse((await store.get(recordKey)).toString()) as { status: string; failureCode: string; failureMessage: string };
    expect(record).toMatchObject({ status: 'FAILED', failureCode: 'AUTH' });
    expect(record.failureMessage).toContain('403 All access to this object has been disabled');
  });

  it('refused credentials: exit 4 with "Invalid AWS credentials"', async () => {
    const args = s3Args.map((a) => (a === S3RVER_SECRET_ACCESS_KEY ? 'wrong-secret' : a));
    const result = await runCli(['dataset', 'export', 'in.c-main.orders', '--source', DEMO_PROJECT, '--dest', `s3://${TEST_BUCKET}/${uniquePrefix('ddb-auth')}`, ...args]);
    expect(result.code).toBe(ERROR_CODES.AUTH);
    expect(errorLines(result.stderr)[0]).toContain('403 Invalid AWS credentials');
    expect(result.stderr).not.toContain('wrong-secret');
  });
});

describe('dataset export --export-type INCREMENTAL_EXPORT from PostgreSQL', () => {
  const schema = `ddb_inc_${process.pid}`;
  let db: pg.Client;

  beforeAll(async () => {
    db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
    await db.query(`CREATE SCHEMA ${schema}`);
    await db.query(`CREATE TABLE ${schema}.items (id integer PRIMARY KEY, name text, price numeric(10,2), active boolean, tags jsonb, updated_at timestamptz NOT NULL, deleted_at timestamptz)`);
  });

  afterAll(async () => {
    await db.query(`DROP SCHEMA ${schema} CASCADE`);
    await db.end();
  });

  /** One change batch, stamped with the database clock so the export windows see it once. */
  async function change(sql: string): Promise<void> {
    await db.query(sql);
    // The next window starts at the export's start time: let the clock move past this change's stamp.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  it('three --recurring runs over a changing table hold exactly the changes: no gaps, no duplicates', async () => {
    const out = path.join(await tempFolder('ddb-inc'), 'out');
    const args = ['dataset', 'export', `${schema}.items`, '--source', pgUrl, '--dest', out, '--export-type', 'INCREMENTAL_EXPORT', '--changed-column', 'updated_at', '--deleted-column', 'deleted_at', '--recurring', '--json'];
    await change(`INSERT INTO ${schema}.items SELECT i, 'item ' || i, i * 1.5, i % 2 = 0, jsonb_build_object('n', i, 'list', jsonb_build_array(i, 'x')), clock_timestamp(), NULL FROM generate_series(1, 500) i`);
    const first = await runCli(args);
    expect(first.code, first.stderr).toBe(0);
    await change(`UPDATE ${schema}.items SET name = 'renamed ' || id, updated_at = clock_timestamp() WHERE id <= 50`);
    await change(`INSERT INTO ${schema}.items SELECT i, 'item ' || i, i, true, NULL, clock_timestamp(), NULL FROM generate_series(501, 520) i`);
    const second = await runCli(args);
    expect(second.code, second.stderr).toBe(0);
    await change(`UPDATE ${schema}.items SET deleted_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id BETWEEN 100 AND 109`);
    const third = await runCli(args);
    expect(third.code, third.stderr).toBe(0);

    const ids = [first, second, third].map((r) => exportIdOf(r.stdout));
    const exports = await Promise.all(ids.map((id) => readExport(localStore(out), id)));
    // Windows chain: each starts where the last ended.
    expect(exports[1]!.summary.exportFromTime).toBe(exports[0]!.summary.exportToTime);
    expect(exports[2]!.summary.exportFromTime).toBe(exports[1]!.summary.exportToTime);
    for (const e of exports) expect(e.summary).toMatchObject({ version: '2023-08-01', exportType: 'INCREMENTAL_EXPORT', outputView: 'NEW_AND_OLD_IMAGES' });
    // Incremental data lives in the shared AWSDynamoDB/data/ folder.
    for (const e of exports) for (const f of e.files) expect(f.dataFileS3Key).toMatch(/^AWSDynamoDB\/data\/[a-z2-7]{26}\.json\.gz$/);

    const keysOf = (e: Export): number[] => e.records.map((r) => Number(unmarshall(r.Keys!).id)).sort((a, b) => a - b);
    expect(keysOf(exports[0]!)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(keysOf(exports[1]!)).toEqual([...Array.from({ length: 50 }, (_, i) => i + 1), ...Array.from({ length: 20 }, (_, i) => i + 501)]);
    expect(keysOf(exports[2]!)).toEqual(Array.from({ length: 10 }, (_, i) => i + 100));

    const first1 = exports[0]!.records.find((r) => unmarshall(r.Keys!).id === 2)!;
    expect(unmarshall(first1.NewImage!)).toMatchObject({ id: 2, name: 'item 2', price: 3, active: true, tags: { n: 2, list: [2, 'x'] } });
    expect(first1.NewImage!.price).toEqual({ N: '3.00' });
    expect(first1.Metadata).toMatchObject({ WriteTimestampMicros: { N: expect.stringMatching(/^\d{16}$/) } });
    const renamed = exports[1]!.records.find((r) => unmarshall(r.Keys!).id === 7)!;
    expect(unmarshall(renamed.NewImage!).name).toBe('renamed 7');
    const deleted = exports[2]!.records.find((r) => unmarshall(r.Keys!).id === 100)!;
    expect(deleted.NewImage).toBeUndefined();
    expect(unmarshall(deleted.OldImage!)).toMatchObject({ id: 100, name: 'item 100' });
    expect(deleted.OldImage).not.toHaveProperty('deleted_at');
  }, 60_000);

  it('needs --changed-column, and a window that is not empty', async () => {
    const out = path.join(await tempFolder('ddb-inc-usage'), 'out');
    const none = await runCli(['dataset', 'export', `${schema}.items`, '--source', pgUrl, '--dest', out, '--export-type', 'INCREMENTAL_EXPORT', '--export-from-time', '2020-01-01T00:00:00Z']);
    expect(none.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(none.stderr)[0]).toContain('--changed-column');
    const empty = await runCli(['dataset', 'export', `${schema}.items`, '--source', pgUrl, '--dest', out, '--export-type', 'INCREMENTAL_EXPORT', '--changed-column', 'updated_at', '--export-from-time', '2020-01-02T00:00:00Z', '--export-to-time', '2020-01-01T00:00:00Z']);
    expect(empty.code).toBe(ERROR_CODES.USAGE);
  });
});
