import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { DigestSet, digestOf, NewestById } from '../src/layouts/digests.js';
import { errorLines, jsonLines, localStore, removeTempFolders, runCli, s3Store, startCli, tempFolder, walkFiles, type Store, exportIdOf } from './helpers/cli.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

/**
 * Personalize dataset exports, read back with csv-parse (`\` as the escape character, as Personalize's
 * import rules have it) and compared with what Personalize's rules give, computed here independently:
 * the mode's records, for ALL items/users the newest record per id, each distinct record once.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
const s3Args = s3CliArgs(endpoint);

afterAll(async () => {
  client.destroy();
  await removeTempFolders();
});

type Cell = string | null;
type Mode = 'BULK' | 'PUT' | 'ALL';
type DatasetType = 'interactions' | 'items' | 'users';

/** A source record: its cells (the origin column last), and what each exported field should read as. */
interface Fixture {
  columns: string[];
  records: { cells: Cell[]; out: string[] }[];
}

/** CSV as the folder source reads it: empty unquoted is NULL, everything else quoted with `""`. */
function toCsv(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const cell = (c: Cell): string => (c === null ? '' : `"${c.replaceAll('"', '""')}"`);
  return [columns.join(','), ...rows.map((r) => r.map(cell).join(','))].join('\n') + '\n';
}

/** Records whose exported fields are their cells (NULL read back as ''), less the origin column. */
const plainRecords = (rows: Cell[][]): Fixture['records'] => rows.map((cells) => ({ cells, out: cells.slice(0, -1).map((c) => c ?? '') }));

const INTERACTIONS: Fixture = {
  columns: ['user_id', 'item_id', 'timestamp', 'event_type', 'event_value', 'origin'],
  records: [
    { cells: ['u1', 'i1', '2024-01-01T00:00:00Z', 'click', '1.5', 'bulk'], out: ['u1', 'i1', '1704067200', 'click', '1.5'] },
    { cells: ['u1', 'i1', '2024-01-01T00:00:00Z', 'click', '1.5', 'bulk'], out: ['u1', 'i1', '1704067200', 'click', '1.5'] },
    // The same record from PUT: one record with ALL.
    { cells: ['u1', 'i1', '2024-01-01 00:00:00+00', 'click', '1.5', 'PUT'], out: ['u1', 'i1', '1704067200', 'click', '1.5'] },
    { cells: ['u1', 'i2', '2024-01-02T10:00:00.900Z', 'view', null, 'put'], out: ['u1', 'i2', '1704189600', 'view', ''] },
    { cells: ['u2', 'i1', '1704067200', 'click', '2', 'Bulk'], out: ['u2', 'i1', '1704067200', 'click', '2'] },
    { cells: ['u2', 'i1', '1704067200', 'click', '2', 'bulk'], out: ['u2', 'i1', '1704067200', 'click', '2'] },
    // Same user and item, another event: interactions keep every variant.
    { cells: ['u2', 'i1', '1704067300', 'buy', '2', 'bulk'], out: ['u2', 'i1', '1704067300', 'buy', '2'] },
    { cells: ['u3', 'i,3', '1704067400', 'say "hi" \\o/', '-0.25', 'put'], out: ['u3', 'i,3', '1704067400', 'say "hi" \\o/', '-0.25'] },
    { cells: ['u3', 'i,3', '1704067400', 'say "hi" \\o/', '-0.25', 'put'], out: ['u3', 'i,3', '1704067400', 'say "hi" \\o/', '-0.25'] },
  ],
};

const ITEMS: Fixture = {
  columns: ['item_id', 'genres', 'creation_timestamp', 'description', 'origin'],
  records: plainRecords([
    ['i1', 'A|B', '100', 'desc, with comma', 'bulk'],
    ['i1', 'A|B', '100', 'desc, with comma', 'bulk'],
    ['i1', 'A|C', '200', 'new desc', 'put'],
    ['i1', 'A|D', '150', 'older than the put one', 'bulk'],
    ['i2', 'X', '300', 'back\\slash "q"', 'bulk'],
    ['i2', 'Y', '300', 'same time: PUT wins', 'put'],
    ['i2', 'Z', '300', 'same time, BULK later in the source: PUT still wins', 'bulk'],
    ['i3', null, null, 'no time is the oldest', 'put'],
    ['i3', 'W', '50', 'a time beats none', 'bulk'],
    ['i4', 'V', '10', 'only one', 'bulk'],
    ['i5', 'U', null, 'first', 'bulk'],
    ['i5', 'U', null, 'second: later in the source wins', 'bulk'],
    ['i6', 'T', '10', 'multi\nline', 'put'],
  ]),
};

