/**
 * No credential goes to an origin other than the one the user named, nothing secret is printed, and
 * no name reaches the terminal with raw control characters: through the built CLI, against the
 * Storage API test server, s3rver and the fault proxy (each proxy is its own loopback origin).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ERROR_CODES } from '../src/errors.js';
import { errorLine } from '../src/reporting/lines.js';
import { redact, registerSecret } from '../src/secrets.js';
import { jsonLine, terminalLine } from '../src/reporting/redact.js';
import { TakeoutError } from '../src/errors.js';
import { cleartextWarning, isLoopbackHost, MAX_REDIRECTS } from '../src/sources/keboola/client.js';
import { registerFileSecrets } from '../src/sources/keboola/file-storage.js';
import { closedPort, errorLines, jsonLines, removeTempFolders, runCli, tempFolder, type CliResult } from './helpers/cli.js';
import { OTHER_BUCKET, s3CliArgs, TEST_BUCKET, uniquePrefix } from './helpers/s3.js';
import { faultProxyForTests, s3ErrorBody, startFaultProxy } from './faults/proxy.js';
import { startStorageApi, type StorageApiServer } from './keboola/server.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/keboola-project', import.meta.url));
const TOKEN = 'kbc-origin-token-CANARY-5d1e7b';
const s3Endpoint = inject('s3Endpoint');

/** Every terminal control the escaper must catch: C0, DEL, C1 (U+009B is an 8-bit CSI), line separators, bidi overrides. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function kbc(source: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli([...args, '--source', source, '--no-progress'], { env: { KBC_STORAGE_TOKEN: TOKEN, TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Endpoint, ...env } });
}

const storagePath = (req: { url?: string | undefined }, path: string): boolean => (req.url ?? '').split('?')[0] === `/v2/storage/${path}`;
const hopped = (req: { url?: string | undefined }): boolean => /[?&]hop=/.test(req.url ?? '');

afterAll(removeTempFolders);

describe('Storage API redirects', () => {
  let api: StorageApiServer;
  beforeAll(async () => {
    api = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, token: TOKEN, fixtureDir: FIXTURE, jobPolls: { waiting: 0, processing: 0 } });
  });
  afterAll(async () => {
    await api.stop();
  });
  /** The origin the user names. */
  const front = faultProxyForTests(() => api.url);
  /** Another origin, in front of the same API: a followed redirect would work, and hand it the token. */
  const other = faultProxyForTests(() => api.url);

  it('refuses a cross-origin redirect: exit 2, one line naming both origins, the other origin never sees the token', async () => {
    front.rules.push({ match: (req) => storagePath(req, 'tokens/verify'), action: { kind: 'redirect', status: 302, location: `${other.url}/v2/storage/tokens/verify` } });
    const result = await kbc(`keboola+${front.url}`, ['run', '--dest', join(await tempFolder('origin-cross'), 't')]);
    expect(result.code, result.stderr).toBe(ERROR_CODES.USAGE);
    const errors = errorLines(result.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`${front.url} redirects to another origin, ${other.url}`);
    expect(errors[0]).toContain('GET tokens/verify');
    expect(other.requests).toEqual([]);
    expect(result.stderr + result.stdout).not.toContain(TOKEN);
  });

  it('refuses a cross-origin 307 of an export POST in the middle of a run; the token stays with the stack', async () => {
    front.rules.push({
      match: (req) => req.method === 'POST' && /\/export-async$/.test(req.url ?? ''),
      action: { kind: 'redirect', status: 307, location: `${other.url}/v2/storage/tables/in.c-main.orders/export-async` },
    });
    const result = await kbc(`keboola+${front.url}`, ['run', '--dest', join(await tempFolder('origin-post'), 't'), '--json']);
    expect(result.code).not.toBe(0);
    expect(other.requests.filter((r) => r.headers['x-storageapi-token'] !== undefined)).toEqual([]);
    expect(other.requests).toEqual([]);
    // Every table's export fails on it (table:error events): the run ends with the tables' exit code.
    expect(result.code).toBe(ERROR_CODES.USAGE);
    const failures = jsonLines(result.stdout).filter((e) => e.type === 'table:error');
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) expect(failure.message).toContain(`${front.url} redirects to another origin, ${other.url}`);
    expect(result.stderr + result.stdout).not.toContain(TOKEN);
  });

  it('refuses an http → https redirect of the same host (another origin) with a hint to name it', async () => {
    const httpsUrl = front.url.replace(/^http:/, 'https:');
    front.rules.push({ match: (req) => storagePath(req, 'tokens/verify'), action: { kind: 'redirect', status: 301, location: `${httpsUrl}/v2/storage/tokens/verify` } });
    const result = await kbc(`keboola+${front.url}`, ['run', '--dest', join(await tempFolder('origin-https'), 't')]);
    expect(result.code).toBe(ERROR_CODES.USAGE);
    expect(errorLines(result.stderr)[0]).toContain(`redirects to another origin, ${httpsUrl}`);
    expect(result.stderr).toMatch(new RegExp(`hint: if ${httpsUrl.replace(/[.]/g, '\\.')} is the stack you mean, name it in --source`));
  });

  it('follows same-origin redirects: a 301 GET, and a 307 POST keeping its method and body; the run completes', async () => {
    front.rules.push(
      { match: (req) => storagePath(req, 'tokens/verify') && !hopped(req), action: { kind: 'redirect', status: 301, location: '/v2/storage/tokens/verify?hop=1' } },
      {
        match: (req) => req.method === 'POST' && storagePath(req, 'tables/in.c-main.orders/export-async') && !hopped(req),
        action: { kind: 'redirect', status: 307, location: `${front.url}/v2/storage/tables/in.c-main.orders/export-async?hop=1` },
      },
    );
    const result = await kbc(`keboola+${front.url}`, ['run', '--dest', join(await tempFolder('origin-same'), 't')]);
    expect(result.code, result.stderr).toBe(0);
    expect(front.requests.filter((r) => hopped(r)).map((r) => `${r.method} ${r.url.split('?')[0]}`).sort()).toEqual([
      'GET /v2/storage/tokens/verify',
      'POST /v2/storage/tables/in.c-main.orders/export-async',
    ]);
    // The redirected POST reached the API with its body: it answered with a job, not a 400.
    expect(front.requests.find((r) => r.method === 'POST' && hopped(r))?.status).toBe(202);
    expect(front.requests.find((r) => r.method === 'POST' && hopped(r))?.headers['x-storageapi-token']).toBe(TOKEN);
  });

  it(`ends a same-origin redirect loop after ${MAX_REDIRECTS} redirects (exit 1, one line)`, async () => {
    front.rules.push({ match: (req) => storagePath(req, 'tokens/verify'), action: { kind: 'redirect', status: 302, location: '/v2/storage/tokens/verify' } });
    const result = await kbc(`keboola+${front.url}`, ['run', '--dest', join(await tempFolder('origin-loop'), 't')]);
    expect(result.code).toBe(ERROR_CODES.FAILED);
    expect(errorLines(result.stderr)).toEqual([expect.stringContaining(`more than ${MAX_REDIRECTS} redirects within ${front.url}`)]);
    expect(front.requests).toHaveLength(MAX_REDIRECTS + 1);
  });

  it("reads the project's S3 with the file's credentials and does not follow S3 redirects to another origin", async () => {
    // The AWS SDK's node-http-handler uses http.request, which never follows redirects: a 307 is an error.
    const s3Front = await startFaultProxy(s3Endpoint);
    const s3Other = await startFaultProxy(s3Endpoint);
    try {
      s3Front.rules.push({
        match: (req) => req.method === 'GET' && (req.url ?? '').startsWith(`/${OTHER_BUCKET}/`),
        action: { kind: 'redirect', status: 307, location: `${s3Other.url}${'/'}${OTHER_BUCKET}/moved` },
      });
      const result = await kbc(`keboola+${api.url}`, ['run', '--dest', join(await tempFolder('origin-s3kbc'), 't'), '--include', 'in.c-main.orders'], { TAKEOUT_KEBOOLA_S3_ENDPOINT: s3Front.url });
      expect(result.code).not.toBe(0);
      expect(s3Front.requests.some((r) => r.status === 307)).toBe(true);
      expect(s3Other.requests).toEqual([]);
    } finally {
      await s3Front.stop();
      await s3Other.stop();
    }
  });
});

