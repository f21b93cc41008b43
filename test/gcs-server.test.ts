// The GCS JSON-API test server, driven with plain fetch as the documented API describes it
// (https://cloud.google.com/storage/docs/json_api/v1). The client-level check is test/emulators/gcs-probe/probe.mjs.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c, md5, RESUMABLE_CHUNK_BYTES, startGcsServer, type GcsServer } from './gcs/server.js';

const BUCKET = 'takeout-test';
const CHUNK = RESUMABLE_CHUNK_BYTES;

let gcs: GcsServer;
beforeAll(async () => {
  gcs = await startGcsServer({ buckets: [BUCKET] });
});
afterAll(async () => {
  await gcs.close();
});

const objectUrl = (name: string, query = '', prefixed = true): string =>
  `${gcs.url}${prefixed ? '/storage/v1' : ''}/b/${BUCKET}/o/${encodeURIComponent(name)}${query}`;

async function simpleUpload(name: string, data: Buffer | string, query = ''): Promise<Response> {
  return fetch(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=${encodeURIComponent(name)}${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: data,
  });
}

async function startSession(name: string, query = ''): Promise<Response> {
  return fetch(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=${encodeURIComponent(name)}${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json; charset=UTF-8', 'X-Upload-Content-Type': 'text/csv' },
    body: '{}',
  });
}

const putChunk = (uri: string, range: string, body?: Buffer): Promise<Response> =>
  fetch(uri, { method: 'PUT', headers: { 'Content-Range': range }, body: body ?? '' });

async function errorReason(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { error: { code: number; errors: Array<{ reason: string }> } };
  expect(body.error.code).toBe(response.status);
  return body.error.errors[0]?.reason;
}

