import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { TakeoutError } from '../errors.js';
import { redact, registerSecret } from '../secrets.js';

/**
 * Service-specific endpoints as the aws CLI and the SDKs read them
 * (docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html), highest first:
 * `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, the profile's `services` section (`s3 =` then an
 * indented `endpoint_url = …`), the profile's own `endpoint_url`. `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`
 * (or the profile's `ignore_configured_endpoint_urls`) turns them all off.
 *
 * The SDK finds these by itself, but only for the profile of AWS_PROFILE (not the one a client is given,
 * `--profile`), and takeout must know the endpoint to address it as a custom one (path style, checksums
 * only when required) and to name it in messages: so takeout resolves it, and hands it to the client.
 */
export type EndpointService = 's3' | 'dynamodb';

export interface ConfiguredEndpoint {
  url: string;
  /** Where it came from, for messages: `AWS_ENDPOINT_URL_S3`, `profile x in ~/.aws/config`. */
  origin: string;
}

type Section = Map<string, string | Map<string, string>>;

/** The AWS shared config file format: `[section]`, `key = value`, and indented sub-properties under `key =`. */
export function parseAwsConfig(text: string): Map<string, Section> {
  const sections = new Map<string, Section>();
  let section: Section | undefined;
  let parent: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*([#;].*)?$/.test(raw)) continue;
    const header = /^\s*\[\s*([^\]]+?)\s*\]\s*([#;].*)?$/.exec(raw);
    if (header) {
      const name = header[1]!.replace(/\s+/g, ' ');
      section = sections.get(name) ?? new Map();
      sections.set(name, section);
      parent = undefined;
      continue;
    }
    const pair = /^(\s*)([^=\s][^=]*?)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!pair || !section) continue;
    const [, indent, key, value] = pair as unknown as [string, string, string, string];
    if (indent !== '' && parent) {
      parent.set(key.toLowerCase(), value);
    } else if (value === '') {
      parent = new Map();
      section.set(key.toLowerCase(), parent);
    } else {
      parent = undefined;
      section.set(key.toLowerCase(), value);
    }
  }
  return sections;
}

const TRUE = /^\s*true\s*$/i;

/** The endpoint configured for `service` outside takeout's own flags, or undefined. */
export function configuredEndpoint(service: EndpointService, profileName: string | undefined, env: NodeJS.ProcessEnv = process.env): ConfiguredEndpoint | undefined {
  if (TRUE.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '')) return undefined;
  // `~/` is expanded as the SDK's shared-ini-file-loader does.
  const given = env.AWS_CONFIG_FILE;
  const file = given ? given.replace(/^~(?=[/\\])/, homedir()) : path.join(homedir(), '.aws', 'config');
  let sections = new Map<string, Section>();
  try {
    sections = parseAwsConfig(readFileSync(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new TakeoutError('USAGE', `AWS config file ${file}: ${code ?? (error as Error).message}`);
  }
  const name = profileName ?? env.AWS_PROFILE ?? env.AWS_DEFAULT_PROFILE ?? 'default';
  const profile = sections.get(`profile ${name}`) ?? (name === 'default' ? sections.get('default') : undefined);
  const flag = profile?.get('ignore_configured_endpoint_urls');
  if (typeof flag === 'string' && TRUE.test(flag)) return undefined;

  const variable = `AWS_ENDPOINT_URL_${service.toUpperCase()}`;
  if (env[variable]) return { url: env[variable], origin: variable };
  if (env.AWS_ENDPOINT_URL) return { url: env.AWS_ENDPOINT_URL, origin: 'AWS_ENDPOINT_URL' };
  if (!profile) return undefined;
  const where = `profile ${name} in ${file}`;
  const services = profile.get('services');
  if (typeof services === 'string') {
    const block = sections.get(`services ${services}`);
    // As the SDK: a profile naming a services section that is not there is an error, not a silent default.
    if (!block) throw new TakeoutError('USAGE', `${where}: services section ${JSON.stringify(services)} is not in the file`);
    const entry = block.get(service);
    const url = typeof entry === 'object' ? entry.get('endpoint_url') : undefined;
    if (url) return { url, origin: `services ${services} (${where})` };
  }
  const url = profile.get('endpoint_url');
  return typeof url === 'string' && url !== '' ? { url, origin: where } : undefined;
}

/**
 * An endpoint URL fit for messages: no user info, no trailing slash. A password in it is registered as a
 * secret first, so no later message repeats it. `what` names where it came from (`--endpoint-url`,
 * `endpoint_url from AWS_ENDPOINT_URL_S3`); `example` is the URL the hint shows.
 */
export function displayEndpoint(endpointUrl: string, what: string, example: string): string {
  let parsed: URL;
  try {
    parsed = new URL(endpointUrl);
  } catch {
    throw new TakeoutError('USAGE', `invalid ${what} ${JSON.stringify(redact(endpointUrl))}`, {
      hint: `use a URL such as ${example}`,
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TakeoutError('USAGE', `invalid ${what} ${redact(endpointUrl)}: only http and https are supported`);
  }
  registerSecret(decodedPassword(parsed.password));
  parsed.username = '';
  parsed.password = '';
  return parsed.toString().replace(/\/+$/, '');
}

/** A URL's password as typed: percent-decoded, or as it is when it is not valid percent-encoding. */
function decodedPassword(password: string): string {
  try {
    return decodeURIComponent(password);
  } catch {
    return password;
  }
}
