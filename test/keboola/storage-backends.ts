/**
 * The file storage behind the Storage API test server, one per provider, as a stack of that cloud has it
 * (keboola/storage-api-php-client Client.php: downloadFile / downloadSlicedFile per FILE_PROVIDER_*):
 *
 * - aws: objects in an s3rver bucket; the file detail has `s3Path` {bucket, key}, `region` and `credentials`
 *   {AccessKeyId, SecretAccessKey, SessionToken, Expiration}; manifest entries `s3://BUCKET/KEY`.
 * - azure: blobs in an Azurite container of its own; `absPath` {container, name} and `absCredentials`
 *   {SASConnectionString, expiration}. The connection string is `BlobEndpoint=…;SharedAccessSignature=…`
 *   with a real container SAS (sr=c, sp=rl) signed with Azurite's account key, so an expired or forged SAS
 *   is refused by Azurite itself. Entries `azure://ACCOUNT.blob.core.windows.net/CONTAINER/NAME` (AbsUrlParser).
 * - gcp: objects in a GCS test server of its own that checks bearer tokens; `gcsPath` {bucket, key} and
 *   `gcsCredentials` {access_token, expires_in (seconds), token_type, projectId}; each token handed out is
 *   accepted until it expires. Entries `gs://BUCKET/KEY`.
 *
 * Uploads (files/prepare): aws `uploadParams` {key, bucket, acl, credentials} (s3rver knows one key pair, so
 * it cannot hold an upload to its key); azure `absUploadParams` {blobName, accountName, container,
 * absCredentials} with a container SAS sp=rwl (a download SAS, sp=rl, is refused writes by Azurite); gcp
 * `gcsUploadParams` {projectId, bucket, key, access_token, expires_in, token_type} with a token that may
 * write (a download token is answered 403 on writes, as Google answers a token without the permission).
 */
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, SASProtocol, StorageSharedKeyCredential } from '@azure/storage-blob';
import { startGcsServer } from '../gcs/server.js';
import { startS3Guard, type S3Write } from './s3-guard.js';

export type Provider = 'aws' | 'azure' | 'gcp';

type Json = Record<string, unknown>;

export interface FileBackend {
  provider: Provider;
  /** Writes one object of an export. */
  put(key: string, body: Buffer | string, contentType: string): Promise<void>;
  /** A sliced file's manifest entry for `key`, as the stack writes it. */
  entryUrl(key: string): string;
  /** Reads one object back (a client's upload), with the server's own credentials. */
  get(key: string): Promise<Buffer>;
  /** The size of one object, without reading it. */
  size(key: string): Promise<number>;
  /** The object key a manifest entry URL names in this storage, or undefined when it names another place. */
  keyOf(entryUrl: string): string | undefined;
  /**
   * The provider's upload fields of `files/prepare` (and `files/{id}/refresh`): credentials that can write,
   * valid until `expires` (aws `uploadParams`, azure `absUploadParams`, gcp `gcsUploadParams`); `valid` false:
   * refused by the storage all the same (a key revoked, a clock ahead). aws: checked only behind the S3 guard.
   */
  uploadParams(key: string, expires: Date, valid?: boolean): Json;
  /** The provider's fields of a file detail; credentials valid until `expires` when asked for. */
  detail(key: string, urlKey: string, expires: Date, withCredentials: boolean): Json;
  /** Where a CLI reading this storage points its client (STORAGE_EMULATOR_HOST for gcp). */
  env: Record<string, string>;
  /** Every secret handed out so far (session tokens, connection strings, SAS signatures alone and decoded, access tokens). */
  handedOut: string[];
  /** aws behind the S3 guard (`guardS3`): the writes it saw, with their SSE header. */
  s3Writes?: S3Write[];
  stop(): Promise<void>;
}

