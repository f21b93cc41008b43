/**
 * A Keboola Storage API test server over a fixture project (fixtures/keboola-project/).
 *
 * Follows the documented API (Keboola Storage API: https://keboola.docs.apiary.io/): token verify, the
 * unpaginated lists, paged configuration/row versions, table export-async → job polling → file
 * with federated credentials, and the sliced export layout (manifest + headerless, all-quoted,
 * individually gzipped `<key>_0_0_N.csv.gz` slices) written into the stack's file storage: an S3 bucket on
 * s3rver (provider aws, the default), an Azurite container (azure) or a GCS test server bucket (gcp), with
 * the file detail and its credentials shaped as each cloud's stack gives them (storage-backends.ts).
 *
 * The write side (write-files.ts, write-buckets.ts, write-tables.ts, write-configs.ts) changes the project in
 * memory, so the read side serves what was written: files/prepare hands out upload credentials the emulator
 * takes, table jobs read the uploaded file (or sliced file) from it when polled; `emptyProject` starts a
 * project to restore into. `GET v2/storage` lists the stack's components (`stackComponents`).
 *
 * Faults (429, 503 maintenance, failing export or write jobs, bad token, expired credentials) are set
 * through `options.faults` or later through the mutable `state.faults`. Every request is counted
 * per endpoint in `state.requests` (key: `"<METHOD> <route pattern>"`, e.g. `"GET jobs/{id}"`).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { exceptionId, HttpError, kbcTime, readBody } from './http.js';
import type { Json } from './http.js';
import { aliasRows, compare, csvLine, includes, loadFixture, page, pick, readJson, tableForList, toTime, versionForList } from './read-helpers.js';
import { startFileBackend } from './storage-backends.js';
import { BUCKET_ROUTES, handleBuckets } from './write-buckets.js';
import { CONFIG_ROUTES, handleConfigs } from './write-configs.js';
import { EXTRA_ROUTES, handleExtras } from './write-extras.js';
import type { WriteContext, WriteHandler, WriteRoute } from './write-context.js';
import { fileFields, FILE_ROUTES, handleFiles } from './write-files.js';
import { handleTables, TABLE_ROUTES } from './write-tables.js';
import type { ExportParams, StorageApiOptions, StorageApiServer, StorageApiState, StorageJob, StoredFile } from './types.js';

export type { Provider } from './storage-backends.js';
export type {
  ExportParams,
  MaintenanceFault,
  RateLimitFault,
  StorageApiFaults,
  StorageApiOptions,
  StorageApiServer,
  StorageApiState,
  StorageJob,
  StoredFile,
} from './types.js';

// ---------------------------------------------------------------- server

const ROUTES: Array<{ method: string; pattern: RegExp; endpoint: string }> = [
  { method: 'GET', pattern: /^$/, endpoint: 'GET index' },
  { method: 'GET', pattern: /^tokens\/verify$/, endpoint: 'GET tokens/verify' },
  { method: 'GET', pattern: /^dev-branches$/, endpoint: 'GET dev-branches' },
  { method: 'GET', pattern: /^buckets$/, endpoint: 'GET buckets' },
  { method: 'GET', pattern: /^buckets\/([^/]+)$/, endpoint: 'GET buckets/{id}' },
  { method: 'GET', pattern: /^buckets\/([^/]+)\/tables$/, endpoint: 'GET buckets/{id}/tables' },
  { method: 'GET', pattern: /^tables$/, endpoint: 'GET tables' },
  { method: 'GET', pattern: /^tables\/([^/]+)$/, endpoint: 'GET tables/{id}' },
  { method: 'POST', pattern: /^tables\/([^/]+)\/export-async$/, endpoint: 'POST tables/{id}/export-async' },
  { method: 'GET', pattern: /^jobs\/(\d+)$/, endpoint: 'GET jobs/{id}' },
  { method: 'GET', pattern: /^files\/(\d+)$/, endpoint: 'GET files/{id}' },
  { method: 'GET', pattern: /^components$/, endpoint: 'GET components' },
  // Triggers and the files list: what Keboola's backup engine reads besides buckets, tables and configurations
  // (branch and configuration metadata are served by write-configs.ts, from the fixture and what was written).
  { method: 'GET', pattern: /^triggers$/, endpoint: 'GET triggers' },
  { method: 'GET', pattern: /^files$/, endpoint: 'GET files' },
  // The notification service (keboola/notification-client), served here under NOTIFICATION_PATH.
  { method: 'GET', pattern: /^notification:project-subscriptions$/, endpoint: 'GET notification project-subscriptions' },
  { method: 'GET', pattern: /^components\/([^/]+)\/configs\/([^/]+)\/versions$/, endpoint: 'GET components/{c}/configs/{id}/versions' },
  {
    method: 'GET',
    pattern: /^components\/([^/]+)\/configs\/([^/]+)\/rows\/([^/]+)\/versions$/,
    endpoint: 'GET components/{c}/configs/{id}/rows/{r}/versions',
  },
];

/** Where this server serves the stack's notification service (a host of its own on a real stack). */
const NOTIFICATION_PATH = '/notification/';