describe('S3 destination redirects', () => {
  it.each([301, 307])('a %i from the S3 endpoint to another origin is not followed: that origin sees no request', async (status) => {
    const s3Front = await startFaultProxy(s3Endpoint);
    const s3Other = await startFaultProxy(s3Endpoint);
    try {
      s3Front.rules.push({ match: () => true, action: { kind: 'respond', status, headers: { location: `${s3Other.url}/${TEST_BUCKET}/` } } });
      const result = await runCli(['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${uniquePrefix('origin-s3')}`, ...s3CliArgs(s3Front.url)]);
      expect(result.code).not.toBe(0);
      expect(errorLines(result.stderr)).toHaveLength(1);
      expect(s3Front.requests.length).toBeGreaterThan(0);
      expect(s3Other.requests).toEqual([]);
    } finally {
      await s3Front.stop();
      await s3Other.stop();
    }
  });
});

describe('keboola+http:// to another machine', () => {
  // An s3:// destination with an invalid bucket fails at once, after the source was opened: no network needed.
  const failFast = ['--dest', 's3://Not_A_Bucket!/x'];

  it('warns once that the token travels in clear text, naming the host', async () => {
    const result = await runCli(['run', '--source', 'keboola+http://stack.example.invalid', '--token', TOKEN, ...failFast, '--no-progress']);
    expect(result.code).toBe(ERROR_CODES.USAGE);
    const warnings = result.stderr.split('\n').filter((l) => l.startsWith('takeout: warning:'));
    expect(warnings).toEqual(['takeout: warning: keboola+http://stack.example.invalid: the Storage API token travels in clear text over http to stack.example.invalid; use keboola+https://']);
  });

  it('gives the warning as a --json event', async () => {
    const result = await runCli(['run', '--source', 'keboola+http://10.1.2.3:8080', '--token', TOKEN, ...failFast, '--json']);
    expect(jsonLines(result.stdout).filter((e) => e.type === 'warning')).toEqual([expect.objectContaining({ message: expect.stringContaining('clear text over http to 10.1.2.3:8080') })]);
  });

  it('does not warn for loopback hosts or https', async () => {
    const port = await closedPort();
    for (const source of [`keboola+http://127.0.0.1:${port}`, `keboola+http://localhost:${port}`, 'keboola+https://stack.example.invalid']) {
      const result = await runCli(['run', '--source', source, '--token', TOKEN, ...failFast, '--no-progress']);
      expect(result.stderr, source).not.toContain('warning');
    }
    expect(['localhost', '127.0.0.1', '127.255.0.9', '[::1]', 'LOCALHOST'].every(isLoopbackHost)).toBe(true);
    expect(['10.0.0.1', '128.0.0.1', 'localhost.example.com', '[::2]', '1270.0.0.1'].some(isLoopbackHost)).toBe(false);
    expect(cleartextWarning('https://connection.keboola.com')).toBeUndefined();
  });
});

describe('redaction', () => {
  it('hides bare signatures, SAS sig=, the parts of a SignatureDoesNotMatch body and URL passwords holding "/"', () => {
    const cases: [string, string][] = [
      ['…&Signature=0123456789abcdef0123456789abcdef&Expires=1', '…&Signature=***&Expires=1'],
      ['GET /b/k?AWSAccessKeyId=AKIDEXAMPLE&Expires=1&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D', 'GET /b/k?AWSAccessKeyId=AKIDEXAMPLE&Expires=1&Signature=***'],
      ['https://acct.blob.core.windows.net/c?sv=2019-02-02&sr=c&sig=AbC%2Fdef%3D&se=2030', 'https://acct.blob.core.windows.net/c?sv=2019-02-02&sr=c&sig=***&se=2030'],
      ['<SignatureProvided>abc123</SignatureProvided><StringToSign>AWS4-HMAC</StringToSign>', '<SignatureProvided>***</SignatureProvided><StringToSign>***</StringToSign>'],
      ['s3://AKIAEXAMPLE:wJalrXUtn/FEMI+K7MDENG@bucket/x', 's3://AKIAEXAMPLE:***@bucket/x'],
      ['postgres://:hunter2hunter@db.example/x', 'postgres://:***@db.example/x'],
      ['X-Goog-Signature=abcdef0123', 'X-Goog-Signature=***'],
      ['{"access_token":"ya29.a0AfH6SM","SASConnectionString":"BlobEndpoint=https://a;SharedAccessSignature=sv=1&sig=Zz"}', '{"access_token":"***","SASConnectionString":"***;SharedAccessSignature=***&sig=***"}'],
    ];
    for (const [text, expected] of cases) expect(redact(text), text).toBe(expected);
    // Ports are not passwords.
    expect(redact('http://127.0.0.1:9000/bucket/a@b')).toBe('http://127.0.0.1:9000/bucket/a@b');
  });

  it("registers a file's temporary credentials (AWS, Azure and GCS shapes) the moment they are received", () => {
    registerFileSecrets({
      id: 1,
      credentials: { AccessKeyId: 'ASIAORIGINCANARY01', SecretAccessKey: 'secret/ORIGIN+canary/02', SessionToken: 'FwoGZXIvYXdzEORIGIN03' },
      absCredentials: { SASConnectionString: 'BlobEndpoint=https://x.blob.core.windows.net;SharedAccessSignature=sv=2017&sp=rl&sig=ORIGIN04' },
      gcsCredentials: { access_token: 'ya29.ORIGIN05' },
    });
    const text = 'ASIAORIGINCANARY01 secret/ORIGIN+canary/02 FwoGZXIvYXdzEORIGIN03 sv=2017&sp=rl&sig=ORIGIN04 ya29.ORIGIN05';
    expect(redact(text)).not.toMatch(/ORIGIN/);
  });

  it('keeps canary secrets out of stdout and stderr: credentials in an s3:// URL, plain, --json and --debug', async () => {
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARY1';
    for (const extra of [['--no-progress'], ['--json'], ['--debug', '--no-progress']]) {
      const result = await runCli(['run', '--source', 'demo', '--dest', `s3://AKIAORIGINCANARY2:${secret}@${TEST_BUCKET}/x`, ...extra]);
      expect(result.code).toBe(ERROR_CODES.USAGE);
      expect(result.stderr).toContain('credentials do not belong in an s3:// URL');
      expect(result.stdout + result.stderr, extra.join(' ')).not.toMatch(/CANARY|wJalrXUtn|K7MDENG/);
    }
  });

  it('keeps a bare Signature= and an echoed session token from an S3 error body out of the output (--debug --json)', async () => {
    const proxy = await startFaultProxy(s3Endpoint);
    try {
      const action = { kind: 'respond' as const, status: 400, headers: { 'content-type': 'application/xml' }, body: '' };
      proxy.rules.push({
        match: (req) => {
          if (req.method === 'HEAD') return false;
          // Error bodies echo what they were sent (SigV2 SignatureDoesNotMatch, InvalidToken's Token-0); the message is printed.
          action.body = s3ErrorBody('InvalidArgument', `token ${String(req.headers['x-amz-security-token'])} refused; Signature=6a7b8c9d0e1f2a3b4c5d6e7f8a9bCANARY3 does not match`);
          return true;
        },
        action,
      });
      const session = 'IQoJb3JpZ2luX2VjEORIGINCANARY4';
      const args = ['run', '--source', 'demo', '--dest', `s3://${TEST_BUCKET}/${uniquePrefix('origin-sig')}`, ...s3CliArgs(proxy.url), '--session-token', session];
      for (const extra of [['--debug', '--json'], ['--debug', '--no-progress']]) {
        const result = await runCli([...args, ...extra]);
        expect(result.code, result.stderr).not.toBe(0);
        expect(proxy.requests.some((r) => r.fault === 'respond' && r.headers['x-amz-security-token'] === session)).toBe(true);
        expect(result.stdout + result.stderr).toContain('Signature=***');
        expect(result.stdout + result.stderr).not.toMatch(/CANARY/);
      }
    } finally {
      await proxy.stop();
    }
  });

  it("keeps the Storage API file's temporary session token out of the output when its S3 echoes it back", async () => {
    const api = await startStorageApi({ s3Endpoint, bucket: OTHER_BUCKET, token: TOKEN, fixtureDir: FIXTURE, jobPolls: { waiting: 0, processing: 0 } });
    const proxy = await startFaultProxy(s3Endpoint);
    try {
      const action = { kind: 'respond' as const, status: 400, headers: { 'content-type': 'application/xml' }, body: '' };
      const seen: string[] = [];
      proxy.rules.push({
        match: (req) => {
          const token = String(req.headers['x-amz-security-token']);
          seen.push(token);
          action.body = s3ErrorBody('InvalidArgument', `The provided token ${token} is malformed or otherwise invalid.`);
          return true;
        },
        action,
      });
      for (const extra of [['--debug', '--json'], ['--debug']]) {
        const result = await kbc(`keboola+${api.url}`, ['run', '--dest', join(await tempFolder('origin-kbc-token'), 't'), '--include', 'in.c-main.orders', ...extra], { TAKEOUT_KEBOOLA_S3_ENDPOINT: proxy.url });
        expect(result.code).not.toBe(0);
        expect(seen.length).toBeGreaterThan(0);
        expect(result.stdout + result.stderr).toContain('is malformed');
        for (const token of seen) expect(result.stdout + result.stderr).not.toContain(token);
        expect(result.stdout + result.stderr).not.toContain(TOKEN);
      }
    } finally {
      await proxy.stop();
      await api.stop();
    }
  });

  it('keeps a PostgreSQL password out of the output when the connection fails', async () => {
    const port = await closedPort();
    const result = await runCli(['run', '--source', `postgres://takeout:pgORIGINCANARY7@127.0.0.1:${port}/db`, '--dest', join(await tempFolder('origin-pg'), 't'), '--debug', '--json']);
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).not.toMatch(/CANARY/);
  });
});

describe('names reach the terminal escaped', () => {
  const hostile = 'in.c-x\u001b[31mred\nfake: ok\r\u0007\u009b2J\u202eevil';

  it('one choke point escapes C0, C1, DEL, line separators and bidi controls in lines, errors and JSON', () => {
    expect(terminalLine(`start ${hostile}`)).toBe('start in.c-x\\u001b[31mred\\nfake: ok\\r\\u0007\\u009b2J\\u202eevil');
    const line = errorLine(new TakeoutError('INVALID_INPUT', `folder ${hostile}`, { hint: `rename ${hostile}` }));
    expect(line.split('\n')).toHaveLength(2);
    expect(line).not.toMatch(RAW_CONTROL);
    const json = jsonLine({ table: hostile, x: '\u0085\u2028\u007f' });
    expect(json).not.toMatch(RAW_CONTROL);
    expect(json).not.toMatch(/[\u2028\u0085]/);
    expect(JSON.parse(json)).toEqual({ table: hostile, x: '\u0085\u2028\u007f' });
    registerSecret('origin-secret-with\u001bescape');
    expect(terminalLine('a origin-secret-with\u001bescape b')).toBe('a *** b');
  });

  it('a bucket folder name holding ESC, newline, CR and C1 is printed escaped, in one error line', async () => {
    const root = await tempFolder('origin-names');
    await mkdir(join(root, hostile), { recursive: true });
    await writeFile(join(root, hostile, 't.csv'), 'a\n1\n');
    for (const extra of [['--no-progress'], ['--json']]) {
      const result = await runCli(['run', '--source', root, '--dest', join(await tempFolder('origin-names-out'), 't'), ...extra]);
      expect(result.code).toBe(ERROR_CODES.INVALID_INPUT);
      expect(result.stderr).not.toMatch(RAW_CONTROL);
      expect(result.stdout).not.toMatch(RAW_CONTROL);
      // One error line and its hint: the name's newline and CR did not start lines of their own.
      expect(result.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('  hint: '))).toHaveLength(1);
      expect(errorLines(result.stderr)[0]).toContain('in.c-x\\u001b[31mred\\nfake: ok\\r\\u0007\\u009b2J\\u202eevil": not a valid bucket folder name');
    }
  });

  it('a table file name and a manifest bucket name holding controls are printed escaped', async () => {
    const root = await tempFolder('origin-files');
    await mkdir(join(root, 'in.c-main'), { recursive: true });
    await writeFile(join(root, 'in.c-main', 'bad\u001b]0;pwned\u0007\u009btable.csv'), 'a\n1\n');
    const run = await runCli(['run', '--source', root, '--dest', join(root, 'out'), '--no-progress']);
    expect(run.code).toBe(ERROR_CODES.INVALID_INPUT);
    expect(run.stderr).not.toMatch(RAW_CONTROL);
    expect(errorLines(run.stderr)[0]).toContain('bad\\u001b]0;pwned\\u0007\\u009btable.csv": "bad\\u001b]0;pwned\\u0007\\u009btable" cannot be a table name');

    const manifest = join(root, 'evil.manifest');
    await writeFile(manifest, JSON.stringify({ entries: [{ url: `s3://b\u001b[2Jucket\u009b/\nx.csv.gz`, mandatory: true }] }));
    const download = await runCli(['files', 'download', manifest, '-o', join(root, 'merged.csv'), '--no-progress']);
    expect(download.code).not.toBe(0);
    expect(download.stderr).not.toMatch(RAW_CONTROL);
    expect(errorLines(download.stderr)).toHaveLength(1);
  });
});
