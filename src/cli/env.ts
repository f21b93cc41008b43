import type { Command } from 'commander';
import { PROGRESS_INTERVAL_ENV } from '../reporting/progress.js';
import { OTHER_TAKEOUT_ENV } from '../sources/registry.js';
import { envName } from './options.js';

/** A name further than this many edits from every known one gets no did-you-mean: it is not a typo of any. */
const MAX_SUGGESTION_EDITS = 3;

/** Levenshtein distance with adjacent transpositions (optimal string alignment): `SORCE`/`SOURCE` is 1, `SOUCRE`/`SOURCE` 1. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/** The closest known TAKEOUT_* name, when one is close enough to be the intended one (compared without the shared prefix). */
export function closest(name: string, known: Iterable<string>): string | undefined {
  const strip = (s: string): string => s.replace(/^TAKEOUT_/i, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(strip(name), strip(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A short name is a typo of another only if most of it survives.
  return bestDistance <= Math.min(MAX_SUGGESTION_EDITS, Math.max(1, Math.floor(strip(name).length / 3))) ? best : undefined;
}

/**
 * Every TAKEOUT_* variable takeout reads: one per option of every command (derived from the options the
 * commands registered, which come from the option specs), plus the few read elsewhere.
 */
export function knownEnvNames(program: Command): Set<string> {
  const names = new Set<string>([...OTHER_TAKEOUT_ENV, PROGRESS_INTERVAL_ENV]);
  const walk = (command: Command): void => {
    for (const sub of command.commands) {
      for (const option of sub.options) names.add(envName(option.attributeName()));
      walk(sub);
    }
  };
  walk(program);
  return names;
}

/** One warning per TAKEOUT_* variable that sets nothing: a misspelled one would otherwise be ignored in silence. */
export function unknownEnvWarnings(env: NodeJS.ProcessEnv, known: ReadonlySet<string>): string[] {
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!/^TAKEOUT_/i.test(name) || known.has(name)) continue;
    const suggestion = closest(name.toUpperCase(), known);
    const shown = /^[A-Za-z0-9_]+$/.test(name) ? name : JSON.stringify(name);
    warnings.push(`${shown} is not a takeout setting and is ignored${suggestion ? ` (did you mean ${suggestion}?)` : ''}`);
  }
  return warnings;
}
