import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse as parseCsvStrict } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  DEMO_PROJECT,
  DEMO_TABLES,
  everyValueQuoted,
  headerLine,
  parseCsv,
  readTakeout,
  removeTempFolders,
  runCli,
  s3Store,
  sha256,
  sourceRecords,
  tempFolder,
  type CliResult,
  type Takeout,
} from './helpers/cli.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * `takeout run` of the demo project, read back byte for byte: every table's header (from tables.json)
 * plus its gunzipped parts parses to exactly the records of its source file, and every manifest and
 * layout file says what is really there. Once into a local folder, once into S3 (s3rver).
 */

const endpoint = inject('s3Endpoint');
const SMALL_SLICE = '64KB';
const SMALL_SLICE_BYTES = 64 * 1024;

afterAll(removeTempFolders);

function expectOk(result: CliResult): void {
  expect(result.code, `exit ${result.code}\nstderr: ${result.stderr}`).toBe(0);
}

interface DemoSource {
  records: Map<string, string[][]>;
  yaml: {
    buckets: Record<string, { description?: string; metadata?: unknown[] }>;
    tables: Record<string, { primaryKey?: string[]; description?: string; columnMetadata?: Record<string, unknown[]> }>;
    components: { id: string; type: string; name: string; configurations: Record<string, unknown>[] }[];
  };
}

async function loadDemo(): Promise<DemoSource> {
  const records = new Map<string, string[][]>();
  for (const [id, file] of Object.entries(DEMO_TABLES)) records.set(id, await sourceRecords(path.join(DEMO_PROJECT, file)));
  const yaml = parseYaml(await readFile(path.join(DEMO_PROJECT, 'project.yaml'), 'utf8')) as DemoSource['yaml'];
  return { records, yaml };
}

/** Header from tables.json + the parts in order, parsed, equals the source's records; returns the data. */
async function expectRoundTrip(takeout: Takeout, demo: DemoSource): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  expect(takeout.manifest.tables.map((t) => t.id).sort()).toEqual(Object.keys(DEMO_TABLES).sort());
  for (const id of Object.keys(DEMO_TABLES)) {
    const table = takeout.tables.find((t) => t.id === id);
    expect(table, `${id} in tables.json`).toBeDefined();
    const data = await takeout.tableData(id);
    out.set(id, data);
    const merged = Buffer.concat([Buffer.from(headerLine(table!.columns)), data]);
    const expected = demo.records.get(id)!;
    const actual = parseCsv(merged);
    expect(actual.length, `${id}: record count`).toBe(expected.length);
    expect(actual, `${id}: records`).toEqual(expected);
  }
  return out;
}

