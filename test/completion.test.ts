import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_PROJECT, removeTempFolders, runCli, runShell, tempFolder } from './helpers/cli.js';

/**
 * `takeout completion bash|zsh|fish` and the hidden `takeout __complete` the scripts call. Each script is run in
 * its real shell where the shell is installed: a `takeout` function stands in for the installed binary.
 */

function has(shell: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;
}

const DEMO_TABLES = ['in.c-crm.contacts', 'in.c-crm.empty_table', 'in.c-crm.products', 'in.c-main.customers', 'in.c-main.orders', 'out.c-reports.daily_revenue', 'sys.c-keboola.component_runs'];

afterAll(removeTempFolders);

async function script(shell: string): Promise<string> {
  const result = await runCli(['completion', shell]);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

/** Presses TAB after `line` in bash: COMP_LINE/COMP_POINT as bash sets them, COMP_WORDS split at bash's word breaks. */
function bashComplete(file: string, line: string): string[] {
  const program = `
source ${JSON.stringify(file)}
line=$1
COMP_LINE=$line; COMP_POINT=\${#line}
# Split as readline does: at blanks, and around each character of COMP_WORDBREAKS's = and :.
COMP_WORDS=()
word=''
for ((i = 0; i < \${#line}; i++)); do
  ch=\${line:i:1}
  if [[ $ch == ' ' ]]; then [[ -n $word ]] && COMP_WORDS+=("$word"); word=''
  elif [[ $ch == '=' || $ch == ':' ]]; then [[ -n $word ]] && COMP_WORDS+=("$word"); COMP_WORDS+=("$ch"); word=''
  else word+=$ch; fi
done
COMP_WORDS+=("$word")
COMP_CWORD=$((\${#COMP_WORDS[@]} - 1))
_takeout
printf '%s\\n' "\${COMPREPLY[@]}"
`;
  const out = runShell(program, { args: [line] });
  return out.split('\n').filter(Boolean);
}

describe('takeout __complete', () => {
  it('offers commands, subcommands and each command\'s own options, read from the program', async () => {
    const top = await runCli(['__complete', '']);
    expect(top.code).toBe(0);
    const names = top.stdout.trim().split('\n').map((l) => l.split('\t')[0]);
    expect(names).toEqual(expect.arrayContaining(['run', 'files', 'table', 'dataset', 'verify', 'cleanup', 'completion', ':none']));
    expect(names).not.toContain('__complete');
    const options = (await runCli(['__complete', 'files', 'merge', '--'])).stdout.split('\n').map((l) => l.split('\t')[0]);
    expect(options).toEqual(expect.arrayContaining(['--order', '--manifest', '--output', '--no-header', '--help']));
    // files download's own option is not offered on files merge.
    expect(options).not.toContain('--keep-slices');
  });

  it('offers the choices of enum options and table ids from a local --source, and file names where paths go', async () => {
    expect((await runCli(['__complete', 'dataset', 'export', '--layout', ''])).stdout).toBe('dynamodb\npersonalize\nplain\nclevertap\n:none\n');
    const ids = (await runCli(['__complete', 'run', '--source', DEMO_PROJECT, '--include', ''])).stdout.trim().split('\n').map((l) => l.split('\t')[0]);
    expect(ids).toEqual([...DEMO_TABLES, ':none']);
    expect((await runCli(['__complete', 'run', '--dest', ''])).stdout).toBe(':file\n');
    // Values that depend on the line: the formats of the layout named, the statuses of every layout.
    expect((await runCli(['__complete', 'dataset', 'export', '--layout', 'plain', '--export-format', ''])).stdout).toBe('CSV\nJSONL\nPARQUET\n:none\n');
    expect((await runCli(['__complete', 'dataset', 'export', '--export-format', ''])).stdout).toBe('DYNAMODB_JSON\nION\n:none\n');
    expect((await runCli(['__complete', 'dataset', 'exports', 'list', '--status', 'C'])).stdout).toBe('COMPLETED\nCREATE_IN_PROGRESS\nCREATE_PENDING\nCREATE_FAILED\n:none\n');
    // -V among the words is a word to complete after, not the version flag.
    expect((await runCli(['__complete', 'run', '-V', '--line-ending', ''])).stdout).toBe('lf\ncrlf\n:none\n');
  });
});

describe('takeout completion bash', () => {
  it('is valid bash', async () => {
    const folder = await tempFolder('completion');
    const file = path.join(folder, 'takeout.bash');
    await writeFile(file, await script('bash'));
    expect(spawnSync('bash', ['-n', file]).status).toBe(0);
  });

  it('completes in a real bash: commands, options, enum values (also after = and :), table ids, file names', async () => {
    const folder = await tempFolder('completion');
    const file = path.join(folder, 'takeout.bash');
    await writeFile(file, await script('bash'));
    expect(bashComplete(file, 'takeout da')).toEqual(['dataset']);
    expect(bashComplete(file, 'takeout dataset ')).toEqual(['export', 'exports', 'help']);
    expect(bashComplete(file, 'takeout dataset export --layout p')).toEqual(['personalize', 'plain']);
    expect(bashComplete(file, 'takeout files merge --order=g')).toEqual(['given']);
    expect(bashComplete(file, 'takeout run --sse aws:')).toEqual(['kms']);
    expect(bashComplete(file, 'takeout completion ')).toEqual(['bash', 'zsh', 'fish']);
    expect(bashComplete(file, `takeout table export --source ${DEMO_PROJECT} in.c-main.`)).toEqual(['in.c-main.customers', 'in.c-main.orders']);
    expect(bashComplete(file, `takeout run --source ${DEMO_PROJECT} --exclude out`)).toEqual(['out.c-reports.daily_revenue']);
    await writeFile(path.join(folder, 'part_1.csv'), '');
    expect(bashComplete(file, `takeout files merge ${folder}/par`)).toEqual([`${folder}/part_1.csv`]);
  });

  it('a COMP_WORDS-only call (no COMP_LINE) completes as well', async () => {
    const folder = await tempFolder('completion');
    const file = path.join(folder, 'takeout.bash');
    await writeFile(file, await script('bash'));
    const program = `source ${JSON.stringify(file)}; COMP_WORDS=(takeout dataset export --layout ''); COMP_CWORD=4; _takeout; echo "\${COMPREPLY[@]}"`;
    expect(runShell(program).trim()).toBe('dynamodb personalize plain clevertap');
  });
});

describe('takeout completion zsh', () => {
  it.skipIf(!has('zsh'))('is valid zsh and hands the candidates to _describe, file names to _files', async () => {
    const folder = await tempFolder('completion');
    const file = path.join(folder, '_takeout');
    await writeFile(file, await script('zsh'));
    expect(spawnSync('zsh', ['-n', file]).status).toBe(0);
    // The completion system's functions are stubbed: this checks what the script hands them, in a real zsh.
    const program = `compdef() { :; }
_describe() { print -rl -- "\${(@P)4}"; }
_files() { print -- ':files'; }
source ${JSON.stringify(file)}
words=(takeout run --sse ''); CURRENT=4; _takeout
words=(takeout dataset export --layout pe); CURRENT=5; _takeout
words=(takeout run --dest ''); CURRENT=4; _takeout`;
    const out = runShell(program, { shell: 'zsh' });
    expect(out.trim().split('\n')).toEqual(['AES256', 'aws\\:kms', 'personalize', ':files']);
  });
});

describe('takeout completion fish', () => {
  it.skipIf(!has('fish'))('completes in a real fish', async () => {
    const folder = await tempFolder('completion');
    const file = path.join(folder, 'takeout.fish');
    await writeFile(file, await script('fish'));
    const program = `source ${JSON.stringify(file)}
complete -C 'takeout dataset export --layout p'
complete -C 'takeout run --source ${DEMO_PROJECT} --include in.c-m'`;
    const out = runShell(program, { shell: 'fish' });
    expect(out.trim().split('\n')).toEqual(['personalize', 'plain', 'in.c-main.customers\tcustomers', 'in.c-main.orders\torders']);
  });
});

it('an unknown shell is a usage error (exit 2)', async () => {
  const result = await runCli(['completion', 'tcsh']);
  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/tcsh/);
});
