import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseBandwidth, Throttle } from '../src/stores/network.js';
import { openDebugLog, requestLine } from '../src/cli/debuglog.js';
import { DEMO_PROJECT, removeTempFolders, runCli, startCli, tempFolder, walkFiles } from './helpers/cli.js';
import { expectOk } from './helpers/projects.js';
import { S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, TEST_BUCKET, OTHER_BUCKET, uniquePrefix } from './helpers/s3.js';
import { startFaultProxy } from './faults/proxy.js';
import { startStorageApi } from './keboola/server.js';

const s3Endpoint = inject('s3Endpoint');
const S3_ENV = { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: S3RVER_SECRET_ACCESS_KEY, AWS_REGION: 'us-east-1' };
const MiB = 1024 * 1024;

afterAll(removeTempFolders);

/** `debug: METHOD URL STATUS… N ms (attempt N)?` */
const DEBUG_LINE = /^debug: (GET|PUT|POST|HEAD|DELETE) (https?:\/\/\S+) (.+?) (\d+) ms(?: \(attempt (\d+)\))?$/;

function debugLines(text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('debug: '));
}

/** A project of one table of ~`bytes` random base64: with --compression-level 0 it is written at its size. */
async function incompressibleProject(name: string, bytes: number): Promise<string> {
  const root = path.join(await tempFolder(name), 'project');
  await mkdir(path.join(root, 'in.c-big'), { recursive: true });
  const rows: string[] = ['id,blob'];
  for (let i = 0, size = 0; size < bytes; i++) {
    const row = `${i},${randomBytes(48).toString('base64')}`;
    rows.push(row);
    size += row.length + 1;
  }
  await writeFile(path.join(root, 'in.c-big', 'events.csv'), `${rows.join('\n')}\n`);
  return root;
}

