/**
 * The JSON-protocol sibling of proxy.ts: an HTTP proxy in front of a DynamoDB emulator that forwards
 * every request unless a rule for its operation (`X-Amz-Target: DynamoDB_20120810.<Operation>`) has uses
 * left, in which case it answers with a DynamoDB error (`{"__type":"…#Code","message":"…"}`) or resets the
 * connection. Every request is recorded with its operation and parsed body (Segment, ExclusiveStartKey…).
 * Depends on nothing in src/.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type DynamoFault =
  /** Answer with this status and a DynamoDB JSON error, without forwarding. */
  | { kind: 'error'; status: number; type: string; message?: string }
  /** Destroy the client socket at once. */
  | { kind: 'reset' };

export interface DynamoRule {
  /** The operation, e.g. Scan, DescribeTable, ListTables. */
  operation: string;
  /** How many matching requests the rule applies to (default: all); decremented on each use. */
  times?: number;
  fault: DynamoFault;
}

export interface DynamoRequest {
  operation: string;
  body: Record<string, unknown>;
  /** The status sent (the upstream's or the injected one). */
  status?: number;
  fault?: DynamoFault['kind'];
}

export interface DynamoProxy {
  url: string;
  rules: DynamoRule[];
  requests: DynamoRequest[];
  /** Requests of one operation. */
  of(operation: string): DynamoRequest[];
  stop(): Promise<void>;
}

/** The `__type` of DynamoDB's errors: `com.amazonaws.dynamodb.v20120810#Code` (auth errors come from `com.amazon.coral.service`). */
export function dynamoErrorType(code: string): string {
  const coral = ['UnrecognizedClientException', 'InvalidSignatureException', 'AccessDeniedException', 'MissingAuthenticationTokenException', 'ThrottlingException'];
  return `${coral.includes(code) ? 'com.amazon.coral.service' : 'com.amazonaws.dynamodb.v20120810'}#${code}`;
}

export async function startDynamoProxy(target: string): Promise<DynamoProxy> {
  const upstream = new URL(target);
  const rules: DynamoRule[] = [];
  const requests: DynamoRequest[] = [];
  const sockets = new Set<Socket>();
  const agent = new http.Agent({ keepAlive: true });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        // Not JSON: forwarded as it is.
      }
      const record: DynamoRequest = { operation, body: parsed };
      requests.push(record);
      const rule = rules.find((r) => r.operation === operation && (r.times === undefined || r.times > 0));
      if (rule) {
        if (rule.times !== undefined) rule.times -= 1;
        record.fault = rule.fault.kind;
        if (rule.fault.kind === 'reset') {
          req.socket.destroy();
          return;
        }
        record.status = rule.fault.status;
        const answer = JSON.stringify({ __type: dynamoErrorType(rule.fault.type), message: rule.fault.message ?? `injected ${rule.fault.type}` });
        res.writeHead(rule.fault.status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(answer), 'x-amzn-requestid': 'fault-proxy' });
        res.end(answer);
        return;
      }
      const headers = { ...req.headers };
      delete headers.connection;
      const out = http.request({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (answer) => {
        record.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => res.destroy());
      out.end(body);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
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
