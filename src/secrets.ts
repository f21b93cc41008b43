/**
 * Secrets: the exact values registered at start-up (flags, environment, config, credentials resolved or
 * received later) and the shapes that always hold one (signatures, tokens, passwords in URLs). A bottom
 * concern beside errors.ts: sources and stores register what they receive, and every line printed goes
 * through `redact` (the reporting layer's terminalLine and jsonLine).
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