/** Slices, takeout-manifest.json, per-table manifests and the files list all agree with the bytes stored. */
async function expectManifestsMatch(takeout: Takeout, demo: DemoSource): Promise<void> {
  const { manifest, store, keys } = takeout;
  expect(manifest.status).toBe('complete');
  expect(manifest.kind).toBe('takeout');
  expect(manifest.totals.tablesFailed).toBe(0);
  let totalRows = 0;
  let totalSlices = 0;
  for (const table of manifest.tables) {
    const sourceRows = demo.records.get(table.id)!.length - 1;
    expect(table.status, table.id).toBe('complete');
    // Parts are named <stage>/<bucket>/<table>.part_<N>.csv.gz, N = 0..k-1, and nothing else of the table exists.
    const base = table.id.split('.').slice(0, 2).join('/') + '/' + table.id.split('.')[2];
    expect(table.slices.map((s) => s.key)).toEqual(table.slices.map((_s, n) => `${base}.part_${n}.csv.gz`));
    const present = keys.filter((k) => k.startsWith(`${base}.`));
    expect(present.sort(), `${table.id}: parts present`).toEqual(table.slices.map((s) => s.key).sort());

    let rows = 0;
    let bytes = 0;
    for (const slice of table.slices) {
      const body = await store.get(slice.key);
      expect(body.length, slice.key).toBe(slice.bytes);
      expect(sha256(body), slice.key).toBe(slice.sha256);
      const raw = gunzipSync(body);
      expect(raw.length, slice.key).toBe(slice.rawBytes);
      // Each part is its own CSV (no header), cut at a record boundary.
      expect(parseCsv(raw).length, slice.key).toBe(slice.rows);
      rows += slice.rows;
      bytes += slice.bytes;
    }
    expect(rows, `${table.id}: slice rows`).toBe(table.rows);
    expect(rows, `${table.id}: source records`).toBe(sourceRows);
    expect(bytes).toBe(table.bytes);
    expect(takeout.tables.find((t) => t.id === table.id)!.rowsCount, `${table.id}: tables.json rowsCount`).toBe(sourceRows);
    totalRows += rows;
    totalSlices += table.slices.length;

    // manifests/<id>.manifest lists the parts in order, with their sizes and record counts.
    expect(table.manifest).toBe(`manifests/${table.id}.manifest`);
    const sliceManifest = await takeout.sliceManifest(table.id);
    expect(sliceManifest.entries).toEqual(
      table.slices.map((s) => ({
        url: `${store.urlPrefix}${s.key}`,
        mandatory: true,
        meta: { content_length: s.bytes, record_count: s.rows },
      })),
    );
    expect(sliceManifest.meta).toEqual({ content_length: table.bytes, record_count: table.rows });
    expect(sliceManifest.schema?.elements.map((e) => e.name)).toEqual(table.columns);
  }
  expect(manifest.totals.rows).toBe(totalRows);
  expect(manifest.totals.slices).toBe(totalSlices);
  expect(totalRows).toBe(25_515);

  // The layout files the manifest lists are there, byte for byte.
  for (const file of manifest.files) {
    const body = await store.get(file.key);
    expect(body.length, file.key).toBe(file.bytes);
    expect(sha256(body), file.key).toBe(file.sha256);
  }
  // And nothing is there that no manifest accounts for.
  const accounted = new Set(['takeout-manifest.json', ...manifest.files.map((f) => f.key), ...manifest.tables.flatMap((t) => t.slices.map((s) => s.key))]);
  expect(keys.filter((k) => !accounted.has(k))).toEqual([]);
  expect([...accounted].filter((k) => !keys.includes(k))).toEqual([]);
}

const BUCKET_FIELDS = [
  'uri', 'id', 'name', 'displayName', 'stage', 'description', 'tables', 'created', 'lastChangeDate', 'updated', 'isReadOnly',
  'dataSizeBytes', 'rowsCount', 'isMaintenance', 'backend', 'sharing', 'hasExternalSchema', 'path', 'owner', 'color',
  'isLinkedBucket', 'linkedBy', 'metadata',
];
const TABLE_FIELDS = [
  'uri', 'id', 'name', 'displayName', 'transactional', 'primaryKey', 'created', 'lastImportDate', 'lastChangeDate', 'rowsCount',
  'dataSizeBytes', 'isAlias', 'isAliasable', 'isTyped', 'tableType', 'path', 'columns', 'bucket', 'metadata', 'columnMetadata',
];
const CONFIG_SUMMARY_FIELDS = ['id', 'name', 'description', 'created', 'creatorToken', 'version', 'changeDescription', 'isDeleted', 'configuration', 'currentVersion'];

