import type { Command } from 'commander';
import { PROGRESS_INTERVAL_ENV } from '../reporting/progress.js';
import { OTHER_TAKEOUT_ENV } from '../sources/registry.js';
import { envName, NO_CONFIG_ENV } from './options.js';
import { SHUTDOWN_DEADLINE_ENV } from './interrupt.js';
import { closest } from '../pipeline/suggest.js';

/**
 * Every TAKEOUT_* variable takeout reads: one per option of every command (derived from the options the
 * commands registered, which come from the option specs), plus the few read elsewhere.
 */
export function knownEnvNames(program: Command): Set<string> {
  const names = new Set<string>([...OTHER_TAKEOUT_ENV, NO_CONFIG_ENV, PROGRESS_INTERVAL_ENV, SHUTDOWN_DEADLINE_ENV]);
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