/** The write side, each module with its routes. */
const WRITE_MODULES: Array<{ routes: WriteRoute[]; handle: WriteHandler }> = [
  { routes: FILE_ROUTES, handle: handleFiles },
  { routes: BUCKET_ROUTES, handle: handleBuckets },
  { routes: TABLE_ROUTES, handle: handleTables },
  { routes: CONFIG_ROUTES, handle: handleConfigs },
  { routes: EXTRA_ROUTES, handle: handleExtras },
];
for (const module of WRITE_MODULES) ROUTES.push(...module.routes);
const WRITE_HANDLERS = new Map(WRITE_MODULES.flatMap((m) => m.routes.map((r) => [r.endpoint, m.handle] as const)));

export async function startStorageApi(options: StorageApiOptions): Promise<StorageApiServer> {
  const fixture = await loadFixture(options.fixtureDir);
  const stackComponents = new Map<string, Json>();
  for (const id of options.stackComponents ?? fixture.components.map((c) => String(c.id))) {
    const known = fixture.components.find((c) => c.id === id);
    stackComponents.set(id, known ? pick(known, ['configurations']) : { id, type: 'other', name: id, description: '', flags: [], categories: [] });
  }
  if (options.emptyProject) {
    fixture.buckets = [];
    fixture.tables = [];
    fixture.components = [];
    fixture.branchMetadata = [];
    fixture.configurationMetadata = {};
    fixture.triggers = [];
    fixture.notifications = [];
    fixture.files = [];
  }
  const sliceBytes = options.sliceBytes ?? 20_000;
  const sliced = options.sliced ?? true;
  const credentialsTtlMs = options.credentialsTtlMs ?? 12 * 3600_000;
  const useCache = options.cache ?? true;
  const keyPrefix = options.keyPrefix ?? `exp-15/${randomBytes(6).toString('hex')}/`;
  const projectId = String((fixture.token.owner as Json | undefined)?.id ?? '1');
  const creatorToken = { id: String(fixture.token.id), description: String(fixture.token.description) };

  const backend = await startFileBackend({
    provider: options.provider ?? 'aws',
    s3Endpoint: options.s3Endpoint,
    bucket: options.bucket,
    ...(options.azureConnectionString ? { azureConnectionString: options.azureConnectionString } : {}),
    projectId,
    time: kbcTime,
    ...(options.guardS3 ? { guardS3: true } : {}),
  });

  const state: StorageApiState = {
    faults: options.faults ?? {},
    requests: {},
    log: [],
    jobs: new Map(),
    files: new Map(),
    jobPolls: new Map(),
    jobPollsNeeded: { waiting: options.jobPolls?.waiting ?? 0, processing: options.jobPolls?.processing ?? 1 },
    project: fixture,
    tableData: new Map(),
  };
  /** What a write job does when a poll finishes it. */
  const runners = new Map<number, () => Promise<Json | null>>();
  let nextJobId = 700_000_001;
  let nextFileId = 900_000_001;
  const cache = new Map<string, number>();
  let baseUrl = '';
  // Files uploaded to the project (a permanent one among them) are in its file storage from the start.
  for (const f of fixture.files) {
    const id = Number(f.id);
    const key = `${keyPrefix}files/${id}`;
    const body = await readFile(path.join(options.fixtureDir, `file-data-${id}.txt`));
    await backend.put(key, body, 'application/octet-stream');
    const tags = Array.isArray(f.tags) ? f.tags.map(String) : [];
    state.files.set(id, { id, created: String(f.created), name: String(f.name), key, sliced: false, objectKeys: [key], sizeBytes: body.length, rows: 0, tableId: '', tags, isPermanent: f.maxAgeDays === null, uploaded: true });
  }

  const tableById = (id: string): Json => {
    const table = fixture.tables.find((t) => t.id === id);
    if (!table) {
      const dot = id.lastIndexOf('.');
      throw new HttpError(
        404,
        `The table "${id.slice(dot + 1)}" was not found in the bucket "${id.slice(0, dot)}" in the project "${projectId}"`,
        'storage.tables.notFound',
      );
    }
    return table;
  };

  async function tableRows(table: Json): Promise<{ header: string[]; rows: string[][] }> {
    const source = table.isAlias ? String((table.sourceTable as Json).id) : String(table.id);
    const written = state.tableData.get(source);
    if (written) {
      if (!table.isAlias) return written;
      return aliasRows(table, written);
    }
    let text: string;
    try {
      text = await readFile(path.join(options.fixtureDir, 'data', `${source}.csv`), 'utf8');
    } catch {
      return { header: (table.columns as string[]) ?? [], rows: [] };
    }
    const records = parse(text, { relax_column_count: false }) as string[][];
    const [header = [], ...rows] = records;
    return table.isAlias ? aliasRows(table, { header, rows }) : { header, rows };
  }

  /** Applies the export params to the table's data. */
  async function exportRows(table: Json, params: ExportParams): Promise<{ columns: string[]; rows: string[][] }> {
    const { header, rows } = await tableRows(table);
    const columns =
      params.columns === undefined || params.columns === '' || (Array.isArray(params.columns) && params.columns.length === 0)
        ? header
        : Array.isArray(params.columns)
          ? params.columns
          : params.columns.split(',').map((c) => c.trim());
    const indexOf = (column: string): number => {
      const index = header.indexOf(column);
      if (index === -1) throw new HttpError(400, `Column "${column}" not found in table "${String(table.id)}"`, 'storage.tables.columnNotFound');
      return index;
    };
    const columnIndexes = columns.map(indexOf);
    const filters = (params.whereFilters ?? []).map((f) => ({ ...f, index: indexOf(f.column), operator: f.operator ?? 'eq' }));
    for (const f of filters) {
      if (!['eq', 'ne', 'gt', 'ge', 'lt', 'le'].includes(f.operator)) {
        throw new HttpError(400, `Invalid where operator "${f.operator}"`, 'storage.validation');
      }
      if (!Array.isArray(f.values)) throw new HttpError(400, 'whereFilters[].values must be an array', 'storage.validation');
    }
    // The fixture has no per-row timestamps: every row changed at the table's lastImportDate.
    const changed = table.lastImportDate ? Date.parse(String(table.lastImportDate)) : Number.NaN;
    let selected = rows;
    if (params.changedSince !== undefined && params.changedSince !== '') {
      const since = toTime(params.changedSince);
      if (!(changed >= since)) selected = [];
    }
    if (params.changedUntil !== undefined && params.changedUntil !== '') {
      const until = toTime(params.changedUntil);
      if (!(changed < until)) selected = [];
    }
    selected = selected.filter((row) =>
      filters.every((f) => {
        const value = row[f.index] ?? '';
        const values = f.values.map(String);
        switch (f.operator) {
          case 'eq':
            return values.some((v) => compare(value, v, f.dataType) === 0);
          case 'ne':
            return values.every((v) => compare(value, v, f.dataType) !== 0);
          case 'gt':
            return values.some((v) => compare(value, v, f.dataType) > 0);
          case 'ge':
            return values.some((v) => compare(value, v, f.dataType) >= 0);
          case 'lt':
            return values.some((v) => compare(value, v, f.dataType) < 0);
          default:
            return values.some((v) => compare(value, v, f.dataType) <= 0);
        }
      }),
    );
    if (params.limit !== undefined && params.limit !== null && Number(params.limit) > 0) {
      selected = selected.slice(0, Number(params.limit));
    }
    return { columns, rows: selected.map((row) => columnIndexes.map((i) => row[i] ?? '')) };
  }

  /** Produces the export into the file storage and records the file. */
  async function produceExport(job: StorageJob): Promise<StoredFile> {
    const table = tableById(job.tableId);
    const { columns, rows } = await exportRows(table, job.operationParams.export);
    const id = nextFileId++;
    const name = `${job.tableId}.csv.gz`;
    const date = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    const key = `${keyPrefix}${projectId}/table-exports/${job.tableId.replace(/\./g, '/')}/${date}/${id}.${name}`;
    const put = (objectKey: string, body: Buffer | string, type: string): Promise<void> => backend.put(objectKey, body, type);
    let sizeBytes = 0;
    const objectKeys: string[] = [];
    if (sliced) {
      const slices: string[] = [];
      let current = '';
      for (const row of rows) {
        current += csvLine(row);
        if (Buffer.byteLength(current) >= sliceBytes) {
          slices.push(current);
          current = '';
        }
      }
      if (current) slices.push(current);
      for (const [index, text] of slices.entries()) {
        const sliceKey = `${key}_0_0_${index}.csv.gz`;
        const body = gzipSync(text);
        sizeBytes += body.length;
        await put(sliceKey, body, 'application/gzip');
        objectKeys.push(sliceKey);
      }
      const manifest = { entries: objectKeys.map((k) => ({ url: backend.entryUrl(k), mandatory: true })) };
      await put(`${key}manifest`, JSON.stringify(manifest), 'application/json');
    } else {
      const body = gzipSync(csvLine(columns) + rows.map(csvLine).join(''));
      sizeBytes = body.length;
      await put(key, body, 'application/gzip');
      objectKeys.push(key);
    }
    const file: StoredFile = { id, created: kbcTime(), name, key, sliced, objectKeys, sizeBytes, rows: rows.length, tableId: job.tableId };
    state.files.set(id, file);
    return file;
  }

  async function advanceJob(job: StorageJob): Promise<void> {
    if (job.status === 'success' || job.status === 'error') return;
    const polls = (state.jobPolls.get(job.id) ?? 0) + 1;
    state.jobPolls.set(job.id, polls);
    const { waiting, processing } = state.jobPollsNeeded;
    if (polls <= waiting) return;
    job.startTime ??= kbcTime();
    if (polls <= waiting + processing) {
      job.status = 'processing';
      return;
    }
    job.endTime = kbcTime();
    const runner = runners.get(job.id);
    if (runner) {
      runners.delete(job.id);
      const params = job.operationParams as unknown as Json;
      const target = job.tableId ?? `${String(params.bucketId)}.${String(params.name)}`;
      if (state.faults.failingWrites?.includes(target)) {
        const error = state.faults.jobError ?? { code: 'storage.tableImport.failed', message: `Import into table "${target}" failed.` };
        job.status = 'error';
        job.error = { ...error, exceptionId: exceptionId() };
        return;
      }
      try {
        const results = await runner();
        (job as { results: unknown }).results = results;
        // A create job names its table once it exists.
        if (job.tableId === null && typeof results?.id === 'string' && job.operationName.startsWith('table')) job.tableId = results.id;
        job.status = 'success';
      } catch (error) {
        job.status = 'error';
        const code = error instanceof HttpError ? error.code : 'applicationError';
        job.error = { code, message: error instanceof Error ? error.message : String(error), exceptionId: exceptionId() };
      }
      return;
    }
    if (state.faults.failingTables?.includes(job.tableId)) {
      const error = state.faults.jobError ?? { code: 'storage.tableExport.failed', message: `Export of table "${job.tableId}" failed.` };
      job.status = 'error';
      job.error = { ...error, exceptionId: exceptionId() };
      return;
    }
    const cacheKey = `${job.tableId} ${JSON.stringify(job.operationParams.export)}`;
    const cached = useCache ? cache.get(cacheKey) : undefined;
    if (cached !== undefined) {
      job.status = 'success';
      job.results = { file: { id: cached }, cacheHit: true };
      return;
    }
    try {
      const file = await produceExport(job);
      if (useCache) cache.set(cacheKey, file.id);
      job.status = 'success';
      job.results = { file: { id: file.id }, cacheHit: false };
    } catch (error) {
      job.status = 'error';
      const code = error instanceof HttpError ? error.code : 'storage.tableExport.failed';
      job.error = { code, message: error instanceof Error ? error.message : String(error), exceptionId: exceptionId() };
    }
  }

  function fileResponse(file: StoredFile, withCredentials: boolean): Json {
    const expiration = new Date(state.faults.expiredCredentials ? Date.now() - 60_000 : Date.now() + credentialsTtlMs);
    const urlKey = file.sliced ? `${file.key}manifest` : file.key;
    const { url, provider, region, ...where } = backend.detail(file.key, urlKey, expiration, withCredentials);
    return { ...fileFields(file, { url, provider, region }, creatorToken, ['table-export']), ...where };
  }

  /** A queued job as `GET jobs/{id}` shows it (apiary.apib "Job Detail"), export and write jobs alike. */
  function newJob(operationName: string, tableId: string | null, operationParams: Json, metrics: Json) {
    const id = nextJobId++;
    return {
      id,
      status: 'waiting' as const,
      url: `${baseUrl}/v2/storage/jobs/${id}`,
      tableId,
      operationName,
      operationParams,
      createdTime: kbcTime(),
      startTime: null,
      endTime: null,
      runId: null,
      results: null,
      creatorToken,
      metrics,
    };
  }

  let nextId = 500_001;
  const context: WriteContext = {
    project: fixture,
    projectId,
    creatorToken,
    backend,
    files: state.files,
    newFileId: () => nextFileId++,
    newId: () => nextId++,
    keyPrefix,
    importRows: options.importRows ?? true,
    baseUrl: () => baseUrl,
    credentialsExpiry: () => new Date(state.faults.expiredCredentials ? Date.now() - 60_000 : Date.now() + credentialsTtlMs),
    uploadCredentialsValid() {
      const refused = state.faults.refusedUploadCredentials ?? 0;
      if (refused <= 0) return true;
      state.faults.refusedUploadCredentials = refused - 1;
      return false;
    },
    rowsOf: async (tableId) => tableRows(tableById(tableId)),
    // Written data ends the export cache, as a changed table does on a stack.
    setRows: (tableId, data) => {
      state.tableData.set(tableId, data);
      cache.clear();
    },
    dropRows: (tableId) => {
      state.tableData.delete(tableId);
      cache.clear();
    },
    startJob(operationName, tableId, params, run) {
      const job = newJob(operationName, tableId, { ...params, queue: 'main' }, { inCompressed: false, inBytes: 0, inBytesUncompressed: 0, outCompressed: false, outBytes: 0, outBytesUncompressed: 0 });
      const id = job.id;
      // Write jobs share the job list (and GET jobs/{id}); their results are what `run` gives, e.g. the table.
      state.jobs.set(id, job as unknown as StorageJob);
      runners.set(id, run);
      return job;
    },
    versions: new Map(),
    configMetadata: new Map<string, Json[]>([['branch', fixture.branchMetadata], ...Object.entries(fixture.configurationMetadata)]),
    stackComponent: (id) => stackComponents.get(id),
  };

  async function handle(method: string, route: string, match: RegExpMatchArray, url: URL, req: IncomingMessage): Promise<[number, unknown]> {
    const arg = (i: number): string => decodeURIComponent(match[i] ?? '');
    switch (route) {
      case 'GET index': {
        // apiary.apib "API Index": the stack's components (exclude=components|componentDetails).
        const exclude = new Set((url.searchParams.get('exclude') ?? '').split(','));
        const brief = ['id', 'name', 'type', 'ico64', 'ico128', 'features', 'flags', 'description', 'categories'];
        const components = [...stackComponents.values()].map((c) =>
          exclude.has('componentDetails') ? Object.fromEntries(Object.entries(c).filter(([k]) => brief.includes(k))) : c,
        );
        const services = options.notificationService === false ? [] : [{ id: 'notification', url: `${baseUrl}${NOTIFICATION_PATH.replace(/\/$/, '')}` }];
        return [200, { api: 'storage', documentation: 'http://docs.keboola.apiary.io/', version: 'v2', ...(exclude.has('components') ? {} : { components }), services, features: [], urlTemplates: {} }];
      }
      case 'GET triggers':
        return [200, fixture.triggers];
      case 'GET notification project-subscriptions':
        return [200, fixture.notifications];
      case 'GET files': {
        // Newest first, paged with limit (default 100) and offset (keboola.docs.apiary.io, "List files").
        const all = [...state.files.values()].sort((a, b) => b.id - a.id).map((f) => fileResponse(f, false));
        return [200, page(all, url)];
      }
      case 'GET tokens/verify':
        return [200, fixture.token];
      case 'GET dev-branches':
        return [200, fixture.devBranches];
      case 'GET buckets': {
        const inc = includes(url);
        return [200, fixture.buckets.map((b) => (inc.has('metadata') ? b : pick(b, ['metadata'])))];
      }
      case 'GET buckets/{id}': {
        const bucket = fixture.buckets.find((b) => b.id === arg(1));
        if (!bucket) throw new HttpError(404, `Bucket ${arg(1)} not found`, 'storage.buckets.notFound');
        return [200, bucket];
      }
      case 'GET buckets/{id}/tables': {
        if (!fixture.buckets.some((b) => b.id === arg(1))) throw new HttpError(404, `Bucket ${arg(1)} not found`, 'storage.buckets.notFound');
        const inc = includes(url);
        return [200, fixture.tables.filter((t) => (t.bucket as Json).id === arg(1)).map((t) => tableForList(t, inc))];
      }
      case 'GET tables': {
        const inc = includes(url);
        return [200, fixture.tables.map((t) => tableForList(t, inc))];
      }
      case 'GET tables/{id}':
        return [200, tableById(arg(1))];
      case 'POST tables/{id}/export-async': {
        const table = tableById(arg(1));
        const text = await readBody(req);
        let params: ExportParams = {};
        if (text.trim()) {
          const type = req.headers['content-type'] ?? '';
          if (type.includes('application/x-www-form-urlencoded')) {
            params = Object.fromEntries(new URLSearchParams(text)) as ExportParams;
          } else {
            try {
              params = JSON.parse(text) as ExportParams;
            } catch {
              throw new HttpError(400, 'Invalid JSON body', 'storage.validation');
            }
          }
        }
        if (params.fileType !== undefined && params.fileType !== 'csv') {
          throw new HttpError(400, `fileType "${String(params.fileType)}" is not supported by the test server`, 'storage.validation');
        }
        if (params.format !== undefined && params.format !== 'rfc') {
          throw new HttpError(400, `format "${String(params.format)}" is not supported by the test server`, 'storage.validation');
        }
        // Validate columns/filters now, like the API does synchronously.
        await exportRows(table, params);
        const job = newJob('tableExport', String(table.id), { export: params, queue: 'main' }, {}) as unknown as StorageJob;
        state.jobs.set(job.id, job);
        return [202, job];
      }
      case 'GET jobs/{id}': {
        const job = state.jobs.get(Number(arg(1)));
        if (!job) throw new HttpError(404, `Job ${arg(1)} not found`, 'storage.jobs.notFound');
        await advanceJob(job);
        return [200, job];
      }
      case 'GET files/{id}': {
        const file = state.files.get(Number(arg(1)));
        if (!file) throw new HttpError(404, `File ${arg(1)} not found`, 'storage.files.notFound');
        const federation = url.searchParams.get('federationToken');
        return [200, fileResponse(file, federation === '1' || federation === 'true')];
      }
      case 'GET components': {
        const inc = includes(url);
        return [
          200,
          fixture.components.map((component) => ({
            ...component,
            configurations: (component.configurations as Json[]).map((config) => {
              const drop: string[] = [];
              if (!inc.has('configuration')) drop.push('configuration');
              if (!inc.has('rows')) drop.push('rows');
              if (!inc.has('state')) drop.push('state');
              const out = pick(config, drop);
              if (inc.has('rows') && !inc.has('state')) out.rows = (config.rows as Json[]).map((r) => pick(r, ['state']));
              if (inc.has('rows') && !inc.has('configuration')) out.rows = (out.rows as Json[]).map((r) => pick(r, ['configuration']));
              return out;
            }),
          })),
        ];
      }
      case 'GET components/{c}/configs/{id}/versions':
      case 'GET components/{c}/configs/{id}/rows/{r}/versions': {
        const component = fixture.components.find((c) => c.id === arg(1));
        if (!component) throw new HttpError(404, `Component ${arg(1)} not found`, 'storage.components.notFound');
        const config = (component.configurations as Json[]).find((c) => c.id === arg(2));
        if (!config) throw new HttpError(404, `Configuration ${arg(2)} not found`, 'storage.components.configurations.notFound');
        let file = path.join(options.fixtureDir, 'versions', arg(1), `${arg(2)}.json`);
        if (route.includes('rows')) {
          if (!(config.rows as Json[]).some((r) => r.id === arg(3))) {
            throw new HttpError(404, `Row ${arg(3)} not found`, 'storage.components.configurations.rows.notFound');
          }
          file = path.join(options.fixtureDir, 'versions', arg(1), arg(2), 'rows', `${arg(3)}.json`);
        }
        const written = context.versions.get(route.includes('rows') ? `${arg(1)}/${arg(2)}/rows/${arg(3)}` : `${arg(1)}/${arg(2)}`);
        const versions = written ?? (await readJson<Json[]>(file).catch(() => [] as Json[]));
        const inc = includes(url);
        return [200, page(versions, url).map((v) => versionForList(v, inc))];
      }
      default: {
        const write = WRITE_HANDLERS.get(route);
        if (!write) throw new HttpError(404, `Route ${method} ${url.pathname} not found`, 'notFound');
        return write(context, route, arg, url, req);
      }
    }
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (body === undefined) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  function takeFault<T extends { count: number; endpoint?: string }>(fault: T | undefined, endpoint: string): T | undefined {
    if (!fault || fault.count <= 0) return undefined;
    if (fault.endpoint && fault.endpoint !== endpoint) return undefined;
    fault.count -= 1;
    return fault;
  }

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let rest = url.pathname === '/v2/storage' ? '' : url.pathname.startsWith('/v2/storage/') ? url.pathname.slice('/v2/storage/'.length) : undefined;
    if (rest !== undefined) rest = rest.replace(/^branch\/[^/]+\//, '').replace(/\/$/, '');
    if (url.pathname.startsWith(NOTIFICATION_PATH)) rest = `notification:${url.pathname.slice(NOTIFICATION_PATH.length)}`;
    let endpoint = `${method} ${url.pathname}`;
    let match: RegExpMatchArray | null = null;
    if (rest !== undefined) {
      for (const route of ROUTES) {
        if (route.method !== method) continue;
        match = rest.match(route.pattern);
        if (match) {
          endpoint = route.endpoint;
          break;
        }
      }
    }
    state.requests[endpoint] = (state.requests[endpoint] ?? 0) + 1;
    const entry = { method, endpoint, path: `${url.pathname}${url.search}`, status: 0 };
    state.log.push(entry);
    const reply = (status: number, body: unknown, headers?: Record<string, string>): void => {
      entry.status = status;
      send(res, status, body, headers);
    };

    void (async () => {
      try {
        const maintenance = takeFault(state.faults.maintenance, endpoint);
        if (maintenance) {
          const retryAfter = maintenance.retryAfterSeconds ?? 1;
          reply(
            503,
            {
              status: 'maintenance',
              reason: maintenance.reason ?? 'Scheduled maintenance (test fault)',
              estimatedEndTime: maintenance.estimatedEndTime ?? new Date(Date.now() + retryAfter * 1000).toISOString(),
            },
            { 'Retry-After': String(retryAfter) },
          );
          return;
        }
        const rateLimit = takeFault(state.faults.rateLimit, endpoint);
        if (rateLimit) {
          reply(
            429,
            { error: 'Too many requests. Please slow down.', code: 'tooManyRequests', exceptionId: exceptionId() },
            { 'Retry-After': String(rateLimit.retryAfterSeconds ?? 1) },
          );
          return;
        }
        const token = req.headers['x-storageapi-token'];
        if (state.faults.badToken || token !== options.token) {
          // Drain the body so the client sees the answer cleanly.
          if (method !== 'GET') await readBody(req);
          reply(401, { error: 'Invalid access token', code: 'storage.tokenInvalid', exceptionId: exceptionId() });
          return;
        }
        if (!match) throw new HttpError(404, `Route ${method} ${url.pathname} not found`, 'notFound');
        if (state.faults.forbidden?.includes(endpoint)) throw new HttpError(403, "You don't have access to the resource.", 'accessDenied');
        const [status, body] = await handle(method, endpoint, match, url, req);
        reply(status, body);
      } catch (error) {
        if (error instanceof HttpError) {
          reply(error.status, { error: error.message, code: error.code, exceptionId: exceptionId() });
        } else {
          reply(500, { error: error instanceof Error ? error.message : String(error), code: 'applicationError', exceptionId: exceptionId() });
        }
      }
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;

  return {
    url: baseUrl,
    provider: backend.provider,
    storageEnv: backend.env,
    entryUrl: (key) => backend.entryUrl(key),
    putObject: (key, body, contentType) => backend.put(key, body, contentType),
    secretsHandedOut: () => [...backend.handedOut],
    fileStorageWrites: () => [...(backend.s3Writes ?? [])],
    state,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await backend.stop();
    },
  };
}

/** A fresh random string, handy for `token`. */
export const randomToken = (): string => `${randomUUID()}-${randomBytes(8).toString('hex')}`;