describe('--debug logs each HTTP request', () => {
  it('one line per request: signatures and tokens in the URL redacted, control characters escaped, in the file too', async () => {
    const url = 'https://b.s3.amazonaws.com/a%0Ab?X-Amz-Credential=AKIAEXAMPLE%2F20260101&X-Amz-Signature=deadbeefcafe&X-Amz-Security-Token=FQoGZXIvYXdzEJr&token=kbc-secret-123&partNumber=2';
    const line = requestLine({ method: 'GET', url: `${url}\u001b[31m`, status: 206, ms: 12.4, attempt: 3 });
    const lines: string[] = [];
    openDebugLog(undefined, (text) => lines.push(text)).line(line);
    expect(lines).toEqual([
      'debug: GET https://b.s3.amazonaws.com/a%0Ab?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***&token=***&partNumber=2\\u001b[31m 206 12 ms (attempt 3)',
    ]);
    expect(requestLine({ method: 'PUT', url: 'http://h/k', error: 'ECONNRESET', ms: 3, attempt: 1 })).toBe('debug: PUT http://h/k ECONNRESET 3 ms');
    const file = path.join(await tempFolder('debug-unit'), 'log');
    const log = openDebugLog(file, () => undefined);
    log.line(line);
    log.close();
    const written = await readFile(file, 'utf8');
    expect(written).toMatch(/^\d{4}-\d\d-\d\dT\S+Z debug: GET /);
    expect(written).not.toMatch(/deadbeef|FQoG|kbc-secret/);
    expect(written).not.toContain('\u001b');
    await expect(async () => openDebugLog(path.join(file, 'sub', 'log'), () => undefined)).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('S3: method, URL, status, time, one line per request; retries say their attempt; no secret', async () => {
    const proxy = await startFaultProxy(s3Endpoint);
    try {
      // The first upload of the orders slice fails with 503: the SDK retries it, and the log shows attempt 2.
      proxy.rules.push({ match: (req) => req.method === 'PUT' && (req.url ?? '').includes('orders.part_0'), times: 1, action: { kind: 'status', status: 503, code: 'SlowDown' } });
      const prefix = uniquePrefix('debug-s3');
      const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--endpoint-url', proxy.url, '--debug', '--no-progress'], { env: S3_ENV });
      expectOk(result);
      const lines = debugLines(result.stderr);
      for (const line of lines) expect(line).toMatch(DEBUG_LINE);
      // Each request the server saw is one line.
      expect(lines.length).toBe(proxy.requests.length);
      const orders = lines.filter((line) => line.includes(`/${TEST_BUCKET}/${prefix}in/c-main/orders.part_0.csv.gz`));
      expect(orders[0]).toMatch(/^debug: PUT http:\/\/127\.0\.0\.1:\d+\/\S+ 503 SlowDown \d+ ms$/);
      expect(orders[1]).toMatch(/ 200 \d+ ms \(attempt 2\)$/);
      expect(lines.some((line) => / 404 NotFound /.test(line) && line.startsWith('debug: HEAD'))).toBe(true);
      expect(result.stderr).not.toContain(S3RVER_SECRET_ACCESS_KEY + '/');
      expect(result.stderr.toLowerCase()).not.toContain('authorization');
      expect(result.stderr).not.toContain('x-amz-');
    } finally {
      await proxy.stop();
    }
  });

  it('--log-file: the lines go to the file (created 0600, appended, no colour), not to stderr; without --debug only errors', async () => {
    const folder = await tempFolder('debug-log-file');
    const log = path.join(folder, 'takeout.log');
    const prefix = uniquePrefix('debug-log-file');
    const args = ['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--endpoint-url', s3Endpoint, '--no-progress', '--log-file', log];
    const first = await runCli([...args, '--debug'], { env: S3_ENV });
    expectOk(first);
    expect(debugLines(first.stderr)).toEqual([]);
    expect((await stat(log)).mode & 0o777).toBe(0o600);
    const written = (await readFile(log, 'utf8')).trimEnd().split('\n');
    expect(written.length).toBeGreaterThan(10);
    for (const line of written) expect(line.replace(/^\S+ /, '')).toMatch(DEBUG_LINE);
    expect(written.join('\n')).not.toContain('\u001b');
    // Without --debug: no request lines; the error is kept in the file as well as printed.
    const second = await runCli([...args], { env: S3_ENV });
    expect(second.code).toBe(9);
    const after = (await readFile(log, 'utf8')).trimEnd().split('\n');
    expect(after.slice(0, written.length)).toEqual(written);
    expect(after.slice(written.length)).toHaveLength(1);
    expect(after.at(-1)).toMatch(/takeout: error: .*\[EXISTS, exit 9\]/);
  });

  it('the Storage API and its file storage: every request logged, the token never', async () => {
    const token = `kbc-net-${randomBytes(8).toString('hex')}-SECRET`;
    const api = await startStorageApi({
      s3Endpoint,
      bucket: OTHER_BUCKET,
      token,
      fixtureDir: fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url)),
      jobPolls: { waiting: 0, processing: 0 },
      faults: { rateLimit: { count: 1, retryAfterSeconds: 0, endpoint: 'GET tables' } },
    });
    try {
      const dest = path.join(await tempFolder('debug-keboola'), 'out');
      const result = await runCli(['run', '--source', `keboola+${api.url}`, '--dest', dest, '--debug', '--no-progress', '--include', 'in.c-main.*'], {
        env: { KBC_STORAGE_TOKEN: token, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint },
      });
      expectOk(result);
      const lines = debugLines(result.stderr);
      for (const line of lines) expect(line).toMatch(DEBUG_LINE);
      const storage = lines.filter((line) => line.includes(`${api.url}/v2/storage/`));
      expect(storage.some((line) => /^debug: GET \S+\/v2\/storage\/tables\S* 429 \d+ ms$/.test(line))).toBe(true);
      expect(storage.some((line) => /^debug: GET \S+\/v2\/storage\/tables\S* 200 \d+ ms \(attempt 2\)$/.test(line))).toBe(true);
      expect(storage.some((line) => line.startsWith('debug: POST '))).toBe(true);
      // The exported slices are read from the project's file storage through the S3 client.
      expect(lines.some((line) => line.startsWith(`debug: GET ${s3Endpoint}/${OTHER_BUCKET}/`) && / 200 /.test(line))).toBe(true);
      expect(result.stderr).not.toContain(token);
    } finally {
      await api.stop();
    }
  });
});

