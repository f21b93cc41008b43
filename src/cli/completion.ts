import { Argument, Command, type Option } from 'commander';
import { TakeoutError } from '../errors.js';
import { optionSpec } from './options.js';

/**
 * Shell completion, as gh and rclone do it (cobra's design): `takeout completion bash|zsh|fish` prints a
 * small script that, on TAB, calls the hidden `takeout __complete WORD… CURRENT` and offers what it prints.
 * Everything offered is read from the commander program itself (commands, each command's options, the
 * choices of its options), so completion never drifts from what the commands accept.
 *
 * `__complete` prints one candidate a line (`value<TAB>description`), then one directive line: `:file` when
 * file names fit here too (the shell adds them), `:none` when they do not.
 */
export const COMPLETE_COMMAND = '__complete';
export const SHELLS = ['bash', 'zsh', 'fish'] as const;

/**
 * Reading a local project folder or takeout for table ids must not hold up a TAB: past this, no table ids.
 * Half a second is about the most a keypress can wait before it feels stuck.
 */
const TABLE_IDS_TIMEOUT_MS = 500;

/** Option and argument names whose values are paths: the shell completes file names there. */
const PATH_VALUE = /^(file|dir|dest|uri|manifest|slices|path)$/;
/** Options and arguments whose values are table ids. */
const TABLE_OPTIONS = new Set(['--include', '--exclude', '--table']);
const TABLE_ARGUMENT = 'table-id';

interface Candidate {
  value: string;
  description?: string;
}

function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n')[0]!.trim();
}

function visibleCommands(command: Command): Command[] {
  return command.createHelp().visibleCommands(command);
}

function visibleOptions(command: Command): Option[] {
  return command.createHelp().visibleOptions(command);
}

function findOption(command: Command, flag: string): Option | undefined {
  return command.options.find((o) => o.long === flag || o.short === flag);
}

/** What the words before the current one say: the command reached, its operands and the options given. */
interface Parsed {
  command: Command;
  operands: string[];
  given: Map<string, string | true>;
  /** The option whose value the current word is. */
  pending?: Option;
  /** `takeout help …`: only command names follow. */
  help: boolean;
}

function unquote(word: string): string {
  return word.length >= 2 && (word[0] === "'" || word[0] === '"') && word.at(-1) === word[0] ? word.slice(1, -1) : word;
}

function parse(program: Command, words: readonly string[]): Parsed {
  const parsed: Parsed = { command: program, operands: [], given: new Map(), help: false };
  for (let i = 0; i < words.length; i++) {
    const word = unquote(words[i]!);
    if (word.startsWith('-') && word !== '-') {
      const [flag, inline] = word.includes('=') ? [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)] : [word, undefined];
      const option = findOption(parsed.command, flag);
      if (option?.long) {
        if ((option.required || option.optional) && inline === undefined) {
          const value = words[i + 1];
          if (value === undefined) {
            parsed.pending = option;
            break;
          }
          parsed.given.set(option.long, unquote(value));
          i++;
        } else {
          parsed.given.set(option.long, inline ?? true);
        }
      }
      continue;
    }
    const sub = parsed.operands.length === 0 ? parsed.command.commands.find((c) => c.name() === word || c.aliases().includes(word)) : undefined;
    if (sub) parsed.command = sub;
    else if (parsed.command === program && word === 'help') parsed.help = true;
    else parsed.operands.push(word);
  }
  return parsed;
}

function option(o: Option): Candidate {
  return { value: o.long ?? o.short ?? o.flags, description: firstLine(o.description) };
}

