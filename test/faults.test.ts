import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { errorLines, readTakeout, removeTempFolders, runCli, s3Store, sha256, tempFolder, walkFiles } from './helpers/cli.js';
import type { CliResult } from './helpers/cli.js';
import { rawS3Client, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { startFaultProxy } from './faults/proxy.js';
import type { FaultProxy } from './faults/proxy.js';

/**
 * S3 failures injected by a proxy in front of s3rver (test/faults/proxy.ts): throttling that the
 * SDK's retries absorb, persistent server errors, a silent server, a response cut mid-body.
 * Each case checks the exit code, the one-line error and what is left behind.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
/** One table of ~12 MB stored uncompressed, so with --part-size 5MB it goes up in 3 parts. */
const BIG_TABLE = 'in.c-big.big';
const BIG_KEY = 'in/c-big/big.part_0.csv.gz';
let bigSource: string;
let proxy: FaultProxy;

function s3Args(endpointUrl: string): string[] {
  return ['--endpoint-url', endpointUrl, '--access-key-id', S3RVER_ACCESS_KEY_ID, '--secret-access-key', S3RVER_SECRET_ACCESS_KEY, '--region', 'us-east-1'];
}

function runBig(prefix: string, extra: string[] = [], timeoutMs?: number): Promise<CliResult> {
  return runCli(
    ['run', '--source', bigSource, '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--compression-level', '0', '--part-size', '5MB', ...s3Args(proxy.url), ...extra],
    timeoutMs === undefined ? {} : { timeoutMs },
  );
}

async function keysUnder(prefix: string): Promise<string[]> {
  return s3Store(client, TEST_BUCKET, prefix).list();
}

const isUploadPart = (method: string | undefined, url: string | undefined): boolean => method === 'PUT' && /[?&]partNumber=/.test(url ?? '');
const isPutObject = (method: string | undefined, url: string | undefined): boolean => method === 'PUT' && !/[?&]uploadId=/.test(url ?? '');

beforeAll(async () => {
  bigSource = await tempFolder('faults-source');
  await mkdir(path.join(bigSource, 'in.c-big'), { recursive: true });
  const rows = ['"id","payload"'];
  for (let i = 0; i < 100_000; i += 1) rows.push(`"${i}","${randomBytes(60).toString('hex')}"`);
  await writeFile(path.join(bigSource, 'in.c-big', 'big.csv'), `${rows.join('\n')}\n`);
});

beforeAll(async () => {
  proxy = await startFaultProxy(endpoint);
});

afterEach(() => {
  proxy.rules.length = 0;
  proxy.requests.length = 0;
});

afterAll(async () => {
  await proxy.stop();
  client.destroy();
  await removeTempFolders();
});

describe('S3 faults (through a fault-injecting proxy)', () => {
  it('absorbs 503 SlowDown on the first two UploadPart and PutObject attempts; objects are intact', async () => {
    const prefix = uniquePrefix('faults-slowdown');
    proxy.rules.push(
      { match: (req) => isUploadPart(req.method, req.url), times: 2, action: { kind: 'status', status: 503, code: 'SlowDown' } },
      { match: (req) => isPutObject(req.method, req.url), times: 2, action: { kind: 'status', status: 503, code: 'SlowDown' } },
    );
    const result = await runBig(prefix);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(proxy.requests.filter((r) => r.status === 503)).toHaveLength(4);
    expect(proxy.requests.filter((r) => isUploadPart(r.method, r.url) && r.status === 200).length).toBeGreaterThanOrEqual(3);

    // Read back through s3rver directly, not the proxy.
    const takeout = await readTakeout(s3Store(client, TEST_BUCKET, prefix));
    const table = takeout.manifest.tables.find((t) => t.id === BIG_TABLE)!;
    expect(table.slices.map((s) => s.key)).toEqual([BIG_KEY]);
    for (const slice of table.slices) {
      const body = await takeout.store.get(slice.key);
      expect(body.length).toBe(slice.bytes);
      expect(sha256(body)).toBe(slice.sha256);
    }
    for (const file of takeout.manifest.files) expect(sha256(await takeout.store.get(file.key))).toBe(file.sha256);
    expect((await takeout.tableData(BIG_TABLE)).toString('utf8').split('\n').filter(Boolean)).toHaveLength(100_000);
  });

  it('fails on a persistent 500 from UploadPart: one line naming the key, no manifest, upload aborted', async () => {
    const prefix = uniquePrefix('faults-500');
    proxy.rules.push({ match: (req) => isUploadPart(req.method, req.url), action: { kind: 'status', status: 500, code: 'InternalError' } });
    const result = await runBig(prefix);
    // The part's 500 is what is reported, not the failure of the abort that follows it (s3rver answers 405).
    expect(result.code).not.toBe(0);
    expect(Object.values(ERROR_CODES)).toContain(result.code);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`s3://${TEST_BUCKET}/${prefix}${BIG_KEY}`);
    expect(errors[0]).toMatch(/500|InternalError/);
    expect(errors[0]).not.toMatch(/405|MethodNotAllowed/);
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
    // s3rver answers AbortMultipartUpload with 405 NotImplemented; what matters is that it was sent.
    expect(proxy.requests.some((r) => r.method === 'DELETE' && /[?&]uploadId=/.test(r.url))).toBe(true);
  });

  it('gives up on a silent server with exit 8 (NETWORK) under --request-timeout 1000', async () => {
    const prefix = uniquePrefix('faults-stall');
    proxy.rules.push({ match: () => true, action: { kind: 'stall' } });
    const result = await runBig(prefix, ['--request-timeout', '1000'], 30_000);
    expect(result.code).toBe(ERROR_CODES.NETWORK);
    expect(result.durationMs).toBeLessThan(15_000);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/no answer from .* in time/);
    proxy.rules.length = 0;
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
  });

  it('rejects --request-timeout under 100 ms as a usage error', async () => {
    const result = await runCli(['run', '--dest', `s3://${TEST_BUCKET}/${uniquePrefix('faults-usage')}`, '--request-timeout', '50', ...s3Args(proxy.url)]);
    expect(result.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(errorLines(result.stderr)[0]).toContain('request-timeout');
    expect(proxy.requests).toEqual([]);
  });

  it('fails a download whose slice GET is cut mid-body, leaving no output and no temp file', async () => {
    const prefix = uniquePrefix('faults-truncate');
    const made = await runCli(['run', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args(endpoint)]);
    expect(made.code).toBe(0);
    const out = await tempFolder('faults-download');
    proxy.rules.push({ match: (req) => req.method === 'GET' && /\.csv\.gz(\?|$)/.test(req.url ?? ''), action: { kind: 'truncate', afterBytes: 200 } });
    const result = await runCli([
      'files',
      'download',
      `s3://${TEST_BUCKET}/${prefix}manifests/in.c-main.orders.manifest`,
      '-o',
      path.join(out, 'orders.csv'),
      ...s3Args(proxy.url),
    ]);
    expect(proxy.requests.some((r) => r.fault === 'truncate')).toBe(true);
    expect(result.code).not.toBe(0);
    expect(Object.values(ERROR_CODES)).toContain(result.code);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(await walkFiles(out)).toEqual([]);
  });
});
