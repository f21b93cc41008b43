import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TakeoutError } from '../errors.js';
import type { Destination, DestinationOptions } from './destination.js';

/**
 * Which destination a `--dest` value names. `s3://…` is S3; `file://…` and anything else is a
 * local folder (resolved to an absolute path). The adapters are loaded only when used, so a
 * local run never loads the AWS SDK.
 */
export type ParsedDestination = { kind: 'local'; path: string } | { kind: 's3'; url: string };

export function parseDestination(dest: string): ParsedDestination {
  if (typeof dest !== 'string' || dest.trim() === '') {
    throw new TakeoutError('USAGE', 'the destination is empty', { hint: 'give a folder path or s3://bucket/prefix' });
  }
  if (/^s3:\/\//i.test(dest)) return { kind: 's3', url: dest };
  if (/^file:/i.test(dest)) {
    let local: string;
    try {
      local = fileURLToPath(dest);
    } catch (error) {
      throw new TakeoutError('USAGE', `invalid file URL ${JSON.stringify(dest)}`, { cause: error });
    }
    return { kind: 'local', path: path.resolve(local) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dest)) {
    throw new TakeoutError('USAGE', `unsupported destination ${JSON.stringify(dest.replace(/\/\/[^/@]*@/, '//***@'))}`, {
      hint: 'use a folder path, file://PATH or s3://bucket/prefix',
    });
  }
  return { kind: 'local', path: path.resolve(dest) };
}

export async function openDestination(dest: string, options: DestinationOptions = {}): Promise<Destination> {
  const parsed = parseDestination(dest);
  if (parsed.kind === 's3') {
    const { createS3Destination } = await import('./s3.js');
    return createS3Destination(parsed.url, options);
  }
  const { createLocalDestination } = await import('./local.js');
  return createLocalDestination(parsed.path, options);
}