describe('GCS test server', () => {
  it('computes CRC32C as GCS reports it (big-endian, base64)', () => {
    // The CRC-32C check value of "123456789" is 0xE3069283 (RFC 3720 appendix B.4).
    expect(crc32c(Buffer.from('123456789'))).toBe(Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'));
  });

  it('creates and gets buckets, 409 on a second create, 404 for a missing one', async () => {
    const create = (): Promise<Response> => fetch(`${gcs.url}/b?project=demo`, { method: 'POST', body: JSON.stringify({ name: 'made' }) });
    expect((await create()).status).toBe(200);
    const again = await create();
    expect(again.status).toBe(409);
    expect(await errorReason(again)).toBe('conflict');
    expect((await fetch(`${gcs.url}/storage/v1/b/made`)).status).toBe(200);
    const missing = await fetch(`${gcs.url}/b/nope`);
    expect(missing.status).toBe(404);
    expect(await errorReason(missing)).toBe('notFound');
  });

  it('uploads in three chunks, answers a status query, and resumes', async () => {
    const data = randomBytes(CHUNK * 2 + 1000);
    const start = await startSession('resumable/three.csv', '&ifGenerationMatch=0');
    expect(start.status).toBe(200);
    const uri = start.headers.get('location') as string;
    expect(uri).toContain('upload_id=');

    const empty = await putChunk(uri, 'bytes */*');
    expect(empty.status).toBe(308);
    expect(empty.headers.get('range')).toBeNull();

    const first = await putChunk(uri, `bytes 0-${CHUNK - 1}/*`, data.subarray(0, CHUNK));
    expect(first.status).toBe(308);
    expect(first.headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
    // The client lost the answer to the second chunk: it asks where the session stands and resends from there.
    const second = await putChunk(uri, `bytes ${CHUNK}-${2 * CHUNK - 1}/*`, data.subarray(CHUNK, 2 * CHUNK));
    expect(second.headers.get('range')).toBe(`bytes=0-${2 * CHUNK - 1}`);
    const status = await putChunk(uri, `bytes */${data.length}`);
    expect(status.status).toBe(308);
    expect(status.headers.get('range')).toBe(`bytes=0-${2 * CHUNK - 1}`);
    expect(gcs.object(BUCKET, 'resumable/three.csv')).toBeUndefined();

    const last = await putChunk(uri, `bytes ${2 * CHUNK}-${data.length - 1}/${data.length}`, data.subarray(2 * CHUNK));
    expect(last.status).toBe(200);
    const resource = (await last.json()) as Record<string, string>;
    expect(resource).toMatchObject({ name: 'resumable/three.csv', bucket: BUCKET, size: String(data.length), md5Hash: md5(data), crc32c: crc32c(data), contentType: 'text/csv', metageneration: '1' });
    expect(Buffer.from(await (await fetch(objectUrl('resumable/three.csv', '?alt=media'))).arrayBuffer()).equals(data)).toBe(true);
    // A finished session answers the object again.
    expect((await putChunk(uri, 'bytes */*')).status).toBe(200);
  });

  it('persists fewer bytes than sent when told to, so the client resends from Range + 1', async () => {
    const small = await startGcsServer({ buckets: [BUCKET], persistLimit: CHUNK });
    try {
      const start = await fetch(`${small.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=short`, { method: 'POST' });
      const uri = start.headers.get('location') as string;
      const data = randomBytes(CHUNK * 2 + 10);
      const first = await putChunk(uri, `bytes 0-${2 * CHUNK - 1}/*`, data.subarray(0, 2 * CHUNK));
      expect(first.headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
      const rest = await putChunk(uri, `bytes ${CHUNK}-${data.length - 1}/${data.length}`, data.subarray(CHUNK));
      expect(rest.status).toBe(200);
      expect(small.object(BUCKET, 'short')?.data.equals(data)).toBe(true);
    } finally {
      await small.close();
    }
  });

  it('cancels a session with 499 and creates nothing', async () => {
    const uri = (await startSession('resumable/cancelled')).headers.get('location') as string;
    await putChunk(uri, `bytes 0-${CHUNK - 1}/*`, randomBytes(CHUNK));
    expect((await fetch(uri, { method: 'DELETE' })).status).toBe(499);
    expect((await putChunk(uri, 'bytes */*')).status).toBe(404);
    expect(gcs.object(BUCKET, 'resumable/cancelled')).toBeUndefined();
  });

  it('refuses ifGenerationMatch: 0 onto an existing object with 412 on simple, multipart, resumable, compose and rewrite', async () => {
    expect((await simpleUpload('create-only', 'first', '&ifGenerationMatch=0')).status).toBe(200);
    const simple = await simpleUpload('create-only', 'second', '&ifGenerationMatch=0');
    expect(simple.status).toBe(412);
    expect(await errorReason(simple)).toBe('conditionNotMet');

    const boundary = 'b0undary';
    const multipart = await fetch(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&ifGenerationMatch=0`, {
      method: 'POST',
      headers: { 'Content-Type': `multipart/related; boundary=${boundary}` },
      body: `--${boundary}\r\nContent-Type: application/json\r\n\r\n{"name":"create-only"}\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\nthird\r\n--${boundary}--`,
    });
    expect(multipart.status).toBe(412);

    const resumable = await startSession('create-only', '&ifGenerationMatch=0');
    expect(resumable.status).toBe(412);
    expect(await errorReason(resumable)).toBe('conditionNotMet');

    // A session that started while the name was free fails at commit when someone else wrote it meanwhile.
    const raced = (await startSession('raced', '&ifGenerationMatch=0')).headers.get('location') as string;
    await simpleUpload('raced', 'winner');
    expect((await putChunk(raced, 'bytes 0-4/5', Buffer.from('loser'))).status).toBe(412);

    const rewrite = await fetch(`${gcs.url}/b/${BUCKET}/o/create-only/rewriteTo/b/${BUCKET}/o/raced?ifGenerationMatch=0`, { method: 'POST', body: '{}' });
    expect(rewrite.status).toBe(412);
    const compose = await fetch(`${gcs.url}/b/${BUCKET}/o/raced/compose?ifGenerationMatch=0`, {
      method: 'POST',
      body: JSON.stringify({ sourceObjects: [{ name: 'create-only' }] }),
    });
    expect(compose.status).toBe(412);

    expect(gcs.object(BUCKET, 'create-only')?.data.toString()).toBe('first');
    expect(gcs.object(BUCKET, 'raced')?.data.toString()).toBe('winner');
  });

  it('writes multipart uploads with their metadata and checks declared hashes', async () => {
    const boundary = 'xyz';
    const upload = (meta: object): Promise<Response> =>
      fetch(`${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart`, {
        method: 'POST',
        headers: { 'Content-Type': `multipart/related; boundary="${boundary}"` },
        body: `--${boundary}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(meta)}\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--${boundary}--\r\n`,
      });
    const ok = await upload({ name: 'multi.txt', metadata: { origin: 'test' }, md5Hash: md5(Buffer.from('hello')) });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ name: 'multi.txt', contentType: 'text/plain', size: '5', metadata: { origin: 'test' } });
    const bad = await upload({ name: 'multi.txt', crc32c: crc32c(Buffer.from('other')) });
    expect(bad.status).toBe(400);
  });

  it('reads metadata and ranges, with and without the /storage/v1 prefix', async () => {
    const data = randomBytes(5000);
    await simpleUpload('ranged.bin', data);
    const meta = (await (await fetch(objectUrl('ranged.bin', '', false))).json()) as Record<string, string>;
    expect(meta).toMatchObject({ size: '5000', md5Hash: md5(data), crc32c: crc32c(data) });
    expect(meta.generation).toMatch(/^[1-9][0-9]*$/);

    const whole = await fetch(objectUrl('ranged.bin', '?alt=media'));
    expect(whole.headers.get('x-goog-hash')).toBe(`crc32c=${crc32c(data)},md5=${md5(data)}`);
    expect(whole.headers.get('x-goog-generation')).toBe(meta.generation);
    await whole.arrayBuffer();

    const part = await fetch(objectUrl('ranged.bin', '?alt=media', false), { headers: { Range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 1000-1999/5000');
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);
    const tail = await fetch(`${gcs.url}/download/storage/v1/b/${BUCKET}/o/ranged.bin?alt=media`, { headers: { Range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(data.subarray(4990))).toBe(true);
    const beyond = await fetch(objectUrl('ranged.bin', '?alt=media'), { headers: { Range: 'bytes=5000-' } });
    expect(beyond.status).toBe(416);
    await beyond.arrayBuffer();

    const stale = await fetch(objectUrl('ranged.bin', `?ifGenerationMatch=${Number(meta.generation) + 1}`));
    expect(stale.status).toBe(412);
    await stale.arrayBuffer();
  });

  it('lists in key order, by pages, with prefixes for a delimiter', async () => {
    for (const name of ['p/d', 'p/b', 'q/x', 'p/c/1', 'p/c/2', 'p0', 'p/a', 'p/aa']) await simpleUpload(name, name);
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = (await (await fetch(`${gcs.url}/b/${BUCKET}/o?prefix=p/&maxResults=2${token ? `&pageToken=${token}` : ''}`)).json()) as {
        items: Array<{ name: string }>;
        nextPageToken?: string;
      };
      expect(page.items.length).toBeLessThanOrEqual(2);
      names.push(...page.items.map((item) => item.name));
      token = page.nextPageToken;
      pages += 1;
    } while (token && pages < 10);
    expect(names).toEqual(['p/a', 'p/aa', 'p/b', 'p/c/1', 'p/c/2', 'p/d']);
    expect(pages).toBe(3);

    const folders = (await (await fetch(`${gcs.url}/storage/v1/b/${BUCKET}/o?prefix=p/&delimiter=/`)).json()) as { items: Array<{ name: string }>; prefixes: string[] };
    expect(folders.items.map((item) => item.name)).toEqual(['p/a', 'p/aa', 'p/b', 'p/d']);
    expect(folders.prefixes).toEqual(['p/c/']);
  });

  it('composes sources in order into an object without md5Hash, up to 32 sources', async () => {
    const parts = [randomBytes(100), randomBytes(4000), randomBytes(7)];
    for (const [i, part] of parts.entries()) await simpleUpload(`compose/${i}`, part);
    const sourceObjects = [2, 0, 1].map((i) => ({ name: `compose/${i}` }));
    const answer = await fetch(`${gcs.url}/storage/v1/b/${BUCKET}/o/compose%2Fwhole/compose`, { method: 'POST', body: JSON.stringify({ sourceObjects, destination: { contentType: 'text/csv' } }) });
    expect(answer.status).toBe(200);
    const whole = Buffer.concat([parts[2]!, parts[0]!, parts[1]!]);
    const resource = (await answer.json()) as Record<string, unknown>;
    expect(resource).toMatchObject({ componentCount: 3, crc32c: crc32c(whole), size: String(whole.length), contentType: 'text/csv' });
    expect(resource.md5Hash).toBeUndefined();
    expect(gcs.object(BUCKET, 'compose/whole')?.data.equals(whole)).toBe(true);

    const tooMany = await fetch(`${gcs.url}/b/${BUCKET}/o/compose%2Fbig/compose`, { method: 'POST', body: JSON.stringify({ sourceObjects: Array.from({ length: 33 }, () => ({ name: 'compose/0' })) }) });
    expect(tooMany.status).toBe(400);
    await tooMany.arrayBuffer();
  });

  it('rewrites in one call, or in rounds with a rewriteToken when told to', async () => {
    const data = randomBytes(3000);
    await simpleUpload('copy/source', data);
    const once = (await (await fetch(`${gcs.url}/b/${BUCKET}/o/copy%2Fsource/rewriteTo/b/${BUCKET}/o/copy%2Fone`, { method: 'POST', body: '{}' })).json()) as Record<string, unknown>;
    expect(once).toMatchObject({ kind: 'storage#rewriteResponse', done: true, totalBytesRewritten: '3000', objectSize: '3000' });
    expect(gcs.object(BUCKET, 'copy/one')?.data.equals(data)).toBe(true);

    let rounds = 0;
    let token = '';
    for (;;) {
      rounds += 1;
      const step = (await (await fetch(`${gcs.url}/b/${BUCKET}/o/copy%2Fsource/rewriteTo/b/${BUCKET}/o/copy%2Frounds?maxBytesRewrittenPerCall=1024${token}`, { method: 'POST', body: '{}' })).json()) as { done: boolean; rewriteToken?: string };
      if (step.done) break;
      expect(gcs.object(BUCKET, 'copy/rounds')).toBeUndefined();
      token = `&rewriteToken=${step.rewriteToken}`;
    }
    expect(rounds).toBe(3);
    expect(gcs.object(BUCKET, 'copy/rounds')?.data.equals(data)).toBe(true);
  });

  it('deletes with 204, 404 when missing, 412 on a stale generation', async () => {
    await simpleUpload('delete-me', 'x');
    const generation = gcs.object(BUCKET, 'delete-me')!.generation;
    const stale = await fetch(objectUrl('delete-me', `?ifGenerationMatch=${generation + 1}`), { method: 'DELETE' });
    expect(stale.status).toBe(412);
    expect(await errorReason(stale)).toBe('conditionNotMet');
    expect((await fetch(objectUrl('delete-me', `?ifGenerationMatch=${generation}`), { method: 'DELETE' })).status).toBe(204);
    const missing = await fetch(objectUrl('delete-me', '', false), { method: 'DELETE' });
    expect(missing.status).toBe(404);
    expect(await errorReason(missing)).toBe('notFound');
  });

  it('answers injected faults, then serves normally', async () => {
    gcs.failNext((request) => request.route === 'GET media', 503, { count: 2, retryAfterSeconds: 2 });
    await simpleUpload('faulty', 'ok');
    const first = await fetch(objectUrl('faulty', '?alt=media'));
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('2');
    expect(await errorReason(first)).toBe('backendError');
    expect((await fetch(objectUrl('faulty', '?alt=media'))).status).toBe(503);
    expect(await (await fetch(objectUrl('faulty', '?alt=media'))).text()).toBe('ok');
    expect(gcs.state.requests.get('GET media')).toBeGreaterThanOrEqual(3);

    // A chunk whose connection drops after 256 KiB were persisted: the status query shows what is left to send.
    const uri = (await startSession('dropped')).headers.get('location') as string;
    gcs.failNext((request) => request.route === 'PUT upload/session', 'drop', { persistBytes: CHUNK });
    await expect(putChunk(uri, `bytes 0-${2 * CHUNK - 1}/*`, randomBytes(2 * CHUNK))).rejects.toThrow();
    expect((await putChunk(uri, 'bytes */*')).headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
  });

  it('requires the bearer token when one is set', async () => {
    const guarded = await startGcsServer({ buckets: [BUCKET], token: 'secret-token' });
    try {
      expect((await fetch(`${guarded.url}/b/${BUCKET}`)).status).toBe(401);
      expect((await fetch(`${guarded.url}/b/${BUCKET}`, { headers: { Authorization: 'Bearer secret-token' } })).status).toBe(200);
    } finally {
      await guarded.close();
    }
  });
});