/** buckets.json, tables.json, configurations.json and configurations/<c>/<id>.json as keboola-takeout.md §1.3 describes them. */
async function expectLayoutFiles(takeout: Takeout, demo: DemoSource): Promise<void> {
  // buckets.json: GET buckets?include=metadata.
  expect(takeout.buckets.map((b) => b.id).sort()).toEqual(['in.c-crm', 'in.c-main', 'out.c-reports', 'sys.c-keboola']);
  for (const bucket of takeout.buckets) {
    for (const field of BUCKET_FIELDS) expect(bucket, `buckets.json ${String(bucket.id)}.${field}`).toHaveProperty(field);
    const id = bucket.id as string;
    expect(bucket.stage).toBe(id.split('.')[0]);
    expect(bucket.name).toBe(id.split('.')[1]);
    expect(Array.isArray(bucket.metadata)).toBe(true);
    expect(Array.isArray(bucket.linkedBy)).toBe(true);
    expect(bucket.description).toBe(demo.yaml.buckets[id]?.description ?? '');
    const rows = takeout.manifest.tables.filter((t) => t.id.startsWith(`${id}.`)).reduce((n, t) => n + t.rows, 0);
    expect(bucket.rowsCount, `${id} rowsCount`).toBe(rows);
  }
  const main = takeout.buckets.find((b) => b.id === 'in.c-main')!;
  expect(main.metadata).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'KBC.createdBy.component.id', value: 'keboola.ex-db-mysql' })]));

  // tables.json: GET tables?include=columns,buckets,metadata,columnMetadata.
  for (const table of takeout.tables) {
    for (const field of TABLE_FIELDS) expect(table, `tables.json ${table.id}.${field}`).toHaveProperty(field);
    const source = demo.records.get(table.id)!;
    expect(table.columns, `${table.id} columns`).toEqual(source[0]);
    expect(table.primaryKey).toEqual(demo.yaml.tables[table.id]?.primaryKey ?? []);
    expect(table.bucket.id).toBe(table.id.split('.').slice(0, 2).join('.'));
    expect(table.name).toBe(table.id.split('.')[2]);
    const columnMetadata = demo.yaml.tables[table.id]?.columnMetadata;
    // An empty columnMetadata comes back as [] from the API.
    if (columnMetadata) expect(Object.keys(table.columnMetadata as object).sort()).toEqual(Object.keys(columnMetadata).sort());
    else expect(table.columnMetadata).toEqual([]);
  }
  const customers = takeout.tables.find((t) => t.id === 'in.c-main.customers')!;
  expect(customers.metadata).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'KBC.description', value: 'Customers from the shop database' })]));

  // configurations.json: GET components?include=configuration — components with configurations, no rows, no state.
  expect(takeout.configurations.map((c) => c.id)).toEqual(demo.yaml.components.map((c) => c.id));
  let count = 0;
  for (const component of takeout.configurations) {
    expect(component).toMatchObject({ id: expect.any(String), type: expect.any(String), name: expect.any(String) });
    const configs = component.configurations as Record<string, unknown>[];
    expect(Array.isArray(configs)).toBe(true);
    for (const config of configs) {
      count++;
      for (const field of CONFIG_SUMMARY_FIELDS) expect(config, `configurations.json ${String(component.id)}/${String(config.id)}.${field}`).toHaveProperty(field);
      expect(config).not.toHaveProperty('rows');
      expect(config).not.toHaveProperty('state');
      expect(config).not.toHaveProperty('_versions');
      expect(config.creatorToken).toMatchObject({ id: expect.any(Number), description: expect.any(String) });
      expect(config.currentVersion).toMatchObject({ creatorToken: expect.any(Object), changeDescription: expect.any(String) });

      // configurations/<componentId>/<configId>.json: the configuration with rows, state and versions.
      const key = `configurations/${String(component.id)}/${String(config.id)}.json`;
      expect(takeout.keys, key).toContain(key);
      const file = await takeout.json<Record<string, unknown>>(key);
      expect(file.id).toBe(config.id);
      expect(file.configuration).toEqual(config.configuration);
      expect(Array.isArray(file.rows)).toBe(true);
      expect(typeof file.state).toBe('object');
      expect(Array.isArray(file._versions)).toBe(true);
      for (const row of file.rows as Record<string, unknown>[]) {
        expect(row).toHaveProperty('id');
        expect(row).toHaveProperty('configuration');
        expect(row).toHaveProperty('state');
        expect(Array.isArray(row._versions), `${key} row ${String(row.id)} _versions`).toBe(true);
      }
      const yamlConfig = demo.yaml.components.find((c) => c.id === component.id)!.configurations.find((c) => String(c.id) === config.id)!;
      expect((file.rows as unknown[]).length).toBe(((yamlConfig.rows as unknown[] | undefined) ?? []).length);
      expect((file._versions as unknown[]).length).toBe(((yamlConfig.versions as unknown[] | undefined) ?? []).length);
      expect(file.state).toEqual(yamlConfig.state ?? {});
    }
  }
  expect(count).toBe(5);
  const configKeys = takeout.keys.filter((k) => k.startsWith('configurations/'));
  expect(configKeys).toHaveLength(5);

  // Encrypted values are copied unchanged (they are ciphertext, not secrets takeout may redact).
  const mysql = await takeout.json<{ configuration: { parameters: { db: Record<string, string> } }; rows: { _versions: unknown[] }[]; _versions: { configuration: { parameters: { db: Record<string, string> } } }[] }>(
    'configurations/keboola.ex-db-mysql/9876001.json',
  );
  const yamlMysql = demo.yaml.components[0]!.configurations[0] as { configuration: { parameters: { db: Record<string, string> } } };
  const password = yamlMysql.configuration.parameters.db['#password']!;
  expect(password).toMatch(/^KBC::ProjectSecure::/);
  expect(mysql.configuration.parameters.db['#password']).toBe(password);
  expect(mysql._versions[0]!.configuration.parameters.db['#password']).toBe(password);
  expect(mysql.rows).toHaveLength(2);
  expect(mysql.rows[0]!._versions).toHaveLength(2);
  const drive = await takeout.json<{ configuration: { parameters: Record<string, unknown> } }>('configurations/keboola.wr-google-drive/9876301.json');
  expect(drive.configuration.parameters['#token']).toMatch(/^KBC::ProjectSecure::eJxLSc3N/);
}

