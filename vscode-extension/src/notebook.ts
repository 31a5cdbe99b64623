// A notebook cell's requests read the notebook, not the cell alone. VS Code gives every cell its own document,
// so a cell's prompt held that cell only: typing in cell 5, the model saw neither the imports nor the names of
// cells 1-4 (the other cells reached the server only as extra context chunks, which the copy model reads and
// the model's window does not). Here the notebook's code cells are one module, written as `make train` reads a
// notebook (dataset/notebooks.py): each code cell opened by `# %%`, a blank line between cells, the other cells'
// IPython-only lines (`%matplotlib inline`, `!pip install x`) as comments. The cursor's cell is kept as it is,
// so its lines are where the cursor is; `buildContext` then cuts the prompt and the suffix across cells as in
// any file. Pure: no `vscode` import, so it is unit-testable.

import { LineSource } from './context';

export interface NotebookCell {
  /** The cell's text. */
  text: string;
  /** A code cell in Python (markdown and other languages' cells are left out). */
  isPythonCode: boolean;
}

export const CELL_MARKER = '# %%';

/** IPython-only lines, as dataset/notebooks.py `_IPYTHON_LINE` reads them: magics, shell escapes and help
 *  (`??obj`, `obj?`) at the start of a line (indented, `%` and `!` would be a continued expression's operator). */
const IPYTHON_LINE = /^(?:%|!|\?\?|\?(?=\w))|^[\w.]+\?{1,2}\s*$/;

/** A cell's lines with its IPython-only lines commented out. */
export function pythonLines(text: string): string[] {
  return text.split(/\r?\n/).map((line) => (IPYTHON_LINE.test(line) ? `# ${line.trimStart()}` : line));
}

export interface NotebookSource {
  /** The notebook as one module. */
  source: LineSource;
  /** The module line of the current cell's first line (its line `n` is module line `firstLine + n`). */
  firstLine: number;
}

/** The notebook's module around cell `current` (which is kept whatever its kind, and not rewritten). */
export function notebookSource(cells: readonly NotebookCell[], current: number): NotebookSource {
  if (current < 0 || current >= cells.length) throw new RangeError(`cell ${current} outside 0..${cells.length - 1}`);
  const lines: string[] = [];
  let firstLine = 0;
  cells.forEach((cell, i) => {
    // other cells as dataset/notebooks.py writes them: stripped of blank lines around, none left empty
    const body = i === current ? cell.text : cell.text.replace(/\r\n?/g, '\n').replace(/^\n+|\n+$/g, '');
    if (i !== current && (!cell.isPythonCode || body.trim() === '')) return;
    if (lines.length) lines.push('');
    lines.push(CELL_MARKER);
    if (i === current) {
      firstLine = lines.length;
      lines.push(...cell.text.split(/\r?\n/));
    } else {
      lines.push(...pythonLines(body));
    }
  });
  return { source: { lineCount: lines.length, lineText: (i) => lines[i] }, firstLine };
}
