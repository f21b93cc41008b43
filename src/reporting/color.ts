/**
 * Colour for the few lines that deserve it: errors red, warnings yellow, a successful end green. Only ever on
 * a terminal: never in a pipe, a log file or --json, whatever the environment says.
 */

const RED = '\u001b[31m';
const YELLOW = '\u001b[33m';
const GREEN = '\u001b[32m';
const RESET = '\u001b[39m';

/**
 * Whether stderr gets colour. FORCE_COLOR (https://force-color.org) set and not `0`/`false` turns it on even where
 * TERM says the terminal cannot (TERM=dumb), `0`/`false` turns it off; as in Node itself, it wins over NO_COLOR
 * (https://no-color.org: set and not empty turns colour off). Neither makes a pipe or a file coloured: only a
 * terminal gets colour codes.
 */
export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  if (!isTTY) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return env.TERM !== 'dumb';
}

/** A line already escaped (terminalLine) coloured by what it says; other lines as they are. */
export function paintLine(line: string, enabled: boolean): string {
  if (!enabled) return line;
  if (/^(takeout: error:|✖ |failed: )/.test(line) || /^takeout failed:/.test(line)) return `${RED}${line}${RESET}`;
  if (/^(takeout: warning:|takeout partial:)/.test(line)) return `${YELLOW}${line}${RESET}`;
  if (/^(takeout complete:|merged \d|export \S+ COMPLETED:)/.test(line)) return `${GREEN}${line}${RESET}`;
  return line;
}

/** Several lines (an error and its hint): each painted as `paintLine`; the hint stays plain, as gh prints it. */
export function paintLines(text: string, enabled: boolean): string {
  return enabled ? text.split('\n').map((line) => paintLine(line, true)).join('\n') : text;
}
