/**
 * A Google Cloud Storage JSON-API test server, in memory, on a free loopback port.
 *
 * Follows the documented JSON API (https://cloud.google.com/storage/docs/json_api/v1): buckets insert/get/list;
 * objects insert (`uploadType=media|multipart`), resumable sessions (chunks answered 308 + `Range`, status
 * query, cancel → 499; https://cloud.google.com/storage/docs/performing-resumable-uploads), get (metadata or
 * `alt=media` with `Range` → 206), list (prefix, delimiter, pages), delete, patch, compose and rewrite, with
 * generation preconditions (412 `conditionNotMet`). Every path is accepted with and without `/storage/v1`,
 * because @google-cloud/storage 7.x drops the prefix when `STORAGE_EMULATOR_HOST` is set
 * (test/emulators/GCS.md).
 *
 * Faults: `failNext(match, status)` answers the next matching request(s) with an error (or drops the
 * connection), `options.persistLimit` makes each chunk persist fewer bytes than sent, `options.rewriteBytesPerCall`
 * forces `done:false` rewrite rounds, `options.token` requires `Authorization: Bearer <token>`. Every request is
 * counted per route in `state.requests` (key: e.g. `"PUT upload/session"`).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  checkDeclaredHashes,
  checkPreconditions,
  crc32c,
  errorBody,
  GcsError,
  listObjects,
  md5,
  objectResource,
  parseGoogHash,
  parseMultipart,
  readPreconditions,
} from './objects.js';
import type { ObjectMetadata, Preconditions, StoredObject } from './objects.js';

export { crc32c, md5 } from './objects.js';
export type { StoredObject } from './objects.js';

/** Resumable chunks other than the last must be multiples of this (performing-resumable-uploads#chunked-upload). */
export const RESUMABLE_CHUNK_BYTES = 256 * 1024;
/** objects.compose accepts at most 32 sources (https://cloud.google.com/storage/docs/json_api/v1/objects/compose). */
export const COMPOSE_MAX_SOURCES = 32;
/** objects.list answers at most 1000 items per page (https://cloud.google.com/storage/docs/json_api/v1/objects/list). */
const LIST_MAX_RESULTS = 1000;

export interface GcsRequest {
  method: string;
  /** Route key, e.g. `"GET object"`, `"GET media"`, `"POST upload"`, `"PUT upload/session"`, `"POST compose"`. */
  route: string;
  bucket?: string;
  object?: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
}

export interface GcsFault {
  match: (request: GcsRequest) => boolean;
  /** An HTTP status answered with Google's error body (`Retry-After` on 429/503), or `'drop'` to close the socket. */
  status: number | 'drop';
  /** How many matching requests this fault answers (default 1). */
  count?: number;
  retryAfterSeconds?: number;
  /** With `'drop'` on a resumable chunk: persist this many bytes of it first (rounded down to 256 KiB). */
  persistBytes?: number;
}

export interface GcsServerOptions {
  /** Buckets that exist from the start. */
  buckets?: string[];
  /**
   * When set, every request needs `Authorization: Bearer <token>` (else 401); a function decides for each
   * bearer token given (a test that hands out tokens which expire, as Google's do) and the request's method;
   * `'forbidden'` answers 403 as Google does for a token without the permission (a read-only token writing).
   */
  token?: string | ((bearer: string | undefined, method: string) => boolean | 'forbidden');
  /** Each non-final resumable chunk persists at most this many bytes (a multiple of 256 KiB), so clients resend. */
  persistLimit?: number;
  /** Bytes copied per rewrite call before answering `done:false` with a `rewriteToken` (default: all). */
  rewriteBytesPerCall?: number;
  faults?: GcsFault[];
}

interface Session {
  id: string;
  bucket: string;
  name: string;
  metadata: ObjectMetadata;
  preconditions: Preconditions;
  data: Buffer;
  done?: StoredObject;
}

export interface GcsState {
  buckets: Map<string, Map<string, StoredObject>>;
  sessions: Map<string, Session>;
  /** Mutable: faults are consumed in order as they match. */
  faults: GcsFault[];
  requests: Map<string, number>;
}

