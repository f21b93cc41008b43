import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAge } from '../src/commands/cleanup.js';
import { addOptions, resolveOptions } from '../src/cli/options.js';
import { COMMON_OPTIONS, destinationOptions, S3_OPTIONS, sourceOptions, type S3Values as Resolved } from '../src/commands/options.js';
import { parseTime } from '../src/commands/table-query.js';
import type { TakeoutError } from '../src/errors.js';
import { parseDuration } from '../src/units.js';
import { errorLines, removeTempFolders, runCli, tempFolder } from './helpers/cli.js';

/** Durations: one parser (parseDuration) behind --request-timeout, --older-than and the relative --changed-since. */

afterAll(removeTempFolders);

const value = (text: string, bareUnitMs?: number): number => {
  const result = parseDuration(text, '--x', bareUnitMs === undefined ? {} : { bareUnitMs });
  if (!result.ok) throw result.error;
  return result.value;
};

describe('parseDuration', () => {
  it('takes ms, s, m, h, d and w, decimals, long unit names, spaces and combinations', () => {
    expect(value('500ms')).toBe(500);
    expect(value('30s')).toBe(30_000);
    expect(value('5m')).toBe(300_000);
    expect(value('2h')).toBe(7_200_000);
    expect(value('7d')).toBe(604_800_000);
    expect(value('1w')).toBe(604_800_000);
    expect(value('1.5h')).toBe(5_400_000);
    expect(value('1h30m')).toBe(5_400_000);
    expect(value(' 3 days ')).toBe(259_200_000);
    expect(value('2 Weeks')).toBe(1_209_600_000);
    expect(value('0')).toBe(0);
  });

  it('a bare number keeps the unit the option always had', () => {
    expect(value('1500', 1)).toBe(1500);
    expect(value('90', 1000)).toBe(90_000);
  });

  it('refuses a bare number where none had a meaning, unknown units and junk, naming the option and the forms', () => {
    const refused = (text: string, options = {}): TakeoutError => {
      const result = parseDuration(text, '--older-than', options);
      expect(result.ok, text).toBe(false);
      return (result as { error: TakeoutError }).error;
    };
    expect(refused('5').message).toBe("--older-than: '5' has no unit");
    expect(refused('5').hint).toContain('500ms, 30s, 5m, 2h, 7d, 1w');
    expect(refused('5y').message).toBe("--older-than: '5y' is not a duration (unknown unit 'y')");
    expect(refused('soon').message).toBe("--older-than: 'soon' is not a duration");
    expect(refused('5m later').message).toBe("--older-than: '5m later' is not a duration");
    expect(refused('-5m').message).toBe("--older-than: '-5m' is not a duration");
    expect(refused('1h x').message).toBe("--older-than: '1h x' is not a duration");
    expect(refused('50', { bareUnitMs: 1, min: 100 }).message).toBe("--older-than: '50' is out of range (100 ms to any)");
    expect(refused('30x', { bareUnitMs: 1 }).hint).toContain('a bare number is milliseconds');
  });
});

describe('every duration option uses it', () => {
  const specs = [...S3_OPTIONS, ...COMMON_OPTIONS];
  const resolve = (args: string[], env: NodeJS.ProcessEnv = {}): Resolved => {
    const command = addOptions(new Command('x'), specs).exitOverride();
    command.parse(args, { from: 'user' });
    return resolveOptions(command, specs, { TAKEOUT_NO_CONFIG: '1', ...env });
  };

  it('--request-timeout: 30s and 2m, or bare milliseconds as before, reach S3 and DynamoDB as ms', () => {
    expect(destinationOptions(resolve(['--request-timeout', '30s'])).s3?.requestTimeoutMs).toBe(30_000);
    expect(sourceOptions(resolve(['--request-timeout', '2m'])).dynamodb?.requestTimeoutMs).toBe(120_000);
    expect(destinationOptions(resolve(['--request-timeout', '1500'])).s3?.requestTimeoutMs).toBe(1500);
    expect(destinationOptions(resolve([], { TAKEOUT_REQUEST_TIMEOUT: '45s' })).s3?.requestTimeoutMs).toBe(45_000);
  });

  it('--older-than: 1w and 90s now too; 0 for everything; a bare 5 is refused as before', () => {
    expect(parseAge('1w')).toBe(604_800_000);
    expect(parseAge('24h')).toBe(86_400_000);
    expect(parseAge('0')).toBe(0);
    expect(() => parseAge('5')).toThrow("--older-than: '5' has no unit");
  });

  it('--changed-since -DURATION: the same units, measured back from now', () => {
    const now = Date.parse('2026-01-10T00:00:00Z');
    expect(parseTime('-2h', '--changed-since', now).toISOString()).toBe('2026-01-09T22:00:00.000Z');
    expect(parseTime('-1w', '--changed-since', now).toISOString()).toBe('2026-01-03T00:00:00.000Z');
    expect(parseTime('-3 days', '--changed-since', now).toISOString()).toBe('2026-01-07T00:00:00.000Z');
    expect(parseTime('-90m', '--changed-since', now).toISOString()).toBe('2026-01-09T22:30:00.000Z');
    expect(() => parseTime('-5', '--changed-since', now)).toThrow("--changed-since '-5' is not a time");
    expect(parseTime('2026-01-01', '--changed-since', now).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});

describe('on the command line', () => {
  it('--request-timeout 30s is accepted; 30x exits 2 naming the option and the accepted forms', async () => {
    const dest = await tempFolder('durations');
    const ok = await runCli(['run', '--source', 'demo', '--dest', `${dest}/ok`, '--include', 'in.c-crm.products', '--request-timeout', '30s']);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await runCli(['run', '--source', 'demo', '--dest', `${dest}/bad`, '--request-timeout', '30x']);
    expect(bad.code).toBe(2);
    expect(errorLines(bad.stderr)).toEqual(["takeout: error: --request-timeout: '30x' is not a duration (unknown unit 'x') [USAGE, exit 2]"]);
    expect(bad.stderr).toContain('hint: use a number with a unit: 500ms, 30s, 5m, 2h, 7d, 1w (or combined: 1h30m); a bare number is milliseconds');
  });

  it('cleanup --older-than 1w is accepted', async () => {
    const dest = await tempFolder('durations-cleanup');
    const result = await runCli(['cleanup', dest, '--older-than', '1w', '--dry-run']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('older than 1w');
  });
});
