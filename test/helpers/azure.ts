import { BlobServiceClient } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';

/** The container the Azure tests write to (created on first use); each test suite works under its own prefix. */
export const TEST_CONTAINER = 'takeout-test';

/** A plain SDK client on Azurite, for creating containers and reading back what a destination wrote, independent of src/. */
export async function rawContainer(connectionString: string, name = TEST_CONTAINER): Promise<ContainerClient> {
  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(name);
  await container.createIfNotExists();
  return container;
}

/** Every committed blob name under `prefix`, relative to it. */
export async function blobNames(container: ContainerClient, prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of container.listBlobsFlat({ prefix })) names.push(item.name.slice(prefix.length));
  return names;
}

/** The store options' `azure.env` for Azurite's connection string. */
export function azureEnv(connectionString: string): { env: Record<string, string> } {
  return { env: { AZURE_STORAGE_CONNECTION_STRING: connectionString } };
}
