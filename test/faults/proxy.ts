/**
 * The one fault-injecting HTTP proxy of the tests, in front of s3rver, dynalite, Azurite, the GCS test server or
 * the Storage API test server: it forwards every request, streaming bodies both ways, unless a rule with uses
 * left matches, in which case it answers with an error in the upstream's dialect (S3 XML, Azure XML with
 * `x-ms-error-code`, GCS JSON) or a DynamoDB JSON error, answers as told (a redirect…), stalls, resets
 * the connection, cuts the response body after N bytes or rewrites response headers. Every request is
 * recorded, with the status sent and the fault applied. Tests point takeout at it with `--endpoint-url`.
 * Depends on nothing in src/.
 */
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';

export type FaultAction =
  /**
   * Answer with this status and an error body in the proxy's dialect (S3 XML by default; see
   * FaultProxyOptions.dialect), without forwarding (the request body is drained first).
   */
  | { kind: 'status'; status: number; code: string; message?: string }
  /** Answer with this status and a DynamoDB JSON error (`{"__type":"…#<type>","message":"…"}`), without forwarding. */
  | { kind: 'error'; status: number; type: string; message?: string }
  /** Answer with exactly this status, headers and body, without forwarding (the request body is drained first). */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  /** Answer with this redirect status and `location`, an empty body, without forwarding. */
  | { kind: 'redirect'; status: number; location: string }
  /** Accept the request (reading its body) and never answer. */
  | { kind: 'stall' }
  /** Destroy the client socket at once. */
  | { kind: 'reset' }
  /** Forward, but send only the first `afterBytes` bytes of the response body, then destroy the socket. */
  | { kind: 'truncate'; afterBytes: number }
  /** Forward, adding these response headers or replacing the upstream's (names in lower case). */
  | { kind: 'headers'; set: Record<string, string> };

/** A rule for the requests `match` picks. */
export interface FaultRule {
  match: (req: IncomingMessage) => boolean;
  /** How many matching requests the rule applies to (default: all of them); decremented on each use. */
  times?: number;
  action: FaultAction;
}

/** A rule for one DynamoDB operation (`X-Amz-Target: DynamoDB_20120810.<operation>`), e.g. Scan, DescribeTable. */
export interface OperationRule {
  operation: string;
  /** How many matching requests the rule applies to (default: all of them); decremented on each use. */
  times?: number;
  fault: FaultAction;
}

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  /** Request headers as received (names in lower case). */
  headers: IncomingHttpHeaders;
  /** The DynamoDB operation named by `X-Amz-Target` ('' when none). */
  operation: string;
  /** With `protocol: 'dynamodb'`: the request body, parsed as JSON ({} when it is not JSON). */
  body?: Record<string, unknown>;
  /** The status sent (the upstream's, or the injected one); undefined when stalled, reset or not yet answered. */
  status?: number;
  /** The fault applied, if any. */
  fault?: FaultAction['kind'];
}

export interface FaultProxyOptions {
  /**
   * 's3' (default): bodies stream through untouched. 'dynamodb': each request body is read and parsed first
   * (recorded as `body`), as the JSON protocol's rules look at Segment, ExclusiveStartKey…
   */
  protocol?: 's3' | 'dynamodb';
  /**
   * How a `status` fault's error is written: 's3' (default) `<Error><Code>…</Code><Message>…</Message></Error>`;
   * 'azure' the same XML shape with `x-ms-error-code` and `x-ms-request-id` headers, as Blob Storage answers
   * (https://learn.microsoft.com/rest/api/storageservices/status-and-error-codes2); 'gcs' Google's JSON error
   * `{"error":{"code":N,"message":…,"errors":[{domain,reason,message}]}}`
   * (https://cloud.google.com/storage/docs/json_api/v1/status-codes), where `code` is the `reason`.
   */
  dialect?: ErrorDialect;
}

