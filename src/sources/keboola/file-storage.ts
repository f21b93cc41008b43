import type { Store } from '../../stores/store.js';
import { TakeoutError } from '../../errors.js';
import { registerSecret } from '../../secrets.js';
import type { EntryLocation } from '../../manifests/read.js';
import type { RequestLogger, Throttle } from '../../stores/network.js';

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
  const sas = file.absCredentials?.SASConnectionString;
  registerSecret(sas);
  // The SAS itself also travels alone (as a query string), so it is a secret of its own.
  registerSecret(typeof sas === 'string' ? /SharedAccessSignature=([^;]+)/i.exec(sas)?.[1] : undefined);
  registerSecret(file.gcsCredentials?.access_token);
}

export interface FileStorageOptions {
  /** The Keboola source's description, for messages. */
  description: string;
  /** S3 endpoint of the project's file storage, for S3-compatible test stacks. */
  s3Endpoint?: string;
  onRequest?: RequestLogger;
  throttle?: Throttle;
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

/** A reader of the file's storage with its temporary credentials; refuses providers not read yet and answers without a path. */
export async function openFileStorage(file: StorageFile, fileId: string | number, options: FileStorageOptions): Promise<FileStorage> {
  const provider = file.provider ?? 'aws';
  if (provider !== 'aws') {
    throw new TakeoutError('USAGE', `${options.description}: file ${fileId} is on ${provider}; only AWS stacks are supported`);
  }
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
      configuredEndpoint: false,
    },
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    ...(options.throttle ? { throttle: options.throttle } : {}),
  });
  return {
    store,
    key: s3Path.key,
    isSliced: file.isSliced === true,
    expires: credentials.Expiration ? Date.parse(credentials.Expiration) : Number.POSITIVE_INFINITY,
    entryKey(location, label) {
      if (location.kind !== 's3' || location.bucket !== s3Path.bucket) {
        throw new TakeoutError('INTEGRITY', `file ${fileId} manifest: slice ${label} is not in the file's bucket ${s3Path.bucket}`);
      }
      return location.key;
    },
  };
}
