/**
 * `takeout run --dest azure://…` end to end through the built CLI against Azurite (test/setup/global.ts), with
 * the account and key in AZURE_STORAGE_CONNECTION_STRING as the az CLI takes them: `verify` is clean, every
 * slice and file reads back byte-identical through @azure/storage-blob, and `files download` merges a table
 * to the same CSV as from a local takeout.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { TakeoutManifest } from '../src/manifests/takeout.js';
import { blobNames, rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { removeTempFolders, runCli, tempFolder } from './helpers/cli.js';
import { uniquePrefix } from './helpers/s3.js';

const connectionString = inject('azureConnectionString');
const env = { AZURE_STORAGE_CONNECTION_STRING: connectionString };
const prefix = uniquePrefix('cli');
const dest = `azure://${TEST_CONTAINER}/${prefix}`;
let container: ContainerClient;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

beforeAll(async () => {
  container = await rawContainer(connectionString);
});

afterAll(async () => {
  for (const name of await blobNames(container, prefix)) await container.deleteBlob(`${prefix}${name}`);
  await removeTempFolders();
});

describe('takeout with an Azure Blob Storage destination (Azurite)', () => {
  it('runs the demo project into azure://, verifies it clean, and every blob reads back byte-identical', async () => {
    const run = await runCli(['run', '--source', 'demo', '--dest', dest, '--slice-size', '64KB', '-q'], { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('AccountKey');

    const verify = await runCli(['verify', dest], { env });
    expect(verify.code, `${verify.stdout}\n${verify.stderr}`).toBe(0);

    const manifest = JSON.parse((await container.getBlobClient(`${prefix}takeout-manifest.json`).downloadToBuffer()).toString('utf8')) as TakeoutManifest;
    const names = new Set(await blobNames(container, prefix));
    const expected = [...manifest.tables.flatMap((table) => table.slices), ...manifest.files];
    expect(expected.length).toBeGreaterThan(5);
    for (const item of expected) {
      expect(names.has(item.key), item.key).toBe(true);
      const bytes = await container.getBlobClient(`${prefix}${item.key}`).downloadToBuffer();
      expect(bytes.length, item.key).toBe(item.bytes);
      expect(sha256(bytes), item.key).toBe(item.sha256);
    }
    // Nothing uncommitted is left behind.
    const uncommitted: string[] = [];
    for await (const item of container.listBlobsFlat({ prefix, includeUncommitedBlobs: true })) if (!names.has(item.name.slice(prefix.length))) uncommitted.push(item.name);
    expect(uncommitted).toEqual([]);

    // files download merges a table from Azure to the same CSV as from a local takeout of the same project.
    const table = manifest.tables.find((t) => t.slices.length > 1) ?? manifest.tables[0]!;
    const out = await tempFolder('azure-cli');
    const local = path.join(out, 'local');
    expect((await runCli(['run', '--source', 'demo', '--dest', local, '--slice-size', '64KB', '-q'])).code).toBe(0);
    const fromAzure = await runCli(['files', 'download', `${dest}takeout-manifest.json`, '-t', table.id, '-o', path.join(out, 'azure.csv')], { env });
    expect(fromAzure.code, fromAzure.stderr).toBe(0);
    const fromLocal = await runCli(['files', 'download', path.join(local, 'takeout-manifest.json'), '-t', table.id, '-o', path.join(out, 'local.csv')]);
    expect(fromLocal.code, fromLocal.stderr).toBe(0);
    expect((await readFile(path.join(out, 'azure.csv'))).equals(await readFile(path.join(out, 'local.csv')))).toBe(true);
  });

  it('cleanup finds nothing to clean after a clean run, and a bad key exits 4 without showing it', async () => {
    const cleanup = await runCli(['cleanup', dest, '--older-than', '0s', '--dry-run'], { env });
    expect(cleanup.code, cleanup.stderr).toBe(0);

    const key = Buffer.from('canary-account-key-for-the-cli-test').toString('base64');
    const denied = await runCli(['run', '--source', 'demo', '--dest', `azure://${TEST_CONTAINER}/${uniquePrefix('denied')}`, '-q'], {
      env: { AZURE_STORAGE_CONNECTION_STRING: connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${key}`) },
    });
    expect(denied.code, denied.stderr).toBe(4);
    expect(denied.stderr).toContain(TEST_CONTAINER);
    expect(denied.stderr).not.toContain(key);
  });

  it('takes the account from --azure-account (checked before anything is sent) when no connection string names it', async () => {
    const bad = await runCli(['verify', `azure://${TEST_CONTAINER}/x/`, '--azure-account', 'Not_An_Account'], { env: { AZURE_STORAGE_KEY: 'a2V5' } });
    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain('--azure-account');
    const none = await runCli(['verify', `azure://${TEST_CONTAINER}/x/`], { env: { AZURE_STORAGE_KEY: 'a2V5' } });
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toMatch(/no storage account given/);
  });

  it('help and a local run never load the Azure SDK; an azure:// destination does', async () => {
    const debug = { NODE_DEBUG: 'esm,module' };
    for (const args of [['--help'], ['run', '--help'], ['verify', '--help']]) {
      const result = await runCli(args, { env: debug });
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stderr, args.join(' ')).not.toMatch(/@azure[\\/]/);
    }
    const local = await runCli(['run', '--source', 'demo', '--dest', path.join(await tempFolder('azure-local'), 'out'), '--include', 'in.c-crm.products', '-q'], { env: debug });
    expect(local.code).toBe(0);
    expect(local.stderr).not.toMatch(/@azure[\\/]/);
    const used = await runCli(['verify', `azure://${TEST_CONTAINER}/${uniquePrefix('nothing')}`], { env: { ...debug, ...env } });
    expect(used.stderr).toMatch(/@azure[\\/]storage-blob/);
    expect(used.stderr).not.toMatch(/@azure[\\/]identity/);
  });
});