describe('takeout run → local folder', () => {
  let demo: DemoSource;
  let small: Takeout;
  let small2: Takeout;
  let byDefault: Takeout;
  let quoted: Takeout;

  beforeAll(async () => {
    demo = await loadDemo();
    const root = await tempFolder('roundtrip');
    const run = async (name: string, args: string[]): Promise<Takeout> => {
      const dest = path.join(root, name);
      expectOk(await runCli(['run', '--source', 'demo', '--dest', dest, ...args]));
      return readTakeout(dest);
    };
    [small, small2, byDefault, quoted] = await Promise.all([
      run('small', ['--slice-size', SMALL_SLICE]),
      run('small2', ['--slice-size', SMALL_SLICE]),
      run('default', []),
      run('quoted', ['--quote-all', '--slice-size', SMALL_SLICE]),
    ]);
  });

  it(`round-trips every table exactly with --slice-size ${SMALL_SLICE}, orders in several slices`, async () => {
    await expectRoundTrip(small, demo);
    const orders = small.manifest.tables.find((t) => t.id === 'in.c-main.orders')!;
    expect(orders.slices.length).toBeGreaterThanOrEqual(4);
    for (const slice of small.manifest.tables.flatMap((t) => t.slices)) expect(slice.bytes).toBeLessThanOrEqual(SMALL_SLICE_BYTES);
    expect(small.manifest.options.sliceSize).toBe(SMALL_SLICE_BYTES);
  });

  it('round-trips every table exactly with the default slice size (one slice each)', async () => {
    await expectRoundTrip(byDefault, demo);
    for (const table of byDefault.manifest.tables) expect(table.slices.length, table.id).toBe(table.rows === 0 ? 0 : 1);
  });

  it('an empty table has no parts and an empty slice manifest', async () => {
    for (const takeout of [small, byDefault]) {
      const empty = takeout.manifest.tables.find((t) => t.id === 'in.c-crm.empty_table')!;
      expect(empty).toMatchObject({ status: 'complete', rows: 0, slices: [] });
      expect(takeout.keys.filter((k) => k.startsWith('in/c-crm/empty_table'))).toEqual([]);
      expect((await takeout.sliceManifest('in.c-crm.empty_table')).entries).toEqual([]);
    }
  });

  it('every slice, manifest and layout file matches takeout-manifest.json (sizes, sha256, rows)', async () => {
    await expectManifestsMatch(small, demo);
    await expectManifestsMatch(byDefault, demo);
  });

  it('writes buckets.json, tables.json, configurations.json and configuration files in the Keboola shapes', async () => {
    await expectLayoutFiles(small, demo);
  });

  // keboola-takeout.md §1.3 lists these Storage API fields too.
  it('carries the remaining Storage API fields (buckets backendPath, tables timestampType, currentVersion.versionIdentifier)', () => {
    for (const bucket of small.buckets) expect(bucket).toHaveProperty('backendPath');
    for (const table of small.tables) expect(table).toHaveProperty('timestampType');
    const config = (small.configurations[0]!.configurations as Record<string, { versionIdentifier?: string }>[])[0]!;
    expect(config.currentVersion).toHaveProperty('versionIdentifier');
  });

  it('slices deterministically: two runs give identical parts, sizes and sha256', async () => {
    const strip = (t: Takeout): unknown => t.manifest.tables.map((table) => ({ id: table.id, slices: table.slices }));
    expect(strip(small2)).toEqual(strip(small));
    for (const table of small.manifest.tables) {
      for (const slice of table.slices) expect((await small2.store.get(slice.key)).equals(await small.store.get(slice.key)), slice.key).toBe(true);
    }
  });

  it('--quote-all output round-trips and has every value quoted, LF row ends', async () => {
    expect(quoted.manifest.status).toBe('complete');
    const data = await expectRoundTrip(quoted, demo);
    await expectManifestsMatch(quoted, demo);
    for (const [id, body] of data) {
      expect(everyValueQuoted(body), id).toBe(true);
      // Re-encoded rows all end in LF, so even csv-parse's one-delimiter auto-detection reads the merged file.
      const table = quoted.tables.find((t) => t.id === id)!;
      const strict = parseCsvStrict(Buffer.concat([Buffer.from(headerLine(table.columns)), body]), { bom: true }) as string[][];
      expect(strict).toEqual(demo.records.get(id));
    }
    expect(quoted.manifest.options.quoteAll).toBe(true);
  });
});

