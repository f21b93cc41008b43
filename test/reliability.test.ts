import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Store } from '../src/stores/store.js';
import { mapS3Error } from '../src/stores/s3/errors.js';
import { createS3Store } from '../src/stores/s3/store.js';
import { ERROR_CODES } from '../src/errors.js';
import { expectTakeoutError, readAll } from './store.contract.js';
import { errorLines, removeTempFolders, runCli, s3Store, tempFolder, walkFiles } from './helpers/cli.js';
import type { CliResult } from './helpers/cli.js';
import { rawS3Client, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, s3TestOptions, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { startFaultProxy } from './faults/proxy.js';
import type { FaultProxy, RecordedRequest } from './faults/proxy.js';

/**
 * S3 reliability cases through the fault proxy (test/faults/proxy.ts) in front of s3rver: a wrong
 * checksum header on a GET, create-only writes answered 412/409/501, expired session tokens with
 * refreshable credentials.
 */

const MiB = 1024 * 1024;
const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
let proxy: FaultProxy;

function s3Args(endpointUrl: string): string[] {
  return ['--endpoint-url', endpointUrl, '--access-key-id', S3RVER_ACCESS_KEY_ID, '--secret-access-key', S3RVER_SECRET_ACCESS_KEY, '--region', 'us-east-1'];
}

function context(result: CliResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr.slice(-3000)}`;
}

function query(url: string): URLSearchParams {
  return new URL(url, 'http://proxy').searchParams;
}
/** Path-style `/bucket/key…` request for an object (not the bucket). */
const isObject = (url: string | undefined): boolean => new URL(url ?? '/', 'http://proxy').pathname.split('/').filter(Boolean).length > 1;
const isPutObject = (r: { method?: string; url?: string }): boolean =>
  r.method === 'PUT' && isObject(r.url) && !query(r.url ?? '').has('uploadId') && !query(r.url ?? '').has('partNumber');
const isUploadPart = (r: { method?: string; url?: string }): boolean => r.method === 'PUT' && query(r.url ?? '').has('partNumber');
const isComplete = (r: { method?: string; url?: string }): boolean => r.method === 'POST' && query(r.url ?? '').has('uploadId');
const isAbort = (r: { method?: string; url?: string }): boolean => r.method === 'DELETE' && query(r.url ?? '').has('uploadId');

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

async function objectExists(key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: TEST_BUCKET, Key: key }));
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// 1. A wrong x-amz-checksum-crc32 on a GET

/** x-amz-checksum-crc32: the body's CRC-32 (zlib.crc32, in Node since 20.15), 4 bytes big-endian, base64. */
function crc32Base64(data: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(data));
  return out.toString('base64');
}

describe('a GET whose x-amz-checksum-crc32 does not match its body', () => {
  const ORDERS_SLICE = 'in/c-main/orders.part_0.csv.gz';
  let prefix: string;

  beforeAll(async () => {
    prefix = uniquePrefix('reliability-crc');
    const made = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args(endpoint)]);
    expect(made.code, context(made)).toBe(0);
  });

  function download(out: string): Promise<CliResult> {
    return runCli(['files', 'download', `s3://${TEST_BUCKET}/${prefix}manifests/in.c-main.orders.manifest`, '-o', path.join(out, 'orders.csv'), ...s3Args(proxy.url)]);
  }
  const isSliceGet = (req: { method?: string; url?: string }): boolean => req.method === 'GET' && (req.url ?? '').split('?')[0]!.endsWith(ORDERS_SLICE);

  it('sanity: the takeout has the one orders slice this test rewrites', async () => {
    const keys = await s3Store(client, TEST_BUCKET, prefix).list();
    expect(keys.filter((key) => key.startsWith('in/c-main/orders.'))).toEqual([ORDERS_SLICE]);
  });

  it('fails the download with exit 6 naming the slice and the header, leaving no output or temp file', async () => {
    const out = await tempFolder('reliability-crc-bad');
    proxy.rules.push({ match: isSliceGet, action: { kind: 'headers', set: { 'x-amz-checksum-crc32': 'AAAAAA==' } } });
    const result = await download(out);
    expect(result.code, context(result)).toBe(ERROR_CODES.INTEGRITY);
    const errors = errorLines(result.stderr);
    expect(errors, context(result)).toHaveLength(1);
    expect(errors[0]).toContain(`s3://${TEST_BUCKET}/${prefix}${ORDERS_SLICE}`);
    expect(errors[0]).toMatch(/do not match the x-amz-checksum-crc32 header/);
    expect(errors[0]).toMatch(/\[INTEGRITY, exit 6\]$/);
    expect(proxy.requests.some((r) => r.fault === 'headers')).toBe(true);
    expect(await walkFiles(out)).toEqual([]);
  });

  it('passes when the header is the body\'s CRC-32, and the GET asked for it (x-amz-checksum-mode: ENABLED)', async () => {
    const out = await tempFolder('reliability-crc-good');
    const stored = await client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}${ORDERS_SLICE}` }));
    const body = Buffer.from(await stored.Body!.transformToByteArray());
    proxy.rules.push({ match: isSliceGet, action: { kind: 'headers', set: { 'x-amz-checksum-crc32': crc32Base64(body) } } });
    const result = await download(out);
    expect(result.code, context(result)).toBe(0);
    const get = proxy.requests.find((r) => r.fault === 'headers');
    expect(get?.headers['x-amz-checksum-mode']).toBe('ENABLED');
    expect(await walkFiles(out)).toEqual(['orders.csv']);
  });

  it('maps the SDK\'s "Checksum mismatch" stream error to INTEGRITY naming the key', () => {
    const error = mapS3Error(
      new Error('Checksum mismatch: expected "AAAAAA==" but received "3Ed1Bw==" in response header "x-amz-checksum-crc32".'),
      { bucket: 'b', key: 'p/k.csv.gz', operation: 'GetObject', where: 'http://127.0.0.1:1' },
    );
    expect(error.code).toBe('INTEGRITY');
    expect(error.exitCode).toBe(6);
    expect(error.message).toBe('s3://b/p/k.csv.gz: the bytes received do not match the x-amz-checksum-crc32 header the server sent');
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Create-only writes (ifNoneMatch): 412, 409, 501

describe('create-only writes (ifNoneMatch) on S3, through the proxy', () => {
  let dest: Store;
  let prefix: string;

  beforeAll(() => {
    prefix = uniquePrefix('reliability-ifnonematch');
    // 5 MiB parts so 12 MB goes multipart.
    dest = createS3Store(`s3://${TEST_BUCKET}/${prefix}`, { s3: s3TestOptions(proxy.url, { partSize: 5 * MiB, partConcurrency: 2 }) });
  });

  afterAll(async () => {
    await dest.close?.();
  });

  it('sends If-None-Match: * on PutObject and maps 412 to EXISTS (exit 9) naming the key', async () => {
    proxy.rules.push({ match: (req) => isPutObject(req), action: { kind: 'status', status: 412, code: 'PreconditionFailed', message: 'At least one of the pre-conditions you specified did not hold' } });
    const error = await expectTakeoutError(dest.put('small.json', '{"a":1}', { ifNoneMatch: true }), 'EXISTS');
    expect(error.exitCode).toBe(9);
    expect(error.message).toBe(`s3://${TEST_BUCKET}/${prefix}small.json already exists at the destination`);
    const put = proxy.requests.find(isPutObject);
    expect(put?.headers['if-none-match']).toBe('*');
    expect(await objectExists(`${prefix}small.json`)).toBe(false);
  });

  it('sends no If-None-Match without the option', async () => {
    await dest.put('plain.json', '{}');
    expect(proxy.requests.find(isPutObject)?.headers['if-none-match']).toBeUndefined();
  });

  it('a streamed object that stays in one part is a conditional PutObject too', async () => {
    proxy.rules.push({ match: (req) => isPutObject(req), action: { kind: 'status', status: 412, code: 'PreconditionFailed' } });
    const writer = await dest.writer('one-part.bin', { ifNoneMatch: true });
    await writer.write(Buffer.alloc(100_000, 1));
    const error = await expectTakeoutError(writer.finish(), 'EXISTS');
    expect(error.message).toContain(`${prefix}one-part.bin already exists at the destination`);
    expect(proxy.requests.find(isPutObject)?.headers['if-none-match']).toBe('*');
  });

  it('a multipart upload carries it on CompleteMultipartUpload only; a 412 there aborts the upload (no orphan parts)', async () => {
    proxy.rules.push({ match: (req) => isComplete(req), action: { kind: 'status', status: 412, code: 'PreconditionFailed' } });
    const writer = await dest.writer('multi.bin', { ifNoneMatch: true });
    const chunk = Buffer.alloc(1 * MiB, 7);
    for (let i = 0; i < 12; i++) await writer.write(chunk);
    const error = await expectTakeoutError(writer.finish(), 'EXISTS');
    expect(error.exitCode).toBe(9);
    expect(error.message).toBe(`s3://${TEST_BUCKET}/${prefix}multi.bin already exists at the destination`);
    const parts = proxy.requests.filter(isUploadPart);
    expect(parts.length).toBe(3);
    for (const part of parts) expect(part.headers['if-none-match']).toBeUndefined();
    const complete = proxy.requests.find(isComplete);
    expect(complete?.headers['if-none-match']).toBe('*');
    expect(complete?.status).toBe(412);
    const uploadId = query(complete!.url).get('uploadId');
    // s3rver answers AbortMultipartUpload 405; what matters is that it was sent for this upload.
    expect(proxy.requests.filter((r) => isAbort(r) && query(r.url).get('uploadId') === uploadId)).not.toHaveLength(0);
    expect(await objectExists(`${prefix}multi.bin`)).toBe(false);
  });

  it('maps 409 ConditionalRequestConflict (a concurrent writer) to EXISTS', async () => {
    proxy.rules.push({ match: (req) => isPutObject(req), action: { kind: 'status', status: 409, code: 'ConditionalRequestConflict', message: 'A conflicting conditional action is currently in progress against this resource.' } });
    const error = await expectTakeoutError(dest.put('race.json', '{}', { ifNoneMatch: true }), 'EXISTS');
    expect(error.message).toBe(`s3://${TEST_BUCKET}/${prefix}race.json was being written by another client at the same time (ConditionalRequestConflict)`);
  });

  it('a store that answers 501 to If-None-Match: sent again without it, and never again from this destination', async () => {
    const store = createS3Store(`s3://${TEST_BUCKET}/${prefix}no-conditions/`, { s3: s3TestOptions(proxy.url) });
    try {
      proxy.rules.push({
        match: (req) => req.headers['if-none-match'] !== undefined,
        action: { kind: 'status', status: 501, code: 'NotImplemented', message: "A header you provided implies functionality that is not implemented: 'If-None-Match'" },
      });
      await store.put('first.json', '{"n":1}', { ifNoneMatch: true });
      const puts = proxy.requests.filter(isPutObject);
      expect(puts.map((r) => [r.headers['if-none-match'], r.status])).toEqual([['*', 501], [undefined, 200]]);
      expect((await readAll(await store.get('first.json'))).toString()).toBe('{"n":1}');

      proxy.requests.length = 0;
      await store.put('second.json', '{"n":2}', { ifNoneMatch: true });
      expect(proxy.requests.filter(isPutObject).map((r) => [r.headers['if-none-match'], r.status])).toEqual([[undefined, 200]]);
    } finally {
      await store.close?.();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 3. ExpiredToken mid-run with refreshable credentials

describe('an expired session token', () => {
  /** A credential_process that hands out session token `token-<n>`, n counting its calls. */
  async function credentialProcess(): Promise<{ env: Record<string, string>; calls: () => Promise<number> }> {
    const folder = await tempFolder('reliability-creds');
    const counter = path.join(folder, 'calls');
    const script = path.join(folder, 'creds.mjs');
    await writeFile(
      script,
      [
        "import { readFileSync, writeFileSync } from 'node:fs';",
        `const counter = ${JSON.stringify(counter)};`,
        "let n = 0; try { n = Number(readFileSync(counter, 'utf8')); } catch {}",
        'n += 1; writeFileSync(counter, String(n));',
        // An hour ahead: the SDK itself would refresh only within 5 minutes of it.
        `process.stdout.write(JSON.stringify({ Version: 1, AccessKeyId: '${S3RVER_ACCESS_KEY_ID}', SecretAccessKey: '${S3RVER_SECRET_ACCESS_KEY}', SessionToken: 'token-' + n, Expiration: new Date(Date.now() + 3600e3).toISOString() }));`,
      ].join('\n'),
    );
    const config = path.join(folder, 'config');
    await writeFile(config, `[profile refreshing]\ncredential_process = "${process.execPath}" "${script}"\nregion = us-east-1\n`);
    return {
      env: { AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: path.join(folder, 'no-credentials') },
      calls: async () => Number(await readFile(counter, 'utf8').catch(() => '0')),
    };
  }
  const expired = { kind: 'status', status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' } as const;
  const token = (r: RecordedRequest): unknown => r.headers['x-amz-security-token'];

  async function expectComplete(prefix: string): Promise<void> {
    const keys = await s3Store(client, TEST_BUCKET, prefix).list();
    expect(keys).toContain('takeout-manifest.json');
    const manifest = JSON.parse((await s3Store(client, TEST_BUCKET, prefix).get('takeout-manifest.json')).toString('utf8')) as { status: string };
    expect(manifest.status).toBe('complete');
  }

  it('refused everywhere (HEAD answers a bare 400): refreshed from the profile\'s credential_process, the run succeeds', async () => {
    const creds = await credentialProcess();
    const prefix = uniquePrefix('reliability-expired-all');
    proxy.rules.push({ match: (req) => req.headers['x-amz-security-token'] === 'token-1', action: expired });
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--endpoint-url', proxy.url, '--profile', 'refreshing', '--region', 'us-east-1'], { env: creds.env });
    expect(result.code, context(result)).toBe(0);
    expect(errorLines(result.stderr)).toEqual([]);
    expect(await creds.calls()).toBeGreaterThanOrEqual(2);
    expect(proxy.requests.filter((r) => token(r) === 'token-1' && r.status === 400)).not.toHaveLength(0);
    expect(proxy.requests.some((r) => token(r) === 'token-2' && r.status === 200)).toBe(true);
    await expectComplete(prefix);
  });

  it('refused on writes only (ExpiredToken in the XML): the concurrent failed writes share the refresh and are sent again', async () => {
    const creds = await credentialProcess();
    const prefix = uniquePrefix('reliability-expired-writes');
    proxy.rules.push({ match: (req) => req.headers['x-amz-security-token'] === 'token-1' && (req.method === 'PUT' || req.method === 'POST'), action: expired });
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--endpoint-url', proxy.url, '--profile', 'refreshing', '--region', 'us-east-1'], { env: creds.env });
    expect(result.code, context(result)).toBe(0);
    const refused = proxy.requests.filter((r) => r.status === 400);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(refused.every((r) => token(r) === 'token-1')).toBe(true);
    expect(await creds.calls()).toBeGreaterThanOrEqual(2);
    await expectComplete(prefix);
  });

  it('static keys from the environment are not refreshed: exit 4 with the expiry message', async () => {
    const prefix = uniquePrefix('reliability-expired-env');
    proxy.rules.push({ match: (req) => req.headers['x-amz-security-token'] === 'token-1' && req.method !== 'HEAD', action: expired });
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--endpoint-url', proxy.url, '--region', 'us-east-1'], {
      env: { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: S3RVER_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN: 'token-1' },
    });
    expect(result.code, context(result)).toBe(ERROR_CODES.AUTH);
    const errors = errorLines(result.stderr);
    expect(errors.filter((line) => /\[AUTH, exit 4\]$/.test(line))).toHaveLength(1);
    for (const line of errors) expect(line).toMatch(/the AWS credentials have expired \(ExpiredToken\) for bucket takeout-test/);
    // Each refused write was sent once: nothing to refresh static keys from.
    const refused = proxy.requests.filter((r) => r.status === 400);
    expect(new Set(refused.map((r) => `${r.method} ${r.url}`)).size).toBe(refused.length);
    proxy.rules.length = 0;
    expect(await s3Store(client, TEST_BUCKET, prefix).list()).not.toContain('takeout-manifest.json');
  });
});
