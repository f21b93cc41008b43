import { createGunzip } from 'node:zlib';
import type { Store } from '../../stores/store.js';
import { TakeoutError, toTakeoutError } from '../../errors.js';
import { tableFromApi } from '../../keboola/layout.js';
import { registerSecret } from '../../secrets.js';
import { readManifestDocument, readManifestText, redshiftPlan } from '../../manifests/read.js';
import type { OpenTableOptions, Source } from '../source.js';
import type { BucketDescriptor, ComponentDescriptor, ConfigurationDescriptor, GzipSlicesBody, ProjectDescriptor, TableBody, TableDescriptor, TableQuery } from '../../model.js';
import { StorageClient, cleartextWarning, stackUrl } from './client.js';
import { KEBOOLA_S3_ENDPOINT_ENV } from './env.js';
import type { RequestLogger, Throttle } from '../../stores/network.js';

/**
 * A Keboola Connection project through its Storage API. Tables are exported with `export-async`
 * (gzip, queued up front, polled concurrently) and their slices copied as they are from the project's
 * S3 with the file's temporary credentials: no temp files, no recompression.
 */

/** Version pages: large first, halved when the API fails on big configurations (the reference tools always ask for 2). */
const VERSION_PAGE_SIZES = [100, 20, 2];
/** First and longest wait between job polls. */
const POLL_FIRST_MS = 200;
const POLL_CAP_MS = 5_000;
/** File credentials are refreshed when they have less than this left (the SDK refreshes identities at 5 min too). */
const CREDENTIAL_MARGIN_MS = 5 * 60_000;

type Json = Record<string, unknown>;

interface Job {
  id: number | string;
  status: 'waiting' | 'processing' | 'success' | 'error';
  results?: { file?: { id: number | string } } | unknown[] | null;
  error?: { code?: string; message?: string; exceptionId?: string };
}

interface StorageFile {
  id: number | string;
  provider?: string;
  isSliced?: boolean;
  region?: string;
  s3Path?: { bucket: string; key: string };
  credentials?: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration?: string };
  /** Azure stacks (keboola/storage-api-php-client, Files: `absCredentials`). */
  absCredentials?: { SASConnectionString?: string; expiration?: string };
  /** GCP stacks (keboola/storage-api-php-client, Files: `gcsCredentials`). */
  gcsCredentials?: { access_token?: string; token_type?: string; projectId?: string };
}

/**
 * The temporary credentials of a `files/{id}?federationToken=1` answer, registered with the redactor
 * before anything else is done with the answer: no later error, warning or --debug trace can show them.
 * The Azure and GCS shapes are registered too, though only AWS stacks are read today.
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

export interface KeboolaSourceOptions {
  token?: string;
  /** S3 endpoint of the project's file storage, for S3-compatible test stacks (env TAKEOUT_KEBOOLA_S3_ENDPOINT). */
  s3Endpoint?: string;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told once, when the source is created, of risks the run goes on with (a token sent in clear text). */
  onWarning?: (message: string) => void;
  /** Hears each HTTP request to the Storage API and to file storage (`--debug`). */
  onRequest?: RequestLogger;
  /** The bandwidth limit for file downloads (`--bwlimit`). */
  throttle?: Throttle;
}

/** The Storage API's export options from a TableQuery. */
export function exportBody(table: TableDescriptor, query: TableQuery | undefined): Json {
  if (query?.orderBy?.length && query.orderBy.some((o) => !table.columns.includes(o.column))) {
    throw new TakeoutError('USAGE', `--order-by: table ${table.id} has no such column`);
  }
  return {
    gzip: true,
    format: 'rfc',
    fileType: 'csv',
    // Columns explicitly, so their order is the table's (TableExporter does the same).
    columns: (query?.columns?.length ? query.columns : table.columns).join(','),
    ...(query?.where?.length ? { whereFilters: query.where.map((w) => ({ column: w.column, operator: w.operator, values: w.values })) } : {}),
    ...(query?.changedSince ? { changedSince: Math.floor(query.changedSince.getTime() / 1000) } : {}),
    ...(query?.changedUntil ? { changedUntil: Math.floor(query.changedUntil.getTime() / 1000) } : {}),
    ...(query?.limit !== undefined ? { limit: query.limit } : {}),
    ...(query?.orderBy?.length ? { orderBy: query.orderBy.map((o) => ({ column: o.column, order: o.order.toUpperCase() })) } : {}),
  };
}

