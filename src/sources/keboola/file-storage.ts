import type { Store } from '../../stores/store.js';
import { TakeoutError } from '../../errors.js';
import { registerSecret } from '../../secrets.js';
import type { EntryLocation } from '../../manifests/read.js';
import type { RequestLogger, Throttle } from '../../stores/network.js';
import { isLoopbackHost } from './client.js';

/**
 * Where a Storage API file lives: the stack's file storage, named by the file detail's `provider`
 * ('aws', 'azure' or 'gcp', keboola/storage-api-php-client Client::FILE_PROVIDER_*), with the temporary
 * credentials `files/{id}?federationToken=1` gives for it.
 */
export interface StorageFile {
  id: number | string;
  provider?: string;
  isSliced?: boolean;
  region?: string;
  s3Path?: { bucket: string; key: string };
  credentials?: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration?: string };
  /** Azure stacks: the blob, and a SAS connection string for its container. */
  absPath?: { container: string; name: string };
  absCredentials?: { SASConnectionString?: string; expiration?: string };
  /** GCP stacks: the object, and an OAuth access token for its bucket. */
  gcsPath?: { bucket: string; key: string };
  gcsCredentials?: { access_token?: string; expires_in?: number; token_type?: string; projectId?: string };
}

/**
 * The temporary credentials of a file detail, registered with the redactor before anything else is done
 * with the answer: no later error, warning or --debug trace can show them.
 */
export function registerFileSecrets(file: StorageFile | undefined | null): void {
  if (!file || typeof file !== 'object') return;
  registerSecret(file.credentials?.AccessKeyId);
  registerSecret(file.credentials?.SecretAccessKey);
  registerSecret(file.credentials?.SessionToken);
  const connection = file.absCredentials?.SASConnectionString;
  if (typeof connection === 'string') {
    registerSecret(connection);
    // The SAS also travels alone (the query of every blob request), and its signature alone, as sent
    // (URL-encoded) and decoded: an SDK error or a --debug line may show any of these forms.
    const sas = /SharedAccessSignature=([^;]+)/i.exec(connection)?.[1]?.replace(/^\?/, '');
    registerSecret(sas);
    for (const part of sas?.split('&') ?? []) {
      if (!/^sig=/i.test(part)) continue;
      const signature = part.slice(4);
      registerSecret(signature);
      try {
        const decoded = decodeURIComponent(signature);
        registerSecret(decoded);
        registerSecret(encodeURIComponent(decoded));
      } catch {
        // Not URL-encoded: registered as it is.
      }
    }
  }
  registerSecret(file.gcsCredentials?.access_token);
}

export interface FileStorageOptions {
  /** The Keboola source's description, for messages. */
  description: string;
  /** S3 endpoint of the project's file storage, for S3-compatible test stacks. */
  s3Endpoint?: string;
  onRequest?: RequestLogger;
  throttle?: Throttle;
  /** Server-side encryption of what is written (aws), as an encrypted upload's answer asks (files/prepare `x-amz-server-side-encryption`). */
  sse?: 'AES256' | 'aws:kms';
}

/** A file's storage, opened: a store reading its bucket or container, the file's own key, and when the credentials end. */
export interface FileStorage {
  store: Store;
  /** The file's object (a sliced file: the prefix its manifest is named after). */
  key: string;
  /** Sliced: `key` + 'manifest' lists the slices; else the object is the file, header first. */
  isSliced: boolean;
  /** Epoch ms the credentials expire at (Infinity when the answer does not say). */
  expires: number;
  /** The key of a sliced file's manifest entry, which must lie in the file's own bucket or container. */
  entryKey(location: EntryLocation, label: string): string;
}

/** A reader of the file's storage with its temporary credentials, on the stack's cloud; refuses an answer without a path. */
export async function openFileStorage(file: StorageFile, fileId: string | number, options: FileStorageOptions): Promise<FileStorage> {
  const provider = file.provider ?? 'aws';
  if (provider === 'aws') return openS3(file, fileId, options);
  if (provider === 'azure') return openAzure(file, fileId, options);
  if (provider === 'gcp') return openGcs(file, fileId, options);
  throw new TakeoutError('FAILED', `${options.description}: file ${fileId} is on provider ${JSON.stringify(provider)}, not aws, azure or gcp`, {
    hint: 'a newer takeout may know this stack; report it with the stack URL',
  });
}

