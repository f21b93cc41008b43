import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { createLocalStore } from '../src/stores/local/store.js';
import { runTakeout } from '../src/pipeline/run.js';
import { createDirSource } from '../src/sources/dir/source.js';
import { DEMO_PROJECT_DIR, openSource } from '../src/sources/registry.js';
import { describeSourceContract } from './source.contract.js';

/** The demo project's tables and records, read with csv-parse straight from its files. */
async function demoExpectations(): Promise<Map<string, { columns: string[]; records: string[][] }>> {
  const expected = new Map<string, { columns: string[]; records: string[][] }>();
  for (const folder of await readdir(DEMO_PROJECT_DIR, { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    const bucket = /^(in|out|sys)\.c-/.test(folder.name) ? folder.name : `in.c-${folder.name}`;
    for (const file of await readdir(join(DEMO_PROJECT_DIR, folder.name))) {
      const match = /^(.*)\.csv(\.gz)?$/.exec(file);
      if (!match) continue;
      let bytes = await readFile(join(DEMO_PROJECT_DIR, folder.name, file));
      if (match[2]) bytes = gunzipSync(bytes);
      const [header, ...records] = parse(bytes, { bom: true }) as string[][];
      expected.set(`${bucket}.${match[1]}`, { columns: header!, records });
    }
  }
  return expected;
}

describeSourceContract('dir (CSV project folder)', async () => ({
  source: createDirSource(DEMO_PROJECT_DIR, 'demo-project'),
  expected: await demoExpectations(),
}));

describeSourceContract('dir (an existing takeout)', async () => {
  const folder = await mkdtemp(join(tmpdir(), 'takeout-as-source-'));
  await runTakeout({
    source: createDirSource(DEMO_PROJECT_DIR, 'demo-project'),
    destination: createLocalStore(folder),
    structureOnly: false,
    include: [],
    exclude: [],
    sliceBytes: 64 * 1024,
    compressionLevel: 6,
    lineEnding: '\n',
    requote: false,
    concurrency: 2,
    overwrite: false,
    dryRun: false,
    failFast: true,
    partBytes: 0,
    partConcurrency: 0,
    toolVersion: 'test',
    recordedOptions: {},
    emit: () => undefined,
  });
  return {
    source: createDirSource(folder),
    expected: await demoExpectations(),
    cleanup: () => rm(folder, { recursive: true, force: true }),
  };
});

describe('source registry', () => {
  it('opens the demo project by name only (no default) and folders by path or dir:', async () => {
    expect((await openSource('demo')).description).toBe('dir:demo-project');
    await expect(openSource(undefined)).rejects.toMatchObject({ code: 'USAGE', message: 'no --source given' });
    await expect(openSource('')).rejects.toMatchObject({ code: 'USAGE', message: '--source is empty' });
    expect((await openSource(`dir:${DEMO_PROJECT_DIR}`)).description).toBe(`dir:${DEMO_PROJECT_DIR}`);
    expect((await openSource(DEMO_PROJECT_DIR)).description).toBe(`dir:${DEMO_PROJECT_DIR}`);
  });

  it('refuses source kinds it does not have, without echoing credentials', async () => {
    const error = await openSource('dynamodb:orders?secret=hunter2-secret').catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/not a DynamoDB table name/);
    expect(String(error)).not.toContain('hunter2');
    expect((await openSource('sqlite:/tmp/x.db')).description).toBe('sqlite:/tmp/x.db');
    expect((await openSource('postgres://user:hunter2-secret@db:5432/app')).description).toBe('postgres://user@db:5432/app');
    await expect(openSource('ftp://x')).rejects.toThrow(/unknown source kind/);
  });
});
