import type { Command, CommanderError } from 'commander';
import { TakeoutError } from '../errors.js';

/**
 * Help wider than this is hard to read on a wide terminal (long lines lose the eye), so it wraps here even
 * when the terminal is wider; typography's usual 45–90 characters of prose plus the option column.
 */
export const MAX_HELP_WIDTH = 100;
/**
 * Descriptions wrap in a column this narrow or wider. Commander's own floor is 40: below it, it stops wrapping
 * and a 70-column terminal (beside takeout's 35-column option names) gets lines broken mid-word by the terminal.
 */
export const MIN_DESCRIPTION_WIDTH = 20;
/** Without a terminal (a pipe, a test) and without COLUMNS, help is as wide as a classic terminal. */
export const DEFAULT_HELP_WIDTH = 80;

/** The width help wraps at: the terminal's, else COLUMNS (as `ls` and `man` read it), else 80; at most 100. */
export function helpWidth(stream: { isTTY?: boolean; columns?: number }, env: NodeJS.ProcessEnv): number {
  const fromEnv = Number(env.COLUMNS);
  const width = stream.isTTY && typeof stream.columns === 'number' && stream.columns > 0 ? stream.columns : Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_HELP_WIDTH;
  return Math.min(width, MAX_HELP_WIDTH);
}

/** One example: what it does (a comment line), then the command line. */
export type Example = readonly [comment: string, commandLine: string];

/** An "Examples:" section after the options, as gh prints one for every command. */
export function addExamples(command: Command, examples: readonly Example[]): Command {
  const lines = examples.flatMap(([comment, line], i) => [...(i > 0 ? [''] : []), `  # ${comment}`, `  ${line}`]);
  return command.addHelpText('after', `\nExamples:\n${lines.join('\n')}`);
}

/** `takeout files download`: the command's full name, as typed. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * `takeout help files download` → `takeout files download --help` (commander's own help command looks
 * one level down only). A name that is not a command is left in place, so it fails as an unknown command
 * with a did-you-mean. Other command lines are returned as they are.
 */
export function expandHelpCommand(program: Command, args: readonly string[]): string[] {
  let command = program;
  let i = 0;
  const find = (parent: Command, name: string | undefined): Command | undefined => (name === undefined ? undefined : parent.commands.find((c) => c.name() === name || c.aliases().includes(name)));
  for (let sub = find(command, args[i]); sub; sub = find(command, args[++i])) command = sub;
  if (args[i] !== 'help' || command.commands.length === 0) return [...args];
  const names = args.slice(i + 1).filter((a) => !a.startsWith('-'));
  if (names.length === 0) return [...args.slice(0, i), '--help'];
  const path = args.slice(0, i);
  for (const name of names) {
    const sub = find(command, name);
    // Unknown: let commander say so (with its suggestion) by dispatching to it.
    if (!sub) return [...path, name];
    path.push(name);
    command = sub;
  }
  return [...path, '--help'];
}

/**
 * A usage error of commander's (unknown option or command, a missing or an extra argument) in the house
 * format, with a hint: commander's did-you-mean, the usage for argument errors, and where the help is.
 */
export function commanderUsageError(error: CommanderError, command: Command): TakeoutError {
  const [said = error.message, ...rest] = error.message.replace(/^error: /, '').split('\n');
  let first = said;
  if (error.code === 'commander.excessArguments') {
    // commander: "too many arguments for 'run'. Expected 2 arguments but got 3." — say which ones.
    const expected = command.registeredArguments.length;
    const shown = command.args.map((a) => JSON.stringify(a)).join(' ');
    first = `too many arguments for ${commandPath(command)}: ${expected === 0 ? 'it takes none' : `it takes at most ${expected}`}, got ${command.args.length} (${shown})`;
  }
  const suggestion = /\(Did you mean (?:one of )?(.+?)\?\)/.exec(rest.join(' '))?.[1];
  const path = commandPath(command);
  const see = `see ${path} --help`;
  let hint: string;
  if (suggestion) hint = `did you mean ${suggestion}? (${see})`;
  else if (error.code === 'commander.excessArguments' || error.code === 'commander.missingArgument') hint = `usage: ${path} ${command.usage()} (${see})`;
  else hint = see;
  return new TakeoutError('USAGE', first.replace(/\.$/, ''), { hint });
}