export interface BackendOptions {
  provider: Provider;
  s3Endpoint: string;
  /** The S3 bucket (aws) or GCS bucket (gcp); Azure gets a container of its own. */
  bucket: string;
  /** Azurite's connection string with the account key (`inject('azureConnectionString')`), for azure. */
  azureConnectionString?: string;
  projectId: string;
  /** Keboola's timestamp form. */
  time: (date: Date) => string;
  /** aws: the file storage reached through the S3 guard (s3-guard.ts), which checks session tokens and SSE. */
  guardS3?: boolean;
}

/** What an encrypted aws upload asks for (files/prepare `uploadParams['x-amz-server-side-encryption']`). */
const UPLOAD_SSE = 'AES256';

const encodeKey = (key: string): string => key.split('/').map(encodeURIComponent).join('/');

async function s3Backend(options: BackendOptions): Promise<FileBackend> {
  const handedOut: string[] = [];
  const guard = options.guardS3 ? await startS3Guard(options.s3Endpoint, UPLOAD_SSE) : undefined;
  const fileStorage = guard?.url ?? options.s3Endpoint;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const s3 = new S3Client({
    endpoint: options.s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return {
    provider: 'aws',
    async put(key, body, contentType) {
      await s3.send(new PutObjectCommand({ Bucket: options.bucket, Key: key, Body: body, ContentType: contentType }));
    },
    entryUrl: (key) => `s3://${options.bucket}/${key}`,
    async get(key) {
      const out = await s3.send(new GetObjectCommand({ Bucket: options.bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    },
    async size(key) {
      return Number((await s3.send(new HeadObjectCommand({ Bucket: options.bucket, Key: key }))).ContentLength ?? 0);
    },
    keyOf: (url) => (url.startsWith(`s3://${options.bucket}/`) ? url.slice(`s3://${options.bucket}/`.length) : undefined),
    uploadParams(key, expires, valid = true) {
      // s3rver checks signatures against its one key pair and knows no session tokens or policies, so an
      // upload credential here is the same pair with a fresh session token (a real stack's STS
      // federation token is scoped to the key; s3rver cannot enforce that), which the S3 guard checks.
      const sessionToken = randomBytes(24).toString('base64');
      handedOut.push(sessionToken);
      if (valid) guard?.tokens.set(sessionToken, { ends: expires.getTime(), write: true });
      return {
        uploadParams: {
          key,
          bucket: options.bucket,
          acl: 'private',
          credentials: { AccessKeyId: 'S3RVER', SecretAccessKey: 'S3RVER', SessionToken: sessionToken, Expiration: expires.toISOString() },
          'x-amz-server-side-encryption': UPLOAD_SSE,
        },
      };
    },
    detail(key, urlKey, expires, withCredentials) {
      const sessionToken = randomBytes(24).toString('base64');
      if (withCredentials) {
        handedOut.push(sessionToken);
        guard?.tokens.set(sessionToken, { ends: expires.getTime(), write: false });
      }
      return {
        url: `${fileStorage}/${options.bucket}/${encodeKey(urlKey)}`,
        provider: 'aws',
        region: 'us-east-1',
        s3Path: { bucket: options.bucket, key },
        ...(withCredentials
          ? {
              credentials: {
                AccessKeyId: 'S3RVER',
                SecretAccessKey: 'S3RVER',
                SessionToken: sessionToken,
                Expiration: expires.toISOString(),
              },
            }
          : {}),
      };
    },
    env: guard ? { TAKEOUT_KEBOOLA_S3_ENDPOINT: guard.url } : {},
    handedOut,
    ...(guard ? { s3Writes: guard.writes } : {}),
    stop: async () => {
      s3.destroy();
      await guard?.close();
    },
  };
}

function connectionField(connectionString: string, name: string): string {
  const pair = connectionString.split(';').find((p) => p.toLowerCase().startsWith(`${name.toLowerCase()}=`));
  if (!pair) throw new Error(`the Azurite connection string has no ${name}`);
  return pair.slice(name.length + 1);
}

/** Start times a minute back, as a stack's SAS, so a clock a little ahead does not refuse it. */
const SAS_START_SKEW_MS = 60_000;

async function azureBackend(options: BackendOptions): Promise<FileBackend> {
  if (!options.azureConnectionString) throw new Error('provider azure needs azureConnectionString');
  const account = connectionField(options.azureConnectionString, 'AccountName');
  const accountKey = connectionField(options.azureConnectionString, 'AccountKey');
  const blobEndpoint = connectionField(options.azureConnectionString, 'BlobEndpoint').replace(/\/+$/, '');
  const keyCredential = new StorageSharedKeyCredential(account, accountKey);
  // A container per server, named like Keboola's (exp-15-files-PROJECT-…), so servers never collide.
  const container = `exp-15-files-${options.projectId}-${randomBytes(6).toString('hex')}`;
  const client = BlobServiceClient.fromConnectionString(options.azureConnectionString).getContainerClient(container);
  const handedOut: string[] = [];
  await client.create();
  const containerSas = (permissions: string, expires: Date, valid = true): { sas: string; connectionString: string } => {
    const startsOn = new Date(Math.min(Date.now(), expires.getTime()) - SAS_START_SKEW_MS);
    const sas = generateBlobSASQueryParameters(
      { containerName: container, permissions: ContainerSASPermissions.parse(permissions), startsOn, expiresOn: expires, protocol: SASProtocol.HttpsAndHttp },
      // Not valid: signed with a key the account does not have, which Azurite refuses (AuthenticationFailed).
      valid ? keyCredential : new StorageSharedKeyCredential(account, randomBytes(64).toString('base64')),
    ).toString();
    return { sas, connectionString: `BlobEndpoint=${blobEndpoint};SharedAccessSignature=${sas}` };
  };
  return {
    provider: 'azure',
    async put(key, body, contentType) {
      const data = typeof body === 'string' ? Buffer.from(body) : body;
      await client.getBlockBlobClient(key).uploadData(data, { blobHTTPHeaders: { blobContentType: contentType } });
    },
    // Keboola names the account's public host whatever endpoint serves it.
    entryUrl: (key) => `azure://${account}.blob.core.windows.net/${container}/${key}`,
    async get(key) {
      return client.getBlockBlobClient(key).downloadToBuffer();
    },
    async size(key) {
      return (await client.getBlockBlobClient(key).getProperties()).contentLength ?? 0;
    },
    keyOf(url) {
      const prefix = `azure://${account}.blob.core.windows.net/${container}/`;
      return url.startsWith(prefix) ? url.slice(prefix.length) : undefined;
    },
    uploadParams(key, expires, valid = true) {
      // A container SAS that can read, write and list (sp=rwl, as a stack's upload SAS: apiary.apib
      // "Prepare File Upload" absUploadParams example).
      const { sas, connectionString } = containerSas('rwl', expires, valid);
      const signature = new URLSearchParams(sas).get('sig') ?? '';
      handedOut.push(connectionString, sas, signature, encodeURIComponent(signature));
      return {
        absUploadParams: {
          blobName: key,
          accountName: account,
          container,
          absCredentials: { SASConnectionString: connectionString, expiration: options.time(expires) },
        },
      };
    },
    detail(key, urlKey, expires, withCredentials) {
      const { sas, connectionString } = containerSas('rl', expires);
      if (withCredentials) {
        const signature = new URLSearchParams(sas).get('sig') ?? '';
        handedOut.push(connectionString, sas, signature, encodeURIComponent(signature));
      }
      return {
        url: `${blobEndpoint}/${container}/${encodeKey(urlKey)}?${sas}`,
        provider: 'azure',
        region: 'us-east-1',
        absPath: { container, name: key },
        ...(withCredentials ? { absCredentials: { SASConnectionString: connectionString, expiration: options.time(expires) } } : {}),
      };
    },
    env: {},
    handedOut,
    stop: async () => {
      await client.deleteIfExists();
    },
  };
}

async function gcsBackend(options: BackendOptions): Promise<FileBackend> {
  const handedOut: string[] = [];
  /** Tokens handed out, with when each ends and whether it may write; the server's own calls use `admin`. */
  const tokens = new Map<string, { ends: number; write: boolean }>();
  const admin = `admin-${randomBytes(12).toString('hex')}`;
  const accepts = (bearer: string | undefined, method: string): boolean | 'forbidden' => {
    if (bearer === admin) return true;
    const token = bearer === undefined ? undefined : tokens.get(bearer);
    if (!token || token.ends <= Date.now()) return false;
    // A download token (file detail) reads only; an upload token (files/prepare) also writes.
    return token.write || method === 'GET' || method === 'HEAD' ? true : 'forbidden';
  };
  const mint = (expires: Date, write: boolean, valid = true): string => {
    // Google's tokens look like ya29.…; one per answer, as the stack mints them.
    const token = `ya29.kbc-test-${randomBytes(24).toString('base64url')}`;
    if (valid) tokens.set(token, { ends: expires.getTime(), write });
    handedOut.push(token);
    return token;
  };
  const gcs = await startGcsServer({ buckets: [options.bucket], token: accepts });
  return {
    provider: 'gcp',
    async put(key, body, contentType) {
      const url = `${gcs.url}/upload/storage/v1/b/${encodeURIComponent(options.bucket)}/o?uploadType=media&name=${encodeURIComponent(key)}`;
      const answer = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers: { Authorization: `Bearer ${admin}`, 'Content-Type': contentType } });
      if (!answer.ok) throw new Error(`GCS test server: upload of ${key} answered ${answer.status}`);
    },
    entryUrl: (key) => `gs://${options.bucket}/${key}`,
    async get(key) {
      const url = `${gcs.url}/storage/v1/b/${encodeURIComponent(options.bucket)}/o/${encodeURIComponent(key)}?alt=media`;
      const answer = await fetch(url, { headers: { Authorization: `Bearer ${admin}` } });
      if (!answer.ok) throw new Error(`GCS test server: download of ${key} answered ${answer.status}`);
      return Buffer.from(await answer.arrayBuffer());
    },
    async size(key) {
      const url = `${gcs.url}/storage/v1/b/${encodeURIComponent(options.bucket)}/o/${encodeURIComponent(key)}`;
      const answer = await fetch(url, { headers: { Authorization: `Bearer ${admin}` } });
      if (!answer.ok) throw new Error(`GCS test server: metadata of ${key} answered ${answer.status}`);
      return Number(((await answer.json()) as { size?: string }).size ?? 0);
    },
    keyOf: (url) => (url.startsWith(`gs://${options.bucket}/`) ? url.slice(`gs://${options.bucket}/`.length) : undefined),
    uploadParams(key, expires, valid = true) {
      return {
        gcsUploadParams: {
          projectId: `kbc-test-${options.projectId}`,
          bucket: options.bucket,
          key,
          access_token: mint(expires, true, valid),
          expires_in: Math.max(0, Math.round((expires.getTime() - Date.now()) / 1000)),
          token_type: 'Bearer',
        },
      };
    },
    detail(key, urlKey, expires, withCredentials) {
      const token = withCredentials ? mint(expires, false) : '';
      return {
        url: `${gcs.url}/${options.bucket}/${encodeKey(urlKey)}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Signature=${randomBytes(16).toString('hex')}`,
        provider: 'gcp',
        region: 'us-east-1',
        gcsPath: { bucket: options.bucket, key },
        ...(withCredentials
          ? {
              gcsCredentials: {
                access_token: token,
                expires_in: Math.max(0, Math.round((expires.getTime() - Date.now()) / 1000)),
                token_type: 'Bearer',
                projectId: `kbc-test-${options.projectId}`,
              },
            }
          : {}),
      };
    },
    env: { STORAGE_EMULATOR_HOST: gcs.url },
    handedOut,
    stop: () => gcs.close(),
  };
}

export async function startFileBackend(options: BackendOptions): Promise<FileBackend> {
  if (options.provider === 'azure') return azureBackend(options);
  if (options.provider === 'gcp') return gcsBackend(options);
  return s3Backend(options);
}
