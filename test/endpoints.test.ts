import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import dynalite from 'dynalite';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { configuredEndpoint, parseAwsConfig } from '../src/aws/endpoints.js';
import { removeTempFolders, runCli, tempFolder } from './helpers/cli.js';
import { expectOk } from './helpers/projects.js';
import { rawS3Client, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';

const s3Endpoint = inject('s3Endpoint');

afterAll(removeTempFolders);

/** A closed loopback port: an endpoint that must never be the one used. */
const NOWHERE = 'http://127.0.0.1:9';

async function awsConfig(name: string, text: string): Promise<Record<string, string>> {
  const folder = await tempFolder(name);
  const file = path.join(folder, 'config');
  await writeFile(file, text);
  return { AWS_CONFIG_FILE: file, AWS_SHARED_CREDENTIALS_FILE: path.join(folder, 'no-credentials') };
}

const KEYS = `aws_access_key_id = ${S3RVER_ACCESS_KEY_ID}\naws_secret_access_key = ${S3RVER_SECRET_ACCESS_KEY}\nregion = us-east-1\n`;

/** The run went to s3rver as to a custom endpoint: path style, and objects stored as sent (no aws-chunked framing). */
async function expectTakeoutAt(prefix: string): Promise<void> {
  const client = rawS3Client(s3Endpoint);
  const manifest = await client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}takeout-manifest.json` }));
  expect(JSON.parse(await manifest.Body!.transformToString())).toHaveProperty('tables');
  const slice = await client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: `${prefix}in/c-main/customers.part_0.csv.gz` }));
  expect(gunzipSync(Buffer.from(await slice.Body!.transformToByteArray())).toString('utf8').split('\n').length).toBeGreaterThan(10);
}

describe('endpoint_url from the environment and the AWS profile', () => {
  it('is read as the aws CLI reads it: service variable, global variable, services section, profile; ignore turns it off', () => {
    const config = parseAwsConfig(
      '# comment\n[default]\nendpoint_url = http://default\n[profile a]\nendpoint_url = http://a\nservices = local\n[services local]\ns3 =\n  endpoint_url = http://s3-local\ndynamodb =\n  endpoint_url = http://ddb-local\n[profile off]\nendpoint_url = http://off\nignore_configured_endpoint_urls = true\n',
    );
    expect(config.get('profile a')?.get('endpoint_url')).toBe('http://a');
    expect((config.get('services local')?.get('s3') as Map<string, string>).get('endpoint_url')).toBe('http://s3-local');
  });

  it('resolves in the documented order', async () => {
    const env = await awsConfig(
      'endpoint-order',
      '[default]\nendpoint_url = http://default\n[profile a]\nendpoint_url = http://a\nservices = local\n[services local]\ns3 =\n  endpoint_url = http://s3-local\n[profile off]\nendpoint_url = http://off\nignore_configured_endpoint_urls = true\n[profile broken]\nservices = missing\n',
    );
    expect(configuredEndpoint('s3', undefined, env)?.url).toBe('http://default');
    expect(configuredEndpoint('s3', 'a', env)?.url).toBe('http://s3-local');
    expect(configuredEndpoint('dynamodb', 'a', env)?.url).toBe('http://a');
    expect(configuredEndpoint('s3', undefined, { ...env, AWS_PROFILE: 'a' })?.url).toBe('http://s3-local');
    expect(configuredEndpoint('s3', 'a', { ...env, AWS_ENDPOINT_URL: 'http://env' })).toEqual({ url: 'http://env', origin: 'AWS_ENDPOINT_URL' });
    expect(configuredEndpoint('s3', 'a', { ...env, AWS_ENDPOINT_URL: 'http://env', AWS_ENDPOINT_URL_S3: 'http://env-s3' })?.url).toBe('http://env-s3');
    expect(configuredEndpoint('dynamodb', 'a', { ...env, AWS_ENDPOINT_URL_S3: 'http://env-s3' })?.url).toBe('http://a');
    expect(configuredEndpoint('s3', 'off', env)).toBeUndefined();
    expect(configuredEndpoint('s3', 'a', { ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true', AWS_ENDPOINT_URL: 'http://env' })).toBeUndefined();
    expect(configuredEndpoint('s3', 'nobody', env)).toBeUndefined();
    expect(() => configuredEndpoint('s3', 'broken', env)).toThrow(/services section "missing" is not in the file/);
    expect(configuredEndpoint('s3', undefined, { AWS_CONFIG_FILE: path.join(env.AWS_CONFIG_FILE!, 'none') })).toBeUndefined();
  });

  it('a profile endpoint_url (--profile) is a custom endpoint: path style, checksums when required, named in the description', async () => {
    const env = await awsConfig('endpoint-profile', `[profile local]\n${KEYS}endpoint_url = ${s3Endpoint}\n`);
    const prefix = uniquePrefix('endpoint-profile');
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${prefix}`, '--profile', 'local', '--no-progress'], { env });
    expectOk(result);
    expect(result.stderr).toContain(`→ s3://${TEST_BUCKET}/${prefix} at ${s3Endpoint},`);
    await expectTakeoutAt(prefix);
  });

  it('the services section beats the profile endpoint_url; AWS_PROFILE picks the profile; AWS_ENDPOINT_URL_S3 beats both', async () => {
    const env = await awsConfig('endpoint-services', `[profile local]\n${KEYS}endpoint_url = ${NOWHERE}\nservices = s3-local\n[services s3-local]\ns3 =\n  endpoint_url = ${s3Endpoint}\n`);
    const viaServices = uniquePrefix('endpoint-services');
    expectOk(await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${viaServices}`, '--no-progress', '-q'], { env: { ...env, AWS_PROFILE: 'local' } }));
    await expectTakeoutAt(viaServices);

    const viaEnv = uniquePrefix('endpoint-env');
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${viaEnv}`, '--profile', 'local', '--no-progress'], {
      env: { ...env, AWS_ENDPOINT_URL: NOWHERE, AWS_ENDPOINT_URL_S3: `${s3Endpoint}/` },
    });
    expectOk(result);
    expect(result.stderr).toContain(` at ${s3Endpoint},`);
    await expectTakeoutAt(viaEnv);
  });

  it('a bad configured endpoint is a usage error naming where it came from', async () => {
    const env = await awsConfig('endpoint-bad', `[profile local]\n${KEYS}endpoint_url = ftp://127.0.0.1/\n`);
    const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/x/`, '--profile', 'local'], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/invalid endpoint_url from profile local in \S+config ftp:\/\/127\.0\.0\.1\/: only http and https/);
  });

  it('DynamoDB: the profile endpoint_url of --profile is where the scan goes', async () => {
    const server = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const admin = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local-secret-key' } });
    try {
      await admin.send(
        new CreateTableCommand({ TableName: 'people', KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
      );
      await admin.send(new PutItemCommand({ TableName: 'people', Item: { id: { S: 'ada' } } }));
      const env = await awsConfig('endpoint-dynamodb', `[profile local]\n${KEYS}services = both\n[services both]\ndynamodb =\n  endpoint_url = ${endpoint}\n`);
      const result = await runCli(['table', 'export', 'dynamodb.people', '--source', 'dynamodb:people', '-o', '-', '--profile', 'local', '--debug'], { env });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain('ada');
      expect(result.stderr).toMatch(new RegExp(`^debug: POST ${endpoint.replace(/\./g, '\\.')}/ 200 \\d+ ms$`, 'm'));
    } finally {
      admin.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