describe('takeout run → S3 (s3rver)', () => {
  let demo: DemoSource;
  let takeout: Takeout;
  let local: Takeout;
  const prefix = uniquePrefix('roundtrip');
  const client = rawS3Client(endpoint);

  beforeAll(async () => {
    demo = await loadDemo();
    const root = await tempFolder('roundtrip-s3');
    const s3Args = s3CliArgs(endpoint);
    const [remote, nearby] = await Promise.all([
      runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--slice-size', SMALL_SLICE, ...s3Args]),
      runCli(['run', '--source', 'demo', '--dest', path.join(root, 'local'), '--slice-size', SMALL_SLICE]),
    ]);
    expectOk(remote);
    expectOk(nearby);
    expect(remote.stderr).toContain(`manifest: s3://${TEST_BUCKET}/${prefix}takeout-manifest.json`);
    takeout = await readTakeout(s3Store(client, TEST_BUCKET, prefix));
    local = await readTakeout(path.join(root, 'local'));
  });

  afterAll(() => client.destroy());

  it('round-trips every table exactly, orders in several slices', async () => {
    await expectRoundTrip(takeout, demo);
    expect(takeout.manifest.tables.find((t) => t.id === 'in.c-main.orders')!.slices.length).toBeGreaterThanOrEqual(4);
  });

  it('every object matches the manifests, whose urls are s3:// urls', async () => {
    await expectManifestsMatch(takeout, demo);
    const orders = await takeout.sliceManifest('in.c-main.orders');
    expect(orders.entries[0]!.url).toBe(`s3://${TEST_BUCKET}/${prefix}in/c-main/orders.part_0.csv.gz`);
    expect(takeout.manifest.destination).toContain(`s3://${TEST_BUCKET}/${prefix}`);
  });

  it('writes the Keboola layout files', async () => {
    await expectLayoutFiles(takeout, demo);
  });

  it('stores the same part bytes as a local run with the same settings', () => {
    const strip = (t: Takeout): unknown => t.manifest.tables.map((table) => ({ id: table.id, slices: table.slices }));
    expect(strip(takeout)).toEqual(strip(local));
  });
});
