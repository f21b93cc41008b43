import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TakeoutError } from '../src/errors.js';
import { ROOT_BUCKET_ID } from '../src/sources/dir/csv-folder.js';
import { createDirSource } from '../src/sources/dir/source.js';
import { errorLines, jsonLines, parseCsv, readTakeout, removeTempFolders, runCli, tempFolder } from './helpers/cli.js';

/**
 * A project folder never loses an entry in silence: every entry is a table, or is named once with the
 * reason it is not one; a folder with nothing to take out is refused. The hostile names are made here,
 * at test time (a file name with a newline cannot be committed safely).
 */

afterAll(removeTempFolders);

const NEWLINE_TXT = 'new\nline.txt';

/** Every kind of entry a project folder can hold that is not a plain `<bucket>/<table>.csv`. */
async function hostileFolder(): Promise<{ root: string; project: string }> {
  const root = await tempFolder('dirsrc');
  const project = path.join(root, 'project');
  const main = path.join(project, 'in.c-main');
  await mkdir(path.join(main, 'sub'), { recursive: true });
  await mkdir(path.join(project, '.hidden'), { recursive: true });
  await writeFile(path.join(main, 'UPPER.CSV'), 'id,name\n1,upper\n');
  await writeFile(path.join(main, 't.csv.GZ'), gzipSync('id,name\n2,gzipped\n'));
  await writeFile(path.join(main, 'plain.csv'), 'id,name\n3,plain\n');
  await writeFile(path.join(main, 'sub', 'deep.csv'), 'id\n4\n');
  await writeFile(path.join(main, '.secret.csv'), 'id\n5\n');
  await writeFile(path.join(main, 'notes.txt'), 'not a table');
  await writeFile(path.join(main, NEWLINE_TXT), 'not a table either');
  await writeFile(path.join(project, '.hidden', 'inside.csv'), 'id\n6\n');
  await writeFile(path.join(project, 'root.csv'), 'id,name\n7,root\n');
  await writeFile(path.join(root, 'elsewhere.csv'), 'id,name\n8,outside\n');
  await symlink(path.join(main, 'plain.csv'), path.join(main, 'inside_link.csv'));
  await symlink(path.join(root, 'elsewhere.csv'), path.join(main, 'outside_link.csv'));
  await symlink(path.join(root, 'missing.csv'), path.join(main, 'broken.csv'));
  await symlink('loop.csv', path.join(main, 'loop.csv'));
  await symlink('..', path.join(main, 'parent'));
  execFileSync('mkfifo', [path.join(main, 'fifo.csv')]);
  return { root, project };
}

/** What the folder above must give: each entry once, as a table or as a skip with its reason. */
const EXPECTED_TABLES = [
  `${ROOT_BUCKET_ID}.root`,
  'in.c-main.UPPER',
  'in.c-main.inside_link',
  'in.c-main.outside_link',
  'in.c-main.plain',
  'in.c-main.t',
];
const EXPECTED_SKIPPED: [string, RegExp][] = [
  ['.hidden', /hidden/],
  ['in.c-main/.secret.csv', /hidden/],
  ['in.c-main/broken.csv', /broken symlink/],
  ['in.c-main/fifo.csv', /neither a file nor a folder/],
  ['in.c-main/loop.csv', /symlink loop/],
  [JSON.stringify(`in.c-main/${NEWLINE_TXT}`), /not a \.csv or \.csv\.gz file/],
  ['in.c-main/notes.txt', /not a \.csv or \.csv\.gz file/],
  ['in.c-main/parent', /source folder itself or one of its parents/],
  ['in.c-main/sub', /folder inside a bucket folder/],
];