const USERS: Fixture = {
  columns: ['USER_ID', 'age', 'membership', 'updated_at', 'origin'],
  records: plainRecords([
    ['u1', '30', 'gold', '2024-03-01T00:00:00Z', 'bulk'],
    ['u1', '31', 'gold', '2024-01-01T00:00:00Z', 'put'],
    ['u1', '32', 'silver', '2024-02-01T00:00:00Z', 'bulk'],
    ['u2', '20', 'none', '2024-01-01T00:00:00Z', 'put'],
    ['u2', '20', 'none', '2024-01-01T00:00:00Z', 'put'],
    ['u3', '40', null, null, 'bulk'],
    ['u3', '41', 'x', '2023-01-01T00:00:00Z', 'bulk'],
  ]),
};

const FIXTURES: Record<DatasetType, Fixture> = { interactions: INTERACTIONS, items: ITEMS, users: USERS };
const ID: Record<DatasetType, number> = { interactions: 0, items: 0, users: 0 };

/**
 * Personalize's rules, from the records: the mode's records; with ALL, items and users keep the newest per id
 * (by `time`, then PUT after BULK, then source order); then each distinct record once. Sorted.
 */
function expected(f: Fixture, type: DatasetType, mode: Mode, time?: (cells: Cell[]) => number): string[][] {
  const put = (cells: Cell[]): boolean => cells[cells.length - 1]!.toLowerCase() === 'put';
  let chosen = f.records.filter((r) => mode === 'ALL' || put(r.cells) === (mode === 'PUT'));
  if (mode === 'ALL' && type !== 'interactions') {
    const order = chosen.map((r, i) => ({ r, i, t: time ? time(r.cells) : 0 }));
    order.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : Number(put(a.r.cells)) - Number(put(b.r.cells)) || a.i - b.i));
    const newest = new Map<Cell, Fixture['records'][number]>();
    for (const { r } of order) newest.set(r.cells[ID[type]]!, r);
    chosen = [...newest.values()];
  }
  const distinct = new Map(chosen.map((r) => [JSON.stringify(r.out), r.out]));
  return [...distinct.values()].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

const epochOf = (index: number) => (cells: Cell[]): number => {
  const v = cells[index];
  if (v === null || v === undefined) return Number.NEGATIVE_INFINITY;
  return /^\d+$/.test(v) ? Number(v) : Date.parse(v) / 1000;
};

let project: string;

beforeAll(async () => {
  project = await tempFolder('pz-project');
  await mkdir(path.join(project, 'pz'));
  for (const [name, f] of Object.entries(FIXTURES)) await writeFile(path.join(project, 'pz', `${name}.csv`), toCsv(f.columns, f.records.map((r) => r.cells)));
  // A larger interactions table, with exact duplicates, to cut into files (random-looking item ids: gzip still needs several).
  const big: Cell[][] = [];
  for (let i = 0; i < 3000; i++) big.push([`user${i % 97}`, createHash('md5').update(String(i)).digest('hex').slice(0, 12), String(1_700_000_000 + i), i % 3 === 0 ? 'click' : 'view', String(i % 7), i % 2 ? 'bulk' : 'put']);
  for (let i = 0; i < 300; i++) big.push(big[i * 7]!);
  await writeFile(path.join(project, 'pz', 'big.csv'), toCsv(['USER_ID', 'ITEM_ID', 'TIMESTAMP', 'EVENT_TYPE', 'EVENT_VALUE', 'origin'], big));
  // Typed columns: the timestamp column is a TIMESTAMP (ISO text becomes epoch seconds), the event value a number.
  await writeFile(
    path.join(project, 'project.yaml'),
    [
      'tables:',
      '  in.c-pz.interactions:',
      '    columnMetadata:',
      '      timestamp:',
      '        - {key: KBC.datatype.basetype, value: TIMESTAMP}',
      '      event_value:',
      '        - {key: KBC.datatype.basetype, value: NUMERIC}',
      '  in.c-pz.users:',
      '    columnMetadata:',
      '      age:',
      '        - {key: KBC.datatype.basetype, value: INTEGER}',
      '',
    ].join('\n'),
  );
});


interface ManifestFile {
  key: string;
  rows: number;
  bytes: number;
  md5: string;
  sha256: string;
}