function networkOptions(options: FileStorageOptions): Pick<FileStorageOptions, 'onRequest' | 'throttle'> {
  return { ...(options.onRequest ? { onRequest: options.onRequest } : {}), ...(options.throttle ? { throttle: options.throttle } : {}) };
}

/** An ISO time as the API gives it (`2022-11-10T05:55:44+0100`), or Infinity when absent or unreadable (never refreshed in a loop). */
function expiresAt(text: string | undefined): number {
  const time = text === undefined ? Number.NaN : Date.parse(text);
  return Number.isNaN(time) ? Number.POSITIVE_INFINITY : time;
}

async function openS3(file: StorageFile, fileId: string | number, options: FileStorageOptions): Promise<FileStorage> {
  const { s3Path, credentials } = file;
  if (!s3Path || !credentials) throw new TakeoutError('FAILED', `${options.description}: file ${fileId} came without s3Path or credentials`);
  const { createS3Store } = await import('../../stores/s3/store.js');
  const store = createS3Store(`s3://${s3Path.bucket}/`, {
    s3: {
      region: file.region ?? 'us-east-1',
      accessKeyId: credentials.AccessKeyId,
      secretAccessKey: credentials.SecretAccessKey,
      sessionToken: credentials.SessionToken,
      ...(options.s3Endpoint ? { endpointUrl: options.s3Endpoint } : {}),
      ...(options.sse ? { sse: options.sse } : {}),
      configuredEndpoint: false,
    },
    ...networkOptions(options),
  });
  return {
    store,
    key: s3Path.key,
    isSliced: file.isSliced === true,
    expires: expiresAt(credentials.Expiration),
    entryKey(location, label) {
      if (location.kind !== 's3' || location.bucket !== s3Path.bucket) {
        throw new TakeoutError('INTEGRITY', `file ${fileId} manifest: slice ${label} is not in the file's bucket ${s3Path.bucket}`);
      }
      return location.key;
    },
  };
}

/** The `se=` (signed expiry) of the connection string's SAS, URL-decoded. */
function sasEnd(connection: string): string | undefined {
  const sas = /SharedAccessSignature=([^;]+)/i.exec(connection)?.[1]?.replace(/^\?/, '');
  return sas === undefined ? undefined : (new URLSearchParams(sas).get('se') ?? undefined);
}

/** A Blob endpoint's host names its account: `ACCOUNT.blob.core.windows.net` (or a sovereign cloud's `.blob.` host). */
const ACCOUNT_HOST = /^([a-z0-9]{3,24})\.blob\./i;

/**
 * The storage account a SAS connection string is for: its AccountName, else its BlobEndpoint's host
 * (`https://ACCOUNT.blob.core.windows.net`), else the endpoint's first path segment, the path-style form of
 * an emulator (`http://127.0.0.1:10000/devstoreaccount1`, learn.microsoft.com "Use the Azurite emulator",
 * "Connection strings"), which is how @azure/storage-blob itself reads the account of an IP-style URL.
 */
export function sasAccount(fields: ReadonlyMap<string, string>): string | undefined {
  const named = fields.get('accountname');
  if (named) return named.toLowerCase();
  const endpoint = fields.get('blobendpoint');
  if (endpoint === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return undefined;
  }
  const host = ACCOUNT_HOST.exec(url.hostname)?.[1];
  if (host !== undefined) return host.toLowerCase();
  return url.pathname.split('/').find((segment) => segment !== '')?.toLowerCase();
}

/**
 * Azure stacks: the container through the SAS connection string of the answer, handed to the store as its own
 * environment (never process.env), so the SAS goes only to the BlobEndpoint the answer names. Keboola's sliced
 * manifests name slices `azure://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB` (storage-api-php-client
 * Downloader/AbsUrlParser) whatever the endpoint: an entry belongs to the file when its account and container
 * are the file's. The host suffix is not compared, so an emulator's path-style account (devstoreaccount1 at
 * http://127.0.0.1:PORT/devstoreaccount1) matches entries `azure://devstoreaccount1.blob.core.windows.net/…`,
 * which is what a stack writes for that account; the blob is always read from the answer's endpoint.
 */
