// Post-processing of server suggestions: a chain of small named filters, applied in order.
// A filter returns the (possibly changed) suggestion, or null to drop it. Pure: no `vscode` import.

export interface Suggestion {
  /** Text inserted at the cursor. */
  text: string;
  /** How many characters after the cursor the text replaces (closing brackets/quotes it already ends with). */
  replaceLength: number;
  prob: number;
  /** The server answer it comes from (its `id`) and its place in that answer's `prediction`: what a
   *  suggestion event names (events.ts). Absent for suggestions built here. */
  id?: string;
  index?: number;
}

export interface FilterContext {
  /** The cursor's line before the cursor. */
  linePrefix: string;
  /** The cursor's line after the cursor (not the request's suffix, which goes on over the next lines). */
  lineSuffix: string;
  /** The first non-blank line after the cursor's line ('' when none is near). */
  nextNonBlankLine: string;
  maxLength: number;
}

export interface Filter {
  name: string;
  apply(s: Suggestion, ctx: FilterContext): Suggestion | null;
}

const OPENERS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
const CLOSERS = new Set([')', ']', '}', '"', "'", '`']);

/** True when `s` is non-empty and only closing brackets, quotes, and whitespace (e.g. `")`, `])`). */
export function isOnlyClosers(s: string): boolean {
  const t = s.trim();
  return t.length > 0 && [...t].every((c) => CLOSERS.has(c) || c === ' ' || c === ':' || c === ',');
}

/** How many more `c` closers than matching openers `text` has (for quotes: 1 when the count is odd). */
function excessClosers(text: string, c: string): number {
  const count = (ch: string) => [...text].filter((x) => x === ch).length;
  if (c in OPENERS) return count(c) - count(OPENERS[c]);
  return count(c) % 2;
}

/** Cut at `maxLength` characters (at the last line break within the limit when there is one). */
export const truncateToMaxLength: Filter = {
  name: 'truncateToMaxLength',
  apply(s, ctx) {
    if (s.text.length <= ctx.maxLength) return s;
    let text = s.text.slice(0, ctx.maxLength);
    const nl = text.lastIndexOf('\n');
    if (nl > 0) text = text.slice(0, nl);
    return { ...s, text };
  },
};

/**
 * Trailing whitespace: a line break at the end (with the blanks around it) is cut: it would show as an empty ghost
 * line, and Enter gives it. Blanks that end the suggestion's last line are kept where the cursor is at the end of its
 * line: the space after `return`, `import` or `=` is the next key, and accepting it saves that key (typing the 40
 * standard files with an editor that indents: 56.0 % of keystrokes saved, against 52.9 % when every trailing blank was
 * cut, as until 2026-12-07; docs/extension.md), and so is a suggestion of blanks only on its line (indentation: Tab
 * inserts it; dropping it measured 0.6 points less). Where code follows the cursor on its line they are cut: `f(x |)`.
 */
export const trimTrailingWhitespace: Filter = {
  name: 'trimTrailingWhitespace',
  apply(s, ctx) {
    const text = ctx.lineSuffix.trim() === '' ? s.text.replace(/\s*\n\s*$/u, '') : s.text.replace(/\s+$/u, '');
    return { ...s, text };
  },
};

/**
 * Never duplicate closing brackets/quotes after the cursor: when the rest of the line is only closers
 * (`foo(|)` with `)` auto-inserted) and the suggestion ends with some of them *unmatched inside the
 * suggestion*, replace those characters (via the item's range) instead of inserting a second copy.
 * `print(|)` + `"hi")` -> replace the `)`;  `f(|)` + `g(x)` -> the `)` closes `g(`, keep the line's `)`.
 */
export const replaceClosingSuffix: Filter = {
  name: 'replaceClosingSuffix',
  apply(s, ctx) {
    if (!isOnlyClosers(ctx.lineSuffix)) return { ...s, replaceLength: 0 };
    const suffix = ctx.lineSuffix.trimEnd();
    for (let k = suffix.length; k > 0; k--) {
      const tail = suffix.slice(0, k);
      if (!s.text.endsWith(tail)) continue;
      // every closer in the replaced tail must be one the suggestion itself leaves unmatched
      const needed = new Map<string, number>();
      for (const c of tail) if (CLOSERS.has(c)) needed.set(c, (needed.get(c) ?? 0) + 1);
      const ok = [...needed].every(([c, n]) => (c in OPENERS ? excessClosers(s.text, c) >= n : excessClosers(s.text, c) === n % 2));
      if (ok) return { ...s, replaceLength: k };
    }
    return { ...s, replaceLength: 0 };
  },
};

/**
 * Completions never repeat the line that follows: that code is already there (a left-to-right model often
 * re-types it, and a fill-in-the-middle one may run on into it). With `next` the first non-blank line after
 * the cursor's line, compared with surrounding whitespace trimmed:
 * - a multi-line suggestion is cut before its first later line that reads `next` (so a run of lines that
 *   duplicates the following lines goes with it), and dropped when nothing but whitespace is left;
 * - a suggestion that makes the cursor's line read `next` is dropped (`    return |` + `x` when the next
 *   line is `return x`; a single-line suggestion's line includes the rest of the line it leaves in place).
 * The server's rule (`evaluate/fim.py`, `trim_to_suffix`), so an answer it already cut passes unchanged.
 * A cut changes the suggestion's end, so which closers after the cursor it replaces is decided again.
 */
export const cutRepeatOfNextLine: Filter = {
  name: 'cutRepeatOfNextLine',
  apply(s, ctx) {
    const next = ctx.nextNonBlankLine.trim();
    if (!next) return s;
    const lines = s.text.split('\n');
    const repeat = lines.findIndex((l, i) => i > 0 && l.trim() === next);
    let out = s;
    if (repeat > 0) {
      const text = lines.slice(0, repeat).join('\n').trimEnd();
      if (!text.trim()) return null;
      out = replaceClosingSuffix.apply({ ...s, text }, ctx)!;
    }
    const first = out.text.split('\n')[0];
    const singleLine = first.length === out.text.length;
    const completedLine = ctx.linePrefix + first + (singleLine ? ctx.lineSuffix.slice(out.replaceLength) : '');
    if (first.trim() !== '' && completedLine.trim() === next) return null;
    return out;
  },
};

/** Nothing to show. */
export const dropEmpty: Filter = {
  name: 'dropEmpty',
  apply(s) {
    return s.text.length === 0 ? null : s;
  },
};

export const DEFAULT_FILTERS: readonly Filter[] = [
  truncateToMaxLength,
  trimTrailingWhitespace,
  dropEmpty,
  replaceClosingSuffix,
  cutRepeatOfNextLine,
];

/** Run every suggestion through the chain; drop nulls and duplicates, keep the server's order. */
export function applyFilters(suggestions: Suggestion[], ctx: FilterContext, filters: readonly Filter[] = DEFAULT_FILTERS): Suggestion[] {
  const out: Suggestion[] = [];
  const seen = new Set<string>();
  for (const original of suggestions) {
    let s: Suggestion | null = original;
    for (const f of filters) {
      s = f.apply(s, ctx);
      if (s === null) break;
    }
    if (s === null) continue;
    const key = `${s.replaceLength}\u0000${s.text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(s);
  }
  return out;
}