describe('a project folder with every kind of entry', () => {
  let root: string;
  let project: string;
  beforeAll(async () => ({ root, project } = await hostileFolder()));

  it('takes upper-case extensions, symlinked files and root CSVs, and names every other entry once with its reason', async () => {
    const listed = await createDirSource(project).project();
    expect(listed.tables.map((t) => t.id).sort()).toEqual([...EXPECTED_TABLES].sort());
    expect(listed.buckets.map((b) => b.id)).toEqual([ROOT_BUCKET_ID, 'in.c-main']);
    const skipped = listed.skipped ?? [];
    expect(skipped.map((s) => s.id)).toEqual(EXPECTED_SKIPPED.map(([id]) => id));
    for (const [id, reason] of EXPECTED_SKIPPED) expect(skipped.find((s) => s.id === id)?.reason, id).toMatch(reason);
    for (const s of skipped) expect(s.id).not.toMatch(/\n/);
    expect(listed.warnings).toEqual([expect.stringMatching(/in\.c-main\/outside_link\.csv is a symlink to .*elsewhere\.csv, outside the source folder/)]);
    expect(listed.warnings![0]).toContain(root);
  });

  it('takes them out with exit 0, the skips and the warning on stderr and in the manifest, the data read back', async () => {
    const dest = path.join(root, 'out');
    const result = await runCli(['run', '--source', project, '--dest', dest, '--no-progress']);
    expect(result.code, result.stderr).toBe(0);
    for (const [id, reason] of EXPECTED_SKIPPED) {
      const lines = result.stderr.split('\n').filter((line) => line.startsWith(`skip  ${id}: `));
      expect(lines, id).toHaveLength(1);
      expect(lines[0]).toMatch(reason);
    }
    expect(result.stderr).toMatch(/^takeout: warning: .*outside_link\.csv is a symlink to .*outside the source folder/m);
    const takeout = await readTakeout(dest);
    expect(takeout.manifest.status).toBe('complete');
    expect(takeout.manifest.tables.map((t) => t.id).sort()).toEqual([...EXPECTED_TABLES].sort());
    expect(takeout.manifest.project.skipped?.map((s) => s.id)).toEqual(EXPECTED_SKIPPED.map(([id]) => id));
    expect(parseCsv(await takeout.tableData('in.c-main.UPPER'))).toEqual([['1', 'upper']]);
    expect(parseCsv(await takeout.tableData('in.c-main.t'))).toEqual([['2', 'gzipped']]);
    expect(parseCsv(await takeout.tableData('in.c-main.outside_link'))).toEqual([['8', 'outside']]);
    expect(parseCsv(await takeout.tableData(`${ROOT_BUCKET_ID}.root`))).toEqual([['7', 'root']]);
  });

  it('table export -o and dataset export say so too when a symlink reads from outside the folder', async () => {
    const exported = await runCli(['table', 'export', 'in.c-main.outside_link', '--source', project, '-o', '-']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(parseCsv(exported.stdout)).toEqual([['id', 'name'], ['8', 'outside']]);
    expect(exported.stderr).toMatch(/^takeout: warning: .*outside_link\.csv is a symlink to .*outside the source folder/m);
    const dataset = await runCli(['dataset', 'export', 'in.c-main.UPPER', '--source', project, '--dest', path.join(root, 'dataset'), '--layout', 'plain']);
    expect(dataset.code, dataset.stderr).toBe(0);
    expect(dataset.stderr).toMatch(/^takeout: warning: .*outside_link\.csv is a symlink to .*outside the source folder/m);
  });

  it('names the entries it leaves out in a dry run too', async () => {
    const result = await runCli(['run', '--source', project, '--dest', path.join(root, 'dry'), '--dry-run', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const plan = jsonLines(result.stdout).find((e) => e.type === 'run:plan') as { plan: { skipped: { id: string; reason: string }[] } };
    expect(plan.plan.skipped.map((s) => s.id)).toEqual(EXPECTED_SKIPPED.map(([id]) => id));
    const text = await runCli(['run', '--source', project, '--dest', path.join(root, 'dry'), '--dry-run']);
    expect(text.stderr).toMatch(/^ {2}left out: in\.c-main\/sub: a folder inside a bucket folder/m);
  });

  it('leaves out, without naming them, the entries project.yaml ignores', async () => {
    const folder = path.join(await tempFolder('dirsrc-ignore'), 'p');
    await mkdir(path.join(folder, 'in.c-main', 'docs'), { recursive: true });
    await writeFile(path.join(folder, 'project.yaml'), 'ignore:\n  - README.md\n  - "*/docs"\n');
    await writeFile(path.join(folder, 'README.md'), '# about');
    await writeFile(path.join(folder, 'in.c-main', 'a.csv'), 'id\n1\n');
    await writeFile(path.join(folder, 'in.c-main', 'docs', 'b.csv'), 'id\n2\n');
    await writeFile(path.join(folder, 'in.c-main', 'c.txt'), '');
    const listed = await createDirSource(folder).project();
    expect(listed.tables.map((t) => t.id)).toEqual(['in.c-main.a']);
    expect(listed.skipped).toEqual([{ id: 'in.c-main/c.txt', reason: 'not a .csv or .csv.gz file' }]);
  });
});

describe('errors in a project folder name the line (and byte) in the file', () => {
  const failure = async (folder: string): Promise<TakeoutError> =>
    createDirSource(folder).project().then(
      () => {
        throw new Error('listed');
      },
      (error: unknown) => error as TakeoutError,
    );

  it('a header with a repeated or empty column: line 1, after the BOM', async () => {
    const folder = path.join(await tempFolder('dirsrc-header'), 'p');
    await mkdir(path.join(folder, 'in.c-main'), { recursive: true });
    await writeFile(path.join(folder, 'in.c-main', 'a.csv'), '\ufeffid,name,id\n1,a,2\n');
    const twice = await failure(folder);
    expect(twice.message).toMatch(/in\.c-main\/a\.csv:1 \(byte 3\): column "id" appears twice in the header$/);
    await writeFile(path.join(folder, 'in.c-main', 'a.csv'), 'id,,x\n1,a,2\n');
    expect((await failure(folder)).message).toMatch(/in\.c-main\/a\.csv:1 \(byte 0\): the header has an empty column name$/);
  });

  it('project.yaml that is not YAML: file:line:column', async () => {
    const folder = path.join(await tempFolder('dirsrc-yaml'), 'p');
    await mkdir(path.join(folder, 'in.c-main'), { recursive: true });
    await writeFile(path.join(folder, 'in.c-main', 'a.csv'), 'id\n1\n');
    await writeFile(path.join(folder, 'project.yaml'), 'ignore:\n  - a\n b: c: d\n');
    const error = await failure(folder);
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/\/project\.yaml:3:\d+: not valid YAML: \S.*$/);
  });
});

describe('names that cannot be Keboola ids', () => {
  it('refuses a CSV file whose name holds a newline, naming it on one line', async () => {
    const folder = path.join(await tempFolder('dirsrc-newline'), 'p');
    await mkdir(path.join(folder, 'in.c-main'), { recursive: true });
    await writeFile(path.join(folder, 'in.c-main', 'ok.csv'), 'id\n1\n');
    await writeFile(path.join(folder, 'in.c-main', 'bad\nname.csv'), 'id\n1\n');
    const error = await createDirSource(folder).project().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TakeoutError);
    expect((error as TakeoutError).code).toBe('INVALID_INPUT');
    expect((error as TakeoutError).message).not.toMatch(/\n/);
    expect((error as TakeoutError).message).toContain('bad\\nname');
    const result = await runCli(['run', '--source', folder, '--dest', path.join(folder, '..', 'out'), '--no-progress']);
    expect(result.code).toBe(7);
    expect(errorLines(result.stderr)).toEqual([expect.stringContaining('"bad\\nname" cannot be a table name')]);
  });

  it('refuses a bucket folder whose name holds a control character', async () => {
    const folder = path.join(await tempFolder('dirsrc-tab'), 'p');
    await mkdir(path.join(folder, 'tab\there'), { recursive: true });
    await expect(createDirSource(folder).project()).rejects.toThrow(/"[^"]*tab\\there": not a valid bucket folder name/);
  });
});

describe('a run that selects no table', () => {
  it('refuses an empty folder: exit 2 with a hint on the layout', async () => {
    const folder = await tempFolder('dirsrc-empty');
    const result = await runCli(['run', '--source', folder, '--dest', path.join(folder, 'out'), '--no-progress']);
    expect(result.code, result.stderr).toBe(2);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/no table and no configuration found: nothing to take out/)]);
    expect(result.stderr).toMatch(/hint: a project folder holds CSV files with a header row, in bucket folders \(in\.c-main\/customers\.csv\)/);
  });

  it('refuses a folder where nothing is a table, naming what it found in the hint', async () => {
    const folder = path.join(await tempFolder('dirsrc-nothing'), 'p');
    await mkdir(path.join(folder, 'main'), { recursive: true });
    await writeFile(path.join(folder, 'main', 'data.tsv'), 'id\t1\n');
    await writeFile(path.join(folder, 'notes.md'), '');
    const result = await runCli(['run', '--source', folder, '--dest', path.join(folder, '..', 'out'), '--no-progress']);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(/hint: .*not taken: main\/data\.tsv \(not a \.csv or \.csv\.gz file\), notes\.md \(not a \.csv or \.csv\.gz file\)/);
  });

  it('refuses --exclude patterns that leave no table: exit 2, nothing written', async () => {
    const folder = path.join(await tempFolder('dirsrc-excluded'), 'p');
    await mkdir(path.join(folder, 'main'), { recursive: true });
    await writeFile(path.join(folder, 'main', 'a.csv'), 'id\n1\n');
    const dest = path.join(folder, '..', 'out');
    const result = await runCli(['run', '--source', folder, '--dest', dest, '--exclude', 'in.c-main', '--no-progress']);
    expect(result.code, result.stderr).toBe(2);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/--include\/--exclude leave none of the 1 table of dir:/)]);
    expect(result.stderr).toMatch(/hint: see what they select with --dry-run/);
    expect(existsSync(dest)).toBe(false);
    const dry = await runCli(['run', '--source', folder, '--dest', dest, '--exclude', '*', '--dry-run', '--no-progress']);
    expect(dry.code, dry.stderr).toBe(2);
  });

  it('refuses a database source with no table too (an empty SQLite file): exit 2', async () => {
    const folder = await tempFolder('dirsrc-sqlite');
    const file = path.join(folder, 'empty.db');
    new Database(file).close();
    const result = await runCli(['run', '--source', `sqlite:${file}`, '--dest', path.join(folder, 'out'), '--no-progress']);
    expect(result.code, result.stderr).toBe(2);
    expect(errorLines(result.stderr)).toEqual([expect.stringMatching(/sqlite:.*empty\.db has no table and no configuration: nothing to take out/)]);
  });

  it('takes out a structure-only project (configurations, no table) with exit 0', async () => {
    const folder = path.join(await tempFolder('dirsrc-structure'), 'p');
    await mkdir(folder, { recursive: true });
    await writeFile(
      path.join(folder, 'project.yaml'),
      'components:\n  - id: keboola.ex-http\n    type: extractor\n    name: HTTP\n    configurations:\n      - id: 1\n        name: daily\n',
    );
    const dest = path.join(folder, '..', 'out');
    const result = await runCli(['run', '--source', folder, '--dest', dest, '--no-progress']);
    expect(result.code, result.stderr).toBe(0);
    const takeout = await readTakeout(dest);
    expect(takeout.manifest.tables).toEqual([]);
    expect(takeout.keys).toContain('configurations/keboola.ex-http/1.json');
  });
});

