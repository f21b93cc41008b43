/**
 * What the Keboola target changes in a configuration before it sends it, as Keboola's restore engine does
 * (php-kbc-project-restore ConfigurationCorrector, StackSpecificComponentIdTranslator): OAuth ids and data app
 * ids removed, a flow's Snowflake writer tasks named for the destination stack; the takeout's own copy untouched.
 * And the line a Keboola source or target gives without a token.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { correctConfiguration, stackComponentId } from '../src/targets/keboola/corrections.js';
import path from 'node:path';
import { removeTempFolders, runCli, tempFolder } from './helpers/cli.js';

describe('configuration corrections for the destination stack', () => {
  it("removes an OAuth authorization's id and says so; the takeout's configuration is not changed", () => {
    const original = { authorization: { oauth_api: { id: '123', version: 3 } }, parameters: { a: 1 } };
    const { configuration, changes } = correctConfiguration('keboola.ex-google-drive', original, 'connection.keboola.com', 'snowflake');
    expect(configuration).toEqual({ authorization: { oauth_api: { version: 3 } }, parameters: { a: 1 } });
    expect(changes).toEqual(['its OAuth authorization was removed: authorize it again in the project']);
    expect(original.authorization.oauth_api.id).toBe('123');
  });

  it("removes a data app's id", () => {
    const { configuration, changes } = correctConfiguration('keboola.data-apps', { parameters: { id: 'app-1', size: 'tiny' } }, 'connection.keboola.com', 'snowflake');
    expect(configuration).toEqual({ parameters: { size: 'tiny' } });
    expect(changes).toHaveLength(1);
  });

  it("names a flow's Snowflake writer tasks for the destination stack, -s3 where a Snowflake backend writes through S3", () => {
    const flow = { tasks: [{ task: { componentId: 'keboola.wr-db-snowflake' } }, { task: { componentId: 'keboola.ex-db-mysql' } }, { task: { componentId: 'keboola.wr-snowflake-blob-storage' } }] };
    const gcp = correctConfiguration('keboola.orchestrator', flow, 'connection.europe-west3.gcp.keboola.com', 'snowflake');
    expect((gcp.configuration as typeof flow).tasks.map((t) => t.task.componentId)).toEqual(['keboola.wr-db-snowflake-gcs-s3', 'keboola.ex-db-mysql', 'keboola.wr-db-snowflake-gcs-s3']);
    expect(gcp.changes).toHaveLength(2);
    expect(stackComponentId('keboola.wr-db-snowflake', 'connection.europe-west2.gcp.keboola.com', 'snowflake')).toBe('keboola.wr-db-snowflake-gcs');
    expect(stackComponentId('keboola.wr-db-snowflake', 'connection.europe-west3.gcp.keboola.com', 'bigquery')).toBe('keboola.wr-db-snowflake-gcs');
    expect(stackComponentId('keboola.wr-snowflake-blob-storage', 'connection.keboola.com', 'snowflake')).toBe('keboola.wr-db-snowflake');
    // A stack the engine does not map keeps the component (the engine warns; the restore names nothing changed).
    const aws = correctConfiguration('keboola.orchestrator', flow, 'connection.keboola.com', 'snowflake');
    expect((aws.configuration as typeof flow).tasks[0]!.task.componentId).toBe('keboola.wr-db-snowflake');
    expect(aws.changes).toHaveLength(1);
  });

  it('leaves every other configuration as it is', () => {
    const config = { parameters: { id: 'kept' }, authorization: { other: { id: 1 } } };
    expect(correctConfiguration('keboola.ex-db-mysql', config, 'connection.keboola.com', 'snowflake')).toEqual({ configuration: config, changes: [] });
  });
});

describe('without a Storage API token', () => {
  afterAll(removeTempFolders);
  it.each([
    ['run', ['run', '--source', 'keboola+https://connection.keboola.com', '--dest', 'out', '--dry-run']],
    ['restore', ['restore', 'TAKEOUT', '--to', 'keboola+https://connection.keboola.com']],
  ])('%s says how to give one, and no word of the hint is taken for a secret', async (_name, args) => {
    const takeout = path.join(await tempFolder('no-token'), 'takeout');
    if (args.includes('TAKEOUT')) expect((await runCli(['run', 'demo', takeout, '-q'])).code).toBe(0);
    const result = await runCli(args.map((a) => (a === 'TAKEOUT' ? takeout : a)), { env: { KBC_STORAGE_TOKEN: '' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no Storage API token');
    expect(result.stderr).toContain('hint: set KBC_STORAGE_TOKEN or pass --token');
    expect(result.stderr).not.toContain('***');
  });
});
