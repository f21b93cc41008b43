/**
 * One escaper for every line takeout prints: names that come from outside (table ids, bucket folders,
 * manifest entries, file names) never put raw control characters on the terminal, and secrets are redacted
 * first (src/secrets.ts). `terminalLine`, `terminalText` and `jsonLine` are the choke points every printed
 * line goes through.
 */
import { redact, redactValue } from '../secrets.js';

/**
 * Characters a terminal may act on: C0 controls (newline, CR, ESC, BEL, backspace, tab…), DEL, C1 controls
 * (U+009B is a one-character CSI for terminals that honour 8-bit controls, ECMA-48 §5.3), the Unicode line
 * and paragraph separators, and the bidirectional overrides and isolates that reorder what is shown
 * (CVE-2021-42574, "Trojan Source").
 */
// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeControl(c: string): string {
  return SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** `text` with every terminal control written as a JSON-style escape (`\n`, `\u001b`), so it stays one inert line. */
export function printable(text: string): string {
  return text.replace(TERMINAL_CONTROLS, escapeControl);
}

/** One line for the terminal: secrets redacted, then control characters escaped (a name cannot start a new line). */
export function terminalLine(text: string): string {
  return printable(redact(text));
}

/** Several lines (help, a stack trace): each line as `terminalLine`, the line breaks kept. */
export function terminalText(text: string): string {
  return text
    .split('\n')
    .map((line) => terminalLine(line))
    .join('\n');
}

/**
 * A value as one JSON line: redacted; C0 controls are escaped by JSON.stringify already, the other
 * terminal controls are escaped here too (`\u009b` is the same JSON string as the raw character).
 */
export function jsonLine(value: unknown): string {
  return (JSON.stringify(redactValue(value)) ?? 'null').replace(TERMINAL_CONTROLS, escapeControl);
}
