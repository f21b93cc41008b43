import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { errorLines, removeTempFolders, runCli, tempFolder } from './helpers/cli.js';
import { OTHER_BUCKET, rawS3Client } from './helpers/s3.js';
import { startStorageApi, type StorageApiServer } from './keboola/server.js';
import { createKeboolaSource } from '../src/sources/keboola/source.js';
import { describeSourceContract } from './source.contract.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url));
const TOKEN = 'kbc-test-token-7f3a9c-SECRET';
const s3Endpoint = inject('s3Endpoint');

async function server(options: Partial<Parameters<typeof startStorageApi>[0]> = {}): Promise<StorageApiServer> {
  return startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, token: TOKEN, fixtureDir: FIXTURE, jobPolls: { waiting: 1, processing: 1 }, ...options });
}

function kbc(api: StorageApiServer, args: string[], token = TOKEN): ReturnType<typeof runCli> {
  return runCli([...args, '--source', `keboola+${api.url}`], { env: { KBC_STORAGE_TOKEN: token, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint } });
}

async function s3Object(key: string): Promise<Buffer> {
  const out = await rawS3Client(s3Endpoint).send(new GetObjectCommand({ Bucket: OTHER_BUCKET, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

afterAll(removeTempFolders);

/** The fixture project's tables as the contract expects them: each data file's header and records. */
async function contractExpectations(): Promise<Map<string, { columns: string[]; records: string[][] }>> {
  const expected = new Map<string, { columns: string[]; records: string[][] }>();
  for (const file of (await readdir(join(FIXTURE, 'data'))).sort()) {
    if (!file.endsWith('.csv')) continue;
    const [header, ...records] = parse(await readFile(join(FIXTURE, 'data', file))) as string[][];
    expected.set(file.slice(0, -'.csv'.length), { columns: header!, records });
  }
  return expected;
}

describeSourceContract('keboola (Storage API test server)', async () => {
  const api = await server();
  return {
    source: createKeboolaSource(`keboola+${api.url}`, { token: TOKEN, s3Endpoint }),
    expected: await contractExpectations(),
    cleanup: () => api.stop(),
  };
});

describe('takeout run from the Storage API', () => {
  let api: StorageApiServer;
  let dest: string;
  let result: Awaited<ReturnType<typeof runCli>>;

  beforeAll(async () => {
    api = await server();
    dest = join(await tempFolder('kbc'), 'takeout');
    result = await kbc(api, ['run', '--dest', dest, '--no-progress']);
  });
  afterAll(async () => api.stop());

  it('ends complete, with linked buckets and aliases skipped and said so', async () => {
    expect(result.code, result.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as { status: string; project: { skipped: { id: string }[] }; tables: { id: string }[] };
    expect(manifest.status).toBe('complete');
    expect(manifest.project.skipped.map((s) => s.id).sort()).toEqual(['out.c-shared', 'out.c-shared.customers']);
    expect(manifest.tables.map((t) => t.id).sort()).toEqual(['in.c-main.customers', 'in.c-main.empty', 'in.c-main.orders', 'sys.c-keboola.runs']);
    expect(result.stderr).toMatch(/skip\s+out\.c-shared: linked bucket/);
  });

  it('writes buckets.json and tables.json as the API answered them', async () => {
    const fixtureBuckets = JSON.parse(await readFile(join(FIXTURE, 'buckets.json'), 'utf8')) as { id: string; sourceBucket?: unknown }[];
    const buckets = JSON.parse(await readFile(join(dest, 'buckets.json'), 'utf8')) as unknown[];
    expect(buckets).toEqual(fixtureBuckets.filter((b) => !b.sourceBucket));
    const tables = JSON.parse(await readFile(join(dest, 'tables.json'), 'utf8')) as { id: string; columns: string[] }[];
    expect(tables.map((t) => t.id).sort()).toEqual(['in.c-main.customers', 'in.c-main.empty', 'in.c-main.orders', 'sys.c-keboola.runs']);
  });

  it('writes configurations.json without rows or state, and each configuration with rows, state and every version', async () => {
    const configurations = JSON.parse(await readFile(join(dest, 'configurations.json'), 'utf8')) as { id: string; configurations: Record<string, unknown>[] }[];
    for (const component of configurations) {
      for (const config of component.configurations) {
        expect(config).not.toHaveProperty('rows');
        expect(config).not.toHaveProperty('state');
        const file = JSON.parse(await readFile(join(dest, 'configurations', component.id, `${String(config.id)}.json`), 'utf8')) as {
          rows: { _versions: unknown[] }[];
          state: unknown;
          _versions: { version: number }[];
        };
        expect(file).toHaveProperty('state');
        expect(file._versions.length).toBeGreaterThan(0);
        for (const row of file.rows) expect(Array.isArray(row._versions)).toBe(true);
      }
    }
  });

  it("writes what Keboola's restore engine reads besides: branch metadata, triggers, notifications, permanent files, configuration metadata", async () => {
    const json = async (key: string): Promise<unknown> => JSON.parse(await readFile(join(dest, key), 'utf8')) as unknown;
    const fixture = async (name: string): Promise<unknown> => JSON.parse(await readFile(join(FIXTURE, name), 'utf8')) as unknown;
    expect(await json('defaultBranchMetadata.json')).toEqual(await fixture('branch-metadata.json'));
    expect(await json('triggers.json')).toEqual(await fixture('triggers.json'));
    // Only the default branch's (101) subscriptions, as php-kbc-project-backup keeps them.
    const notifications = (await fixture('notifications.json')) as { id: string }[];
    expect(await json('notifications.json')).toEqual([notifications[0]]);
    // Only the permanent file (maxAgeDays null), listed as {id, name, tags}, its bytes under files/<id>.
    expect(await json('permanentFiles.json')).toEqual([{ id: 800000001, name: 'contacts.txt', tags: ['docs', 'kept'] }]);
    const bytes = await readFile(join(dest, 'files', '800000001'));
    expect(bytes.equals(await readFile(join(FIXTURE, 'file-data-800000001.txt')))).toBe(true);
    expect(existsSync(join(dest, 'files', '800000002'))).toBe(false);
    // .json.metadata beside the one configuration that has metadata, none beside the others.
    const metadata = (await fixture('configuration-metadata.json')) as Record<string, unknown>;
    expect(await json('configurations/keboola.ex-db-mysql/1001.json.metadata')).toEqual(metadata['keboola.ex-db-mysql/1001']);
    expect(existsSync(join(dest, 'configurations/keboola.ex-db-mysql/1002.json.metadata'))).toBe(false);
    // Each in the manifest's files, with its size and sha256, so verify and copy take them.
    const manifest = (await json('takeout-manifest.json')) as { files: { key: string; bytes: number; sha256: string }[] };
    const listed = new Map(manifest.files.map((f) => [f.key, f]));
    for (const key of ['defaultBranchMetadata.json', 'triggers.json', 'notifications.json', 'permanentFiles.json', 'files/800000001', 'configurations/keboola.ex-db-mysql/1001.json.metadata']) {
      const body = await readFile(join(dest, key));
      expect(listed.get(key), key).toEqual({ key, bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
    }
    const verify = await runCli(['verify', dest]);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('copies every slice byte for byte from the project S3, and the parts plus header give the table', async () => {
    const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as {
      tables: { id: string; columns: string[]; rows: number; slices: { key: string }[] }[];
    };
    const orders = manifest.tables.find((t) => t.id === 'in.c-main.orders')!;
    expect(orders.slices.length).toBeGreaterThanOrEqual(3);
    const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
    expect(file.objectKeys.length).toBe(orders.slices.length);
    for (const [i, key] of file.objectKeys.entries()) {
      expect((await readFile(join(dest, orders.slices[i]!.key))).equals(await s3Object(key))).toBe(true);
    }
    const data = Buffer.concat(await Promise.all(orders.slices.map(async (s) => gunzipSync(await readFile(join(dest, s.key)))))).toString();
    const source = parse(await readFile(join(FIXTURE, 'data', 'in.c-main.orders.csv'))) as string[][];
    expect(source[0]).toEqual(orders.columns);
    expect(parse(data)).toEqual(source.slice(1));
    expect(orders.rows).toBe(source.length - 1);
    const empty = manifest.tables.find((t) => t.id === 'in.c-main.empty')!;
    expect(empty.slices).toEqual([]);
  });

  it('queues every export before polling any', () => {
    const log = api.state.log.map((l) => l.endpoint);
    const lastQueue = log.lastIndexOf('POST tables/{id}/export-async');
    const firstPoll = log.indexOf('GET jobs/{id}');
    expect(lastQueue).toBeGreaterThan(-1);
    expect(lastQueue).toBeLessThan(firstPoll);
  });

  it('files merge of a table\'s parts with its tables.json header reproduces the table', async () => {
    const out = join(await tempFolder('kbc-merge'), 'orders.csv');
    const merged = await runCli(['files', 'download', join(dest, 'takeout-manifest.json'), '--table', 'in.c-main.orders', '-o', out, '-q']);
    expect(merged.code, merged.stderr).toBe(0);
    expect(parse(await readFile(out))).toEqual(parse(await readFile(join(FIXTURE, 'data', 'in.c-main.orders.csv'))));
  });
});

describe("the files Keboola's restore engine reads, when the project does not give them all", () => {
  it('goes on without what the token may not read and without a notification service, says so, and writes empty lists', async () => {
    const api = await server({ faults: { forbidden: ['GET triggers', 'GET files'] }, notificationService: false });
    try {
      const dest = join(await tempFolder('kbc-extras'), 't');
      const result = await kbc(api, ['run', '--dest', dest, '--no-progress']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/triggers not taken: Storage API GET triggers: HTTP 403/);
      expect(result.stderr).toMatch(/permanent files not taken: Storage API GET files: HTTP 403/);
      expect(result.stderr).toMatch(/the stack lists no notification service: notifications\.json is empty/);
      for (const key of ['triggers.json', 'notifications.json', 'permanentFiles.json']) expect(JSON.parse(await readFile(join(dest, key), 'utf8'))).toEqual([]);
      expect(existsSync(join(dest, 'files'))).toBe(false);
      expect(result.stderr).not.toContain(TOKEN);
    } finally {
      await api.stop();
    }
  });

  it('--structure-only still takes permanent files, as Keboola\'s backup does with exportStructureOnly', async () => {
    const api = await server();
    try {
      const dest = join(await tempFolder('kbc-structure'), 't');
      const result = await kbc(api, ['run', '--dest', dest, '--no-progress', '--structure-only']);
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(await readFile(join(dest, 'permanentFiles.json'), 'utf8'))).toEqual([{ id: 800000001, name: 'contacts.txt', tags: ['docs', 'kept'] }]);
      expect((await readFile(join(dest, 'files', '800000001'))).equals(await readFile(join(FIXTURE, 'file-data-800000001.txt')))).toBe(true);
    } finally {
      await api.stop();
    }
  });
});

describe('Storage API failures', () => {
  it('a bad token is an authentication error (4), in one line, and the token is never printed', async () => {
    const api = await server();
    try {
      const result = await kbc(api, ['run', '--dest', join(await tempFolder('kbc-bad'), 't'), '--json'], 'wrong-token-CANARY-12345');
      expect(result.code).toBe(4);
      expect(errorLines(result.stderr)).toHaveLength(1);
      expect(result.stderr).toMatch(/tokens\/verify: HTTP 401/);
      expect(result.stderr + result.stdout).not.toContain('CANARY-12345');
    } finally {
      await api.stop();
    }
  });

  it('recovers from a 429 storm with Retry-After and from a maintenance window', async () => {
    const api = await server({ faults: { rateLimit: { count: 3, retryAfterSeconds: 0 }, maintenance: { count: 2, retryAfterSeconds: 0 } } });
    try {
      const result = await kbc(api, ['run', '--dest', join(await tempFolder('kbc-429'), 't'), '-q']);
      expect(result.code, result.stderr).toBe(0);
      expect(api.state.log.filter((l) => l.status === 429)).toHaveLength(3);
      expect(api.state.log.filter((l) => l.status === 503)).toHaveLength(2);
    } finally {
      await api.stop();
    }
  });

  it('a failed export job fails its table (exit 3) with the job error in one line; the others complete', async () => {
    const api = await server({ faults: { failingTables: ['in.c-main.customers'] } });
    try {
      const dest = join(await tempFolder('kbc-job'), 't');
      const result = await kbc(api, ['run', '--dest', dest, '--no-progress']);
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/in\.c-main\.customers: export job \d+ failed/);
      const manifest = JSON.parse(await readFile(join(dest, 'takeout-manifest.json'), 'utf8')) as { status: string };
      expect(manifest.status).toBe('partial');
    } finally {
      await api.stop();
    }
  });

  it('fetches the file again when its credentials have expired', async () => {
    const api = await server({ faults: { expiredCredentials: true } });
    try {
      const result = await kbc(api, ['run', '--dest', join(await tempFolder('kbc-exp'), 't'), '-q', '--include', 'in.c-main.orders']);
      expect(result.code, result.stderr).toBe(0);
      const fileGets = api.state.log.filter((l) => l.endpoint === 'GET files/{id}').length;
      expect(fileGets).toBeGreaterThan(1);
    } finally {
      await api.stop();
    }
  });
});

describe('a slice missing from the project S3', () => {
  it('fails its table with not found (5), names the slice, and leaves no manifest', async () => {
    const api = await server();
    try {
      const first = await kbc(api, ['run', '--dest', join(await tempFolder('kbc-miss1'), 't'), '-q', '--include', 'in.c-main.orders']);
      expect(first.code, first.stderr).toBe(0);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
      await rawS3Client(s3Endpoint).send(new DeleteObjectCommand({ Bucket: OTHER_BUCKET, Key: file.objectKeys[1]! }));
      // The same export again is a cache hit on the same file, now with a hole in it.
      const dest = join(await tempFolder('kbc-miss2'), 't');
      const result = await kbc(api, ['run', '--dest', dest, '--no-progress', '--include', 'in.c-main.orders']);
      expect(result.code).toBe(5);
      expect(result.stderr).toContain(file.objectKeys[1]!.split('/').pop()!);
      await expect(readFile(join(dest, 'takeout-manifest.json'))).rejects.toThrow();
    } finally {
      await api.stop();
    }
  });
});

describe('takeout table export from the Storage API', () => {
  it('passes columns, where filters and limit to export-async and merges into one file with one header', async () => {
    const api = await server();
    try {
      const out = join(await tempFolder('kbc-table'), 'subset.csv');
      const source = parse(await readFile(join(FIXTURE, 'data', 'in.c-main.orders.csv'))) as string[][];
      const [header, ...rows] = source;
      const column = header![0]!;
      const value = rows[0]![0]!;
      const result = await kbc(api, ['table', 'export', 'in.c-main.orders', '-o', out, '-q', '--columns', column, '--where', `${column} eq ${value}`]);
      expect(result.code, result.stderr).toBe(0);
      const got = parse(await readFile(out)) as string[][];
      expect(got[0]).toEqual([column]);
      expect(got.slice(1)).toEqual(rows.filter((r) => r[0] === value).map((r) => [r[0]]));
      const job = [...api.state.jobs.values()].at(-1)!;
      expect(job.operationParams.export.whereFilters).toEqual([{ column, operator: 'eq', values: [value] }]);
    } finally {
      await api.stop();
    }
  });
});

describe('takeout table export -o of a Storage API table (gzipped slices merged)', () => {
  it.each([['plain', []], ['--gzip', ['--gzip']]])('%s: the done event counts the rows written, not 0', async (_name, extra) => {
    const api = await server();
    try {
      const out = join(await tempFolder('kbc-table-rows'), 'orders.csv');
      const result = await kbc(api, ['table', 'export', 'in.c-main.orders', '-o', `${out}${extra.length ? '.gz' : ''}`, '--json', ...extra]);
      expect(result.code, result.stderr).toBe(0);
      const source = parse(await readFile(join(FIXTURE, 'data', 'in.c-main.orders.csv'))) as string[][];
      const done = result.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; rows?: number }).find((e) => e.type === 'table:done');
      expect(done?.rows).toBe(source.length - 1);
    } finally {
      await api.stop();
    }
  });
});

describe('takeout files download FILE_ID from the Storage API', () => {
  it('merges a sliced file by id, with the header given by --columns', async () => {
    const api = await server();
    try {
      const dest = join(await tempFolder('kbc-file'), 't');
      expect((await kbc(api, ['run', '--dest', dest, '-q', '--include', 'in.c-main.orders'])).code).toBe(0);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.orders')!;
      const source = parse(await readFile(join(FIXTURE, 'data', 'in.c-main.orders.csv'))) as string[][];
      const out = join(await tempFolder('kbc-file-out'), 'orders.csv');
      const result = await kbc(api, ['files', 'download', String(file.id), '-o', out, '-q', '--columns', source[0]!.join(',')]);
      expect(result.code, result.stderr).toBe(0);
      expect(parse(await readFile(out))).toEqual(source);
    } finally {
      await api.stop();
    }
  });

  it('downloads a non-sliced file (one gzip with its own header) without adding another header', async () => {
    const api = await server({ sliced: false });
    try {
      const out = join(await tempFolder('kbc-file-ns'), 'customers.csv');
      expect((await kbc(api, ['table', 'export', 'in.c-main.customers', '-o', join(out, '..', 'first.csv'), '-q'])).code).toBe(0);
      const file = [...api.state.files.values()].find((f) => f.tableId === 'in.c-main.customers')!;
      const result = await kbc(api, ['files', 'download', String(file.id), '-o', out, '-q']);
      expect(result.code, result.stderr).toBe(0);
      expect(parse(await readFile(out))).toEqual(parse(await readFile(join(FIXTURE, 'data', 'in.c-main.customers.csv'))));
    } finally {
      await api.stop();
    }
  });

  it('refuses what is not a file id', async () => {
    const api = await server();
    try {
      const result = await kbc(api, ['files', 'download', '../etc/passwd', '-o', '-', '-q']);
      expect(result.code).toBe(2);
      expect(errorLines(result.stderr)).toHaveLength(1);
    } finally {
      await api.stop();
    }
  });
});
