import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { errorLines, parseCsv, readTakeout, removeTempFolders, runCli, tempFolder } from './helpers/cli.js';
import { OTHER_BUCKET } from './helpers/s3.js';
import { startStorageApi, type StorageApiServer } from './keboola/server.js';

/**
 * Tables that `takeout run` leaves out of a Keboola takeout (aliases, tables of linked and of
 * external-schema buckets, as Keboola's own takeout does) are still tables the Storage API exports:
 * `takeout table export` takes them, and says that run would not.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url));
const TOKEN = 'kbc-test-token-skipped-SECRET';
const s3Endpoint = inject('s3Endpoint');

type Json = Record<string, unknown>;

/** The fixture project plus a filtered alias in this project and an external-schema bucket with one table. */
async function extendedFixture(): Promise<string> {
  const dir = path.join(await tempFolder('kbc-skipped'), 'project');
  await cp(FIXTURE, dir, { recursive: true });
  const buckets = JSON.parse(await readFile(path.join(dir, 'buckets.json'), 'utf8')) as Json[];
  const tables = JSON.parse(await readFile(path.join(dir, 'tables.json'), 'utf8')) as Json[];
  const main = buckets.find((b) => b.id === 'in.c-main')!;
  const customers = tables.find((t) => t.id === 'in.c-main.customers')!;
  const plainBucket = (fields: Json): Json => ({ ...main, linkedBy: [], metadata: [], sharing: null, ...fields });
  const reports = plainBucket({ id: 'out.c-reports', name: 'c-reports', displayName: 'reports', stage: 'out', path: 'out.c-reports' });
  // A registered external bucket: its id has no c- (stage + name), hasExternalSchema true
  // (storage-api-php-client tests/Backend/ExternalBuckets/SnowflakeRegisterBucketTest.php).
  const lake = plainBucket({ id: 'in.lake', name: 'lake', displayName: 'lake', stage: 'in', path: 'in.lake', hasExternalSchema: true, databaseName: 'LAKE' });
  buckets.push(reports, lake);
  tables.push(
    {
      ...customers,
      uri: 'https://connection.keboola.com/v2/storage/tables/out.c-reports.praha',
      id: 'out.c-reports.praha',
      name: 'praha',
      displayName: 'praha',
      isAlias: true,
      bucket: reports,
      sourceTable: { id: 'in.c-main.customers', uri: String(customers.uri), isAlias: false, project: { id: 4321, name: 'Test Project' } },
      aliasColumnsAutoSync: true,
      aliasFilter: { column: 'city', values: ['Praha'], operator: 'eq' },
      rowsCount: null,
      dataSizeBytes: null,
    },
    {
      ...customers,
      uri: 'https://connection.keboola.com/v2/storage/tables/in.lake.EVENTS',
      id: 'in.lake.EVENTS',
      name: 'EVENTS',
      displayName: 'EVENTS',
      primaryKey: [],
      columns: ['ID', 'KIND'],
      columnMetadata: [],
      metadata: [],
      bucket: lake,
    },
  );
  await writeFile(path.join(dir, 'buckets.json'), JSON.stringify(buckets));
  await writeFile(path.join(dir, 'tables.json'), JSON.stringify(tables));
  await writeFile(path.join(dir, 'data', 'in.lake.EVENTS.csv'), 'ID,KIND\n1,click\n2,view\n');
  return dir;
}

function kbc(api: StorageApiServer, args: string[]): ReturnType<typeof runCli> {
  return runCli([...args, '--source', `keboola+${api.url}`, '--no-progress'], { env: { KBC_STORAGE_TOKEN: TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint } });
}

let api: StorageApiServer;
let fixture: string;
let customers: string[][];

beforeAll(async () => {
  fixture = await extendedFixture();
  api = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, token: TOKEN, fixtureDir: fixture, jobPolls: { waiting: 0, processing: 1 } });
  customers = parseCsv(await readFile(path.join(FIXTURE, 'data', 'in.c-main.customers.csv')));
});
afterAll(async () => {
  await api.stop();
  await removeTempFolders();
});

