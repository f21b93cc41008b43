import { randomBytes } from 'node:crypto';
import { cp, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import { DEMO_PROJECT, tempFolder, type CliResult } from './cli.js';

/** Rows per block written by demoWithBigTable: ~1 MB of poorly compressible CSV. */
const ROWS_PER_BLOCK = 12_000;

/**
 * The demo project plus `in.c-big.events`, ~1 MB of poorly compressible rows per block: big enough that a
 * run at a slow setting is still mid-table when a test acts on it.
 */
export async function demoWithBigTable(name: string, blocks: number, note: (i: number) => string = (i) => `"note ${i}"`): Promise<string> {
  const root = path.join(await tempFolder(name), 'project');
  await cp(DEMO_PROJECT, root, { recursive: true });
  await mkdir(path.join(root, 'in.c-big'), { recursive: true });
  const handle = await open(path.join(root, 'in.c-big', 'events.csv'), 'w');
  try {
    await handle.write('id,hash,note\n');
    for (let block = 0; block < blocks; block++) {
      const rows: string[] = [];
      for (let i = 0; i < ROWS_PER_BLOCK; i++) rows.push(`${block * ROWS_PER_BLOCK + i},${randomBytes(24).toString('hex')},${note(i)}\n`);
      await handle.write(rows.join(''));
    }
  } finally {
    await handle.close();
  }
  return root;
}

/** Exit 0, or fail showing what the command said. */
export function expectOk(result: CliResult): void {
  expect(result.code, `stdout: ${result.stdout.slice(-2000)}\nstderr: ${result.stderr}`).toBe(0);
}
