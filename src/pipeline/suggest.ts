/**
 * Did-you-mean: the known names closest to one that matched nothing (a TAKEOUT_* variable, a config key,
 * a table id, an --include pattern). Edit distance with adjacent transpositions, and for globs a distance in
 * which `*` and `?` match at no cost.
 */

/** Levenshtein distance with adjacent transpositions (optimal string alignment): `SORCE`/`SOURCE` is 1, `SOUCRE`/`SOURCE` 1. */
export function editDistance(a: string, b: string): number {
  return globDistance(a, b, false);
}

/** A pattern's brace alternatives (`in.c-{main,crm}.*` → two patterns), as many as picomatch would try; at most this many. */
const MAX_BRACE_EXPANSIONS = 64;

function expandBraces(pattern: string): string[] {
  const out: string[] = [];
  const queue = [pattern];
  while (queue.length > 0 && out.length < MAX_BRACE_EXPANSIONS) {
    const p = queue.shift()!;
    const match = /\{([^{}]*)\}/.exec(p);
    if (!match) {
      out.push(p);
      continue;
    }
    for (const alternative of match[1]!.split(',')) queue.push(p.slice(0, match.index) + alternative + p.slice(match.index + match[0].length));
  }
  return out;
}

/**
 * Edits that turn `text` into something `pattern` matches; with `glob`, `*` matches any run and `?` any one
 * character at no cost (the distance from a pattern to the ids it nearly matches).
 */
function globDistance(pattern: string, text: string, glob: boolean): number {
  const rows: number[][] = Array.from({ length: pattern.length + 1 }, () => new Array<number>(text.length + 1).fill(0));
  for (let j = 0; j <= text.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= pattern.length; i++) {
    const p = pattern[i - 1]!;
    const star = glob && p === '*';
    rows[i]![0] = star ? rows[i - 1]![0]! : rows[i - 1]![0]! + 1;
    for (let j = 1; j <= text.length; j++) {
      if (star) {
        // Matches nothing, or one more character of the text.
        rows[i]![j] = Math.min(rows[i - 1]![j]!, rows[i]![j - 1]!);
        continue;
      }
      const cost = p === text[j - 1] || (glob && p === '?') ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && p === text[j - 2] && pattern[i - 2] === text[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[pattern.length]![text.length]!;
}

/** A name is a typo of another only if most of it survives: at most this many edits, and a third of its length. */
const MAX_SUGGESTION_EDITS = 3;

export function suggestionBound(name: string): number {
  return Math.min(MAX_SUGGESTION_EDITS, Math.max(1, Math.floor(name.length / 3)));
}

/**
 * The known names nearest to `name` (a glob when `glob`), nearest first, at most `limit`, only those within
 * suggestionBound of it (the literal characters of a glob count for its length).
 */
export function nearest(name: string, known: Iterable<string>, options: { limit?: number; glob?: boolean } = {}): string[] {
  const glob = options.glob === true;
  const patterns = glob ? expandBraces(name) : [name];
  const bound = suggestionBound(glob ? name.replace(/[*?{},]/g, '') : name);
  const scored: { name: string; distance: number }[] = [];
  for (const candidate of new Set(known)) {
    const distance = Math.min(...patterns.map((p) => globDistance(p, candidate, glob)));
    if (distance <= bound) scored.push({ name: candidate, distance });
  }
  scored.sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name));
  return scored.slice(0, options.limit ?? 3).map((s) => s.name);
}

/** The closest known name (TAKEOUT_* variables compared without their shared prefix), when one is close enough to be the intended one (compared without the shared prefix). */
export function closest(name: string, known: Iterable<string>): string | undefined {
  const strip = (s: string): string => s.replace(/^TAKEOUT_/i, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(strip(name), strip(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= suggestionBound(strip(name)) ? best : undefined;
}
