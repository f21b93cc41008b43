/**
 * One redactor for every line takeout prints (logs, errors, --json events): tokens, secret keys,
 * session tokens and presigned signatures never reach the terminal.
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
  // Presigned URL parts and SigV4 headers.
  [/(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"']+/gi, `$1${REDACTED}`],
  [/(x-amz-security-token["']?\s*[:=]\s*["']?)[^"'\s,}]+/gi, `$1${REDACTED}`],
  [/(Authorization["']?\s*[:=]\s*["']?)[^"'\n,}]+/gi, `$1${REDACTED}`],
  [/(X-StorageApi-Token["']?\s*[:=]\s*["']?)[^"'\s,}]+/gi, `$1${REDACTED}`],
  // key=value and "key": "value" forms of secret-looking names.
  [
    /((?:secret[_-]?access[_-]?key|secretAccessKey|session[_-]?token|sessionToken|password|token|#[\w-]+)["']?\s*[:=]\s*["']?)[^"'\s,}&]+/gi,
    `$1${REDACTED}`,
  ],
  // Passwords inside connection URLs: scheme://user:password@host
  [/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^@/\s]+@/gi, `$1${REDACTED}@`],
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
