// What the server sees: the text before the cursor (up to a character budget, cut at a line start) and the
// rest of the cursor's line. Pure: no `vscode` import, so it is unit-testable.

/** The few document operations context building needs (a vscode.TextDocument satisfies it via lineAt). */
export interface LineSource {
  readonly lineCount: number;
  lineText(line: number): string;
}

export interface CompletionContext {
  /** The text before the cursor: whole lines (at most `promptMaxChars` characters), then the cursor's line up
   *  to the cursor. Only a cursor line prefix longer than the budget is cut inside a line (its last characters). */
  prompt: string;
  /** The cursor's line after the cursor. */
  suffix: string;
  /** The cursor's line before the cursor. */
  linePrefix: string;
  /** The next line of the document ('' at the end), for the repeat-of-next-line filter. */
  nextLine: string;
}

export function buildContext(doc: LineSource, line: number, character: number, promptMaxChars: number): CompletionContext {
  if (line < 0 || line >= doc.lineCount) throw new RangeError(`line ${line} outside 0..${doc.lineCount - 1}`);
  const max = Math.max(0, Math.floor(promptMaxChars));
  const text = doc.lineText(line);
  const ch = Math.max(0, Math.min(character, text.length));
  const linePrefix = text.slice(0, ch);
  const suffix = text.slice(ch);
  const nextLine = line + 1 < doc.lineCount ? doc.lineText(line + 1) : '';
  if (linePrefix.length >= max) return { prompt: max > 0 ? linePrefix.slice(linePrefix.length - max) : '', suffix, linePrefix, nextLine };
  // walk back over whole lines while they fit: each costs its length + 1 (the line break after it)
  const before: string[] = [linePrefix];
  let used = linePrefix.length;
  for (let i = line - 1; i >= 0; i--) {
    const t = doc.lineText(i);
    if (used + t.length + 1 > max) break;
    before.push(t);
    used += t.length + 1;
  }
  return { prompt: before.reverse().join('\n'), suffix, linePrefix, nextLine };
}

/** A LineSource over a plain string (tests, and anything that is not a vscode document). */
export function linesOf(text: string): LineSource {
  const lines = text.split(/\r?\n/);
  return { lineCount: lines.length, lineText: (i) => lines[i] };
}
