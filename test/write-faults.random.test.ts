import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PROJECT, errorLines, REPO_ROOT, removeTempFolders, runCli, tempFolder, walkFiles, WATCHDOG_MS } from './helpers/cli.js';
import { FAILED_WRITE_EXITS, prng, randomFault } from './faults/random-faults.mjs';
import type { RandomFault } from './faults/random-faults.mjs';

/**
 * A local destination whose every write fails from a random point on (seeded: TAKEOUT_FAULT_SEED replays a
 * schedule; the seed is in every failure message). Each run must end before the 60 s watchdog with a failed
 * write's exit code, a one-line error, no temp files and no manifest unless the run is partial.
 * TAKEOUT_FAULT_RUNS sets how many runs (20 by default, to stay well under a minute); `npm run bench:faults`
 * does 200 and prints how long they took.
 */

const REGISTER = path.join(REPO_ROOT, 'test', 'faults', 'faulty-register.mjs');
const RUNS = Number(process.env.TAKEOUT_FAULT_RUNS ?? 20);
const SEED = Number(process.env.TAKEOUT_FAULT_SEED ?? randomInt(2 ** 31));
/** Runs at once: the machine is shared; each run is short. */
const PARALLEL = 4;
const ARGS = ['run', '--source', DEMO_PROJECT, '--slice-rows', '10000'];

let writes = 0;

beforeAll(async () => {
  const root = await tempFolder('write-faults-random-count');
  const log = path.join(root, 'log');
  const result = await runCli([...ARGS, '--dest', path.join(root, 'dest')], { nodeArgs: ['--import', REGISTER], env: { TAKEOUT_TEST_WRITE_LOG: log } });
  expect(result.code, result.stderr).toBe(0);
  writes = (await readFile(log, 'utf8')).split('\n').filter(Boolean).length;
});

afterAll(removeTempFolders);

describe(`every write fails from a random point on (seed ${SEED}, ${RUNS} runs)`, () => {
  it('every run ends within the watchdog, with one error and nothing that looks complete', async () => {
    const random = prng(SEED);
    const faults: RandomFault[] = Array.from({ length: RUNS }, () => randomFault(random, writes));
    const problems: string[] = [];
    let next = 0;
    let reached = 0;
    const worker = async (): Promise<void> => {
      while (next < faults.length) {
        const index = next++;
        const fault = faults[index]!;
        const where = `run ${index} of seed ${SEED} (TAKEOUT_FAULT_SEED=${SEED}), fault ${JSON.stringify(fault)}`;
        const folder = await tempFolder(`write-faults-random-${index}`);
        const dest = path.join(folder, 'dest');
        const log = path.join(folder, 'log');
        const result = await runCli([...ARGS, '--dest', dest], {
          nodeArgs: ['--import', REGISTER],
          env: { TAKEOUT_TEST_FAULT: JSON.stringify(fault), TAKEOUT_TEST_WRITE_LOG: log },
          timeoutMs: WATCHDOG_MS,
        }).catch((error: Error) => {
          problems.push(`${where}: ${error.message.split('\n')[0]}`);
          return undefined;
        });
        if (!result) continue;
        // Journal rewrites coalesce, so a run may write a little less than the counted one: a fault past its
        // last write is never reached, and that run must simply succeed.
        if (!(await readFile(log, 'utf8')).includes('HIT\t')) {
          if (result.code !== 0) problems.push(`${where}: the fault was not reached, yet exit ${result.code}\n${result.stderr}`);
          continue;
        }
        reached++;
        const files = await walkFiles(dest);
        const lines = errorLines(result.stderr);
        if (!FAILED_WRITE_EXITS.includes(result.code)) problems.push(`${where}: exit ${result.code}\n${result.stderr}`);
        if (lines.length === 0) problems.push(`${where}: no error line\n${result.stderr}`);
        // Tables report their own failures; the run's end is at most one line carrying the exit code.
        if (lines.filter((l) => /exit \d+\]$/.test(l) && !l.startsWith('takeout: error: table ')).length > 1) problems.push(`${where}: more than one final error\n${result.stderr}`);
        if (files.some((f) => f.endsWith('.takeout-tmp'))) problems.push(`${where}: temp files left: ${files.join(', ')}`);
        if (result.code !== 3 && files.includes('takeout-manifest.json')) problems.push(`${where}: a manifest after exit ${result.code}`);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    expect(problems, `seed ${SEED}`).toEqual([]);
    expect(reached, `seed ${SEED}: too few runs reached their fault`).toBeGreaterThanOrEqual(Math.ceil(RUNS / 2));
    // Long enough for the watchdog of a hung run to fire first and name it.
  }, 2 * WATCHDOG_MS);
});
