import { randomBytes } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Options } from '../../src/stores/store.js';

/** s3rver checks the access key id (it must be S3RVER) but not v4 signatures. */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';
/** Buckets created by test/setup/s3rver-server.mjs. */
export const TEST_BUCKET = 'takeout-test';
export const OTHER_BUCKET = 'takeout-other';

/** Store options for the test server. */
export function s3TestOptions(endpoint: string, overrides: Partial<S3Options> = {}): S3Options {
  return {
    endpointUrl: endpoint,
    region: 'us-east-1',
    accessKeyId: S3RVER_ACCESS_KEY_ID,
    secretAccessKey: S3RVER_SECRET_ACCESS_KEY,
    ...overrides,
  };
}

/** The CLI options that reach the test server (or a proxy in front of it) at `endpointUrl`. */
export function s3CliArgs(endpointUrl: string, accessKeyId = S3RVER_ACCESS_KEY_ID): string[] {
  return ['--endpoint-url', endpointUrl, '--access-key-id', accessKeyId, '--secret-access-key', S3RVER_SECRET_ACCESS_KEY, '--region', 'us-east-1'];
}

/** A prefix no other test uses: `<name>-<time>-<random>/`. */
export function uniquePrefix(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'test';
  return `${safe}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}/`;
}

/** A plain SDK client for reading back what a destination wrote, independent of src/. */
export function rawS3Client(endpoint: string): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