export interface GcsServer {
  /** `http://127.0.0.1:<port>`: use as `STORAGE_EMULATOR_HOST` or `apiEndpoint`. */
  url: string;
  state: GcsState;
  /** The live object, or undefined. */
  object(bucket: string, name: string): StoredObject | undefined;
  /** Answers the next `count` requests matching `match` with `status` (or drops them). */
  failNext(match: (request: GcsRequest) => boolean, status: number | 'drop', options?: Omit<GcsFault, 'match' | 'status'>): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json<T>(body: Buffer): T {
  try {
    return JSON.parse(body.length === 0 ? '{}' : body.toString()) as T;
  } catch {
    throw new GcsError(400, 'parseError', 'Parse Error: the request body is not JSON');
  }
}

interface Route {
  route: string;
  bucket?: string;
  object?: string;
  destBucket?: string;
  destObject?: string;
}

/** Maps a path (already without `/storage/v1`) to a route; segments are percent-decoded one by one. */
function resolveRoute(method: string, pathname: string): Route | undefined {
  const upload = pathname.startsWith('/upload/storage/v1/');
  const download = pathname.startsWith('/download/storage/v1/');
  const rest = upload || download ? pathname.replace(/^\/(upload|download)\/storage\/v1/, '') : pathname.replace(/^\/storage\/v1(?=\/)/, '');
  const s = rest.split('/').slice(1).map((segment) => decodeURIComponent(segment));
  if (s[0] !== 'b') return undefined;
  if (upload) return s.length === 3 && s[2] === 'o' ? { route: method === 'POST' ? 'POST upload' : `${method} upload/session`, bucket: s[1] } : undefined;
  if (s.length === 1) return { route: `${method} buckets` };
  if (s.length === 2) return { route: `${method} bucket`, bucket: s[1] };
  if (s[2] !== 'o') return undefined;
  if (s.length === 3) return { route: `${method} objects`, bucket: s[1] };
  if (s.length === 4) return { route: download ? `${method} media` : `${method} object`, bucket: s[1], object: s[3] };
  if (s.length === 5 && s[4] === 'compose') return { route: `${method} compose`, bucket: s[1], object: s[3] };
  if (s.length === 9 && (s[4] === 'rewriteTo' || s[4] === 'copyTo') && s[5] === 'b' && s[7] === 'o') {
    return { route: `${method} ${s[4]}`, bucket: s[1], object: s[3], destBucket: s[6], destObject: s[8] };
  }
  return undefined;
}

export async function startGcsServer(options: GcsServerOptions = {}): Promise<GcsServer> {
  const state: GcsState = {
    buckets: new Map((options.buckets ?? []).map((name) => [name, new Map()])),
    sessions: new Map(),
    faults: [...(options.faults ?? [])],
    requests: new Map(),
  };
  // Generations are microsecond timestamps in GCS; strictly increasing here so every write gets a new one.
  let lastGeneration = Date.now() * 1000;
  const nextGeneration = (): number => (lastGeneration += 1);

  const bucketOf = (name: string | undefined): Map<string, StoredObject> => {
    const bucket = name === undefined ? undefined : state.buckets.get(name);
    if (!bucket) throw new GcsError(404, 'notFound', `The specified bucket does not exist: ${name}`);
    return bucket;
  };
  const existing = (bucket: string | undefined, name: string | undefined): StoredObject => {
    const object = name === undefined ? undefined : bucketOf(bucket).get(name);
    if (!object) throw new GcsError(404, 'notFound', `No such object: ${bucket}/${name}`);
    return object;
  };

  /** Writes a new live generation after re-checking the preconditions (at commit, as GCS does). */
  function commit(bucket: string, name: string, data: Buffer, metadata: ObjectMetadata, conditions: Preconditions, extra: Partial<StoredObject> = {}): StoredObject {
    const objects = bucketOf(bucket);
    if (name === '') throw new GcsError(400, 'required', 'Required: object name');
    const current = objects.get(name);
    checkPreconditions(current, conditions, `${bucket}/${name}`);
    checkDeclaredHashes(data, metadata);
    const now = new Date().toISOString();
    const object: StoredObject = {
      bucket,
      name,
      data,
      generation: nextGeneration(),
      metageneration: 1,
      contentType: metadata.contentType ?? 'application/octet-stream',
      md5Hash: md5(data),
      crc32c: crc32c(data),
      ...(metadata.metadata === undefined ? {} : { metadata: metadata.metadata }),
      timeCreated: now,
      updated: now,
      ...extra,
    };
    if (extra.componentCount !== undefined) delete object.md5Hash; // composites have no MD5 (composite-objects)
    objects.set(name, object);
    return object;
  }

  let baseUrl = '';
  type Answer = [number, unknown, Record<string, string>?];

  async function handleSession(req: IncomingMessage, match: Route, query: URLSearchParams, base: string, fault?: GcsFault): Promise<Answer | undefined> {
    const id = query.get('upload_id') ?? '';
    const session = state.sessions.get(id);
    if (!session || session.bucket !== match.bucket) throw new GcsError(404, 'notFound', `No such upload session: ${id}`);
    if (req.method === 'DELETE') {
      state.sessions.delete(id);
      return [499, undefined]; // cancel (performing-resumable-uploads#cancel-upload)
    }
    if (req.method !== 'PUT') throw new GcsError(405, 'methodNotAllowed', `${req.method} on an upload session`);
    const body = await readBody(req);
    const range = /^bytes (?:\*|([0-9]+)-([0-9]+|\*))\/([0-9]+|\*)$/.exec(String(req.headers['content-range'] ?? 'bytes */*').trim());
    if (!range) throw new GcsError(400, 'invalid', `Bad Content-Range: ${req.headers['content-range']}`);
    const [, first, last, totalText] = range;
    const total = totalText === '*' ? undefined : Number(totalText);
    const persisted = (): Answer => [308, undefined, session.data.length === 0 ? {} : { Range: `bytes=0-${session.data.length - 1}` }];
    if (session.done) return [200, objectResource(session.done, base)];
    if (first === undefined) {
      // Status query (performing-resumable-uploads#status-check); with a known total and all bytes in, finish.
      if (total !== undefined && total === session.data.length) return finish();
      return persisted();
    }
    const start = Number(first);
    if (start > session.data.length) throw new GcsError(400, 'invalid', `Chunk starts at ${start}, only ${session.data.length} bytes persisted`);
    // Bytes already persisted are skipped: the client resends from Range + 1 but may overlap.
    const fresh = body.subarray(session.data.length - start);
    const final = last === '*' || (total !== undefined && start + body.length === total);
    if (fault?.status === 'drop') {
      const keep = Math.floor(Math.min(fault.persistBytes ?? 0, fresh.length) / RESUMABLE_CHUNK_BYTES) * RESUMABLE_CHUNK_BYTES;
      session.data = Buffer.concat([session.data, fresh.subarray(0, keep)]);
      return undefined;
    }
    if (!final) {
      // Non-final chunks persist whole 256 KiB units only, and at most persistLimit of them.
      const limit = Math.min(fresh.length, options.persistLimit ?? fresh.length);
      session.data = Buffer.concat([session.data, fresh.subarray(0, Math.floor(limit / RESUMABLE_CHUNK_BYTES) * RESUMABLE_CHUNK_BYTES)]);
      return persisted();
    }
    const data = Buffer.concat([session.data, fresh]);
    if (total !== undefined && data.length !== total) throw new GcsError(400, 'invalid', `Upload ends at ${data.length} bytes, Content-Range says ${total}`);
    session.data = data;
    return finish();

    function finish(): Answer {
      const s = session as Session;
      const object = commit(s.bucket, s.name, s.data, { ...s.metadata, ...parseGoogHash(req.headers['x-goog-hash']) }, s.preconditions);
      s.done = object;
      return [200, objectResource(object, base)];
    }
  }

  async function handleUpload(req: IncomingMessage, match: Route, query: URLSearchParams, base: string): Promise<Answer> {
    const bucket = match.bucket as string;
    bucketOf(bucket);
    const conditions = readPreconditions(query);
    const type = query.get('uploadType') ?? 'media';
    const body = await readBody(req);
    const contentType = String(req.headers['content-type'] ?? '');
    if (type === 'media') {
      const metadata: ObjectMetadata = { contentType: contentType || undefined, ...parseGoogHash(req.headers['x-goog-hash']) };
      return [200, objectResource(commit(bucket, query.get('name') ?? '', body, metadata, conditions), base)];
    }
    if (type === 'multipart') {
      const { metadata, data, dataType } = parseMultipart(body, contentType);
      const name = metadata.name ?? query.get('name') ?? '';
      const declared = { ...metadata, contentType: metadata.contentType ?? dataType, ...parseGoogHash(req.headers['x-goog-hash']) };
      return [200, objectResource(commit(bucket, name, data, declared, conditions), base)];
    }
    if (type !== 'resumable') throw new GcsError(400, 'invalid', `Invalid uploadType: ${type}`);
    const metadata = contentType.startsWith('application/json') ? json<ObjectMetadata & { name?: string }>(body) : {};
    const name = query.get('name') ?? metadata.name ?? '';
    if (name === '') throw new GcsError(400, 'required', 'Required: object name');
    // Preconditions are checked when the session starts (412 before any byte) and again at commit.
    checkPreconditions(bucketOf(bucket).get(name), conditions, `${bucket}/${name}`);
    const declaredType = req.headers['x-upload-content-type'];
    const session: Session = {
      id: randomBytes(16).toString('hex'),
      bucket,
      name,
      metadata: { ...metadata, ...(typeof declaredType === 'string' ? { contentType: declaredType } : {}) },
      preconditions: conditions,
      data: Buffer.alloc(0),
    };
    state.sessions.set(session.id, session);
    const location = `${base}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${session.id}`;
    return [200, undefined, { Location: location }];
  }

  function media(object: StoredObject, rangeHeader: string | undefined): Answer {
    const headers: Record<string, string> = {
      'Content-Type': object.contentType,
      'Accept-Ranges': 'bytes',
      'x-goog-hash': object.md5Hash === undefined ? `crc32c=${object.crc32c}` : `crc32c=${object.crc32c},md5=${object.md5Hash}`,
      'x-goog-generation': String(object.generation),
      'x-goog-metageneration': String(object.metageneration),
      'x-goog-stored-content-length': String(object.data.length),
      ETag: `"${object.md5Hash ?? object.crc32c}"`,
    };
    if (rangeHeader === undefined) return [200, object.data, headers];
    const size = object.data.length;
    const range = /^bytes=([0-9]*)-([0-9]*)$/.exec(rangeHeader.trim());
    if (!range || (range[1] === '' && range[2] === '')) return [200, object.data, headers];
    let start: number;
    let end: number;
    if (range[1] === '') {
      start = Math.max(0, size - Number(range[2]));
      end = size - 1;
    } else {
      start = Number(range[1]);
      end = range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    }
    if (start >= size || start > end) {
      throw new GcsError(416, 'requestedRangeNotSatisfiable', `Request range not satisfiable: ${rangeHeader} of ${size} bytes`);
    }
    return [206, object.data.subarray(start, end + 1), { ...headers, 'Content-Range': `bytes ${start}-${end}/${size}` }];
  }

  async function handle(req: IncomingMessage, match: Route, query: URLSearchParams, base: string): Promise<Answer> {
    switch (match.route) {
      case 'GET buckets':
        return [200, { kind: 'storage#buckets', items: [...state.buckets.keys()].sort().map((name) => ({ kind: 'storage#bucket', id: name, name })) }];
      case 'POST buckets': {
        const { name } = json<{ name?: string }>(await readBody(req));
        if (!name) throw new GcsError(400, 'required', 'Required: bucket name');
        if (state.buckets.has(name)) throw new GcsError(409, 'conflict', `The requested bucket name is not available: ${name}`);
        state.buckets.set(name, new Map());
        return [200, { kind: 'storage#bucket', id: name, name }];
      }
      case 'GET bucket':
        bucketOf(match.bucket);
        return [200, { kind: 'storage#bucket', id: match.bucket, name: match.bucket }];
      case 'DELETE bucket':
        if (bucketOf(match.bucket).size > 0) throw new GcsError(409, 'conflict', `The bucket you tried to delete is not empty: ${match.bucket}`);
        state.buckets.delete(match.bucket as string);
        return [204, undefined];
      case 'POST upload':
        return handleUpload(req, match, query, base);
      case 'GET objects': {
        const maxResults = Math.min(Number(query.get('maxResults') ?? LIST_MAX_RESULTS) || LIST_MAX_RESULTS, LIST_MAX_RESULTS);
        const token = query.get('pageToken');
        const page = listObjects(bucketOf(match.bucket).values(), {
          prefix: query.get('prefix') ?? '',
          delimiter: query.get('delimiter') || undefined,
          startOffset: query.get('startOffset') ?? undefined,
          endOffset: query.get('endOffset') ?? undefined,
          after: token ? Buffer.from(token, 'base64url').toString() : undefined,
          maxResults,
        });
        return [200, {
          kind: 'storage#objects',
          items: page.items.map((o) => objectResource(o, base)),
          ...(page.prefixes.length > 0 ? { prefixes: page.prefixes } : {}),
          ...(page.next === undefined ? {} : { nextPageToken: Buffer.from(page.next).toString('base64url') }),
        }];
      }
      case 'GET object':
      case 'GET media': {
        const object = existing(match.bucket, match.object);
        const generation = query.get('generation');
        if (generation !== null && Number(generation) !== object.generation) throw new GcsError(404, 'notFound', `No such object: ${match.bucket}/${match.object}#${generation}`);
        checkPreconditions(object, readPreconditions(query), `${match.bucket}/${match.object}`);
        if (match.route === 'GET media') return media(object, req.headers.range);
        return [200, objectResource(object, base)];
      }
      case 'DELETE object': {
        const object = existing(match.bucket, match.object);
        checkPreconditions(object, readPreconditions(query), `${match.bucket}/${match.object}`);
        bucketOf(match.bucket).delete(object.name);
        return [204, undefined];
      }
      case 'PATCH object': {
        const object = existing(match.bucket, match.object);
        checkPreconditions(object, readPreconditions(query), `${match.bucket}/${match.object}`);
        const patch = json<ObjectMetadata>(await readBody(req));
        if (patch.contentType !== undefined) object.contentType = patch.contentType;
        if (patch.metadata !== undefined) object.metadata = { ...object.metadata, ...patch.metadata };
        object.metageneration += 1;
        object.updated = new Date().toISOString();
        return [200, objectResource(object, base)];
      }
      case 'POST compose':
        return compose(req, match, query, base);
      case 'POST rewriteTo':
      case 'POST copyTo':
        return rewrite(req, match, query, base);
      default:
        throw new GcsError(404, 'notFound', `Not Found: ${match.route}`);
    }
  }

  async function compose(req: IncomingMessage, match: Route, query: URLSearchParams, base: string): Promise<Answer> {
    const body = json<{ sourceObjects?: Array<{ name?: string; generation?: string; objectPreconditions?: { ifGenerationMatch?: string } }>; destination?: ObjectMetadata }>(await readBody(req));
    const sources = body.sourceObjects ?? [];
    if (sources.length === 0 || sources.length > COMPOSE_MAX_SOURCES) {
      throw new GcsError(400, 'invalid', `The number of source components provided (${sources.length}) must be between 1 and ${COMPOSE_MAX_SOURCES}.`);
    }
    const parts = sources.map((source) => {
      const object = existing(match.bucket, source.name);
      if (source.generation !== undefined && Number(source.generation) !== object.generation) throw new GcsError(404, 'notFound', `No such object: ${match.bucket}/${source.name}#${source.generation}`);
      const wanted = source.objectPreconditions?.ifGenerationMatch;
      if (wanted !== undefined) checkPreconditions(object, { ifGenerationMatch: Number(wanted) }, `source ${match.bucket}/${source.name}`);
      return object;
    });
    const components = parts.reduce((sum, part) => sum + (part.componentCount ?? 1), 0);
    const destination = { contentType: parts[0]?.contentType, ...body.destination };
    delete destination.md5Hash;
    const object = commit(match.bucket as string, match.object as string, Buffer.concat(parts.map((p) => p.data)), destination, readPreconditions(query), { componentCount: components });
    return [200, objectResource(object, base)];
  }

  const rewrites = new Map<string, { copied: number; generation: number }>();

  async function rewrite(req: IncomingMessage, match: Route, query: URLSearchParams, base: string): Promise<Answer> {
    const body = json<ObjectMetadata>(await readBody(req));
    const source = existing(match.bucket, match.object);
    checkPreconditions(source, readPreconditions(query, true), `source ${match.bucket}/${match.object}`);
    const destConditions = readPreconditions(query);
    const destBucket = match.destBucket as string;
    checkPreconditions(bucketOf(destBucket).get(match.destObject as string), destConditions, `${destBucket}/${match.destObject}`);
    const metadata: ObjectMetadata = { contentType: source.contentType, ...(source.metadata ? { metadata: source.metadata } : {}), ...body };
    const size = source.data.length;
    if (match.route === 'POST copyTo') {
      return [200, objectResource(commit(destBucket, match.destObject as string, source.data, metadata, destConditions), base)];
    }
    const token = query.get('rewriteToken');
    const progress = token ? rewrites.get(token) : { copied: 0, generation: source.generation };
    if (!progress || progress.generation !== source.generation) throw new GcsError(400, 'invalid', `Invalid rewriteToken for ${match.bucket}/${match.object}`);
    const perCall = Math.min(Number(query.get('maxBytesRewrittenPerCall') ?? Infinity) || Infinity, options.rewriteBytesPerCall ?? Infinity);
    const copied = Math.min(size, progress.copied + perCall);
    if (token) rewrites.delete(token);
    if (copied < size) {
      const next = randomBytes(12).toString('hex');
      rewrites.set(next, { copied, generation: source.generation });
      return [200, { kind: 'storage#rewriteResponse', totalBytesRewritten: String(copied), objectSize: String(size), done: false, rewriteToken: next }];
    }
    const object = commit(destBucket, match.destObject as string, source.data, metadata, destConditions);
    return [200, { kind: 'storage#rewriteResponse', totalBytesRewritten: String(size), objectSize: String(size), done: true, resource: objectResource(object, base) }];
  }

  function takeFault(request: GcsRequest): GcsFault | undefined {
    const index = state.faults.findIndex((fault) => fault.match(request));
    const fault = state.faults[index];
    if (!fault) return undefined;
    const left = (fault.count ?? 1) - 1;
    if (left <= 0) state.faults.splice(index, 1);
    else fault.count = left;
    return fault;
  }

  const tokenAccepted = (authorization: string | undefined, method: string): boolean | 'forbidden' => {
    const { token } = options;
    if (token === undefined) return true;
    if (typeof token === 'string') return authorization === `Bearer ${token}`;
    return token(/^Bearer (.+)$/.exec(authorization ?? '')?.[1], method);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', baseUrl);
    const method = req.method ?? 'GET';
    // Links answer the host the client used (a recording proxy in front of the server keeps working).
    const base = req.headers.host ? `http://${req.headers.host}` : baseUrl;
    const match = resolveRoute(method, url.pathname);
    // `GET …/o/NAME?alt=media` is a download, counted and matched by faults as one.
    if (match?.route === 'GET object' && url.searchParams.get('alt') === 'media') match.route = 'GET media';
    const reply = ([status, body, headers]: Answer): void => {
      if (res.headersSent || res.destroyed) return;
      const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      const type = body === undefined || Buffer.isBuffer(body) ? {} : { 'Content-Type': 'application/json; charset=UTF-8' };
      res.writeHead(status, { ...type, ...(bytes ? { 'Content-Length': String(bytes.length) } : { 'Content-Length': '0' }), ...headers });
      res.end(bytes);
    };
    const fail = (error: GcsError, headers?: Record<string, string>): void => reply([error.status, errorBody(error.status, error.reason, error.message), headers]);
    const route = match?.route ?? `${method} unknown`;
    state.requests.set(route, (state.requests.get(route) ?? 0) + 1);

    void (async () => {
      try {
        if (!match) throw new GcsError(404, 'notFound', `Not Found: ${method} ${url.pathname}`);
        const request: GcsRequest = { method, route, bucket: match.bucket, object: match.object, query: url.searchParams, headers: req.headers };
        const fault = takeFault(request);
        if (fault && fault.status !== 'drop') {
          await readBody(req);
          const retry = fault.status === 429 || fault.status === 503 ? { 'Retry-After': String(fault.retryAfterSeconds ?? 1) } : undefined;
          fail(new GcsError(fault.status, fault.status === 429 ? 'rateLimitExceeded' : 'backendError', `Injected fault ${fault.status} on ${route}`), retry);
          return;
        }
        const accepted = tokenAccepted(req.headers.authorization, method);
        if (accepted === 'forbidden') {
          await readBody(req);
          throw new GcsError(403, 'forbidden', `The caller does not have storage.objects.create access to the Google Cloud Storage bucket ${match.bucket ?? ''}.`);
        }
        if (!accepted) {
          await readBody(req);
          throw new GcsError(401, 'required', 'Anonymous caller does not have storage access (test server expects a bearer token).');
        }
        if (route.endsWith('upload/session')) {
          const answer = await handleSession(req, match, url.searchParams, base, fault);
          if (answer) reply(answer);
          else req.socket.destroy();
          return;
        }
        if (fault) {
          req.socket.destroy();
          return;
        }
        reply(await handle(req, match, url.searchParams, base));
      } catch (error) {
        if (error instanceof GcsError) fail(error);
        else fail(new GcsError(500, 'backendError', error instanceof Error ? error.message : String(error)));
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
    state,
    object: (bucket, name) => state.buckets.get(bucket)?.get(name),
    failNext: (match, status, more = {}) => {
      state.faults.push({ ...more, match, status });
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
