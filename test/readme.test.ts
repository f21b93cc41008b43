import { cp, mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_PROJECT, REPO_ROOT, removeTempFolders, runCli, runShell, tempFolder } from './helpers/cli.js';
import { expectOk } from './helpers/projects.js';

/**
 * The README's `takeout run` examples are run here against the demo project, and the summary they print is
 * compared with the README's example summary, so the README's numbers cannot drift from what the code prints.
 * `./project` is the demo project, `./old-takeout` a takeout of it, `/backups/` a temp folder; the examples
 * that write to s3:// need a real bucket and are skipped (the S3 path is covered by the run tests).
 */

afterAll(removeTempFolders);

/** `takeout complete: 7 tables, 25,515 rows, 1.55 MiB → 414 KiB in 6 slices, 184 ms, 8.9 MB/s` */
const SUMMARY = /^takeout complete: (\d[\d,]*) tables?, (\d[\d,]*) rows?, ([\d.]+ (?:B|KiB|MiB|GiB)) → ([\d.]+ (?:B|KiB|MiB|GiB)) in (\d[\d,]*) slices?, [\d.]+ m?s, [\d.]+ [KMG]i?B\/s$/;

interface Summary {
  tables: string;
  rows: string;
  rawSize: string;
  slices: string;
}

function summaryOf(line: string): Summary {
  const match = SUMMARY.exec(line);
  expect(match, `not a run summary line: ${line}`).not.toBeNull();
  return { tables: match![1]!, rows: match![2]!, rawSize: match![3]!, slices: match![5]! };
}

/** The fenced blocks of README.md's `## takeout run` section. */
async function runSection(): Promise<{ examples: string[]; summary: string[] }> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = /^## takeout run\n([\s\S]*?)^## /m.exec(readme)?.[1];
  expect(section, 'README.md has no "## takeout run" section').toBeDefined();
  const examples = /^Examples:\n\n```sh\n([\s\S]*?)^```/m.exec(section!)?.[1];
  const summary = /^A run ends with a summary:\n\n```\n([\s\S]*?)^```/m.exec(section!)?.[1];
  expect(examples, 'no "Examples:" block').toBeDefined();
  expect(summary, 'no "A run ends with a summary:" block').toBeDefined();
  return {
    examples: examples!.split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter(Boolean),
    summary: summary!.split('\n').filter(Boolean),
  };
}

describe('README.md: takeout run', () => {
  it('each example runs against the demo project and prints the summary the README shows', async () => {
    const { examples, summary } = await runSection();
    expect(examples.length).toBeGreaterThanOrEqual(4);
    expect(summary).toHaveLength(2);
    const shown = summaryOf(summary[0]!);
    const manifestLine = /^manifest: (\/backups\/\S+)\/takeout-manifest\.json$/.exec(summary[1]!);
    expect(manifestLine, `README manifest line: ${summary[1]}`).not.toBeNull();

    const folder = await tempFolder('readme');
    await cp(DEMO_PROJECT, path.join(folder, 'project'), { recursive: true });
    expectOk(await runCli(['run', '--source', DEMO_PROJECT, '--dest', path.join(folder, 'old-takeout')]));

    let compared = 0;
    let manifestsSeen = 0;
    for (const example of examples) {
      expect(example, 'every example is a takeout command').toMatch(/^takeout run\b/);
      if (example.includes('s3://')) continue;
      const command = example.replaceAll(' /backups/', ` ${folder}/backups/`);
      // Each example in a folder of its own: two that default to ./takeout-<time> within one second would meet.
      const cwd = path.join(folder, `example-${examples.indexOf(example)}`);
      await mkdir(cwd);
      for (const name of ['project', 'old-takeout']) await symlink(path.join(folder, name), path.join(cwd, name));
      const stderr = runShell(`${command} 2>&1 >/dev/null`, { cwd });
      if (example.includes('--dry-run')) {
        expect(stderr, example).not.toMatch(/^takeout complete:/m);
        continue;
      }
      const line = stderr.split('\n').find((l) => l.startsWith('takeout complete:'));
      expect(line, `${example} printed no summary:\n${stderr}`).toBeDefined();
      expect(summaryOf(line!), `${example}: the README's summary block says ${summary[0]}`).toEqual(shown);
      compared++;
      const manifest = /^manifest: (.*)$/m.exec(stderr)?.[1];
      if (example.includes(`${manifestLine![1]!} `) || example.endsWith(manifestLine![1]!)) {
        expect(manifest).toBe(`${folder}${manifestLine![1]}/takeout-manifest.json`);
        manifestsSeen++;
      }
    }
    expect(compared, 'no example printed a summary to compare').toBeGreaterThanOrEqual(2);
    expect(manifestsSeen, `no example writes to ${manifestLine![1]}, which the summary block shows`).toBe(1);
  });
});
