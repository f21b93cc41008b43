/**
 * What s3rver cannot check for an aws stack's file storage, checked by a proxy in front of it: s3rver knows one
 * key pair and no session tokens, so this proxy takes only the session tokens the stack handed out, until their
 * Expiration (S3 answers `400 ExpiredToken` "The provided token has expired", `400 InvalidToken` for one it
 * does not know; docs.aws.amazon.com AmazonS3 "Error responses"); a download token may not write (403
 * AccessDenied); and an upload (PutObject, CreateMultipartUpload) must carry the `x-amz-server-side-encryption`
 * the answer to files/prepare asked for, as a bucket policy denying unencrypted puts answers (403 AccessDenied,
 * docs.aws.amazon.com "Requiring server-side encryption"). Signatures are still checked by s3rver: requests are
 * forwarded as they came, Host header included.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Token {
  ends: number;
  write: boolean;
}

/** One write through the proxy: what it was and the SSE header it carried. */
export interface S3Write {
  operation: 'PutObject' | 'CreateMultipartUpload' | 'UploadPart' | 'CompleteMultipartUpload' | 'other';
  key: string;
  sse: string | undefined;
}

export interface S3Guard {
  url: string;
  /** Tokens handed out (session token → when it ends, whether it may write). */
  tokens: Map<string, S3Token>;
  writes: S3Write[];
  close(): Promise<void>;
}

function refuse(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

function operationOf(method: string, query: URLSearchParams): S3Write['operation'] {
  if (method === 'PUT') return query.has('partNumber') ? 'UploadPart' : 'PutObject';
  if (method === 'POST' && query.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && query.has('uploadId')) return 'CompleteMultipartUpload';
  return 'other';
}

export async function startS3Guard(upstream: string, sse: string): Promise<S3Guard> {
  const target = new URL(upstream);
  const tokens = new Map<string, S3Token>();
  const writes: S3Write[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const header = req.headers['x-amz-security-token'];
    const token = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('X-Amz-Security-Token') ?? undefined;
    const held = token === undefined ? undefined : tokens.get(token);
    const method = req.method ?? 'GET';
    const reads = method === 'GET' || method === 'HEAD';
    if (!held) return refuse(res, token === undefined ? 403 : 400, token === undefined ? 'AccessDenied' : 'InvalidToken', 'The provided token is malformed or otherwise invalid.');
    if (held.ends <= Date.now()) return refuse(res, 400, 'ExpiredToken', 'The provided token has expired.');
    if (!reads && !held.write) return refuse(res, 403, 'AccessDenied', 'Access Denied');
    if (!reads) {
      const operation = operationOf(method, url.searchParams);
      const given = req.headers['x-amz-server-side-encryption'];
      const value = Array.isArray(given) ? given[0] : given;
      writes.push({ operation, key: decodeURIComponent(url.pathname.split('/').slice(2).join('/')), sse: value });
      if ((operation === 'PutObject' || operation === 'CreateMultipartUpload') && value !== sse) return refuse(res, 403, 'AccessDenied', 'Access Denied');
    }
    const forward = request({ host: target.hostname, port: target.port, method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', (error) => {
      if (!res.headersSent) refuse(res, 502, 'BadGateway', error.message);
      else res.destroy(error);
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tokens,
    writes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