/** Table ids of a local project folder, takeout or SQLite file given as --source; nothing for sources behind a network. */
async function tableIds(source: string | true | undefined): Promise<Candidate[]> {
  if (typeof source !== 'string' || /^(postgres|postgresql|keboola\+https?|keboola\+http|dynamodb|s3):/i.test(source)) return [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const { openSource } = await import('../sources/registry.js');
    const listing = (async () => {
      const opened = await openSource(source);
      try {
        return (await opened.project()).tables.map((t) => ({ value: t.id, description: t.name }));
      } finally {
        await opened.close?.();
      }
    })();
    const timeout = new Promise<Candidate[]>((resolve) => (timer = setTimeout(() => resolve([]), TABLE_IDS_TIMEOUT_MS)));
    return await Promise.race([listing, timeout]);
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/** The candidates for the last word of `words` (the words after `takeout`), and whether file names fit too. */
export async function completions(program: Command, words: readonly string[]): Promise<{ candidates: Candidate[]; files: boolean }> {
  const current = unquote(words.at(-1) ?? '');
  const before = words.slice(0, -1);
  const parsed = parse(program, before);
  let candidates: Candidate[] = [];
  let files = false;
  // --flag=value in the current word: complete the value (the shell scripts keep the --flag= part).
  const inline = current.startsWith('--') && current.includes('=') ? current.slice(0, current.indexOf('=')) : undefined;
  const valueOf = inline !== undefined ? findOption(parsed.command, inline) : parsed.pending;
  const prefix = inline !== undefined ? `${inline}=` : '';
  const typed = current.slice(prefix.length);

  if (parsed.help) {
    candidates = visibleCommands(parsed.command).filter((c) => c.name() !== 'help').map((c) => ({ value: c.name(), description: firstLine(c.summary() || c.description()) }));
  } else if (valueOf) {
    const spec = optionSpec(valueOf);
    const given = (key: string): string | undefined => {
      const value = parsed.given.get(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
      return typeof value === 'string' ? value : undefined;
    };
    const choices = spec?.choices ?? valueOf.argChoices ?? spec?.completions?.(given);
    if (choices) candidates = choices.map((value) => ({ value }));
    else if (valueOf.long && TABLE_OPTIONS.has(valueOf.long)) candidates = await tableIds(parsed.given.get('--source'));
    else {
      const name = /[<[]([\w-]+)/.exec(valueOf.flags)?.[1] ?? '';
      files = PATH_VALUE.test(name);
      if (valueOf.long === '--source') candidates = [{ value: 'demo', description: 'the bundled demo project' }];
    }
  } else if (current.startsWith('-')) {
    candidates = visibleOptions(parsed.command)
      .filter((o) => o.long === undefined || !parsed.given.has(o.long) || optionSpec(o)?.type === 'list')
      .map(option);
  } else if (visibleCommands(parsed.command).length > 0) {
    candidates = visibleCommands(parsed.command).map((c) => ({ value: c.name(), description: firstLine(c.summary() || c.description()) }));
  } else {
    const args = parsed.command.registeredArguments;
    const argument = args[Math.min(parsed.operands.length, args.length - 1)];
    if (argument && (parsed.operands.length < args.length || argument.variadic)) {
      if (argument.argChoices) candidates = argument.argChoices.map((value) => ({ value }));
      else if (argument.name() === TABLE_ARGUMENT) candidates = await tableIds(parsed.given.get('--source'));
      else files = PATH_VALUE.test(argument.name());
    }
  }
  const matching = candidates.filter((c) => c.value.startsWith(typed)).map((c) => ({ ...c, value: prefix + c.value }));
  return { candidates: matching, files };
}

/** The `__complete` output: candidates, then the directive line. Tabs and newlines inside a description would break the lines. */
export async function completeOutput(program: Command, words: readonly string[]): Promise<string> {
  const { candidates, files } = await completions(program, words.length === 0 ? [''] : words);
  const lines = candidates.map((c) => (c.description ? `${c.value}\t${c.description.replace(/[\t\n\r]+/g, ' ')}` : c.value));
  return `${[...lines, files ? ':file' : ':none'].join('\n')}\n`;
}

const BASH = `# bash completion for takeout: source <(takeout completion bash)
_takeout() {
  local line=\${COMP_LINE:0:COMP_POINT}
  # Without COMP_LINE (a test setting COMP_WORDS by hand), the words up to the current one.
  [[ -z \${COMP_LINE+set} ]] && line="\${COMP_WORDS[*]:0:COMP_CWORD+1}"
  local -a words
  read -r -a words <<< "$line"
  [[ -z $line || $line =~ [[:space:]]$ ]] && words+=("")
  # bash splits the current word at = and : (COMP_WORDBREAKS); takeout completes the whole word, so the part
  # before bash's own current word is taken off each candidate again.
  local full=\${words[-1]} cur=\${COMP_WORDS[COMP_CWORD]}
  [[ $cur == "=" || $cur == ":" ]] && cur=""
  local head=\${full%"$cur"}
  local IFS=$'\\n' c directive
  local -a out
  out=($(takeout __complete "\${words[@]:1}" 2>/dev/null))
  directive=\${out[-1]}
  unset 'out[-1]'
  COMPREPLY=()
  for c in "\${out[@]}"; do
    c=\${c%%$'\\t'*}
    COMPREPLY+=("\${c#"$head"}")
  done
  if [[ $directive == :file ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY+=($(compgen -f -- "$cur"))
  fi
}
complete -F _takeout takeout
`;

const ZSH = `#compdef takeout
# zsh completion for takeout: source <(takeout completion zsh) after compinit, or save as _takeout in $fpath
_takeout() {
  local -a out described
  out=("\${(@f)$(takeout __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  local directive=\${out[-1]}
  out=("\${(@)out[1,-2]}")
  local c v d
  for c in "\${(@)out}"; do
    [[ -z $c ]] && continue
    v=\${c%%$'\\t'*} d=''
    [[ $c == *$'\\t'* ]] && d=\${c#*$'\\t'}
    # _describe splits value:description at the first unescaped colon.
    described+=("\${v//:/\\\\:}\${d:+:$d}")
  done
  (( \${#described} )) && _describe -t values takeout described
  [[ $directive == :file ]] && _files
  return 0
}
if [[ "\${funcstack[1]}" == "_takeout" ]]; then
  _takeout "$@"
else
  compdef _takeout takeout
fi
`;

const FISH = `# fish completion for takeout: takeout completion fish | source
function __takeout_complete
    set -l words (commandline -opc) (commandline -ct)
    set -e words[1]
    set -l out (takeout __complete $words 2>/dev/null)
    set -l directive $out[-1]
    set -e out[-1]
    printf '%s\\n' $out
    if test "$directive" = ":file"
        __fish_complete_path (commandline -ct)
    end
end
complete -c takeout -f -a '(__takeout_complete)'
`;

export function completionScript(shell: string): string {
  switch (shell) {
    case 'bash':
      return BASH;
    case 'zsh':
      return ZSH;
    case 'fish':
      return FISH;
    default:
      throw new TakeoutError('USAGE', `completion: '${shell}' is not one of ${SHELLS.join(', ')}`);
  }
}

export function completionCommand(stdout: NodeJS.WritableStream): Command {
  return new Command('completion')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .summary('print the shell completion script for bash, zsh or fish')
    .description('Print a script that completes commands, options, option values (layouts, formats, statuses…) and table ids (of a local --source) on TAB.')
    .addHelpText(
      'after',
      '\nLoad it in this shell, or install it for every new one:\n' +
        '  bash: source <(takeout completion bash)   or  takeout completion bash > ~/.local/share/bash-completion/completions/takeout\n' +
        '  zsh:  source <(takeout completion zsh)    or  takeout completion zsh > "${fpath[1]}/_takeout"   (after compinit)\n' +
        '  fish: takeout completion fish | source    or  takeout completion fish > ~/.config/fish/completions/takeout.fish',
    )
    .action((shell: string) => {
      stdout.write(completionScript(shell));
    });
}
