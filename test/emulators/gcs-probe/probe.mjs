// Drives a Cloud Storage emulator with the official client, @google-cloud/storage 7.22.0, through every
// operation takeout's gs:// store needs, and prints pass/fail per operation with the exact failure.
//
// Usage (nothing here is a dependency of the repo; install the client in a scratch folder):
//   GCS_CLIENT_DIR=/tmp/gcs-client node probe.mjs [--json out.json] -- <command that starts the emulator>
// The command must print one JSON line {"port":N} on stdout once listening on 127.0.0.1 and exit when its stdin
// closes (as start-firebase-storage.mjs does, and as test/setup/s3rver-server.mjs does for S3).
// Alternatively GCS_ENDPOINT=http://127.0.0.1:PORT probes a server that is already running.
//
// Between the client and the emulator sits a recording proxy, so each result also shows the HTTP exchanges
// (method, path, Content-Range, status, Range answered): that is how "multiple PUTs" is proved, not assumed.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Buffer } from 'node:buffer';

const CHUNK = 256 * 1024; // the resumable chunk granularity the JSON API requires (multiples of 256 KiB)
const CHECK_TIMEOUT_MS = 20_000; // an emulator that never answers must not hang the probe
const BUCKET = 'takeout-probe';

const clientDir = process.env.GCS_CLIENT_DIR;
if (!clientDir) throw new Error('set GCS_CLIENT_DIR to a folder where @google-cloud/storage@7.22.0 is installed');
const require = createRequire(path.join(clientDir, 'package.json'));
const { Storage, CRC32C } = require('@google-cloud/storage');
const clientVersion = JSON.parse(readFileSync(path.join(clientDir, 'node_modules/@google-cloud/storage/package.json'), 'utf8')).version;

const argv = process.argv.slice(2);
const jsonOut = argv[0] === '--json' ? argv[1] : undefined;
const dashdash = argv.indexOf('--');
const command = dashdash === -1 ? [] : argv.slice(dashdash + 1);

// ---- the emulator and the recording proxy ----

async function startEmulator() {
  if (command.length === 0) {
    if (!process.env.GCS_ENDPOINT) throw new Error('give a command after -- or set GCS_ENDPOINT');
    return { endpoint: process.env.GCS_ENDPOINT, stop: async () => undefined };
  }
  const [file, ...args] = command;
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('emulator did not print {"port":N} within 60 s')), 60_000);
    child.once('exit', (code) => reject(new Error(`emulator exited early with ${code}`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text) => {
      out += text;
      const newline = out.indexOf('\n');
      if (newline === -1) return;
      clearTimeout(timer);
      resolve(JSON.parse(out.slice(0, newline)).port);
    });
  });
  child.removeAllListeners('exit');
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const exchanges = [];