export type ErrorDialect = 's3' | 'azure' | 'gcs';

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`, for `--endpoint-url`. */
  url: string;
  /** Checked in order; the first matching rule with uses left applies. Mutable. */
  rules: (FaultRule | OperationRule)[];
  /** Every request seen, in arrival order. */
  requests: RecordedRequest[];
  /** The requests of one DynamoDB operation. */
  of(operation: string): RecordedRequest[];
  stop(): Promise<void>;
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function s3ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

/** Azure Blob Storage's error body: S3's shape, the message ending in the request id and time as Azure's do. */
export function azureErrorBody(code: string, message: string): string {
  return `\uFEFF<?xml version="1.0" encoding="utf-8"?><Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(`${message}\nRequestId:fault-proxy\nTime:${new Date().toISOString()}`)}</Message></Error>`;
}

/** Google Cloud Storage's JSON API error body; `reason` is e.g. forbidden, backendError, rateLimitExceeded. */
export function gcsErrorBody(status: number, reason: string, message: string): string {
  return JSON.stringify({ error: { code: status, message, errors: [{ message, domain: 'global', reason }] } });
}

/** Status, headers and body of an injected error in `dialect`. */
export function dialectError(dialect: ErrorDialect, status: number, code: string, message: string): { headers: Record<string, string>; body: string } {
  switch (dialect) {
    case 'azure':
      return { headers: { 'content-type': 'application/xml', 'x-ms-error-code': code, 'x-ms-request-id': 'fault-proxy', 'x-ms-version': '2025-11-05' }, body: azureErrorBody(code, message) };
    case 'gcs':
      return { headers: { 'content-type': 'application/json; charset=UTF-8' }, body: gcsErrorBody(status, code, message) };
    case 's3':
      return { headers: { 'content-type': 'application/xml' }, body: s3ErrorBody(code, message) };
  }
}

/** The `__type` of DynamoDB's errors: `com.amazonaws.dynamodb.v20120810#Code` (auth errors come from `com.amazon.coral.service`). */
export function dynamoErrorType(code: string): string {
  const coral = ['UnrecognizedClientException', 'InvalidSignatureException', 'AccessDeniedException', 'MissingAuthenticationTokenException', 'ThrottlingException'];
  return `${coral.includes(code) ? 'com.amazon.coral.service' : 'com.amazonaws.dynamodb.v20120810'}#${code}`;
}

/** Hop-by-hop headers are not forwarded; `expect` is answered by this server already. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect']);

function endToEnd(headers: IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  }
  return out;
}

function operationOf(req: IncomingMessage): string {
  return String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
}

/** Runs `then` once the request body is read (drained here unless it was read already). */
function afterBody(req: IncomingMessage, then: () => void): void {
  if (req.readableEnded) {
    then();
    return;
  }
  req.resume();
  req.on('end', then);
}

/** Answers `action` without forwarding; false for the kinds that forward. */
function answer(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, action: FaultAction, dialect: ErrorDialect): boolean {
  const send = (status: number, headers: Record<string, string>, body: string): void =>
    afterBody(req, () => {
      record.status = status;
      res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  switch (action.kind) {
    case 'status': {
      const error = dialectError(dialect, action.status, action.code, action.message ?? `injected ${action.code}`);
      send(action.status, error.headers, error.body);
      return true;
    }
    case 'error': {
      const body = JSON.stringify({ __type: dynamoErrorType(action.type), message: action.message ?? `injected ${action.type}` });
      send(action.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'fault-proxy' }, body);
      return true;
    }
    case 'respond':
      send(action.status, action.headers ?? {}, action.body ?? '');
      return true;
    case 'redirect':
      send(action.status, { location: action.location }, '');
      return true;
    case 'stall':
      req.resume();
      return true;
    case 'reset':
      req.socket.destroy();
      return true;
    case 'truncate':
    case 'headers':
      return false;
  }
}

async function readJson(req: IncomingMessage): Promise<{ raw: Buffer; parsed: Record<string, unknown> }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  try {
    return { raw, parsed: JSON.parse(raw.toString('utf8')) as Record<string, unknown> };
  } catch {
    // Not JSON: forwarded as it is.
    return { raw, parsed: {} };
  }
}