describe('--bwlimit', () => {
  it('parses rates as rclone does: binary units, a bare number in KiB/s, 0 and off for none', () => {
    expect(parseBandwidth('10M')).toBe(10 * MiB);
    expect(parseBandwidth('512k')).toBe(512 * 1024);
    expect(parseBandwidth('1.5MiB/s')).toBe(1.5 * MiB);
    expect(parseBandwidth('100')).toBe(100 * 1024);
    expect(parseBandwidth('1G')).toBe(1024 * MiB);
    expect(parseBandwidth('0')).toBeUndefined();
    expect(parseBandwidth('off')).toBeUndefined();
    expect(() => parseBandwidth('fast')).toThrow(/--bwlimit: "fast" is not a rate/);
    expect(() => parseBandwidth('10 MB/h')).toThrow(/not a rate/);
  });

  it('one bucket for all streams: four parallel streams together keep to the rate; an abort ends a wait at once', async () => {
    const throttle = new Throttle(4 * MiB);
    const started = performance.now();
    await Promise.all([0, 1, 2, 3].map(async () => {
      for (let i = 0; i < 8; i++) await throttle.take(64 * 1024);
    }));
    // 2 MiB at 4 MiB/s: 0.5 s less the 0.1 s burst.
    expect(performance.now() - started).toBeGreaterThan(350);
    const controller = new AbortController();
    const slow = new Throttle(1024, controller.signal);
    const waiting = slow.take(MiB);
    setTimeout(() => controller.abort(), 50);
    const before = performance.now();
    await expect(waiting).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(performance.now() - before).toBeLessThan(500);
  });

  it('a run of ~4 MiB at 1M takes ~4 s, locally and to S3; a download from S3 too', async () => {
    const project = await incompressibleProject('bwlimit', 4 * MiB);
    const dest = path.join(await tempFolder('bwlimit-out'), 'out');
    const local = await runCli(['run', '--source', project, '--dest', dest, '--compression-level', '0', '--bwlimit', '1M', '--no-progress']);
    expectOk(local);
    const files = await walkFiles(dest);
    let total = 0;
    for (const file of files) total += (await stat(path.join(dest, file))).size;
    expect(total).toBeGreaterThan(4 * MiB);
    expect(local.durationMs).toBeGreaterThan(3500);
    expect(local.durationMs).toBeLessThan(6500);

    const url = `s3://${TEST_BUCKET}/${uniquePrefix('bwlimit')}`;
    const s3 = await runCli(['run', '--source', project, '--dest', url, '--endpoint-url', s3Endpoint, '--compression-level', '0', '--bwlimit', '1M', '--no-progress'], { env: S3_ENV });
    expectOk(s3);
    expect(s3.durationMs).toBeGreaterThan(3500);
    expect(s3.durationMs).toBeLessThan(6500);

    const out = path.join(await tempFolder('bwlimit-download'), 'events.csv');
    const download = await runCli(['files', 'download', `${url}takeout-manifest.json`, '--table', 'in.c-big.events', '-o', out, '--endpoint-url', s3Endpoint, '--bwlimit', '1M', '-q'], { env: S3_ENV });
    expectOk(download);
    expect((await stat(out)).size).toBeGreaterThan(4 * MiB - 1024);
    expect(download.durationMs).toBeGreaterThan(3500);
    expect(download.durationMs).toBeLessThan(6500);
  });

  it('Ctrl-C during a throttled run ends within 2 s', async () => {
    const project = path.join(await tempFolder('bwlimit-int'), 'project');
    await cp(DEMO_PROJECT, project, { recursive: true });
    const dest = path.join(await tempFolder('bwlimit-int-out'), 'out');
    const running = startCli(['run', '--source', project, '--dest', dest, '--compression-level', '0', '--bwlimit', '64k', '--json']);
    await running.waitForStdout((out) => out.includes('"table:start"'), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalled = Date.now();
    running.child.kill('SIGINT');
    const result = await running.done;
    expect(Date.now() - signalled).toBeLessThan(2000);
    expect(result.code).toBe(130);
  });
});

describe('Ctrl-C while the first check of a destination stalls', () => {
  it.each([
    ['run', (dest: string) => ['run', '--source', 'demo', '--dest', dest]],
    ['run --dry-run', (dest: string) => ['run', '--source', 'demo', '--dest', dest, '--dry-run']],
    ['dataset export', (dest: string) => ['dataset', 'export', 'in.c-main.customers', '--source', 'demo', '--dest', dest]],
  ])('%s ends at once with exit 130, not at the shutdown deadline', async (_name, args) => {
    // An endpoint that takes the connection and never answers: the destination's first request stalls.
    const sockets: Socket[] = [];
    let connected!: () => void;
    const reached = new Promise<void>((resolve) => (connected = resolve));
    const silent = createServer((socket) => {
      sockets.push(socket);
      connected();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const dest = `s3://${TEST_BUCKET}/${uniquePrefix('stalled-check')}`;
      const cli = startCli([...args(dest), '--endpoint-url', `http://127.0.0.1:${port}`, '--no-progress'], { env: S3_ENV });
      await reached;
      await new Promise((resolve) => setTimeout(resolve, 200));
      const signalled = Date.now();
      cli.child.kill('SIGINT');
      const result = await cli.done;
      expect(result.code, result.stderr).toBe(130);
      expect(Date.now() - signalled).toBeLessThan(3000);
      expect(result.stderr).not.toMatch(/shutdown did not finish/);
      expect(result.stderr).toMatch(/interrupted/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 30_000);
});
