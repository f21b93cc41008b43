import path from 'node:path';
import { crc32 } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { mapS3Error } from '../src/destinations/s3.js';
import { ERROR_CODES } from '../src/errors.js';
import { errorLines, removeTempFolders, runCli, s3Store, tempFolder, walkFiles } from './helpers/cli.js';
import type { CliResult } from './helpers/cli.js';
import { rawS3Client, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { startFaultProxy } from './faults/proxy.js';
import type { FaultProxy } from './faults/proxy.js';

/**
 * S3 reliability cases through the fault proxy (test/faults/proxy.ts) in front of s3rver: a wrong
 * checksum header on a GET.
 */

const endpoint = inject('s3Endpoint');
const client = rawS3Client(endpoint);
let proxy: FaultProxy;

function s3Args(endpointUrl: string): string[] {
  return ['--endpoint-url', endpointUrl, '--access-key-id', S3RVER_ACCESS_KEY_ID, '--secret-access-key', S3RVER_SECRET_ACCESS_KEY, '--region', 'us-east-1'];
}

function context(result: CliResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr.slice(-3000)}`;
}

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
    const made = await runCli(['run', '--dest', `s3://${TEST_BUCKET}/${prefix}`, ...s3Args(endpoint)]);
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
