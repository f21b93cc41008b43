/**
 * Which account and credentials an Azure store uses, in the az CLI's order (learn.microsoft.com "az storage":
 * the AZURE_STORAGE_* environment variables): a connection string; an account with its key; an account with
 * a SAS token; an account with Azure's default credential chain (environment, workload identity, managed
 * identity, az login). Every key, SAS and connection string is registered as a secret before anything can
 * print it.
 */
import { TakeoutError } from '../../errors.js';
import { registerSecret } from '../../secrets.js';
import type { AzureOptions } from '../store.js';
import { checkAccountName } from './url.js';
import type { AzureLocation } from './url.js';

export type AzureAuth =
  | { kind: 'shared-key'; account: string; key: string; endpoint: string; origin: string }
  | { kind: 'sas'; account: string | undefined; sas: string; endpoint: string; origin: string }
  | { kind: 'default-chain'; account: string; endpoint: string; origin: string };

/** The public cloud's default endpoint suffix (a connection string may name another one). */
const DEFAULT_SUFFIX = 'core.windows.net';

/** Registers the token and its signature (`sig=`) on their own, so a URL-decoded or re-encoded copy is redacted too. */
function registerSas(sas: string): void {
  registerSecret(sas);
  for (const part of sas.split('&')) {
    if (!/^sig=/i.test(part)) continue;
    const signature = part.slice(4);
    registerSecret(signature);
    try {
      registerSecret(decodeURIComponent(signature));
    } catch {
      // Not URL-encoded: registered as it is.
    }
  }
}

/** `Key=Value;…` pairs (values may hold '=': keys and SAS tokens end in it). */
export function parseConnectionString(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const pair of text.split(';')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) continue;
    fields.set(pair.slice(0, equals).trim().toLowerCase(), pair.slice(equals + 1).trim());
  }
  return fields;
}

function fromConnectionString(text: string, location: AzureLocation): AzureAuth {
  registerSecret(text);
  const fields = parseConnectionString(text);
  const key = fields.get('accountkey');
  const sas = fields.get('sharedaccesssignature')?.replace(/^\?/, '');
  registerSecret(key);
  if (sas !== undefined) registerSas(sas);
  const origin = 'AZURE_STORAGE_CONNECTION_STRING';
  const account = fields.get('accountname')?.toLowerCase();
  if (account !== undefined && location.account !== undefined && account !== location.account) {
    throw new TakeoutError('USAGE', `the destination names storage account ${location.account} but ${origin} is for ${account}`, {
      hint: 'use azure://CONTAINER/prefix with the connection string, or a connection string for that account',
    });
  }
  const protocol = fields.get('defaultendpointsprotocol') ?? 'https';
  const suffix = fields.get('endpointsuffix') ?? DEFAULT_SUFFIX;
  const endpoint = fields.get('blobendpoint')?.replace(/\/+$/, '') ?? location.endpoint ?? (account === undefined ? undefined : `${protocol}://${account}.blob.${suffix}`);
  if (endpoint === undefined) {
    throw new TakeoutError('USAGE', `${origin} names neither AccountName nor BlobEndpoint`, { hint: 'copy the connection string from the portal or `az storage account show-connection-string`' });
  }
  if (key !== undefined && account !== undefined) return { kind: 'shared-key', account, key, endpoint, origin };
  if (sas !== undefined) return { kind: 'sas', account, sas, endpoint, origin };
  throw new TakeoutError('USAGE', `${origin} holds neither AccountName with AccountKey nor SharedAccessSignature`, {
    hint: 'copy the connection string from the portal or `az storage account show-connection-string`',
  });
}

/** The account and credentials for `location`, from options and the environment (AZURE_STORAGE_*). */
export function resolveAzureAuth(location: AzureLocation, options: AzureOptions = {}): AzureAuth {
  const env = options.env ?? process.env;
  const connectionString = env.AZURE_STORAGE_CONNECTION_STRING;
  if (connectionString) return fromConnectionString(connectionString, location);
  const key = env.AZURE_STORAGE_KEY;
  const sas = env.AZURE_STORAGE_SAS_TOKEN?.replace(/^\?/, '');
  registerSecret(key);
  if (sas) registerSas(sas);

  let account = location.account;
  let origin = 'the URL';
  if (account === undefined && options.account) [account, origin] = [checkAccountName(options.account, '--azure-account'), '--azure-account'];
  if (account === undefined && env.AZURE_STORAGE_ACCOUNT) {
    [account, origin] = [checkAccountName(env.AZURE_STORAGE_ACCOUNT.toLowerCase(), 'AZURE_STORAGE_ACCOUNT'), 'AZURE_STORAGE_ACCOUNT'];
  }
  if (account === undefined) {
    throw new TakeoutError('USAGE', `azure://${location.container}/${location.prefix}: no storage account given`, {
      hint: 'set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (--azure-account) with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or an az login',
    });
  }
  const endpoint = location.endpoint ?? `https://${account}.blob.${DEFAULT_SUFFIX}`;
  if (key) return { kind: 'shared-key', account, key, endpoint, origin: `${origin} with AZURE_STORAGE_KEY` };
  if (sas) return { kind: 'sas', account, sas, endpoint, origin: `${origin} with AZURE_STORAGE_SAS_TOKEN` };
  return { kind: 'default-chain', account, endpoint, origin: `${origin} with Azure's default credential chain` };
}