describe('an existing takeout as the source', () => {
  /** A Keboola takeout as Keboola's own tool writes it: no takeout-manifest.json, one table sliced, one not. */
  async function keboolaTakeout(): Promise<string> {
    const folder = path.join(await tempFolder('dirsrc-takeout'), 'takeout');
    await mkdir(path.join(folder, 'in', 'c-main', 'nested'), { recursive: true });
    await mkdir(path.join(folder, 'configurations', 'keboola.ex-http'), { recursive: true });
    await mkdir(path.join(folder, 'files'), { recursive: true });
    const bucket = { id: 'in.c-main', stage: 'in', name: 'c-main' };
    const table = (name: string): Record<string, unknown> => ({ id: `in.c-main.${name}`, name, bucket, columns: ['id', 'name'], primaryKey: [] });
    await writeFile(path.join(folder, 'buckets.json'), JSON.stringify([bucket]));
    await writeFile(path.join(folder, 'tables.json'), JSON.stringify([table('sliced'), table('whole')]));
    await writeFile(
      path.join(folder, 'configurations.json'),
      JSON.stringify([{ id: 'keboola.ex-http', type: 'extractor', name: 'HTTP', configurations: [{ id: '1', name: 'a' }, { id: '2', name: 'b' }] }]),
    );
    await writeFile(path.join(folder, 'configurations', 'keboola.ex-http', '1.json'), JSON.stringify({ id: '1', name: 'a', rows: [], _versions: [] }));
    await writeFile(path.join(folder, 'configurations', 'keboola.ex-http', '2.json'), '{ broken');
    await writeFile(path.join(folder, 'configurations', 'keboola.ex-http', '3.json'), '{}');
    await writeFile(path.join(folder, 'in', 'c-main', 'sliced.part_0.csv.gz'), gzipSync('"1","a"\n'));
    await writeFile(path.join(folder, 'in', 'c-main', 'sliced.part_1.csv.gz'), gzipSync('"2","b"\n'));
    await writeFile(path.join(folder, 'in', 'c-main', 'whole.csv.gz'), gzipSync('"id","name"\n"3","c"\n'));
    await writeFile(path.join(folder, 'in', 'c-main', 'gone.part_0.csv.gz'), gzipSync('"4","d"\n'));
    await writeFile(path.join(folder, 'in', 'c-main', 'nested', 'x.csv.gz'), gzipSync(''));
    await writeFile(path.join(folder, 'triggers.json'), '[]');
    await writeFile(path.join(folder, 'files', '123'), 'x');
    return folder;
  }

  it('reads a table exported unsliced (one gzip with its header) instead of taking it as empty', async () => {
    const folder = await keboolaTakeout();
    const dest = path.join(folder, '..', 'out');
    const result = await runCli(['run', '--source', folder, '--dest', dest, '--no-progress']);
    expect(result.code, result.stderr).toBe(0);
    const takeout = await readTakeout(dest);
    expect(parseCsv(await takeout.tableData('in.c-main.whole'))).toEqual([['3', 'c']]);
    expect(parseCsv(await takeout.tableData('in.c-main.sliced'))).toEqual([['1', 'a'], ['2', 'b']]);
  });

  it('names every file no table or configuration takes, and warns of a broken configuration file', async () => {
    const folder = await keboolaTakeout();
    const listed = await createDirSource(folder).project();
    expect(listed.skipped?.map((s) => s.id)).toEqual([
      'configurations/keboola.ex-http/3.json',
      'files/123',
      'in/c-main/gone.part_0.csv.gz',
      'in/c-main/nested',
    ]);
    // triggers.json is passed through (Keboola's restore engine reads it); a file permanentFiles.json does not list is not.
    expect(listed.keboola?.triggers).toEqual([]);
    expect(listed.skipped?.find((s) => s.id === 'files/123')?.reason).toBe('a file permanentFiles.json does not list');
    expect(listed.skipped?.find((s) => s.id === 'in/c-main/gone.part_0.csv.gz')?.reason).toBe('no table in tables.json has this file');
    expect(listed.warnings).toEqual([expect.stringMatching(/keboola\.ex-http\/2\.json: not valid JSON .*configuration 2 of keboola\.ex-http is taken as configurations\.json lists it/)]);
  });

  it('refuses a broken takeout-manifest.json rather than drop the checksums it holds', async () => {
    const folder = await keboolaTakeout();
    await writeFile(path.join(folder, 'takeout-manifest.json'), '{ not json');
    await expect(createDirSource(folder).project()).rejects.toMatchObject({ code: 'INTEGRITY', message: expect.stringMatching(/takeout-manifest\.json: not valid JSON/) });
  });
});