export function createKeboolaSource(uri: string, options: KeboolaSourceOptions = {}): Source {
  const token = options.token ?? process.env.KBC_STORAGE_TOKEN;
  const baseUrl = stackUrl(uri);
  const description = `keboola+${baseUrl}`;
  if (!token) throw new TakeoutError('USAGE', `${description}: no Storage API token: set KBC_STORAGE_TOKEN or pass --token`);
  const cleartext = cleartextWarning(baseUrl);
  if (cleartext !== undefined) options.onWarning?.(cleartext);
  const client = new StorageClient({ baseUrl, token, ...(options.sleep ? { sleep: options.sleep } : {}), ...(options.onRequest ? { onRequest: options.onRequest } : {}) });
  const wait = client.wait;
  const s3Endpoint = options.s3Endpoint ?? process.env[KEBOOLA_S3_ENDPOINT_ENV];
  const jobs = new Map<string, Promise<Job>>();
  const stores: Store[] = [];

  async function versions(path: string, include: string): Promise<Json[]> {
    for (const limit of VERSION_PAGE_SIZES) {
      try {
        const all: Json[] = [];
        for (let offset = 0; ; offset += limit) {
          const page = await client.get<Json[]>(path, { query: { include, limit, offset } });
          if (!Array.isArray(page) || page.length === 0) return all;
          all.push(...page);
          if (page.length < limit) return all;
        }
      } catch (error) {
        const failure = toTakeoutError(error);
        if (failure.code !== 'NETWORK' || limit === VERSION_PAGE_SIZES[VERSION_PAGE_SIZES.length - 1]) throw failure;
      }
    }
    return [];
  }

  async function queue(table: TableDescriptor, query: TableQuery | undefined): Promise<Job> {
    const job = await client.post<Job>(`tables/${encodeURIComponent(table.id)}/export-async`, { body: exportBody(table, query) });
    if (!job || job.id === undefined) throw new TakeoutError('FAILED', `${description}: export of ${table.id} returned no job`);
    return job;
  }

  async function finished(table: TableDescriptor, started: Job, signal?: AbortSignal): Promise<Job> {
    let job = started;
    for (let n = 0; job.status !== 'success' && job.status !== 'error'; n++) {
      await wait(Math.min(POLL_CAP_MS, POLL_FIRST_MS * 2 ** n), signal);
      job = await client.get<Job>(`jobs/${job.id}`, signal ? { signal } : {});
    }
    if (job.status === 'error') {
      const e = job.error ?? {};
      throw new TakeoutError('FAILED', `table ${table.id}: export job ${job.id} failed: ${e.message ?? 'no message'}${e.code ? ` (${e.code})` : ''}${e.exceptionId ? `, exception ${e.exceptionId}` : ''}`);
    }
    return job;
  }

  /** The file with fresh temporary credentials, and a reader of its bucket. */
  async function fileStore(fileId: string | number): Promise<{ file: StorageFile; store: Store; expires: number }> {
    const file = await client.get<StorageFile>(`files/${fileId}`, { query: { federationToken: 1 } });
    registerFileSecrets(file);
    if (file.provider !== undefined && file.provider !== 'aws') {
      throw new TakeoutError('USAGE', `${description}: file ${fileId} is on ${file.provider}; only AWS stacks are supported`);
    }
    if (!file.s3Path || !file.credentials) throw new TakeoutError('FAILED', `${description}: file ${fileId} came without s3Path or credentials`);
    const { createS3Store } = await import('../../stores/s3/store.js');
    const store = createS3Store(`s3://${file.s3Path.bucket}/`, {
      s3: {
        region: file.region ?? 'us-east-1',
        accessKeyId: file.credentials.AccessKeyId,
        secretAccessKey: file.credentials.SecretAccessKey,
        sessionToken: file.credentials.SessionToken,
        ...(s3Endpoint ? { endpointUrl: s3Endpoint } : {}),
        configuredEndpoint: false,
      },
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      ...(options.throttle ? { throttle: options.throttle } : {}),
    });
    stores.push(store);
    const expires = file.credentials.Expiration ? Date.parse(file.credentials.Expiration) : Number.POSITIVE_INFINITY;
    return { file, store, expires };
  }

  /** A file's slices (or its one object, which then starts with a header), read with its temporary credentials. */
  async function fileBody(fileId: string | number): Promise<GzipSlicesBody> {
    let current = await fileStore(fileId);
    const fresh = async (): Promise<Store> => {
      if (current.expires - Date.now() < CREDENTIAL_MARGIN_MS) current = await fileStore(fileId);
      return current.store;
    };
    const { s3Path } = current.file;
    if (!current.file.isSliced) {
      return { kind: 'gzip-slices', header: true, slices: [{ origin: `file ${fileId}`, open: async () => (await fresh()).get(s3Path!.key) }] };
    }
    const manifestKey = `${s3Path!.key}manifest`;
    const text = await readManifestText(await current.store.get(manifestKey), `file ${fileId} manifest`);
    const plan = redshiftPlan(readManifestDocument(text, `file ${fileId} manifest`), `file ${fileId} manifest`);
    const slices = plan.entries.map((entry) => {
      const location = entry.location;
      if (location.kind !== 's3' || location.bucket !== s3Path!.bucket) {
        throw new TakeoutError('INTEGRITY', `file ${fileId} manifest: slice ${entry.label} is not in the file's bucket ${s3Path!.bucket}`);
      }
      return { origin: entry.label, open: async () => (await fresh()).get(location.key) };
    });
    return { kind: 'gzip-slices', slices };
  }

  return {
    description,

    async project(): Promise<ProjectDescriptor> {
      const verified = await client.get<{ owner?: { id?: number; name?: string; region?: string } }>('tokens/verify');
      const rawBuckets = await client.get<Json[]>('buckets', { query: { include: 'metadata' } });
      const include = 'columns,buckets,metadata,columnMetadata';
      let rawTables: Json[];
      try {
        rawTables = await client.get<Json[]>('tables', { query: { include } });
      } catch (error) {
        // The full listing times out on large projects (php-kbc-project-backup 5999640): list per bucket.
        if (toTakeoutError(error).code === 'AUTH') throw error;
        rawTables = [];
        for (const b of rawBuckets) rawTables.push(...(await client.get<Json[]>(`buckets/${encodeURIComponent(String(b.id))}/tables`, { query: { include } })));
      }
      const skipped: { id: string; reason: string }[] = [];
      const skippedBuckets = new Map<string, string>();
      const buckets: BucketDescriptor[] = [];
      for (const b of rawBuckets) {
        const id = String(b.id);
        if (b.sourceBucket) {
          skipped.push({ id, reason: 'linked bucket' });
          skippedBuckets.set(id, 'linked bucket');
        } else if (b.hasExternalSchema === true) {
          skipped.push({ id, reason: 'external schema' });
          skippedBuckets.set(id, 'external schema');
        } else buckets.push({ id, stage: String(b.stage), name: String(b.name), raw: b });
      }
      const tables: TableDescriptor[] = [];
      // Left out of a takeout like Keboola's own (php-kbc-project-backup), yet readable with export-async:
      // aliases export their source's rows (storage-api-php-client tests/Backend/CommonPart2/SimpleAliasTest.php),
      // tables of linked buckets work like aliases (connection-docs src/content/docs/catalog/index.md), and
      // tables of external buckets export too (tests/Backend/ExternalBuckets/SnowflakeRegisterBucketTest.php).
      const exportableSkipped: TableDescriptor[] = [];
      for (const t of rawTables) {
        const table = tableFromApi(t);
        const { id, bucketId } = table;
        const bucketReason = skippedBuckets.get(bucketId);
        if (bucketReason !== undefined) {
          skipped.push({ id, reason: `in ${bucketId} (${bucketReason})` });
          exportableSkipped.push(table);
          continue;
        }
        if (t.isAlias === true) {
          skipped.push({ id, reason: `alias of ${String((t.sourceTable as Json | undefined)?.id ?? 'another table')}` });
          exportableSkipped.push(table);
          continue;
        }
        tables.push(table);
      }
      const summaries = await client.get<Json[]>('components', { query: { include: 'configuration' } });
      const full = await client.get<Json[]>('components', { query: { include: 'configuration,rows,state' } });
      const components: ComponentDescriptor[] = [];
      for (const component of summaries) {
        const detail = full.find((c) => c.id === component.id);
        const configs: ConfigurationDescriptor[] = [];
        for (const config of (detail?.configurations as Json[] | undefined) ?? []) {
          const base = `components/${encodeURIComponent(String(component.id))}/configs/${encodeURIComponent(String(config.id))}`;
          const rows: Json[] = [];
          for (const row of (config.rows as Json[] | undefined) ?? []) {
            rows.push({ ...row, _versions: await versions(`${base}/rows/${encodeURIComponent(String(row.id))}/versions`, 'configuration') });
          }
          configs.push({
            id: String(config.id),
            name: String(config.name ?? ''),
            configuration: {},
            raw: { ...config, rows, _versions: await versions(`${base}/versions`, 'name,description,configuration,state') },
          });
        }
        components.push({ id: String(component.id), type: String(component.type ?? ''), name: String(component.name ?? ''), configurations: configs, raw: component });
      }
      return {
        ...(verified.owner?.id !== undefined ? { id: verified.owner.id } : {}),
        ...(verified.owner?.name ? { name: verified.owner.name } : {}),
        buckets,
        tables,
        components,
        skipped,
        exportableSkipped,
        meta: { stack: baseUrl, region: verified.owner?.region ?? null },
      };
    },

    async prepare(tables: TableDescriptor[], open: OpenTableOptions): Promise<void> {
      // All exports are queued before any is awaited, so the stack works on them in parallel.
      for (const table of tables) {
        const job = queue(table, open.query);
        job.catch(() => undefined);
        jobs.set(table.id, job);
      }
    },

    async openTable(table: TableDescriptor, open: OpenTableOptions): Promise<TableBody> {
      const started = jobs.get(table.id) ?? queue(table, open.query);
      jobs.delete(table.id);
      const job = await finished(table, await started, open.signal);
      const results = job.results as { file?: { id: number | string } } | null | undefined;
      const fileId = results && !Array.isArray(results) ? results.file?.id : undefined;
      if (fileId === undefined) throw new TakeoutError('FAILED', `table ${table.id}: export job ${job.id} finished without a file`);
      const file = await fileBody(fileId);
      if (!file.header) return file;
      // One object with a header: gunzipped and sliced like any CSV.
      const raw = await file.slices[0]!.open();
      const gunzip = createGunzip({ chunkSize: 1 << 20 });
      raw.on('error', (error) => gunzip.destroy(error));
      return { kind: 'csv', stream: raw.pipe(gunzip), hasHeader: true, origin: `file ${fileId}` };
    },

    openFile(fileId: string): Promise<GzipSlicesBody> {
      if (!/^\d+$/.test(fileId)) throw new TakeoutError('USAGE', `${description}: '${fileId}' is not a Storage API file id`);
      return fileBody(fileId);
    },

    async close(): Promise<void> {
      for (const store of stores.splice(0)) await store.close?.();
    },
  };
}
