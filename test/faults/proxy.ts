/**
 * A fault-injecting HTTP proxy in front of the test s3rver: forwards every request, streaming bodies
 * both ways, unless a rule matches, in which case it answers with an S3 error, stalls, resets the
 * connection, truncates the response body or rewrites response headers. Tests point takeout at it with
 * `--endpoint-url`.
 * Depends on nothing in src/.
 */
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultAction =
  /** Answer with this status and an S3 XML error body, without forwarding (the request body is drained first). */
  | { kind: 'status'; status: number; code: string; message?: string }
  /** Answer with exactly this status, headers and body, without forwarding (the request body is drained first). */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  /** Accept the request (reading its body) and never answer. */
  | { kind: 'stall' }
  /** Destroy the client socket at once. */
  | { kind: 'reset' }
  /** Forward, but send only the first `afterBytes` bytes of the response body, then destroy the socket. */
  | { kind: 'truncate'; afterBytes: number }
  /** Forward, adding these response headers or replacing the upstream's (names in lower case). */
  | { kind: 'headers'; set: Record<string, string> };

export interface FaultRule {
  match: (req: IncomingMessage) => boolean;
  /** How many matching requests the rule applies to (default: all of them); decremented on each use. */
  times?: number;
  action: FaultAction;
}

export interface RecordedRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  /** Request headers as received (names in lower case). */
  headers: IncomingHttpHeaders;
  /** The status sent (the upstream's, or the injected one); undefined when stalled, reset or not yet answered. */
  status?: number;
  /** The fault applied, if any. */
  fault?: FaultAction['kind'];
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`, for `--endpoint-url`. */
  url: string;
  /** Checked in order; the first matching rule with uses left applies. Mutable. */
  rules: FaultRule[];
  /** Every request seen, in arrival order. */
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function s3ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

/** Hop-by-hop headers are not forwarded; `expect` is answered by this server already. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect']);

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const rules: FaultRule[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true });

  const pick = (req: IncomingMessage): FaultAction | undefined => {
    for (const rule of rules) {
      if (rule.times !== undefined && rule.times <= 0) continue;
      if (!rule.match(req)) continue;
      if (rule.times !== undefined) rule.times -= 1;
      return rule.action;
    }
    return undefined;
  };

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    record: RecordedRequest,
    truncateAfter?: number,
    setHeaders: Record<string, string> = {},
  ): void => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    }
    const out = http.request(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
      (answer) => {
        record.status = answer.statusCode;
        const responseHeaders: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(answer.headers)) {
          if (!HOP_BY_HOP.has(name) && value !== undefined) responseHeaders[name] = value;
        }
        Object.assign(responseHeaders, setHeaders);
        res.writeHead(answer.statusCode ?? 502, responseHeaders);
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
    req.pipe(out);
  };

  const server = http.createServer((req, res) => {
    const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    requests.push(record);
    const action = pick(req);
    if (action) record.fault = action.kind;
    switch (action?.kind) {
      case undefined:
        forward(req, res, record);
        return;
      case 'truncate':
        forward(req, res, record, action.afterBytes);
        return;
      case 'headers':
        forward(req, res, record, undefined, action.set);
        return;
      case 'status': {
        req.resume();
        req.on('end', () => {
          record.status = action.status;
          const body = s3ErrorBody(action.code, action.message ?? `injected ${action.code}`);
          res.writeHead(action.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
        return;
      }
      case 'respond': {
        req.resume();
        req.on('end', () => {
          record.status = action.status;
          const body = action.body ?? '';
          res.writeHead(action.status, { ...action.headers, 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
        return;
      }
      case 'stall':
        req.resume();
        return;
      case 'reset':
        req.socket.destroy();
        return;
    }
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
    async stop() {
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
