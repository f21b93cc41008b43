import { describe, expect, it } from 'vitest';
import { clevertapLayout, manifestKey as clevertapManifestKey } from '../src/layouts/clevertap.js';
import { dynamodbLayout, manifestFilesKey, manifestSummaryKey, md5Key, startedKey } from '../src/layouts/dynamodb.js';
import { personalizeFolder, personalizeLayout, SUCCESS_FILE } from '../src/layouts/personalize.js';
import { checkPlainOptions, plainLayout, REDSHIFT_MANIFEST_FILE } from '../src/layouts/plain.js';
import { describeLayoutContract, unsafeKey } from './layout.contract.js';

/** Every dataset export layout through the one layout contract (test/layout.contract.ts). */

describe('dataset layouts', () => {
  describeLayoutContract('dynamodb', () => {
    const options = { format: 'DYNAMODB_JSON', type: 'FULL_EXPORT', view: 'NEW_IMAGE', sse: null, sseKmsKeyId: null, region: 'us-east-1', accountId: '000000000000' } as const;
    return {
      layoutName: 'dynamodb',
      layoutOptions: { ...options },
      buildLayout: (ctx) => dynamodbLayout(ctx, options),
      ownFiles: (exportId) => [startedKey(exportId), manifestFilesKey(exportId), md5Key(manifestFilesKey(exportId)), manifestSummaryKey(exportId), md5Key(manifestSummaryKey(exportId))],
    };
  });

  describeLayoutContract('personalize', () => {
    const options = { datasetType: 'interactions', ingestionMode: 'ALL', idColumns: [], gzip: true, region: 'us-east-1', accountId: '000000000000' } as const;
    return {
      layoutName: 'personalize',
      layoutOptions: { ...options },
      buildLayout: (ctx) => personalizeLayout(ctx, options),
      ownFiles: (exportId) => [`${personalizeFolder(exportId)}${SUCCESS_FILE}`],
    };
  });

  describeLayoutContract('clevertap', () => {
    const options = { format: 'JSON', eventColumn: 'eventName', tsColumn: 'ts', identityPriority: ['email'], profileColumns: [], deviceColumns: [], gzip: true, filterWindow: true } as const;
    return {
      layoutName: 'clevertap',
      layoutOptions: { ...options },
      buildLayout: (ctx) => clevertapLayout(ctx, options),
      exportType: 'INCREMENTAL_EXPORT',
      windowColumn: 'ts',
      windowInSource: false,
      exportFromTime: new Date('2025-12-01T00:00:00Z'),
      exportToTime: new Date('2026-02-01T00:00:00Z'),
      ownFiles: (exportId) => [clevertapManifestKey(exportId)],
    };
  });

  describeLayoutContract('plain', () => {
    const options = {
      keyTemplate: '{table}/{export_id}/part-{part:05}',
      format: 'CSV',
      compression: 'gzip',
      header: true,
      partitionBy: ['country'],
      includePartitionColumns: false,
      region: 'us-east-1',
      accountId: '000000000000',
    } as const;
    checkPlainOptions(options);
    return {
      layoutName: 'plain',
      layoutOptions: { ...options },
      buildLayout: (ctx) => plainLayout(ctx, options),
      ownFiles: (exportId) => [`events/${exportId}/${REDSHIFT_MANIFEST_FILE}`],
    };
  }, {
    additionalTests: (run) => {
      it('puts every data file in a partition folder of its own', () => {
        const { job } = run();
        for (const file of job.dataFiles ?? []) expect(file.key.slice(job.outputPrefix.length), file.key).toMatch(/^country=[^/]+\/part-\d{5}\.csv\.gz$/);
      });
    },
  });
});

describe('the layout contract itself', () => {
  it('tells unsafe keys', () => {
    expect(unsafeKey('exp/part-0.csv', 'exp/')).toBeUndefined();
    expect(unsafeKey('/exp/part-0.csv', 'exp/')).toBe('leading /');
    expect(unsafeKey('exp/a\\b.csv', 'exp/')).toBe('backslash');
    expect(unsafeKey('exp/../part-0.csv', 'exp/')).toBe('. or .. segment');
    expect(unsafeKey('exp/./part-0.csv', 'exp/')).toBe('. or .. segment');
    expect(unsafeKey('other/part-0.csv', 'exp/')).toBe('not under exp/');
    // A name that only holds two dots is a name, not a way up.
    expect(unsafeKey('exp/..-up-0.json.gz', 'exp/')).toBeUndefined();
  });
});
