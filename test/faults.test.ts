import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { errorLines, readTakeout, removeTempFolders, runCli, s3Store, sha256, tempFolder, walkFiles } from './helpers/cli.js';
import type { CliResult } from './helpers/cli.js';
import { bigPayloadProject } from './helpers/projects.js';
import { rawS3Client, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { faultProxyForTests } from './faults/proxy.js';

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
const proxy = faultProxyForTests(endpoint);

function runBig(prefix: string, extra: string[] = [], timeoutMs?: number): Promise<CliResult> {
  return runCli(
    ['run', '--source', bigSource, '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--compression-level', '0', '--part-size', '5MB', ...s3CliArgs(proxy.url), ...extra],
    timeoutMs === undefined ? {} : { timeoutMs },
  );
}

async function keysUnder(prefix: string): Promise<string[]> {
  return s3Store(client, TEST_BUCKET, prefix).list();
}

const isUploadPart = (method: string | undefined, url: string | undefined): boolean => method === 'PUT' && /[?&]partNumber=/.test(url ?? '');
const isPutObject = (method: string | undefined, url: string | undefined): boolean => method === 'PUT' && !/[?&]uploadId=/.test(url ?? '');

beforeAll(async () => {
  bigSource = await bigPayloadProject('faults-source');
});

afterAll(async () => {
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
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${uniquePrefix('faults-usage')}`, '--request-timeout', '50', ...s3CliArgs(proxy.url)]);
    expect(result.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(errorLines(result.stderr)[0]).toContain('request-timeout');
    expect(proxy.requests).toEqual([]);
  });

  it('fails a download whose slice GET is cut mid-body, leaving no output and no temp file', async () => {
    const prefix = uniquePrefix('faults-truncate');
    const made = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3CliArgs(endpoint)]);
    expect(made.code).toBe(0);
    const out = await tempFolder('faults-download');
    proxy.rules.push({ match: (req) => req.method === 'GET' && /\.csv\.gz(\?|$)/.test(req.url ?? ''), action: { kind: 'truncate', afterBytes: 200 } });
    const result = await runCli([
      'files',
      'download',
      `s3://${TEST_BUCKET}/${prefix}manifests/in.c-main.orders.manifest`,
      '-o',
      path.join(out, 'orders.csv'),
      ...s3CliArgs(proxy.url),
    ]);
    expect(proxy.requests.some((r) => r.fault === 'truncate')).toBe(true);
    expect(result.code).not.toBe(0);
    expect(Object.values(ERROR_CODES)).toContain(result.code);
    expect(errorLines(result.stderr)).toHaveLength(1);
    expect(await walkFiles(out)).toEqual([]);
  });
});

/** Path-style requests: `/bucket` (or `/bucket/`) is about the bucket, `/bucket/key` about an object. */
function pathParts(url: string | undefined): string[] {
  return new URL(url ?? '/', 'http://proxy').pathname.split('/').filter(Boolean);
}
const isHeadBucket = (method: string | undefined, url: string | undefined): boolean => method === 'HEAD' && pathParts(url).length === 1;
const isHeadObject = (method: string | undefined, url: string | undefined): boolean => method === 'HEAD' && pathParts(url).length > 1;