describe('tables that takeout run leaves out', () => {
  it('run leaves out aliases and the tables of linked and external-schema buckets, each with its reason', async () => {
    const dest = path.join(await tempFolder('kbc-skipped-run'), 'out');
    const result = await kbc(api, ['run', '--dest', dest]);
    expect(result.code, result.stderr).toBe(0);
    const { manifest } = await readTakeout(dest);
    expect(manifest.project.skipped).toEqual(
      expect.arrayContaining([
        { id: 'out.c-shared', reason: 'linked bucket' },
        { id: 'out.c-shared.customers', reason: 'in out.c-shared (linked bucket)' },
        { id: 'in.lake', reason: 'external schema' },
        { id: 'in.lake.EVENTS', reason: 'in in.lake (external schema)' },
        { id: 'out.c-reports.praha', reason: 'alias of in.c-main.customers' },
      ]),
    );
    expect(manifest.tables.map((t) => t.id)).not.toContain('out.c-reports.praha');
  });

  it('table export takes a table of a linked bucket, with a warning that run leaves it out', async () => {
    const result = await kbc(api, ['table', 'export', 'out.c-shared.customers', '-o', '-']);
    expect(result.code, result.stderr).toBe(0);
    expect(parseCsv(result.stdout)).toEqual(customers);
    expect(result.stderr).toMatch(/^takeout: warning: takeout run leaves out\.c-shared\.customers out: in out\.c-shared \(linked bucket\); exported here/m);
  });

  it('table export takes a filtered alias as the API serves it: the source rows that pass its filter', async () => {
    const dest = path.join(await tempFolder('kbc-skipped-alias'), 'out');
    const result = await kbc(api, ['table', 'export', 'out.c-reports.praha', '--dest', dest]);
    expect(result.code, result.stderr).toBe(0);
    const takeout = await readTakeout(dest);
    expect(takeout.manifest.tables.map((t) => t.id)).toEqual(['out.c-reports.praha']);
    expect(takeout.manifest.project.skipped?.map((s) => s.id)).not.toContain('out.c-reports.praha');
    const rows = parseCsv(await takeout.tableData('out.c-reports.praha'));
    expect(rows).toEqual(customers.slice(1).filter((row) => row[3] === 'Praha'));
    expect(rows.length).toBeGreaterThan(0);
  });

  it('table export takes a table of an external-schema bucket, its bucket in buckets.json', async () => {
    const result = await kbc(api, ['table', 'export', 'in.lake.EVENTS', '-o', '-']);
    expect(result.code, result.stderr).toBe(0);
    expect(parseCsv(result.stdout)).toEqual([['ID', 'KIND'], ['1', 'click'], ['2', 'view']]);
    const dest = path.join(await tempFolder('kbc-skipped-lake'), 'out');
    const sliced = await kbc(api, ['table', 'export', 'in.lake.EVENTS', '--dest', dest]);
    expect(sliced.code, sliced.stderr).toBe(0);
    const takeout = await readTakeout(dest);
    expect(takeout.buckets.map((b) => b.id)).toEqual(['in.lake']);
    expect(takeout.buckets[0]).toMatchObject({ hasExternalSchema: true });
    expect(takeout.tables.map((t) => t.id)).toEqual(['in.lake.EVENTS']);
    expect(parseCsv(await takeout.tableData('in.lake.EVENTS'))).toEqual([['1', 'click'], ['2', 'view']]);
  });

  it('table export of a skipped bucket id says why it is left out, exit 5', async () => {
    const result = await kbc(api, ['table', 'export', 'out.c-shared', '-o', '-']);
    expect(result.code, result.stderr).toBe(5);
    expect(errorLines(result.stderr)).toEqual([expect.stringContaining('out.c-shared is left out by the source (linked bucket): it is not a table that can be exported')]);
  });
});
