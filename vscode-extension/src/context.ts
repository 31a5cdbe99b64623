// What the server sees: the text before the cursor (up to a character budget, cut at a line start) and the
// text after it: the rest of the cursor's line and the next lines (up to a line count and a character budget,
// cut at a line end), so that a fill-in-the-middle model can condition on the code that follows.
// Only the lines needed are read (never the whole document): the cost does not grow with the document.
// Pure: no `vscode` import, so it is unit-testable.

/** The few document operations context building needs (a vscode.TextDocument satisfies it via lineAt). */
export interface LineSource {
  readonly lineCount: number;
  lineText(line: number): string;
}

export interface ContextLimits {
  /** Most characters of text before the cursor (`prompt`). */
  promptMaxChars: number;
  /** Most lines after the cursor's line in `suffix`; 0 sends only the rest of the cursor's line. */
  suffixLines: number;
  /** Most characters of `suffix`, the rest of the cursor's line included. */
  suffixMaxChars: number;
}

export interface CompletionContext {
  /** The text before the cursor: whole lines (at most `promptMaxChars` characters), then the cursor's line up
   *  to the cursor. Only a cursor line prefix longer than the budget is cut inside a line (its last characters). */
  prompt: string;
  /** The text after the cursor sent to the server: the rest of the cursor's line, then up to `suffixLines`
   *  whole lines joined with '\n', at most `suffixMaxChars` characters (only a rest of the line longer than
   *  that is cut inside the line, keeping its start). */
  suffix: string;
  /** The cursor's line before the cursor. */
  linePrefix: string;
  /** The cursor's line after the cursor (whole, whatever `suffixMaxChars` is: the filters need it). */
  lineSuffix: string;
  /** The first non-blank line after the cursor's line, '' when there is none within `NEXT_LINE_SCAN` lines
   *  (the filters never let a suggestion repeat it). */
  nextNonBlankLine: string;
}

/** The settings' defaults. The suffix is the rest of the file up to what the server keeps (16K characters):
 *  its first lines feed the fill-in-the-middle prompt and all of it the copy model's memory, so names used
 *  further down are completed too (retyping regions of validation files: 20 lines 57.6 %, 64 59.6 %, 200
 *  60.5 %, the rest of the file up to 16K characters 60.5 %, no suffix 54.3 %; docs/evaluation.md). */
export const DEFAULT_LIMITS: ContextLimits = { promptMaxChars: 32768, suffixLines: 1000, suffixMaxChars: 16384 };

/** How many lines after the cursor's line are searched for the next non-blank line. */
export const NEXT_LINE_SCAN = 20;

export function buildContext(doc: LineSource, line: number, character: number, limits: ContextLimits): CompletionContext {
  if (line < 0 || line >= doc.lineCount) throw new RangeError(`line ${line} outside 0..${doc.lineCount - 1}`);
  const text = doc.lineText(line);
  const ch = Math.max(0, Math.min(character, text.length));
  const linePrefix = text.slice(0, ch);
  const lineSuffix = text.slice(ch);
  const { suffix, nextNonBlankLine } = textAfter(doc, line, lineSuffix, limits);
  return { prompt: textBefore(doc, line, linePrefix, limits.promptMaxChars), suffix, linePrefix, lineSuffix, nextNonBlankLine };
}

/** The prompt: whole lines walked back from the cursor while they fit, then the cursor's line up to the cursor. */
function textBefore(doc: LineSource, line: number, linePrefix: string, promptMaxChars: number): string {
  const max = Math.max(0, Math.floor(promptMaxChars));
  if (linePrefix.length >= max) return max > 0 ? linePrefix.slice(linePrefix.length - max) : '';
  // each line costs its length + 1 (the line break after it)
  const before: string[] = [linePrefix];
  let used = linePrefix.length;
  for (let i = line - 1; i >= 0; i--) {
    const t = doc.lineText(i);
    if (used + t.length + 1 > max) break;
    before.push(t);
    used += t.length + 1;
  }
  return before.reverse().join('\n');
}

/** The suffix and the next non-blank line, in one walk forward over at most max(suffixLines, NEXT_LINE_SCAN)
 *  lines; the walk stops as soon as both are known. */
function textAfter(doc: LineSource, line: number, lineSuffix: string, limits: ContextLimits): { suffix: string; nextNonBlankLine: string } {
  const maxChars = Math.max(0, Math.floor(limits.suffixMaxChars));
  const maxLines = Math.max(0, Math.floor(limits.suffixLines));
  const parts = [lineSuffix.length > maxChars ? lineSuffix.slice(0, maxChars) : lineSuffix];
  let used = parts[0].length;
  // lines go into the suffix while they fit; each costs its length + 1 (the line break before it)
  let filling = maxLines > 0 && lineSuffix.length <= maxChars;
  let nextNonBlankLine = '';
  const last = Math.min(doc.lineCount - 1, line + Math.max(maxLines, NEXT_LINE_SCAN));
  for (let i = line + 1; i <= last && (filling || (nextNonBlankLine === '' && i - line <= NEXT_LINE_SCAN)); i++) {
    const t = doc.lineText(i);
    if (nextNonBlankLine === '' && i - line <= NEXT_LINE_SCAN && t.trim() !== '') nextNonBlankLine = t;
    if (filling) {
      if (i - line > maxLines || used + 1 + t.length > maxChars) filling = false;
      else {
        parts.push(t);
        used += 1 + t.length;
      }
    }
  }
  return { suffix: parts.join('\n'), nextNonBlankLine };
}

/** A LineSource over a plain string (tests, and anything that is not a vscode document). */
export function linesOf(text: string): LineSource {
  const lines = text.split(/\r?\n/);
  return { lineCount: lines.length, lineText: (i) => lines[i] };
}
