import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { errorLines, jsonLines, localStore, removeTempFolders, runCli, s3Store, snapshot, tempFolder, walkFiles, type Store, exportIdOf } from './helpers/cli.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * The plain layout, read back by independent readers: csv-parse for CSV, JSON.parse per line for JSON lines,
 * DuckDB (C++, not the writer's sibling) for Parquet, MD5/SHA-256 of every file against both manifests.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const s3Args = s3CliArgs(endpoint);

let db: DuckDBInstance;
let duck: DuckDBConnection;

afterAll(async () => {
  duck?.closeSync();
  client.destroy();
  await removeTempFolders();
});

type Cell = string | null;
const COLUMNS = ['id', 'country', 'amount', 'ok', 'note'];
const COUNTRIES: Cell[] = ['CZ', 'DE', null, '../x', 'a/b', 'CZ', '', 'x.', 'DE'];
const ROWS: Cell[][] = Array.from({ length: 45 }, (_, i) => [
  String(i + 1),
  COUNTRIES[i % COUNTRIES.length]!,
  i % 5 === 0 ? null : (i * 1.25).toFixed(2),
  i % 2 ? 'true' : 'false',
  i % 4 === 0 ? `say "hi", ${i}\nbye` : `note ${i}`,
]);

function toCsv(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const cell = (c: Cell): string => (c === null ? '' : `"${c.replaceAll('"', '""')}"`);
  return [columns.join(','), ...rows.map((r) => r.map(cell).join(','))].join('\n') + '\n';
}

let project: string;

beforeAll(async () => {
  db = await DuckDBInstance.create(':memory:');
  duck = await db.connect();
  project = await tempFolder('plain-project');
  await mkdir(path.join(project, 'shop'));
  await writeFile(path.join(project, 'shop', 'events.csv'), toCsv(COLUMNS, ROWS));
  const big: Cell[][] = [];
  for (let i = 0; i < 4000; i++) big.push([String(i), createHash('md5').update(String(i)).digest('hex'), String(i % 10)]);
  await writeFile(path.join(project, 'shop', 'big.csv'), toCsv(['id', 'hash', 'bucket'], big));
  // Row 150 alone is larger than 16 KB (random hex does not compress below it).
  const wide: Cell[][] = Array.from({ length: 300 }, (_, i) => [String(i), i === 150 ? randomBytes(20_000).toString('hex') : `note ${i}`]);
  await writeFile(path.join(project, 'shop', 'wide.csv'), toCsv(['id', 'note'], wide));
  await writeFile(
    path.join(project, 'project.yaml'),
    [
      'tables:',
      '  in.c-shop.events:',
      '    columnMetadata:',
      '      id: [{key: KBC.datatype.basetype, value: INTEGER}]',
      '      amount: [{key: KBC.datatype.basetype, value: NUMERIC}]',
      '      ok: [{key: KBC.datatype.basetype, value: BOOLEAN}]',
      '',
    ].join('\n'),
  );
});


interface ManifestFile {
  key: string;
  partition?: string;
  rows: number;
  bytes: number;
  sha256: string;
  md5: string;
}
interface Manifests {
  manifest: { exportId: string; format: string; compression: string; columns: { name: string; kind: string }[]; files: ManifestFile[]; totals: { rows: number } };
  redshift: { entries: { url: string; mandatory: boolean; meta: { content_length: number; record_count: number } }[]; schema: { elements: { name: string; type: { base: string } }[] }; meta: { record_count: number } };
  /** Each listed file's bytes, as stored, checked against both manifests. */
  bodies: Map<string, Buffer>;
}

/** Both manifests of an export in `folder`, every listed file checked against them; exactly those files in the folder. */
async function readManifests(store: Store, folder: string): Promise<Manifests> {
  const manifest = JSON.parse((await store.get(`${folder}_manifest.json`)).toString()) as Manifests['manifest'];
  const redshift = JSON.parse((await store.get(`${folder}manifest`)).toString()) as Manifests['redshift'];
  const keys = (await store.list()).filter((k) => k.startsWith(folder) && k !== `${folder}_manifest.json` && k !== `${folder}manifest`);
  expect(keys.sort()).toEqual(manifest.files.map((f) => f.key).sort());
  expect(redshift.entries).toHaveLength(manifest.files.length);
  const bodies = new Map<string, Buffer>();
  for (const [i, file] of manifest.files.entries()) {
    const body = await store.get(file.key);
    expect(body.length).toBe(file.bytes);
    expect(createHash('sha256').update(body).digest('hex')).toBe(file.sha256);
    expect(createHash('md5').update(body).digest('hex')).toBe(file.md5);
    expect(redshift.entries[i]).toEqual({ url: `${store.urlPrefix}${file.key}`, mandatory: true, meta: { content_length: file.bytes, record_count: file.rows } });
    bodies.set(file.key, body);
  }
  expect(redshift.meta.record_count).toBe(manifest.totals.rows);
  return { manifest, redshift, bodies };
}

async function exportTo(out: string, args: string[], extra: string[] = []): Promise<string> {
  const result = await runCli(['dataset', 'export', ...args, '--source', project, '--dest', out, '--layout', 'plain', '--json', ...extra]);
  expect(result.code, result.stderr).toBe(0);
  return exportIdOf(result.stdout);
}

const csvRecords = (body: Buffer, gzip: boolean): string[][] => parse((gzip ? gunzipSync(body) : body).toString('utf8')) as string[][];
const sourceText = (rows: readonly Cell[][]): string[][] => rows.map((r) => r.map((c) => c ?? ''));
const today = (): string => new Date().toISOString().slice(0, 10);

describe('dataset export --layout plain', () => {
  it('CSV (default: gzip, header) to S3: every row back, both manifests match the files, the job COMPLETED', async () => {
    const prefix = uniquePrefix('plain-csv');
    const dest = `s3://${TEST_BUCKET}/${prefix}`;
    const exportId = await exportTo(dest, ['in.c-shop.events'], s3Args);
    const store = s3Store(client, TEST_BUCKET, prefix);
    const folder = `events/${exportId}/`;
    const { manifest, redshift, bodies } = await readManifests(store, folder);
    expect(manifest.files.map((f) => f.key)).toEqual([`${folder}part-00000.csv.gz`]);
    expect(manifest).toMatchObject({ format: 'CSV', compression: 'gzip' });
    expect(redshift.entries[0]!.url).toBe(`s3://${TEST_BUCKET}/${prefix}${folder}part-00000.csv.gz`);
    expect(redshift.schema.elements).toEqual([
      { name: 'id', type: { base: 'bigint' } },
      { name: 'country', type: { base: 'character varying' } },
      { name: 'amount', type: { base: 'numeric' } },
      { name: 'ok', type: { base: 'boolean' } },
      { name: 'note', type: { base: 'character varying' } },
    ]);
    const records = csvRecords(bodies.get(`${folder}part-00000.csv.gz`)!, true);
    expect(records[0]).toEqual(COLUMNS);
    expect(records.slice(1)).toEqual(sourceText(ROWS));

    const described = await runCli(['dataset', 'exports', 'describe', exportId, '--dest', dest, '--json', ...s3Args]);
    const description = (JSON.parse(described.stdout) as { ExportDescription: Record<string, unknown> }).ExportDescription;
    expect(description).toMatchObject({ ExportStatus: 'COMPLETED', ItemCount: ROWS.length, ExportFormat: 'CSV', ExportManifest: `${folder}_manifest.json` });
  });

  it('CSV --compression none --no-header, cut at --max-file-size with {part} unpadded and {date}', async () => {
    const out = path.join(await tempFolder('plain-none'), 'out');
    await exportTo(out, ['in.c-shop.big', '--compression', 'none', '--no-header', '--key-template', 'x/{table}/{date}/p{part}', '--max-file-size', '16KB']);
    const folder = `x/big/${today()}/`;
    const { manifest, bodies } = await readManifests(localStore(out), folder);
    expect(manifest.files.length).toBeGreaterThan(5);
    manifest.files.forEach((f, i) => expect(f.key).toBe(`${folder}p${i}.csv`));
    const rows = manifest.files.flatMap((f) => csvRecords(bodies.get(f.key)!, false));
    expect(rows).toHaveLength(4000);
    expect(rows[0]).toEqual(['0', createHash('md5').update('0').digest('hex'), '0']);
  });

  // Rows go into a Parquet file one at a time: a whole batch added at once overshot small caps many times over.
  it('PARQUET cut at --max-file-size 16KB (each codec): every file under the cap, every row once, read back with DuckDB', async () => {
    for (const compression of ['snappy', 'gzip', 'none']) {
      const out = path.join(await tempFolder('plain-parquet-cap'), 'out');
      const exportId = await exportTo(out, ['in.c-shop.big', '--export-format', 'PARQUET', '--compression', compression, '--max-file-size', '16KB']);
      const folder = `big/${exportId}/`;
      const { manifest, bodies } = await readManifests(localStore(out), folder);
      expect(manifest.files.length, compression).toBeGreaterThan(2);
      for (const f of manifest.files) expect(bodies.get(f.key)!.length, `${compression} ${f.key}`).toBeLessThanOrEqual(16 * 1024);
      const ids = (await duck.runAndReadAll(`SELECT id FROM read_parquet('${path.join(out, folder)}*.parquet') ORDER BY CAST(id AS INTEGER)`)).getRowObjects();
      expect(ids.map((r) => Number(r.id))).toEqual(Array.from({ length: 4000 }, (_, i) => i));
    }
  });

  it('PARQUET: a row larger than --max-file-size is a file of its own, with a warning naming it; the others stay under', async () => {
    const out = path.join(await tempFolder('plain-parquet-wide'), 'out');
    const result = await runCli(['dataset', 'export', 'in.c-shop.wide', '--source', project, '--dest', out, '--layout', 'plain', '--export-format', 'PARQUET', '--max-file-size', '16KB', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const exportId = exportIdOf(result.stdout);
    const folder = `wide/${exportId}/`;
    const { manifest, bodies } = await readManifests(localStore(out), folder);
    const over = manifest.files.filter((f) => bodies.get(f.key)!.length > 16 * 1024);
    expect(over.map((f) => f.rows)).toEqual([1]);
    const warnings = jsonLines(result.stdout).filter((e) => e.type === 'warning').map((e) => e.message);
    expect(warnings).toEqual([`${over[0]!.key}: one row of ${over[0]!.bytes} bytes, larger than --max-file-size 16384: written as a file of its own`]);
    const ids = (await duck.runAndReadAll(`SELECT id FROM read_parquet('${path.join(out, folder)}*.parquet') ORDER BY CAST(id AS INTEGER)`)).getRowObjects();
    expect(ids.map((r) => Number(r.id))).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('a --key-template without {export_id} onto an earlier export: refused (exit 9) before anything is written; --overwrite replaces it', async () => {
    const out = path.join(await tempFolder('plain-again'), 'out');
    const args = ['in.c-shop.big', '--key-template', 'x/{table}/p{part}', '--max-file-size', '16KB'];
    await exportTo(out, args);
    const before = await snapshot(out);
    const again = await runCli(['dataset', 'export', ...args, '--source', project, '--dest', out, '--layout', 'plain']);
    expect(again.code, again.stderr).toBe(ERROR_CODES.EXISTS);
    expect(errorLines(again.stderr)).toEqual([`takeout: error: ${path.join(out, 'x', 'big', '_manifest.json')} already exists: an earlier export wrote there [EXISTS, exit 9]`]);
    expect(await snapshot(out)).toEqual(before);
    const exportId = await exportTo(out, [...args, '--overwrite']);
    const { manifest } = await readManifests(localStore(out), 'x/big/');
    expect(manifest.exportId).toBe(exportId);
  });

  it('JSONL: one object per line, typed by the column types, gzip or none', async () => {
    for (const compression of ['gzip', 'none']) {
      const out = path.join(await tempFolder('plain-jsonl'), 'out');
      const exportId = await exportTo(out, ['in.c-shop.events', '--export-format', 'JSONL', '--compression', compression]);
      const folder = `events/${exportId}/`;
      const { manifest, bodies } = await readManifests(localStore(out), folder);
      const key = `${folder}part-00000.jsonl${compression === 'gzip' ? '.gz' : ''}`;
      expect(manifest.files.map((f) => f.key)).toEqual([key]);
      const body = bodies.get(key)!;
      const lines = (compression === 'gzip' ? gunzipSync(body) : body).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual(ROWS.map((r) => ({ id: Number(r[0]), country: r[1], amount: r[2] === null ? null : Number(r[2]), ok: r[3] === 'true', note: r[4] })));
    }
  });

  it('PARQUET (SNAPPY by default, GZIP, none) read back with DuckDB', async () => {
    for (const [compression, codec] of [[undefined, 'SNAPPY'], ['gzip', 'GZIP'], ['none', 'UNCOMPRESSED']] as const) {
      const out = path.join(await tempFolder('plain-parquet'), 'out');
      const exportId = await exportTo(out, ['in.c-shop.events', '--export-format', 'PARQUET', ...(compression ? ['--compression', compression] : [])]);
      const folder = `events/${exportId}/`;
      const { manifest, redshift } = await readManifests(localStore(out), folder);
      expect(manifest.files.map((f) => f.key)).toEqual([`${folder}part-00000.parquet`]);
      expect(redshift.schema.elements.map((e) => e.type.base)).toEqual(['bigint', 'character varying', 'double precision', 'boolean', 'character varying']);
      const file = path.join(out, `${folder}part-00000.parquet`);
      const result = await duck.runAndReadAll(`SELECT * FROM read_parquet('${file}') ORDER BY id`);
      expect(result.getRowObjects()).toEqual(ROWS.map((r) => ({ id: BigInt(r[0]!), country: r[1], amount: r[2] === null ? null : Number(r[2]), ok: r[3] === 'true', note: r[4] })));
      const meta = await duck.runAndReadAll(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`);
      expect(meta.getRowObjects().map((m) => m.compression)).toEqual([codec]);
    }
  });

  it('Hive partitions: NULL and empty in __HIVE_DEFAULT_PARTITION__, hostile values escaped into one safe folder each', async () => {
    const out = path.join(await tempFolder('plain-hive'), 'out');
    await exportTo(out, ['in.c-shop.events', '--partition-by', 'country', '--key-template', 'events/{table}/dt={date}/part-{part:05}']);
    const folder = `events/events/dt=${today()}/`;
    const { manifest, bodies } = await readManifests(localStore(out), folder);
    const expectedFolders: Record<string, Cell[]> = {
      'country=CZ': ['CZ'],
      'country=DE': ['DE'],
      'country=__HIVE_DEFAULT_PARTITION__': [null, ''],
      'country=..%2Fx': ['../x'],
      'country=a%2Fb': ['a/b'],
      'country=x%2E': ['x.'],
    };
    expect(manifest.files.map((f) => f.key).sort()).toEqual(Object.keys(expectedFolders).map((p) => `${folder}${p}/part-00000.csv.gz`).sort());
    // Every key stays inside the destination: no "..", "." or empty segment, nothing absolute.
    for (const key of await walkFiles(out)) {
      expect(key.startsWith('/')).toBe(false);
      for (const segment of key.split('/')) expect(['', '.', '..']).not.toContain(segment);
    }
    for (const file of manifest.files) {
      const partition = file.key.slice(folder.length).split('/')[0]!;
      expect(file.partition).toBe(partition);
      const records = csvRecords(bodies.get(file.key)!, true);
      // The partition column is in the folder name, not in the file.
      expect(records[0]).toEqual(['id', 'amount', 'ok', 'note']);
      const values = expectedFolders[partition]!;
      expect(records.slice(1)).toEqual(sourceText(ROWS.filter((r) => values.includes(r[1]!)).map((r) => [r[0]!, r[2]!, r[3]!, r[4]!])));
    }
  });

  it('Hive partitions in Parquet, read back by DuckDB with hive_partitioning; --include-partition-columns keeps the column', async () => {
    const out = path.join(await tempFolder('plain-hive-parquet'), 'out');
    const exportId = await exportTo(out, ['in.c-shop.events', '--export-format', 'PARQUET', '--partition-by', 'ok', '--partition-by', 'country', '--key-template', '{table}/{export_id}/{partitions}/data-{part}']);
    const folder = `events/${exportId}/`;
    const { manifest } = await readManifests(localStore(out), folder);
    expect(manifest.files.every((f) => /^ok=(true|false)\/country=[^/]+$/.test(f.partition!))).toBe(true);
    expect(manifest.files.every((f) => f.key === `${folder}${f.partition!}/data-0.parquet`)).toBe(true);
    const rows = (await duck.runAndReadAll(`SELECT id, ok, country FROM read_parquet('${path.join(out, folder)}**/*.parquet', hive_partitioning = true, hive_types_autocast = false) ORDER BY id`)).getRowObjects();
    expect(rows.map((r) => r.id)).toEqual(ROWS.map((r) => BigInt(r[0]!)));
    // DuckDB takes the partition values from the folder names: %XX unescaped, Hive's default partition as NULL.
    expect(rows.map((r) => String(r.ok))).toEqual(ROWS.map((r) => r[3]));
    expect(rows.map((r) => r.country)).toEqual(ROWS.map((r) => (r[1] === '' ? null : r[1])));

    const withColumns = path.join(await tempFolder('plain-hive-include'), 'out');
    const id2 = await exportTo(withColumns, ['in.c-shop.events', '--export-format', 'PARQUET', '--partition-by', 'country', '--include-partition-columns']);
    const files = (await readManifests(localStore(withColumns), `events/${id2}/`)).manifest.files;
    const cz = files.find((f) => f.partition === 'country=CZ')!;
    const inFile = (await duck.runAndReadAll(`SELECT DISTINCT country FROM read_parquet('${path.join(withColumns, cz.key)}', hive_partitioning = false)`)).getRowObjects();
    expect(inFile).toEqual([{ country: 'CZ' }]);
  });

  it('refuses bad templates and option combinations up front, naming the flag', async () => {
    const out = path.join(await tempFolder('plain-usage'), 'out');
    const cases: [string[], string][] = [
      [['--key-template', 'a/{x}/p{part}'], 'unknown placeholder {x}'],
      [['--key-template', 'a/b'], 'needs {part}'],
      [['--key-template', '../{part}'], '".." path segment'],
      [['--key-template', '/a/{part}'], 'a leading /'],
      [['--key-template', 'a/{part}/'], 'a trailing /'],
      [['--key-template', '{table}/{part'], 'a { without its }'],
      [['--key-template', 'a}/{part}'], 'a } without its {'],
      [['--key-template', '{part:00}'], 'pad {part}'],
      [['--key-template', 'a/{partitions}/{part}'], '{partitions} needs --partition-by'],
      [['--key-template', 'a/x{partitions}/{part}', '--partition-by', 'country'], 'must be a whole folder'],
      [['--partition-by', 'nope'], '--partition-by nope: no such column'],
      [['--partition-by', 'country', '--partition-by', 'country'], 'given twice'],
      [['--compression', 'snappy'], '--compression snappy is for PARQUET'],
      [['--export-format', 'JSONL', '--no-header'], '--no-header is for CSV'],
      [['--export-format', 'XML'], '--export-format XML'],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['dataset', 'export', 'in.c-shop.events', '--source', project, '--dest', out, '--layout', 'plain', ...args]);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(ERROR_CODES.USAGE);
      expect(errorLines(result.stderr)[0], args.join(' ')).toContain(message);
    }
    expect(await walkFiles(out)).toEqual([]);
  });
});
