import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableDataPrefix } from '../src/keboola/layout.js';
import type { TableDescriptor } from '../src/model.js';
import { readTakeout, removeTempFolders, runCli, tempFolder, type Takeout } from './helpers/cli.js';

/**
 * Keboola's restore engine (keboola/php-kbc-project-restore `src/Restore.php`) reads defaultBranchMetadata.json,
 * triggers.json, notifications.json and permanentFiles.json with plain GETs (a missing one fails the restore),
 * and lists a table's data by the prefix `<stage>/<bucket>/<table>.` (S3Restore `listTableFiles`): every
 * takeout writes those files, and no key but a table's own slices starts with its prefix.
 */

afterAll(removeTempFolders);

/** Tables whose names are each other's prefixes or look like the layout's own files. */
const TRICKY: Record<string, string[]> = {
  'in.c-main': ['orders', 'orders_part_0', 'orders-manifest', 'orders_csv', 'part_0', 'manifest'],
  'in.c-files': ['files', '800000001'],
  'out.c-configurations': ['configurations', 'buckets', 'tables'],
};

describe('a takeout of tables with tricky names', () => {
  let root: string;
  let takeout: Takeout;

  beforeAll(async () => {
    root = await tempFolder('layout-restore');
    const project = path.join(root, 'project');
    for (const [bucket, tables] of Object.entries(TRICKY)) {
      await mkdir(path.join(project, bucket), { recursive: true });
      for (const table of tables) {
        const rows = Array.from({ length: 7 }, (_, i) => `${i},${table}-${i}\n`).join('');
        await writeFile(path.join(project, bucket, `${table}.csv`), `id,name\n${rows}`);
      }
    }
    await writeFile(
      path.join(project, 'project.yaml'),
      'components:\n  - id: keboola.ex-http\n    type: extractor\n    name: HTTP\n    configurations:\n      - id: orders\n        name: orders\n',
    );
    const dest = path.join(root, 'takeout');
    const result = await runCli(['run', '--source', project, '--dest', dest, '--slice-rows', '3', '--no-progress']);
    expect(result.code, result.stderr).toBe(0);
    takeout = await readTakeout(dest);
  });

  it('keeps every key but a table’s own slices away from its prefix <stage>/<bucket>/<table>.', () => {
    const keys = takeout.keys;
    expect(takeout.manifest.tables).toHaveLength(Object.values(TRICKY).flat().length);
    for (const table of takeout.manifest.tables) {
      const bucketId = table.id.slice(0, table.id.lastIndexOf('.'));
      const descriptor = { id: table.id, bucketId, name: table.id.slice(bucketId.length + 1) } as TableDescriptor;
      const underPrefix = keys.filter((k) => k.startsWith(tableDataPrefix(descriptor))).sort();
      expect(table.slices.length, table.id).toBeGreaterThanOrEqual(3);
      expect(underPrefix, table.id).toEqual(table.slices.map((s) => s.key).sort());
    }
  });

  it('writes the files the restore engine reads, with the empty lists a project without any has', async () => {
    for (const key of ['defaultBranchMetadata.json', 'triggers.json', 'notifications.json', 'permanentFiles.json']) {
      expect(await takeout.json(key), key).toEqual([]);
      expect(takeout.manifest.files.map((f) => f.key)).toContain(key);
    }
  });

  it('verifies, and takeout copy takes the new files along', async () => {
    const verify = await runCli(['verify', path.join(root, 'takeout')]);
    expect(verify.code, verify.stderr).toBe(0);
    const copied = path.join(root, 'copied');
    const copy = await runCli(['copy', path.join(root, 'takeout'), copied]);
    expect(copy.code, copy.stderr).toBe(0);
    const again = await readTakeout(copied);
    for (const key of ['defaultBranchMetadata.json', 'triggers.json', 'notifications.json', 'permanentFiles.json']) expect(await again.json(key)).toEqual([]);
    expect((await runCli(['verify', copied])).code).toBe(0);
  });

  it('a takeout read as the source passes branch metadata, triggers, notifications, permanent files and configuration metadata through', async () => {
    const from = path.join(root, 'takeout');
    const trigger = [{ id: '301', tables: [{ tableId: 'in.c-main.orders' }] }];
    const metadata = [{ id: '7001', key: 'KBC.configuration.folderName', value: 'x' }];
    await writeFile(path.join(from, 'triggers.json'), JSON.stringify(trigger));
    await writeFile(path.join(from, 'configurations/keboola.ex-http/orders.json.metadata'), JSON.stringify(metadata));
    await mkdir(path.join(from, 'files'));
    await writeFile(path.join(from, 'files', '42'), 'kept for good\n');
    await writeFile(path.join(from, 'permanentFiles.json'), JSON.stringify([{ id: 42, name: 'notes.txt', tags: ['a'] }, { id: 43, name: 'gone.txt', tags: [] }]));
    const dest = path.join(root, 'again');
    const result = await runCli(['run', '--source', from, '--dest', dest, '--no-progress']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/^skip/m);
    expect(result.stderr).toMatch(/permanent file 43 has no files\/43: left out/);
    const again = await readTakeout(dest);
    expect(await again.json('triggers.json')).toEqual(trigger);
    expect(await again.json('configurations/keboola.ex-http/orders.json.metadata')).toEqual(metadata);
    expect(await again.json('defaultBranchMetadata.json')).toEqual([]);
    expect(await again.json('permanentFiles.json')).toEqual([{ id: 42, name: 'notes.txt', tags: ['a'] }]);
    expect((await again.store.get('files/42')).toString()).toBe('kept for good\n');
    expect(again.manifest.files.find((f) => f.key === 'files/42')?.bytes).toBe(14);
  });

  it('a takeout from before these files (not in its manifest) still verifies, copies and is read as a source', async () => {
    const old = path.join(root, 'old');
    const copy = await runCli(['copy', path.join(root, 'copied'), old]);
    expect(copy.code, copy.stderr).toBe(0);
    const restoreFiles = ['defaultBranchMetadata.json', 'triggers.json', 'notifications.json', 'permanentFiles.json'];
    for (const key of restoreFiles) await rm(path.join(old, key));
    const manifestFile = path.join(old, 'takeout-manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { files: { key: string }[] };
    manifest.files = manifest.files.filter((f) => !restoreFiles.includes(f.key));
    await writeFile(manifestFile, JSON.stringify(manifest, null, 2));
    const verify = await runCli(['verify', old]);
    expect(verify.code, verify.stderr).toBe(0);
    const copied = await runCli(['copy', old, path.join(root, 'old-copied')]);
    expect(copied.code, copied.stderr).toBe(0);
    const again = await runCli(['run', '--source', old, '--dest', path.join(root, 'old-again'), '--no-progress']);
    expect(again.code, again.stderr).toBe(0);
    expect(await (await readTakeout(path.join(root, 'old-again'))).json('permanentFiles.json')).toEqual([]);
  });
});