interface Read {
  keys: string[];
  header: string[];
  rows: string[][];
  texts: string[];
  manifest: { datasetExportJob: Record<string, unknown>; datasetType: string; fields: string[]; files: ManifestFile[]; totals: { rows: number; files: number } };
}

/** Reads an export back: its manifest, every file it lists (checked against it), each file's header and rows. */
async function readExport(store: Store, folder: string): Promise<Read> {
  const keys = await store.list();
  const manifest = JSON.parse((await store.get(`${folder}_manifest.json`)).toString()) as Read['manifest'];
  expect(keys).toContain(`${folder}_SUCCESS`);
  // Exactly the listed data files are in the folder.
  expect(keys.filter((k) => k.startsWith(folder) && !k.slice(folder.length).startsWith('_')).sort()).toEqual(manifest.files.map((f) => f.key).sort());
  let header: string[] | undefined;
  const rows: string[][] = [];
  const texts: string[] = [];
  for (const file of manifest.files) {
    const body = await store.get(file.key);
    expect(body.length).toBe(file.bytes);
    expect(createHash('md5').update(body).digest('hex')).toBe(file.md5);
    expect(createHash('sha256').update(body).digest('hex')).toBe(file.sha256);
    const text = (file.key.endsWith('.gz') ? gunzipSync(body) : body).toString('utf8');
    texts.push(text);
    // The header row: field names, unquoted.
    expect(text.split('\n')[0]).toBe(manifest.fields.join(','));
    const records = parse(text, { escape: '\\' }) as string[][];
    header ??= records[0];
    expect(records[0]).toEqual(header);
    expect(records.length - 1).toBe(file.rows);
    rows.push(...records.slice(1));
  }
  expect(rows.length).toBe(manifest.totals.rows);
  return { keys, header: header ?? manifest.fields, rows: rows.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))), texts, manifest };
}

async function exportLocal(args: string[]): Promise<{ out: string; exportId: string; read: Read }> {
  const out = path.join(await tempFolder('pz-out'), 'out');
  const result = await runCli(['dataset', 'export', ...args, '--source', project, '--dest', out, '--layout', 'personalize', '--json']);
  expect(result.code, result.stderr).toBe(0);
  const exportId = exportIdOf(result.stdout);
  const jobName = args.indexOf('--job-name');
  return { out, exportId, read: await readExport(localStore(out), `${jobName === -1 ? '' : `${args[jobName + 1]!}/`}${exportId}/`) };
}

