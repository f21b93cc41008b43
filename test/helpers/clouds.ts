import { Storage } from '@google-cloud/storage';
import type { ContainerClient } from '@azure/storage-blob';
import type { Store } from './cli.js';

/**
 * Read-back of what takeout wrote to Azure Blob Storage and Google Cloud Storage through each cloud's own
 * client (@azure/storage-blob, @google-cloud/storage), independent of src/, in the shape `readTakeout` takes.
 */

/**
 * The committed blobs under `prefix` of a container. takeout's Azure slice manifests name blobs by key relative
 * to the takeout root, as a local folder's do (src/stores/azure/store.ts urlFor), so the url prefix is ''.
 */
export function azureReadBack(container: ContainerClient, prefix: string): Store {
  return {
    urlPrefix: '',
    async list() {
      const keys: string[] = [];
      for await (const item of container.listBlobsFlat({ prefix })) keys.push(item.name.slice(prefix.length));
      return keys.sort();
    },
    get: (key) => container.getBlobClient(`${prefix}${key}`).downloadToBuffer(),
  };
}

/**
 * Names of the blobs under `prefix` that have uncommitted blocks only (a writer that died before Put Block List).
 * The listing with uncommitted blobs comes first: a blob committed between the two listings is then in both.
 */
export async function uncommittedBlobs(container: ContainerClient, prefix: string): Promise<string[]> {
  const all: string[] = [];
  for await (const item of container.listBlobsFlat({ prefix, includeUncommitedBlobs: true })) all.push(item.name);
  const committed = new Set<string>();
  for await (const item of container.listBlobsFlat({ prefix })) committed.add(item.name);
  return all.filter((name) => !committed.has(name)).map((name) => name.slice(prefix.length)).sort();
}

/** A @google-cloud/storage client on a test server (no credentials: the client sends none to a custom endpoint). */
export function gcsTestClient(endpoint: string): Storage {
  return new Storage({ apiEndpoint: endpoint, projectId: 'takeout-test', retryOptions: { autoRetry: false } });
}

export function gcsReadBack(storage: Storage, bucket: string, prefix: string): Store {
  return {
    urlPrefix: `gs://${bucket}/${prefix}`,
    async list() {
      const [files] = await storage.bucket(bucket).getFiles({ prefix });
      return files.map((file) => file.name.slice(prefix.length)).sort();
    },
    async get(key) {
      const [data] = await storage.bucket(bucket).file(`${prefix}${key}`).download();
      return data;
    },
  };
}
