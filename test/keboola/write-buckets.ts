/**
 * Buckets: `POST buckets` (name without `c-`, stage in|out, description, backend, displayName; 201 the bucket),
 * an existing bucket answered `400 storage.buckets.alreadyExists` as the API does (storage-api-php-client
 * tests/Backend/…/SharingTest.php: "The bucket X already exists.", 400), `DELETE buckets/{id}` (`force` drops
 * its tables; `async` answers a job), and bucket metadata (`POST|GET buckets/{id}/metadata`, upsert on
 * key + provider, all of the bucket's metadata answered: apiary.apib "Bucket Metadata").
 */
import { HttpError, kbcTime, readParams, required, truthy } from './http.js';
import type { Json } from './http.js';
import { upsertMetadata } from './write-context.js';
import type { WriteContext, WriteHandler, WriteRoute } from './write-context.js';

export const BUCKET_ROUTES: WriteRoute[] = [
  { method: 'POST', pattern: /^buckets$/, endpoint: 'POST buckets' },
  { method: 'DELETE', pattern: /^buckets\/([^/]+)$/, endpoint: 'DELETE buckets/{id}' },
  { method: 'POST', pattern: /^buckets\/([^/]+)\/metadata$/, endpoint: 'POST buckets/{id}/metadata' },
  { method: 'GET', pattern: /^buckets\/([^/]+)\/metadata$/, endpoint: 'GET buckets/{id}/metadata' },
];

/** apiary.apib "Create Bucket": name "only alphanumeric characters and underscores" (dashes are taken too). */
const BUCKET_NAME = /^[A-Za-z0-9_-]+$/;

export function bucketById(ctx: WriteContext, id: string): Json {
  const bucket = ctx.project.buckets.find((b) => b.id === id);
  if (!bucket) throw new HttpError(404, `Bucket ${id} not found`, 'storage.buckets.notFound');
  return bucket;
}

function createBucket(ctx: WriteContext, params: Json): Json {
  const name = required(params, 'name');
  if (!BUCKET_NAME.test(name)) {
    throw new HttpError(400, `Invalid data - name: '${name}' contains not allowed characters. Only alphanumeric characters dash and underscores are allowed.`, 'storage.buckets.validation');
  }
  const stage = params.stage === undefined || params.stage === '' ? 'in' : String(params.stage);
  if (stage !== 'in' && stage !== 'out') throw new HttpError(400, `Invalid data - stage: "${stage}" is not a valid choice (in, out).`, 'storage.buckets.validation');
  const id = `${stage}.c-${name}`;
  const displayName = typeof params.displayName === 'string' && params.displayName ? params.displayName : name;
  if (ctx.project.buckets.some((b) => b.id === id)) throw new HttpError(400, `The bucket ${id} already exists.`, 'storage.buckets.alreadyExists');
  if (ctx.project.buckets.some((b) => b.stage === stage && b.displayName === displayName)) {
    throw new HttpError(400, `The display name "${displayName}" already exists in project.`, 'storage.buckets.alreadyExists');
  }
  const now = kbcTime();
  const uri = `${ctx.baseUrl()}/v2/storage/buckets/${id}`;
  const bucket: Json = {
    uri,
    id,
    name: `c-${name}`,
    displayName,
    idBranch: (ctx.project.devBranches.find((b) => b.isDefault === true)?.id as number | undefined) ?? null,
    stage,
    description: typeof params.description === 'string' ? params.description : '',
    tables: `${uri}/tables`,
    created: now,
    lastChangeDate: null,
    updated: null,
    isReadOnly: false,
    dataSizeBytes: 0,
    rowsCount: 0,
    isMaintenance: false,
    backend: typeof params.backend === 'string' && params.backend ? params.backend : 'snowflake',
    sharing: null,
    hasExternalSchema: false,
    databaseName: '',
    path: id,
    backendPath: [`SAPI_${ctx.projectId}`, id],
    owner: null,
    color: typeof params.color === 'string' && params.color ? params.color : null,
    isLinkedBucket: false,
    metadata: [],
  };
  ctx.project.buckets.push(bucket);
  return bucket;
}

function dropBucket(ctx: WriteContext, id: string, force: boolean): void {
  const bucket = bucketById(ctx, id);
  const tables = ctx.project.tables.filter((t) => (t.bucket as Json).id === id);
  if (tables.length > 0 && !force) {
    throw new HttpError(400, `Only empty buckets can be deleted. There are ${tables.length} tables in the bucket.`, 'storage.buckets.notEmpty');
  }
  for (const table of tables) ctx.dropRows(String(table.id));
  ctx.project.tables = ctx.project.tables.filter((t) => (t.bucket as Json).id !== id);
  ctx.project.buckets = ctx.project.buckets.filter((b) => b !== bucket);
}

export const handleBuckets: WriteHandler = async (ctx, endpoint, arg, url, req) => {
  switch (endpoint) {
    case 'POST buckets':
      return [201, createBucket(ctx, await readParams(req))];
    case 'DELETE buckets/{id}': {
      const force = truthy(url.searchParams.get('force'));
      if (truthy(url.searchParams.get('async'))) {
        bucketById(ctx, arg(1));
        return [202, ctx.startJob('bucketDrop', null, { bucketId: arg(1), force }, async () => (dropBucket(ctx, arg(1), force), null))];
      }
      dropBucket(ctx, arg(1), force);
      return [204, undefined];
    }
    case 'GET buckets/{id}/metadata':
      return [200, bucketById(ctx, arg(1)).metadata ?? []];
    default: {
      const bucket = bucketById(ctx, arg(1));
      const params = await readParams(req);
      const provider = required(params, 'provider');
      if (!Array.isArray(params.metadata)) throw new HttpError(400, 'Invalid request: metadata - This value should not be blank.', 'storage.metadata.validation');
      bucket.metadata = upsertMetadata(ctx, (bucket.metadata as Json[] | undefined) ?? [], provider, params.metadata, kbcTime());
      return [201, bucket.metadata];
    }
  }
};
