import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Temp folders of a test file: made under the OS temp folder, removed together. Depends on nothing in src/. */

const temps: string[] = [];

/** A fresh folder under the OS temp folder, removed by `removeTempFolders`. */
export async function tempFolder(name: string): Promise<string> {
  const folder = await mkdtemp(path.join(tmpdir(), `takeout-e2e-${name}-`));
  temps.push(folder);
  return folder;
}

export async function removeTempFolders(): Promise<void> {
  await Promise.all(temps.splice(0).map((folder) => rm(folder, { recursive: true, force: true })));
}