describe('S3 error answers (through a fault-injecting proxy)', () => {
  function runSmall(prefix: string, extra: string[] = [], args: string[] = s3CliArgs(proxy.url)): Promise<CliResult> {
    return runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...args, ...extra]);
  }

  it('reports ExpiredToken as expired credentials (exit 4), naming the bucket', async () => {
    const prefix = uniquePrefix('faults-expired');
    const expired = { kind: 'status', status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' } as const;
    proxy.rules.push(
      { match: (req) => isHeadBucket(req.method, req.url), action: expired },
      { match: (req) => isUploadPart(req.method, req.url), action: expired },
      { match: (req) => isPutObject(req.method, req.url), action: expired },
    );
    const result = await runSmall(prefix, ['--session-token', 'old']);
    expect(result.code).toBe(ERROR_CODES.AUTH);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    // HeadBucket fails first, and a HEAD answer carries no body: the SDK sees a bare 400 with no code.
    expect(errors[0]).toMatch(/credentials or session token have probably expired/);
    expect(errors[0]).toContain(`bucket ${TEST_BUCKET}`);
    expect(errors[0]).not.toMatch(/failed \(HTTP 400\)/);
    expect(proxy.requests.some((r) => r.status === 400)).toBe(true);
    proxy.rules.length = 0;
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
  });

  it('does not take a bodiless 403 on HeadObject (no s3:ListBucket) for an absent takeout: exit 4, access denied', async () => {
    const prefix = uniquePrefix('faults-head403');
    proxy.rules.push({ match: (req) => isHeadObject(req.method, req.url), action: { kind: 'respond', status: 403 } });
    const result = await runSmall(prefix);
    expect(result.code).toBe(ERROR_CODES.AUTH);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/access denied \(403\) for HeadObject/);
    // The lease is the first object a run looks at.
    expect(errors[0]).toContain(`s3://${TEST_BUCKET}/${prefix}takeout-lease.json`);
    expect(errors[0]).toMatch(/missing object also answers 403/);
    // HeadBucket went through to s3rver and succeeded; the HeadObject was the injected 403.
    expect(proxy.requests.some((r) => isHeadBucket(r.method, r.url) && r.status === 200)).toBe(true);
    expect(proxy.requests.some((r) => isHeadObject(r.method, r.url) && r.status === 403)).toBe(true);
    // Nothing was uploaded after the denied pre-check.
    expect(proxy.requests.some((r) => r.method === 'PUT' || r.method === 'POST')).toBe(false);
    proxy.rules.length = 0;
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
  });

  it('fails with exit 4 naming the bucket when HeadBucket is denied under --expected-bucket-owner', async () => {
    const prefix = uniquePrefix('faults-owner');
    proxy.rules.push({ match: (req) => isHeadBucket(req.method, req.url), action: { kind: 'status', status: 403, code: 'AccessDenied', message: 'Access Denied' } });
    const result = await runSmall(prefix, ['--expected-bucket-owner', '111122223333']);
    expect(result.code).toBe(ERROR_CODES.AUTH);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    // A HEAD answer carries no body, so the code is not known; the status is reported.
    expect(errors[0]).toMatch(/access denied \(403\)/);
    expect(errors[0]).toContain(`bucket ${TEST_BUCKET}`);
    expect(result.stderr).toContain('--expected-bucket-owner');
    expect(proxy.requests.some((r) => r.method === 'PUT' || r.method === 'POST')).toBe(false);
    proxy.rules.length = 0;
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
  });

  it('reports InvalidAccessKeyId on HeadBucket with exit 4 and never prints the secret key', async () => {
    const prefix = uniquePrefix('faults-badkey');
    const secret = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETVALUE';
    proxy.rules.push({
      match: (req) => isHeadBucket(req.method, req.url),
      action: { kind: 'status', status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' },
    });
    const args = ['--endpoint-url', proxy.url, '--access-key-id', 'AKIAFAULTPROXYTEST01', '--secret-access-key', secret, '--region', 'us-east-1'];
    const result = await runSmall(prefix, [], args);
    expect(result.code).toBe(ERROR_CODES.AUTH);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    // The InvalidAccessKeyId code is in the body, which a HEAD answer cannot carry: a bare 403 is all the SDK
    // sees, so takeout asks again with a listing (a GET), whose answer names the reason.
    expect(errors[0]).toMatch(/the AWS access key id is not valid \(InvalidAccessKeyId\) for bucket takeout-test/);
    expect(proxy.requests.some((r) => r.method === 'GET' && r.url.includes('list-type=2'))).toBe(true);
    expect(result.stdout).not.toContain(secret);
    expect(result.stderr).not.toContain(secret);
    proxy.rules.length = 0;
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
  });

  it('reports ExpiredToken on PutObject/UploadPart (HeadBucket allowed) as expired credentials, exit 4', async () => {
    const prefix = uniquePrefix('faults-expired-put');
    const expired = { kind: 'status', status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' } as const;
    proxy.rules.push(
      { match: (req) => isUploadPart(req.method, req.url), action: expired },
      { match: (req) => isPutObject(req.method, req.url), action: expired },
    );
    const result = await runSmall(prefix, ['--session-token', 'old']);
    expect(result.code).toBe(ERROR_CODES.AUTH);
    const errors = errorLines(result.stderr);
    // The first table to meet the expired credentials stops the others; its line comes before the final one with the exit code.
    expect(errors.filter((line) => /\[AUTH, exit 4\]$/.test(line))).toHaveLength(1);
    for (const line of errors) expect(line).toMatch(/the AWS credentials have expired \(ExpiredToken\) for bucket takeout-test/);
    expect(proxy.requests.some((r) => isHeadBucket(r.method, r.url) && r.status === 200)).toBe(true);
    proxy.rules.length = 0;
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
  });

  it('reports InvalidAccessKeyId on PutObject/UploadPart by its code with exit 4', async () => {
    const prefix = uniquePrefix('faults-badkey-put');
    proxy.rules.push({
      match: (req) => isPutObject(req.method, req.url) || isUploadPart(req.method, req.url),
      action: { kind: 'status', status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' },
    });
    // s3rver checks the real keys on HeadBucket, so the run uses them; the proxy rejects the writes.
    const result = await runSmall(prefix);
    expect(result.code).toBe(ERROR_CODES.AUTH);
    const errors = errorLines(result.stderr);
    // The first table to meet the expired credentials stops the others; its line comes before the final one with the exit code.
    expect(errors.filter((line) => /\[AUTH, exit 4\]$/.test(line))).toHaveLength(1);
    for (const line of errors) expect(line).toMatch(/the AWS access key id is not valid \(InvalidAccessKeyId\) for bucket takeout-test/);
    proxy.rules.length = 0;
    expect(await keysUnder(prefix)).not.toContain('takeout-manifest.json');
  });
});
