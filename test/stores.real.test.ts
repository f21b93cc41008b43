/**
 * The store contract, and a demo takeout verified clean, against real clouds: opt-in, as rclone's integration
 * tests are (`go test -remote`). Each runs only when its variable names a prefix the credentials in the
 * environment may write to and delete from; CI sets none of them, so CI skips them all.
 *
 *   TAKEOUT_TEST_S3=s3://bucket/prefix/        AWS credentials from the usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID…)
 *   TAKEOUT_TEST_AZURE=azure://container/prefix/  AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT + a key, SAS or az login
 *   TAKEOUT_TEST_GCS=gs://bucket/prefix/       application default credentials or GOOGLE_OAUTH_ACCESS_TOKEN
 *
 * `npm run test:clouds` runs this file alone. Every test works under its own random prefix below the one
 * given and removes what it wrote.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openStore } from '../src/stores/registry.js';
import type { Store } from '../src/stores/store.js';
import { describeStoreContract, listAll } from './store.contract.js';
import { runCli } from './helpers/cli.js';

const CLOUDS = [
  { name: 'S3 (real)', variable: 'TAKEOUT_TEST_S3' },
  { name: 'Azure Blob Storage (real)', variable: 'TAKEOUT_TEST_AZURE' },
  { name: 'Google Cloud Storage (real)', variable: 'TAKEOUT_TEST_GCS' },
] as const;

/** Credentials and endpoints the child process needs for the real clouds: the user's own, not the emulators'. */
const PASSED_ENV = /^(AWS_|AZURE_|GOOGLE_|GCLOUD_|CLOUDSDK_|HOME$)/;

function under(base: string, name: string): string {
  return `${base.replace(/\/?$/, '/')}takeout-test-${name}-${Date.now()}-${randomBytes(4).toString('hex')}/`;
}

async function removeAll(store: Store): Promise<void> {
  const keys = (await listAll(store)).map((info) => info.key);
  if (keys.length > 0) await store.delete(keys);
  await store.close?.();
}

for (const cloud of CLOUDS) {
  const base = process.env[cloud.variable];
  if (!base) {
    describe.skip(`${cloud.name}: set ${cloud.variable} to run`, () => {
      it('is opt-in', () => undefined);
    });
    continue;
  }

  describeStoreContract(cloud.name, async () => {
    const dest = await openStore(under(base, 'contract'));
    return { dest, cleanup: () => removeAll(dest) };
  });

  describe(`${cloud.name}: takeout run and verify`, () => {
    it('takes out the demo project, verifies it clean and removes it', async () => {
      const url = under(base, 'run');
      const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => PASSED_ENV.test(key)));
      try {
        const run = await runCli(['run', '--source', 'demo', '--dest', url, '-q'], { env, timeoutMs: 300_000 });
        expect(run.code, run.stderr).toBe(0);
        const verify = await runCli(['verify', url, '-q'], { env, timeoutMs: 300_000 });
        expect(verify.code, verify.stderr).toBe(0);
      } finally {
        await removeAll(await openStore(url));
      }
    }, 600_000);
  });
}
