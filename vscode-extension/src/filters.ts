// Post-processing of server suggestions: a chain of small named filters, applied in order.
// A filter returns the (possibly changed) suggestion, or null to drop it. Pure: no `vscode` import.

export interface Suggestion {
  /** Text inserted at the cursor. */
  text: string;
  /** How many characters after the cursor the text replaces (closing brackets/quotes it already ends with). */
  replaceLength: number;
  prob: number;
}

export interface FilterContext {
  linePrefix: string;
  suffix: string;
  nextLine: string;
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

/** Trailing spaces/newlines are never worth a keystroke and leave stray whitespace when accepted. */
export const trimTrailingWhitespace: Filter = {
  name: 'trimTrailingWhitespace',
  apply(s) {
    return { ...s, text: s.text.replace(/\s+$/u, '') };
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
    if (!isOnlyClosers(ctx.suffix)) return { ...s, replaceLength: 0 };
    const suffix = ctx.suffix.trimEnd();
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

/** Drop a suggestion that just re-types the next line (the code is already there). */
export const dropRepeatOfNextLine: Filter = {
  name: 'dropRepeatOfNextLine',
  apply(s, ctx) {
    const next = ctx.nextLine.trim();
    if (!next) return s;
    const firstLine = s.text.split('\n').find((l) => l.trim() !== '') ?? '';
    const completedLine = (ctx.linePrefix + s.text.split('\n')[0]).trim();
    if (firstLine.trim() === next || completedLine === next) return null;
    return s;
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
  dropRepeatOfNextLine,
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