function startProxy(target) {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const entry = {
      method: req.method,
      path: req.url.replace(/upload_id=[^&]+/, 'upload_id=…'),
      contentRange: req.headers['content-range'],
      range: req.headers.range,
      resumable: req.headers['x-goog-resumable'],
      authorized: req.headers.authorization !== undefined,
      bytes: 0,
    };
    exchanges.push(entry);
    req.on('data', (chunk) => (entry.bytes += chunk.length));
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        entry.status = answer.statusCode;
        entry.answeredRange = answer.headers.range;
        res.writeHead(answer.statusCode, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    forward.on('error', (error) => {
      entry.status = `proxy: ${error.message}`;
      res.destroy();
    });
    req.pipe(forward);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// ---- helpers ----

function raw(method, url, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function md5(buffer) {
  return createHash('md5').update(buffer).digest('base64');
}

function crc32c(buffer) {
  const crc = new CRC32C();
  crc.update(buffer);
  return crc.toString();
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

function describeError(error) {
  const code = error?.code ?? error?.response?.status;
  const first = String(error?.message ?? error).split('\n')[0].slice(0, 240);
  return code === undefined ? first : `${code}: ${first}`;
}

async function expectStatus(promise, status, what) {
  try {
    await promise;
  } catch (error) {
    const code = error?.code ?? error?.response?.status;
    expect(code === status, `${what}: expected ${status}, got ${describeError(error)}`);
    return;
  }
  throw new Error(`${what}: expected ${status}, but it succeeded`);
}

function upload(file, data, options) {
  return new Promise((resolve, reject) => {
    const stream = file.createWriteStream(options);
    stream.on('error', reject);
    stream.on('finish', resolve);
    // Written in 64 KiB pieces, as a pipeline would, so the client's chunk buffering is what bounds the PUTs.
    for (let offset = 0; offset < data.length; offset += 64 * 1024) stream.write(data.subarray(offset, offset + 64 * 1024));
    stream.end();
  });
}

async function download(file, options) {
  const [buffer] = await file.download(options);
  return buffer;
}

// ---- the operations ----

function checks(storage, endpoint) {
  const bucket = storage.bucket(BUCKET);
  const data = randomBytes(CHUNK * 2 + CHUNK / 2); // 640 KiB: two full chunks and a short last one
  const sessionUri = async (name, options = {}) => (await bucket.file(name).createResumableUpload(options))[0];

  return [
    ['STORAGE_EMULATOR_HOST: client reaches the emulator', 'env var only, no apiEndpoint', async () => {
      const [buckets] = await storage.getBuckets();
      expect(Array.isArray(buckets), 'getBuckets returned no array');
      expect(exchanges.length > 0, 'no request went to STORAGE_EMULATOR_HOST');
    }],
    ['bucket create', 'bucket.create()', async () => {
      try {
        await bucket.create();
      } catch (error) {
        if (error?.code !== 409) throw error;
      }
      const [exists] = await bucket.exists();
      expect(exists, 'bucket.exists() is false after create');
    }],
    ['simple (multipart) write + read', 'file.save({resumable:false})', async () => {
      const file = bucket.file('simple/one.bin');
      await file.save(data.subarray(0, 1000), { resumable: false });
      expect((await download(file)).equals(data.subarray(0, 1000)), 'read back differs');
    }],
    ['resumable upload in bounded chunks', `createWriteStream({chunkSize:${CHUNK}}) of ${data.length} B`, async () => {
      const file = bucket.file('resumable/chunked.bin');
      const before = exchanges.length;
      await upload(file, data, { resumable: true, chunkSize: CHUNK });
      const puts = exchanges.slice(before).filter((e) => e.method === 'PUT');
      const back = await download(file);
      expect(back.equals(data), `read back ${back.length} B, expected ${data.length} B identical`);
      expect(puts.length === 3, `expected 3 PUTs of ≤ ${CHUNK} B, saw ${puts.length}: ${JSON.stringify(puts)}`);
      expect(puts.slice(0, 2).every((p) => p.status === 308), `non-final chunks not answered 308: ${JSON.stringify(puts)}`);
    }],
    ['resumable upload, one streamed PUT (no chunkSize)', `createWriteStream({resumable:true}) of ${data.length} B`, async () => {
      const file = bucket.file('resumable/streamed.bin');
      await upload(file, data, { resumable: true });
      const back = await download(file);
      expect(back.equals(data), `read back ${back.length} B, expected ${data.length} B identical`);
    }],
    ['resumable: status query + resume an interrupted session', 'raw PUT bytes 0-262143/*, PUT bytes */*, then createWriteStream({uri})', async () => {
      const uri = await sessionUri('resumable/resumed.bin');
      const first = await raw('PUT', uri, { 'content-range': `bytes 0-${CHUNK - 1}/*` }, data.subarray(0, CHUNK));
      expect(first.status === 308, `first chunk: expected 308, got ${first.status} ${first.body.toString().slice(0, 120)}`);
      expect(first.headers.range === `bytes=0-${CHUNK - 1}`, `first chunk: Range answered ${first.headers.range}`);
      const status = await raw('PUT', uri, { 'content-range': 'bytes */*', 'content-length': '0' });
      expect(status.status === 308 && status.headers.range === `bytes=0-${CHUNK - 1}`,
        `status query: expected 308 Range bytes=0-${CHUNK - 1}, got ${status.status} Range ${status.headers.range}`);
      const file = bucket.file('resumable/resumed.bin');
      await upload(file, data, { resumable: true, chunkSize: CHUNK, uri });
      const back = await download(file);
      expect(back.equals(data), `resumed object has ${back.length} B, expected ${data.length} B identical`);
    }],
    ['resumable: cancel a session', 'DELETE session URI → 499, then the session is gone', async () => {
      const uri = await sessionUri('resumable/cancelled.bin');
      await raw('PUT', uri, { 'content-range': `bytes 0-${CHUNK - 1}/*` }, data.subarray(0, CHUNK));
      const cancel = await raw('DELETE', uri);
      expect(cancel.status === 499, `DELETE on session URI: expected 499, got ${cancel.status}`);
      const after = await raw('PUT', uri, { 'content-range': 'bytes */*', 'content-length': '0' });
      expect(after.status >= 400 && after.status < 500, `status query after cancel: expected 4xx, got ${after.status}`);
      const [exists] = await bucket.file('resumable/cancelled.bin').exists();
      expect(!exists, 'cancelled upload left an object');
    }],
    ['create-only simple write (ifGenerationMatch: 0)', 'second save must fail 412', async () => {
      const file = bucket.file('create-only/simple.bin');
      await file.save(Buffer.from('first'), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
      await expectStatus(file.save(Buffer.from('second'), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
        412, 'second create-only save');
      expect((await download(file)).toString() === 'first', 'object was overwritten');
    }],
    ['create-only resumable write (ifGenerationMatch: 0)', 'second resumable save must fail 412', async () => {
      const file = bucket.file('create-only/resumable.bin');
      await upload(file, data, { resumable: true, chunkSize: CHUNK, preconditionOpts: { ifGenerationMatch: 0 } });
      await expectStatus(upload(file, Buffer.from('second'), { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } }),
        412, 'second create-only resumable upload');
      expect((await download(file)).equals(data), 'object was overwritten');
    }],
    ['ranged read', 'download({start,end}) and raw Range: bytes=1000-1999', async () => {
      const file = bucket.file('simple/ranged.bin');
      await file.save(data, { resumable: false });
      const part = await download(file, { start: 1000, end: 1999 });
      expect(part.equals(data.subarray(1000, 2000)), `download({start:1000,end:1999}) gave ${part.length} B, not the 1000 B slice`);
      const tail = await download(file, { start: data.length - 10 });
      expect(tail.equals(data.subarray(data.length - 10)), `download({start}) gave ${tail.length} B, not the last 10 B`);
      const answer = await raw('GET', `${endpoint}/storage/v1/b/${BUCKET}/o/simple%2Franged.bin?alt=media`, { range: 'bytes=1000-1999' });
      expect(answer.status === 206, `raw Range GET: expected 206, got ${answer.status}`);
      expect(answer.headers['content-range'] === `bytes 1000-1999/${data.length}`, `Content-Range answered ${answer.headers['content-range']}`);
    }],
    ['object metadata (size, md5, crc32c, generation)', 'getMetadata() after save, and after overwrite', async () => {
      const file = bucket.file('simple/meta.bin');
      await file.save(data, { resumable: false });
      const [meta] = await file.getMetadata();
      expect(Number(meta.size) === data.length, `size ${meta.size}, expected ${data.length}`);
      expect(meta.md5Hash === md5(data), `md5Hash ${meta.md5Hash}, expected ${md5(data)}`);
      expect(meta.crc32c === crc32c(data), `crc32c ${meta.crc32c}, expected ${crc32c(data)}`);
      expect(/^[1-9][0-9]*$/.test(String(meta.generation)), `generation ${meta.generation} is not a positive integer`);
      await file.save(Buffer.from('other'), { resumable: false });
      const [again] = await file.getMetadata();
      expect(String(again.generation) !== String(meta.generation), `generation ${again.generation} unchanged by overwrite`);
    }],
    ['download carries x-goog-hash (client-side validation)', 'raw GET alt=media', async () => {
      const answer = await raw('GET', `${endpoint}/storage/v1/b/${BUCKET}/o/simple%2Fone.bin?alt=media`);
      const hash = answer.headers['x-goog-hash'];
      expect(typeof hash === 'string' && hash.includes('crc32c=') && hash.includes('md5='), `x-goog-hash answered ${hash}`);
    }],
    ['list by prefix, paginated, in key order', 'getFiles({prefix:"p/", maxResults:2, autoPaginate:false}) following nextQuery', async () => {
      for (const name of ['p/d', 'p/b', 'q/x', 'p/c/1', 'p0', 'p/a', 'p/aa']) await bucket.file(name).save(Buffer.from(name), { resumable: false });
      const names = [];
      let query = { prefix: 'p/', maxResults: 2, autoPaginate: false };
      let pages = 0;
      while (query && pages < 10) {
        const [files, next] = await bucket.getFiles(query);
        expect(files.length <= 2, `a page held ${files.length} items with maxResults 2`);
        names.push(...files.map((f) => f.name));
        query = next;
        pages += 1;
      }
      const want = ['p/a', 'p/aa', 'p/b', 'p/c/1', 'p/d'];
      expect(JSON.stringify(names) === JSON.stringify(want), `listed ${JSON.stringify(names)} in ${pages} pages, expected ${JSON.stringify(want)}`);
      expect(pages >= 3, `only ${pages} page(s)`);
    }],
    ['list with delimiter (folders)', 'getFiles({prefix:"p/", delimiter:"/"})', async () => {
      const [files, , response] = await bucket.getFiles({ prefix: 'p/', delimiter: '/', autoPaginate: false });
      const names = files.map((f) => f.name);
      expect(JSON.stringify(names) === JSON.stringify(['p/a', 'p/aa', 'p/b', 'p/d']), `items ${JSON.stringify(names)}`);
      expect(JSON.stringify(response?.prefixes) === JSON.stringify(['p/c/']), `prefixes ${JSON.stringify(response?.prefixes)}`);
    }],
    ['delete (and 404 for a missing object)', 'file.delete(), then delete again', async () => {
      const file = bucket.file('simple/delete-me.bin');
      await file.save(Buffer.from('x'), { resumable: false });
      await file.delete();
      const [exists] = await file.exists();
      expect(!exists, 'object still exists after delete');
      await expectStatus(file.delete(), 404, 'delete of a missing object');
      await expectStatus(download(file), 404, 'read of a missing object');
    }],
    ['delete with a generation precondition', 'delete({ifGenerationMatch: wrong}) must fail 412', async () => {
      const file = bucket.file('simple/guarded.bin');
      await file.save(Buffer.from('x'), { resumable: false });
      const [meta] = await file.getMetadata();
      await expectStatus(file.delete({ ifGenerationMatch: Number(meta.generation) + 1 }), 412, 'delete with a stale generation');
      await file.delete({ ifGenerationMatch: Number(meta.generation) });
    }],
    ['server-side compose', 'bucket.combine([a,b,c], dest)', async () => {
      const parts = [data.subarray(0, 100), data.subarray(100, 5000), data.subarray(5000)];
      await Promise.all(parts.map((part, i) => bucket.file(`compose/part-${i}`).save(part, { resumable: false })));
      const dest = bucket.file('compose/whole.bin');
      await bucket.combine(parts.map((_, i) => bucket.file(`compose/part-${i}`)), dest);
      expect((await download(dest)).equals(data), 'composed object differs from the concatenation');
      const [meta] = await dest.getMetadata();
      expect(meta.crc32c === crc32c(data), `composite crc32c ${meta.crc32c}, expected ${crc32c(data)}`);
    }],
    ['compose, create-only (ifGenerationMatch: 0)', 'combine onto an existing destination must fail 412', async () => {
      const dest = bucket.file('compose/whole.bin');
      await expectStatus(bucket.combine([bucket.file('compose/part-0')], dest, { ifGenerationMatch: 0 }), 412, 'compose onto an existing object');
    }],
    ['server-side rewrite (copy)', 'file.copy(dest) — the client calls rewriteTo', async () => {
      const source = bucket.file('copy/source.bin');
      await source.save(data, { resumable: false });
      const dest = bucket.file('copy/chunked.bin');
      const before = exchanges.length;
      await source.copy(dest);
      const rewrites = exchanges.slice(before).filter((e) => e.path.includes('/rewriteTo/'));
      expect(rewrites.length >= 1, 'no rewriteTo request was made');
      expect((await download(dest)).equals(data), 'copy differs from the source');
    }],
    ['rewrite, create-only (ifGenerationMatch: 0)', 'copy onto an existing destination must fail 412', async () => {
      const source = bucket.file('copy/source.bin');
      await expectStatus(source.copy(bucket.file('copy/chunked.bin'), { preconditionOpts: { ifGenerationMatch: 0 } }), 412,
        'copy onto an existing object');
    }],
    ['XML API resumable start (x-goog-resumable: start)', 'raw POST /BUCKET/OBJECT — not used by the Node client', async () => {
      const answer = await raw('POST', `${endpoint}/${BUCKET}/xml/start.bin`, { 'x-goog-resumable': 'start', 'content-length': '0' });
      expect(answer.status === 201 && answer.headers.location, `expected 201 with Location, got ${answer.status}`);
    }],
  ];
}

// ---- run ----

const emulator = await startEmulator();
const proxy = await startProxy(emulator.endpoint);
const proxied = `http://127.0.0.1:${proxy.address().port}`;
process.env.STORAGE_EMULATOR_HOST = proxied;
// Retries off: a 501 or a hang is reported as what it is, not retried for minutes.
const storage = new Storage({ projectId: 'demo-takeout', retryOptions: { autoRetry: false } });

const results = [];
for (const [name, how, run] of checks(storage, proxied)) {
  const before = exchanges.length;
  const started = Date.now();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
  });
  let failure;
  try {
    await Promise.race([run(), timeout]);
  } catch (error) {
    failure = describeError(error);
  } finally {
    clearTimeout(timer);
  }
  const http = exchanges.slice(before).map((e) =>
    `${e.method} ${e.path.slice(0, 110)}${e.contentRange ? ` [Content-Range ${e.contentRange}]` : ''}${e.bytes ? ` (${e.bytes} B)` : ''} → ${e.status}${e.answeredRange ? ` Range ${e.answeredRange}` : ''}`);
  results.push({ name, how, pass: failure === undefined, failure, ms: Date.now() - started, http });
  console.log(`${failure === undefined ? 'PASS' : 'FAIL'}  ${name}${failure ? `\n      ${failure}` : ''}`);
}

const passed = results.filter((r) => r.pass).length;
const authorized = exchanges.filter((e) => e.authorized).length;
console.log(`\nAuthorization header sent on ${authorized} of ${exchanges.length} requests`);
console.log(`@google-cloud/storage ${clientVersion}, Node ${process.version}: ${passed} passed, ${results.length - passed} failed`);
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ client: clientVersion, node: process.version, results }, null, 2)}\n`);

proxy.close();
proxy.closeAllConnections();
await emulator.stop();
process.exit(0);
