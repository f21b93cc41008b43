/**
 * One redactor for every line takeout prints (logs, errors, --json events): tokens, secret keys,
 * session tokens and presigned signatures never reach the terminal. And one escaper: names that come
 * from outside (table ids, bucket folders, manifest entries, file names) never put raw control
 * characters on the terminal. `terminalLine`, `terminalText` and `jsonLine` are the choke points every
 * printed line goes through.
 */
const REDACTED = '***';

/** Exact secret values registered at start-up (flags, environment, config); replaced wherever they appear. */
const knownSecrets = new Set<string>();

/** Shorter values are too likely to collide with ordinary text to be replaced blindly. */
const MIN_SECRET_LENGTH = 6;

export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= MIN_SECRET_LENGTH) knownSecrets.add(value);
}

const PATTERNS: [RegExp, string][] = [
  // Presigned URL parts and SigV4 headers (AWS; GCS V4 signing uses the same names with X-Goog-).
  [/((?:X-Amz|X-Goog)-(?:Signature|Credential|Security-Token)=)[^&\s"'<]+/gi, `$1${REDACTED}`],
  // Bare signatures: SigV2 query strings and error bodies (`Signature=…`, `AWSAccessKeyId=…&Signature=`),
  // the end of a SigV4 Authorization value, and Azure SAS tokens (`sig=…`, learn.microsoft.com "Create a service SAS").
  [/(\b(?:Signature|sig)=)[^&\s"'<,;]+/gi, `$1${REDACTED}`],
  // S3's SignatureDoesNotMatch body echoes the signature and the string it signed.
  [/(<(SignatureProvided|StringToSign|StringToSignBytes|CanonicalRequest|CanonicalRequestBytes)>)[^<]*(<\/\2>)/gi, `$1${REDACTED}$3`],
  // Up to the next query parameter too: a request URL in the --debug log keeps what follows it.
  [/(x-amz-security-token["']?\s*[:=]\s*["']?)[^"'\s,}&]+/gi, `$1${REDACTED}`],
  [/(Authorization["']?\s*[:=]\s*["']?)[^"'\n,}]+/gi, `$1${REDACTED}`],
  [/(X-StorageApi-Token["']?\s*[:=]\s*["']?)[^"'\s,}]+/gi, `$1${REDACTED}`],
  // key=value and "key": "value" forms of secret-looking names (Keboola's federated S3 credentials,
  // Azure's SASConnectionString and SharedAccessSignature, GCS's access_token included).
  [
    /((?:secret[_-]?access[_-]?key|secretAccessKey|session[_-]?token|sessionToken|access[_-]?token|SASConnectionString|SharedAccessSignature|AccountKey|password|token|#[\w-]+)["']?\s*[:=]\s*["']?)[^"'\s,};&]+/gi,
    `$1${REDACTED}`,
  ],
  // Passwords inside URLs: scheme://user:password@host. The password may hold '/' (AWS secret keys
  // do, typed unencoded) and the user may be empty; a port followed by a path is not a password.
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s"'<>]*:)(?!\d+(?:[/\s"'<>?#]|$))[^@\s"'<>]+@/gi, `$1${REDACTED}@`],
];

export function redact(text: string): string {
  let out = text;
  for (const secret of knownSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Deep-redact a JSON-able value (for --json events). Keys that name secrets lose their values. */
export function redactValue<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value) ?? 'null')) as T;
}

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
