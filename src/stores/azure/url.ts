/**
 * Azure Blob Storage locations: `azure://CONTAINER/prefix` (the account from the credentials),
 * `azure://ACCOUNT.blob.core.windows.net/CONTAINER/prefix` (the form Keboola's sliced-file manifests use) and
 * `https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix`. Credentials in the URL (a SAS query) are refused.
 */
import { TakeoutError } from '../../errors.js';
import { redact, registerSecret } from '../../secrets.js';
import { keyProblem } from '../keys.js';

export interface AzureLocation {
  /** Named by the URL's host, or undefined when the credentials name it (`azure://CONTAINER/…`). */
  account?: string;
  /** `https://ACCOUNT.blob.core.windows.net` when the URL names the account's endpoint. */
  endpoint?: string;
  container: string;
  /** '' or a '/'-terminated prefix without leading or doubled slashes. */
  prefix: string;
}

/**
 * Container names: 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or a
 * digit (learn.microsoft.com "Naming and referencing containers, blobs, and metadata"). `$root` and `$web` too.
 */
const CONTAINER_NAME = /^(?:\$root|\$web|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$/;
/** Storage account names: 3-24 lower-case letters and digits (same page). */
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
/** The public cloud's blob host; sovereign clouds (.blob.core.chinacloudapi.cn, …) end the same way after `.blob.`. */
const BLOB_HOST = /^([a-z0-9]{3,24})\.blob\.core\.[a-z0-9.-]+$/i;

/** Whether a `--dest` value names Azure Blob Storage: `azure://…` or an `https://ACCOUNT.blob.core.…` URL. */
export function isAzureUrl(url: string): boolean {
  if (/^azure:\/\//i.test(url)) return true;
  const host = /^https:\/\/([^/?#]+)/i.exec(url)?.[1];
  return host !== undefined && BLOB_HOST.test(host);
}

export function parseAzureUrl(url: string): AzureLocation {
  const scheme = /^(azure|https):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) throw new TakeoutError('USAGE', `not an azure:// URL: ${redact(url)}`);
  let rest = url.slice(scheme.length + 3);
  const query = rest.search(/[?#]/);
  if (query !== -1) {
    // A SAS pasted into the URL: registered before anything names it, then refused (a URL is printed and logged).
    const sas = rest.slice(query + 1);
    registerSecret(sas);
    for (const part of sas.split('&')) if (/^sig=/i.test(part)) registerSecret(decodeURIComponent(part.slice(4)));
    throw new TakeoutError('USAGE', `${redact(rest.slice(0, query))}: a query (a SAS token?) does not belong in the destination URL`, {
      hint: 'give the SAS as AZURE_STORAGE_SAS_TOKEN, or use AZURE_STORAGE_CONNECTION_STRING',
    });
  }
  if (/^[^/]*@/.test(rest)) {
    throw new TakeoutError('USAGE', `${scheme}://***@…: credentials do not belong in the destination URL`, {
      hint: 'give them as AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN',
    });
  }
  const location: Partial<AzureLocation> = {};
  const first = rest.split('/')[0] ?? '';
  const host = BLOB_HOST.exec(first);
  if (host) {
    location.account = host[1]!.toLowerCase();
    location.endpoint = `https://${first.toLowerCase()}`;
    rest = rest.slice(first.length + 1);
  } else if (scheme === 'https') {
    throw new TakeoutError('USAGE', `${redact(url)} is not an Azure Blob Storage URL`, { hint: 'use https://ACCOUNT.blob.core.windows.net/CONTAINER/prefix or azure://CONTAINER/prefix' });
  }
  const slash = rest.indexOf('/');
  const container = slash === -1 ? rest : rest.slice(0, slash);
  if (!CONTAINER_NAME.test(container)) {
    throw new TakeoutError('USAGE', `invalid container name ${JSON.stringify(redact(container))} in ${redact(url)}`, {
      hint: 'container names are 3-63 lower-case letters, digits and hyphens: azure://CONTAINER/prefix',
    });
  }
  const segments = (slash === -1 ? '' : rest.slice(slash + 1)).split('/').filter((segment) => segment !== '');
  const prefix = segments.length === 0 ? '' : `${segments.join('/')}/`;
  if (prefix !== '') {
    const problem = keyProblem(prefix.slice(0, -1));
    if (problem !== undefined) throw new TakeoutError('USAGE', `unsafe prefix in ${redact(url)}: ${problem}`);
  }
  return { ...location, container, prefix };
}

/** Checked where an account comes from a flag or the environment. */
export function checkAccountName(account: string, origin: string): string {
  if (!ACCOUNT_NAME.test(account)) {
    throw new TakeoutError('USAGE', `invalid storage account name ${JSON.stringify(redact(account))} (${origin})`, {
      hint: 'account names are 3-24 lower-case letters and digits',
    });
  }
  return account;
}