export async function startFaultProxy(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: (FaultRule | OperationRule)[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true });

  const pick = (req: IncomingMessage, operation: string): FaultAction | undefined => {
    for (const rule of rules) {
      if (rule.times !== undefined && rule.times <= 0) continue;
      if ('operation' in rule ? rule.operation !== operation : !rule.match(req)) continue;
      if (rule.times !== undefined) rule.times -= 1;
      return 'operation' in rule ? rule.fault : rule.action;
    }
    return undefined;
  };

  /** Forwards upstream: the body read already (`body`) or streamed; the answer cut after `truncateAfter` bytes. */
  const forward = (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, body: Buffer | undefined, action: FaultAction | undefined): void => {
    const truncateAfter = action?.kind === 'truncate' ? action.afterBytes : undefined;
    const setHeaders = action?.kind === 'headers' ? action.set : {};
    const out = http.request(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent },
      (answer) => {
        record.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, { ...endToEnd(answer.headers), ...setHeaders });
        if (truncateAfter === undefined) {
          answer.pipe(res);
          return;
        }
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= truncateAfter) return;
          const piece = chunk.subarray(0, truncateAfter - sent);
          sent += piece.length;
          res.write(piece);
          if (sent >= truncateAfter) {
            answer.destroy();
            // Let the bytes written so far leave before the connection dies mid-body.
            res.socket?.end(() => res.socket?.destroy());
            setTimeout(() => res.socket?.destroy(), 50).unref();
          }
        });
        answer.on('end', () => {
          if (sent < truncateAfter) res.end();
        });
      },
    );
    out.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/xml' });
        res.end(s3ErrorBody('BadGateway', 'fault proxy could not reach the upstream'));
      } else {
        res.destroy();
      }
    });
    if (body === undefined) req.pipe(out);
    else out.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const operation = operationOf(req);
    const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, operation };
    let body: Buffer | undefined;
    if (options.protocol === 'dynamodb') {
      const read = await readJson(req);
      body = read.raw;
      record.body = read.parsed;
    }
    requests.push(record);
    const action = pick(req, operation);
    if (action) record.fault = action.kind;
    if (action && answer(req, res, record, action, options.dialect ?? 's3')) return;
    forward(req, res, record, body, action);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A client that gives up on a stalled request is not an error here.
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    rules,
    requests,
    of: (operation) => requests.filter((r) => r.operation === operation),
    async stop() {
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ProxyForTestsOptions extends FaultProxyOptions {
  /** Clear the rules and requests after each test (default true); false where tests run concurrently. */
  clearAfterEach?: boolean;
}

/**
 * A proxy for the tests of the enclosing file or describe block, in front of `target` (a function when the
 * upstream starts in an earlier beforeAll): started before them, its rules and requests cleared after each
 * test, stopped after them all. Its fields are read through, so the object can be held in a `const`.
 */
export function faultProxyForTests(target: string | (() => string), options: ProxyForTestsOptions = {}): FaultProxy {
  let proxy: FaultProxy | undefined;
  const started = (): FaultProxy => {
    if (!proxy) throw new Error('the fault proxy is used before the file’s tests start');
    return proxy;
  };
  beforeAll(async () => {
    proxy = await startFaultProxy(typeof target === 'string' ? target : target(), options);
  });
  afterEach(() => {
    if (!proxy || options.clearAfterEach === false) return;
    proxy.rules.length = 0;
    proxy.requests.length = 0;
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  return {
    get url() {
      return started().url;
    },
    get rules() {
      return started().rules;
    },
    get requests() {
      return started().requests;
    },
    of: (operation) => started().of(operation),
    stop: () => started().stop(),
  };
}