async function openAzure(file: StorageFile, fileId: string | number, options: FileStorageOptions): Promise<FileStorage> {
  const { absPath } = file;
  const connection = file.absCredentials?.SASConnectionString;
  if (!absPath || typeof connection !== 'string' || connection === '') {
    throw new TakeoutError('FAILED', `${options.description}: file ${fileId} came without absPath or absCredentials.SASConnectionString`);
  }
  const { parseConnectionString } = await import('../../stores/azure/credentials.js');
  const fields = parseConnectionString(connection);
  const account = sasAccount(fields);
  if (account === undefined) {
    throw new TakeoutError('FAILED', `${options.description}: file ${fileId}: the SAS connection string names no BlobEndpoint account`);
  }
  // A SAS is a bearer credential: over http it is readable on the way (only an emulator on this machine may take it so).
  const endpoint = URL.canParse(fields.get('blobendpoint') ?? '') ? new URL(fields.get('blobendpoint')!) : undefined;
  if (endpoint?.protocol === 'http:' && !isLoopbackHost(endpoint.hostname)) {
    throw new TakeoutError('FAILED', `${options.description}: file ${fileId}: the stack hands out a SAS for http://${endpoint.host}, which would travel in clear text`, {
      hint: 'Azure stacks serve blobs over https; check the stack URL',
    });
  }
  const { createAzureStore } = await import('../../stores/azure/store.js');
  const store = await createAzureStore(`azure://${absPath.container}/`, {
    azure: { env: { AZURE_STORAGE_CONNECTION_STRING: connection } },
    ...networkOptions(options),
  });
  return {
    store,
    key: absPath.name,
    isSliced: file.isSliced === true,
    // The answer's expiration, else the SAS's own end (`se=`, learn.microsoft.com "Create a service SAS").
    expires: Math.min(expiresAt(file.absCredentials?.expiration), expiresAt(sasEnd(connection))),
    entryKey(location, label) {
      if (location.kind !== 'azure' || location.account !== account || location.container !== absPath.container) {
        throw new TakeoutError('INTEGRITY', `file ${fileId} manifest: slice ${label} is not in the file's container ${absPath.container} of account ${account}`);
      }
      return location.key;
    },
  };
}

/**
 * GCP stacks: the bucket with the answer's OAuth access token, given to the store alone (never process.env).
 * It goes to Google's endpoint, or to STORAGE_EMULATOR_HOST when set, as every Google client library does.
 * `expires_in` counts seconds from the answer (storage-api-php-client hands it to Google's auth as such).
 */
async function openGcs(file: StorageFile, fileId: string | number, options: FileStorageOptions): Promise<FileStorage> {
  const answered = Date.now();
  const { gcsPath, gcsCredentials } = file;
  const token = gcsCredentials?.access_token;
  if (!gcsPath || typeof token !== 'string' || token === '') {
    throw new TakeoutError('FAILED', `${options.description}: file ${fileId} came without gcsPath or gcsCredentials.access_token`);
  }
  const { createGcsStore } = await import('../../stores/gcs/store.js');
  const store = createGcsStore(`gs://${gcsPath.bucket}/`, { accessToken: token, ...networkOptions(options) });
  const seconds = gcsCredentials?.expires_in;
  return {
    store,
    key: gcsPath.key,
    isSliced: file.isSliced === true,
    expires: typeof seconds === 'number' && Number.isFinite(seconds) ? answered + seconds * 1000 : Number.POSITIVE_INFINITY,
    entryKey(location, label) {
      if (location.kind !== 'gs' || location.bucket !== gcsPath.bucket) {
        throw new TakeoutError('INTEGRITY', `file ${fileId} manifest: slice ${label} is not in the file's bucket ${gcsPath.bucket}`);
      }
      return location.key;
    },
  };
}
