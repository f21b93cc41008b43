/** The Azure store's own tests, run inside its contract suite (test/stores.test.ts) against Azurite. */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TakeoutError } from '../src/errors.js';
import { createAzureStore } from '../src/stores/azure/store.js';
import type { AzurePrefixStore } from '../src/stores/azure/store.js';
import { parseAzureUrl } from '../src/stores/azure/url.js';
import { parseStore } from '../src/stores/registry.js';
import type { Leftover } from '../src/stores/store.js';
import { azureEnv, rawContainer, TEST_CONTAINER } from './helpers/azure.js';
import { closedPort } from './helpers/cli.js';
import { uniquePrefix } from './helpers/s3.js';
import { expectTakeoutError, listAll, readAll } from './store.contract.js';

const MiB = 1024 * 1024;

async function collect(items: AsyncIterable<Leftover>): Promise<Leftover[]> {
  const out: Leftover[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function azureStoreSpecifics(): void {
  describe('Azure store specifics', () => {
    const connectionString = inject('azureConnectionString');
    const blobEndpoint = inject('azureBlobEndpoint');
    const prefix = uniquePrefix('azure-specific');
    let raw: ContainerClient;
    let dest: AzurePrefixStore;

    beforeAll(async () => {
      raw = await rawContainer(connectionString);
      dest = await createAzureStore(`azure://${TEST_CONTAINER}/${prefix}`, { azure: azureEnv(connectionString), s3: { partSize: MiB, partConcurrency: 2 } });
      await dest.preflight();
    });

    afterAll(async () => {
      await dest.delete((await listAll(dest)).map((info) => info.key));
    });

    it('parses azure:// and https:// blob URLs, refusing a SAS in the URL', () => {
      expect(parseAzureUrl('azure://c-1/a//b')).toEqual({ container: 'c-1', prefix: 'a/b/' });
      expect(parseAzureUrl('https://acct1.blob.core.windows.net/data/x/')).toEqual({ account: 'acct1', endpoint: 'https://acct1.blob.core.windows.net', container: 'data', prefix: 'x/' });
      expect(parseAzureUrl('azure://acct1.blob.core.windows.net/data')).toMatchObject({ account: 'acct1', container: 'data', prefix: '' });
      for (const bad of ['azure://', 'azure://UPPER/x', 'azure://a--b/x', 'azure://ok1/../x', 'https://example.com/c/x']) {
        expect(() => parseAzureUrl(bad), bad).toThrow(TakeoutError);
      }
      const sas = 'sv=2024-01-01&sp=rw&sig=canarySignature0123456789%2B';
      let caught: unknown;
      try {
        parseAzureUrl(`https://acct1.blob.core.windows.net/data/x?${sas}`);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TakeoutError);
      expect(inspect(caught)).not.toContain('canarySignature');
      expect(parseStore('AZURE://data/x')).toEqual({ kind: 'azure', url: 'azure://data/x' });
      expect(parseStore('https://acct1.blob.core.windows.net/data/x')).toEqual({ kind: 'azure', url: 'https://acct1.blob.core.windows.net/data/x' });
    });

    it('describes itself with the endpoint and no credentials', () => {
      expect(dest.description).toBe(`azure://${TEST_CONTAINER}/${prefix} at ${blobEndpoint}`);
      expect(dest.description).not.toContain('AccountKey');
    });

    it('a create-only writer of many blocks refuses an existing blob (EXISTS) and keeps its bytes', async () => {
      await dest.put('create-only/big.bin', 'original');
      const writer = await dest.writer('create-only/big.bin', { ifNoneMatch: true });
      for (let i = 0; i < 3; i++) await writer.write(randomBytes(MiB));
      const error = await expectTakeoutError(writer.finish(), 'EXISTS');
      expect(error.message).toBe(`azure://${TEST_CONTAINER}/${prefix}create-only/big.bin already exists at the destination`);
      expect((await readAll(await dest.get('create-only/big.bin'))).toString()).toBe('original');
    });

    it('reads ranges across block boundaries, byte-identical to what the SDK reads', async () => {
      const data = randomBytes(3 * MiB + 17);
      const writer = await dest.writer('ranges/x.bin');
      for (let offset = 0; offset < data.length; offset += 100_000) await writer.write(data.subarray(offset, offset + 100_000));
      await writer.finish();
      const blocks = await raw.getBlockBlobClient(`${prefix}ranges/x.bin`).getBlockList('committed');
      expect(blocks.committedBlocks?.length).toBe(4);
      for (const [start, end] of [[MiB - 5, MiB + 5], [0, 3 * MiB + 16], [2 * MiB, 3 * MiB + 100]] as const) {
        const got = await readAll(await dest.get('ranges/x.bin', { start, end }));
        expect(got.equals(data.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
      }
      expect((await raw.getBlobClient(`${prefix}ranges/x.bin`).downloadToBuffer()).equals(data)).toBe(true);
    });

    it('finds blobs with only uncommitted blocks as leftovers and cleans them, never touching a committed blob', async () => {
      const dead = raw.getBlockBlobClient(`${prefix}leftover/dead.bin`);
      await dead.stageBlock(Buffer.from('block-0').toString('base64'), Buffer.from('dead run'), 8);
      // A committed blob with an overwrite in progress (uncommitted blocks of its own) is not a leftover.
      await dest.put('leftover/live.bin', 'committed');
      await raw.getBlockBlobClient(`${prefix}leftover/live.bin`).stageBlock(Buffer.from('block-0').toString('base64'), Buffer.from('new'), 3);

      expect(await collect(dest.leftovers(60 * 60 * 1000))).toEqual([]);
      const found = await collect(dest.leftovers(0));
      expect(found.map((item) => [item.key, item.kind])).toEqual([['leftover/dead.bin', 'multipart-upload']]);
      for (const item of found) await dest.removeLeftover(item);
      await dest.removeLeftover(found[0]!);
      expect(await collect(dest.leftovers(0))).toEqual([]);
      expect((await listAll(dest, 'leftover/')).map((info) => info.key)).toEqual(['leftover/live.bin']);
      expect((await readAll(await dest.get('leftover/live.bin'))).toString()).toBe('committed');
      const names: string[] = [];
      for await (const item of raw.listBlobsFlat({ prefix: `${prefix}leftover/`, includeUncommitedBlobs: true })) names.push(item.name.slice(prefix.length));
      expect(names).toEqual(['leftover/live.bin']);
    });

    it('a missing container is NOT_FOUND and names the container', async () => {
      const missing = await createAzureStore('azure://takeout-no-such-container/x', { azure: azureEnv(connectionString) });
      const error = await expectTakeoutError(missing.preflight(), 'NOT_FOUND');
      expect(error.message).toContain('takeout-no-such-container');
      await expectTakeoutError(missing.put('x', 'x'), 'NOT_FOUND');
    });

    it('a bad account key or SAS is AUTH and never shows the key or the signature', async () => {
      const key = Buffer.from('canary-account-key-0123456789abcdef').toString('base64');
      const sig = 'canarySasSignature0123456789abcdef';
      const attempts = [
        { AZURE_STORAGE_CONNECTION_STRING: connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${key}`) },
        { AZURE_STORAGE_CONNECTION_STRING: `BlobEndpoint=${blobEndpoint};SharedAccessSignature=sv=2024-08-04&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&sig=${sig}` },
      ];
      for (const env of attempts) {
        const denied = await createAzureStore(`azure://${TEST_CONTAINER}/x`, { azure: { env } });
        for (const attempt of [() => denied.preflight(), () => denied.put('x', 'x'), () => denied.get('x')]) {
          const error = await expectTakeoutError(attempt(), 'AUTH');
          expect(error.exitCode).toBe(4);
          expect(error.message).toContain(TEST_CONTAINER);
          const everything = `${error.message} ${error.hint ?? ''} ${JSON.stringify(error.details)} ${inspect(error, { depth: 10 })}`;
          expect(everything).not.toContain(key);
          expect(everything).not.toContain(sig);
        }
      }
    });

    it('an unreachable endpoint is NETWORK within a few seconds and names the endpoint', async () => {
      const port = await closedPort();
      const endpoint = `http://127.0.0.1:${port}/devstoreaccount1`;
      const unreachable = await createAzureStore(`azure://${TEST_CONTAINER}/x`, {
        azure: azureEnv(connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${endpoint}`)),
        s3: { partSize: MiB, partConcurrency: 2 },
      });
      const started = Date.now();
      const error = await expectTakeoutError(unreachable.preflight(), 'NETWORK');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error.message).toContain(`cannot reach ${endpoint}`);
      const writer = await unreachable.writer('big.bin');
      const attempt = async (): Promise<void> => {
        for (let i = 0; i < 16; i++) await writer.write(randomBytes(MiB / 2));
        await writer.finish();
      };
      await expectTakeoutError(attempt(), 'NETWORK');
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it('without an account or connection string, says how to give one', async () => {
      const error = await createAzureStore('azure://data/x', { azure: { env: {} } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TakeoutError);
      expect((error as TakeoutError).code).toBe('USAGE');
      expect((error as TakeoutError).hint).toContain('AZURE_STORAGE_CONNECTION_STRING');
    });
  });
}