describe('dataset export --layout personalize', () => {
  const HEADERS: Record<DatasetType, string[]> = {
    interactions: ['USER_ID', 'ITEM_ID', 'TIMESTAMP', 'EVENT_TYPE', 'EVENT_VALUE'],
    items: ['ITEM_ID', 'genres', 'CREATION_TIMESTAMP', 'description'],
    users: ['USER_ID', 'age', 'membership', 'updated_at'],
  };
  const TIMES: Partial<Record<DatasetType, (cells: Cell[]) => number>> = { items: epochOf(2) };

  for (const type of ['interactions', 'items', 'users'] as const) {
    for (const mode of ['BULK', 'PUT', 'ALL'] as const) {
      it(`${type}, --ingestion-mode ${mode}: Personalize's records and deduplication`, async () => {
        const { exportId, read } = await exportLocal([`in.c-pz.${type}`, '--dataset-type', type, '--ingestion-mode', mode, '--ingestion-column', 'origin']);
        expect(read.header).toEqual(HEADERS[type]);
        expect(read.rows).toEqual(expected(FIXTURES[type], type, mode, TIMES[type]));
        expect(read.manifest.files.map((f) => f.key)).toEqual([`${exportId}/${type}_${exportId}_part_00000.csv`]);
        expect(read.manifest).toMatchObject({ datasetType: type, datasetExportJob: { ingestionMode: mode, status: 'ACTIVE', jobName: exportId } });
      });
    }
  }

  it('values follow the import rules: textual quoted with \\ escapes, numbers bare, NULL empty, epoch seconds', async () => {
    const { read } = await exportLocal(['in.c-pz.interactions', '--dataset-type', 'interactions', '--ingestion-mode', 'ALL', '--ingestion-column', 'origin']);
    const lines = read.texts.join('').split('\n');
    expect(lines[0]).toBe('USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE');
    expect(lines).toContain('"u1","i1",1704067200,"click",1.5');
    expect(lines).toContain('"u1","i2",1704189600,"view",');
    expect(lines).toContain('"u3","i,3",1704067400,"say \\"hi\\" \\\\o/",-0.25');
    const items = await exportLocal(['in.c-pz.items', '--dataset-type', 'items', '--ingestion-mode', 'BULK', '--ingestion-column', 'origin']);
    expect(items.read.texts.join('')).toContain('"i2","X",300,"back\\\\slash \\"q\\""\n');
    expect(items.read.texts.join('')).toContain('"i5","U",,"first"\n');
  });

  it('users with --timestamp-column: the newest by that column', async () => {
    const { read } = await exportLocal(['in.c-pz.users', '--dataset-type', 'users', '--ingestion-mode', 'ALL', '--ingestion-column', 'origin', '--timestamp-column', 'UPDATED_AT']);
    expect(read.rows).toEqual(expected(USERS, 'users', 'ALL', epochOf(3)));
    expect(read.rows.find((r) => r[0] === 'u1')).toEqual(['u1', '30', 'gold', '2024-03-01T00:00:00Z']);
  });

  it('without --ingestion-column: ALL takes every record, the last of an id in the source is the newest', async () => {
    const { read } = await exportLocal(['in.c-pz.users', '--dataset-type', 'users', '--ingestion-mode', 'ALL']);
    // The column is a field like any other then.
    expect(read.header).toEqual(['USER_ID', 'age', 'membership', 'updated_at', 'origin']);
    expect(read.rows.map((r) => r.slice(0, 2))).toEqual([['u1', '32'], ['u2', '20'], ['u3', '41']]);
  });

  it('--id-column maps a differently named column; --job-name is the folder above the export', async () => {
    const { exportId, read } = await exportLocal(['in.c-pz.users', '--dataset-type', 'items', '--ingestion-mode', 'ALL', '--id-column', 'user_id', '--job-name', 'weekly-items_1']);
    expect(read.header).toEqual(['ITEM_ID', 'age', 'membership', 'updated_at', 'origin']);
    expect(read.rows.map((r) => r.slice(0, 2))).toEqual([['u1', '32'], ['u2', '20'], ['u3', '41']]);
    expect(read.manifest.files[0]!.key).toBe(`weekly-items_1/${exportId}/items_${exportId}_part_00000.csv`);
    expect(read.manifest.datasetExportJob).toMatchObject({ jobName: 'weekly-items_1', datasetExportJobArn: 'arn:aws:personalize:us-east-1:000000000000:dataset-export-job/weekly-items_1' });
  });

  it('files cut at --max-file-size, each with the header row; the job record says COMPLETED (S3)', async () => {
    const prefix = uniquePrefix('pz-big');
    const dest = `s3://${TEST_BUCKET}/${prefix}`;
    const result = await runCli(['dataset', 'export', 'in.c-pz.big', '--source', project, '--dest', dest, '--layout', 'personalize', '--dataset-type', 'interactions', '--ingestion-mode', 'ALL', '--ingestion-column', 'origin', '--max-file-size', '16KB', '--json', ...s3Args]);
    expect(result.code, result.stderr).toBe(0);
    const exportId = exportIdOf(result.stdout);
    const read = await readExport(s3Store(client, TEST_BUCKET, prefix), `${exportId}/`);
    expect(read.manifest.files.length).toBeGreaterThan(3);
    read.manifest.files.forEach((f, i) => expect(f.key).toBe(`${exportId}/interactions_${exportId}_part_${String(i).padStart(5, '0')}.csv`));
    for (const f of read.manifest.files) expect(f.bytes).toBeLessThanOrEqual(16 * 1024 + 200);
    // 3000 distinct records; the 300 copies are exported once.
    expect(read.rows).toHaveLength(3000);
    expect(new Set(read.rows.map((r) => JSON.stringify(r))).size).toBe(3000);
    expect(read.manifest.datasetExportJob).toMatchObject({ jobOutput: { s3DataDestination: { path: `s3://${TEST_BUCKET}/${prefix}${exportId}/` } } });

    const described = await runCli(['dataset', 'exports', 'describe', exportId, '--dest', dest, '--json', ...s3Args]);
    expect(described.code, described.stderr).toBe(0);
    const description = (JSON.parse(described.stdout) as { ExportDescription: Record<string, unknown> }).ExportDescription;
    expect(description).toMatchObject({ ExportStatus: 'COMPLETED', ItemCount: 3000, ExportFormat: 'CSV', ExportManifest: `${exportId}/_manifest.json`, ExportArn: `arn:aws:personalize:us-east-1:000000000000:dataset-export-job/${exportId}` });
    expect((description.Takeout as { layout: string }).layout).toBe('personalize');
  });

  it('--gzip writes .csv.gz files, each starting with the header', async () => {
    const { exportId, read } = await exportLocal(['in.c-pz.big', '--dataset-type', 'interactions', '--ingestion-mode', 'ALL', '--ingestion-column', 'origin', '--gzip', '--max-file-size', '16KB']);
    expect(read.manifest.files.length).toBeGreaterThan(1);
    for (const f of read.manifest.files) expect(f.key).toMatch(new RegExp(`^${exportId}/interactions_${exportId}_part_\\d{5}\\.csv\\.gz$`));
    expect(read.rows).toHaveLength(3000);
  });

  it('an interrupted export resumed after its source changed is written again whole, deduplicated', async () => {
    const folder = await tempFolder('pz-resume');
    await mkdir(path.join(folder, 'pz'));
    const rows: Cell[][] = [];
    for (let i = 0; i < 200_000; i++) rows.push([`user${i % 1000}`, `item${i}`, String(1_700_000_000 + i), 'view', i % 2 ? 'bulk' : 'put']);
    const file = path.join(folder, 'pz', 'events.csv');
    const columns = ['USER_ID', 'ITEM_ID', 'TIMESTAMP', 'EVENT_TYPE', 'origin'];
    await writeFile(file, toCsv(columns, [...rows, ...rows.slice(0, 5000)]));
    const out = path.join(await tempFolder('pz-resume-out'), 'out');
    const args = ['dataset', 'export', 'in.c-pz.events', '--source', folder, '--dest', out, '--layout', 'personalize', '--dataset-type', 'interactions', '--ingestion-mode', 'ALL', '--ingestion-column', 'origin', '--client-token', 'pz-1', '--max-file-size', '16KB', '--json'];
    const cli = startCli(args);
    await cli.waitForStdout((stdout) => stdout.split('"type":"table:slice"').length > 3);
    cli.child.kill('SIGINT');
    const stopped = await cli.done;
    expect(stopped.code, stopped.stderr).toBe(ERROR_CODES.INTERRUPTED);
    expect((await walkFiles(out)).some((f) => f.endsWith('_manifest.json'))).toBe(false);
    // The first record changes: the file the interrupted run landed no longer comes out the same.
    rows[0] = ['user0', 'item0', '1700000000', 'buy', 'put'];
    await writeFile(file, toCsv(columns, [...rows, ...rows.slice(0, 5000)]));
    const resumed = await runCli(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(jsonLines(resumed.stdout).some((e) => e.type === 'warning' && /changed since the interrupted run/.test(String(e.message)))).toBe(true);
    const exportId = exportIdOf(resumed.stdout);
    const read = await readExport(localStore(out), `${exportId}/`);
    expect(read.rows).toHaveLength(200_000);
    expect(read.rows).toContainEqual(['user0', 'item0', '1700000000', 'buy']);
  }, 120_000);

  it('refuses what Personalize cannot export, naming the flag or the field', async () => {
    const out = path.join(await tempFolder('pz-usage'), 'out');
    const run = (args: string[]) => runCli(['dataset', 'export', ...args, '--source', project, '--dest', out, '--layout', 'personalize']);
    const noType = await run(['in.c-pz.items']);
    expect(noType.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(noType.stderr)[0]).toContain('--dataset-type');
    const noOrigin = await run(['in.c-pz.items', '--dataset-type', 'items']);
    expect(noOrigin.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(noOrigin.stderr)[0]).toContain('--ingestion-column');
    const missing = await run(['in.c-pz.items', '--dataset-type', 'interactions', '--ingestion-mode', 'ALL']);
    expect(missing.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(missing.stderr)[0]).toContain('the interactions dataset needs USER_ID, TIMESTAMP');
    const noColumn = await run(['in.c-pz.items', '--dataset-type', 'items', '--ingestion-column', 'nope']);
    expect(noColumn.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(noColumn.stderr)[0]).toContain('--ingestion-column nope: no such column');
    const incremental = await run(['in.c-pz.items', '--dataset-type', 'items', '--ingestion-mode', 'ALL', '--export-type', 'INCREMENTAL_EXPORT']);
    expect(incremental.code).toBe(ERROR_CODES.USAGE);
    const format = await run(['in.c-pz.items', '--dataset-type', 'items', '--ingestion-mode', 'ALL', '--export-format', 'PARQUET']);
    expect(format.code).toBe(ERROR_CODES.USAGE);
    const jobName = await run(['in.c-pz.items', '--dataset-type', 'items', '--ingestion-mode', 'ALL', '--job-name', '-bad']);
    expect(jobName.code).toBe(ERROR_CODES.USAGE);
    const twoIds = await run(['in.c-pz.interactions', '--dataset-type', 'interactions', '--ingestion-mode', 'ALL', '--id-column', 'user_id']);
    expect(twoIds.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(twoIds.stderr)[0]).toContain('USER_ID=COLUMN');
    // Nothing was written for any of them.
    expect(await walkFiles(out)).toEqual([]);
    // A record of neither origin fails the export (its job record says so).
    const other = path.join(await tempFolder('pz-bad-origin'), 'out');
    const badOrigin = await runCli(['dataset', 'export', 'in.c-pz.items', '--source', project, '--dest', other, '--layout', 'personalize', '--dataset-type', 'items', '--ingestion-column', 'genres']);
    expect(badOrigin.code).toBe(ERROR_CODES.INVALID_INPUT);
    expect(errorLines(badOrigin.stderr)[0]).toContain('column genres holds "A|B", not bulk or put');
    expect((await walkFiles(other)).some((f) => f.endsWith('_manifest.json'))).toBe(false);
  });
});

describe('dedup tables (src/layouts/digests.ts)', () => {
  it('DigestSet keeps each digest once across growth, and forgets on clear', () => {
    const set = new DigestSet();
    for (let i = 0; i < 50_000; i++) expect(set.add(digestOf(`r${i}`))).toBe(true);
    for (let i = 0; i < 50_000; i += 7) expect(set.add(digestOf(`r${i}`))).toBe(false);
    expect(set.size).toBe(50_000);
    expect(set.capacity).toBeGreaterThanOrEqual(50_000 * 1.5);
    set.clear();
    expect(set.add(digestOf('r1'))).toBe(true);
  });

  it('NewestById: later time wins, PUT wins a tie, then the later record; take once; rewind', () => {
    const table = new NewestById();
    const id = (n: number): Buffer => digestOf(`id${n}`);
    const rec = (s: string): Buffer => digestOf(s);
    for (let n = 0; n < 5000; n++) {
      table.offer(id(n), rec(`${n}a`), 10, false);
      table.offer(id(n), rec(`${n}b`), 5, true);
      table.offer(id(n), rec(`${n}c`), 10, true);
      table.offer(id(n), rec(`${n}d`), 10, false);
    }
    for (let n = 0; n < 5000; n++) {
      expect(table.take(id(n), rec(`${n}a`))).toBe(false);
      expect(table.take(id(n), rec(`${n}c`))).toBe(true);
      expect(table.take(id(n), rec(`${n}c`))).toBe(false);
    }
    expect(table.take(id(99_999), rec('x'))).toBe(false);
    table.rewind();
    expect(table.take(id(1), rec('1c'))).toBe(true);
  });
});

describe('dataset export --layout personalize from bulk/ and put/ folders', () => {
  let folders: string;
  beforeAll(async () => {
    // The same records as in.c-pz.items, kept by origin: bulk/items.csv and put/items.csv, no origin column.
    folders = await tempFolder('pz-folders');
    for (const label of ['bulk', 'put']) {
      await mkdir(path.join(folders, label));
      const rows = ITEMS.records.map((r) => r.cells).filter((cells) => String(cells.at(-1)).toLowerCase() === label).map((cells) => cells.slice(0, -1));
      await writeFile(path.join(folders, label, 'items.csv'), toCsv(ITEMS.columns.slice(0, -1), rows));
    }
  });

  for (const mode of ['BULK', 'PUT', 'ALL'] as const) {
    it(`a bare table name reads both folders, each record's origin from its folder (--ingestion-mode ${mode})`, async () => {
      const out = path.join(await tempFolder('pz-folders-out'), 'out');
      const result = await runCli(['dataset', 'export', 'items', '--source', folders, '--dest', out, '--layout', 'personalize', '--dataset-type', 'items', '--ingestion-mode', mode, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const exportId = exportIdOf(result.stdout);
      const read = await readExport(localStore(out), `${exportId}/`);
      expect(read.header).toEqual(['ITEM_ID', 'genres', 'CREATION_TIMESTAMP', 'description']);
      expect(read.rows).toEqual(expected(ITEMS, 'items', mode, epochOf(2)));
    });
  }
});
