// What the server sees: the text before the cursor (a window of lines) and the rest of the cursor's line.
// Pure: no `vscode` import, so it is unit-testable.

/** The few document operations context building needs (a vscode.TextDocument satisfies it). */
export interface LineSource {
  readonly lineCount: number;
  lineText(line: number): string;
}

export interface CompletionContext {
  /** `contextLines` whole lines before the cursor's line, then the cursor's line up to the cursor. */
  prompt: string;
  /** The cursor's line after the cursor. */
  suffix: string;
  /** The cursor's line before the cursor. */
  linePrefix: string;
  /** The next line of the document ('' at the end), for the repeat-of-next-line filter. */
  nextLine: string;
}

export function buildContext(doc: LineSource, line: number, character: number, contextLines: number): CompletionContext {
  if (line < 0 || line >= doc.lineCount) throw new RangeError(`line ${line} outside 0..${doc.lineCount - 1}`);
  const text = doc.lineText(line);
  const ch = Math.max(0, Math.min(character, text.length));
  const linePrefix = text.slice(0, ch);
  const first = Math.max(0, line - Math.max(0, Math.floor(contextLines)));
  const before: string[] = [];
  for (let i = first; i < line; i++) before.push(doc.lineText(i));
  before.push(linePrefix);
  return {
    prompt: before.join('\n'),
    suffix: text.slice(ch),
    linePrefix,
    nextLine: line + 1 < doc.lineCount ? doc.lineText(line + 1) : '',
  };
}

/** A LineSource over a plain string (tests, and anything that is not a vscode document). */
export function linesOf(text: string): LineSource {
  const lines = text.split(/\r?\n/);
  return { lineCount: lines.length, lineText: (i) => lines[i] };
}
