// A notebook cell's requests read the notebook, not the cell alone. VS Code gives every cell its own document,
// so a cell's prompt held that cell only: typing in cell 5, the model saw neither the imports nor the names of
// cells 1-4 (the other cells reached the server only as extra context chunks, which the copy model reads and
// the model's window does not). Here the notebook's code cells are one module, written as `make train` reads a
// notebook (dataset/notebooks.py): each code cell opened by `# %%`, a blank line between cells, the other cells'
// IPython-only lines (`%matplotlib inline`, `!pip install x`) as comments. The cursor's cell is kept as it is,
// so its lines are where the cursor is; `buildContext` then cuts the prompt and the suffix across cells as in
// any file. A notebook file the user has not opened is read the same way for the workspace context
// (`notebookFileText`, as dataset/notebooks.py `notebook_source` reads it). Pure: no `vscode` import, so it is
// unit-testable.

import { LineSource } from './context';

export interface NotebookCell {
  /** The cell's text. */
  text: string;
  /** A code cell in Python (markdown and other languages' cells are left out). */
  isPythonCode: boolean;
}

export const CELL_MARKER = '# %%';
export const NOTEBOOK_SUFFIX = '.ipynb';

/** IPython-only lines, as dataset/notebooks.py `_IPYTHON_LINE` reads them: magics, shell escapes and help
 *  (`??obj`, `obj?`) at the start of a line (indented, `%` and `!` would be a continued expression's operator). */
const IPYTHON_LINE = /^(?:%|!|\?\?|\?(?=\w))|^[\w.]+\?{1,2}\s*$/;

/** A cell magic on a cell's first line, and those of IPython's whose body is Python (dataset/notebooks.py
 *  `_CELL_MAGIC`, `PYTHON_CELL_MAGICS`). */
const CELL_MAGIC = /^%%(\w+)(.*)/;
const PYTHON_CELL_MAGICS = new Set(['time', 'timeit', 'capture', 'prun', 'debug', 'python', 'python3', 'pypy']);

/** Is the body of a cell starting with `firstLine` Python (not run by a cell magic as another language: `%%bash`,
 *  `%%sql`, `%%html`, `%%writefile notes.txt`)? As dataset/notebooks.py `python_body`. */
export function pythonBody(firstLine: string): boolean {
  const m = CELL_MAGIC.exec(firstLine);
  if (!m) return true;
  const args = m[2].trim().split(/\s+/).filter((a) => a !== '');
  if (m[1] === 'writefile' || m[1] === 'file') return args.length > 0 && args[args.length - 1].endsWith('.py');
  return PYTHON_CELL_MAGICS.has(m[1]);
}

/** A cell's lines with its IPython-only lines commented out, and all of them when a cell magic runs it as another
 *  language (`pythonBody`). */
export function pythonLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (!pythonBody(lines[0])) return lines.map((line) => (line.trim() ? `# ${line}` : line));
  return lines.map((line) => (IPYTHON_LINE.test(line) ? `# ${line.trimStart()}` : line));
}

export interface NotebookSource {
  /** The notebook as one module. */
  source: LineSource;
  /** The module line of the current cell's first line (its line `n` is module line `firstLine + n`). */
  firstLine: number;
}

/** The module's lines, and the module line of each cell's first kept line (undefined: the cell is left out). */
function moduleLines(cells: readonly NotebookCell[], current: number | undefined): { lines: string[]; cellStart: (number | undefined)[] } {
  const lines: string[] = [];
  const cellStart: (number | undefined)[] = [];
  cells.forEach((cell, i) => {
    cellStart.push(undefined);
    // other cells as dataset/notebooks.py writes them: stripped of blank lines around, none left empty
    const body = i === current ? cell.text : cell.text.replace(/\r\n?/g, '\n').replace(/^\n+|\n+$/g, '');
    if (i !== current && (!cell.isPythonCode || body.trim() === '')) return;
    if (lines.length) lines.push('');
    lines.push(CELL_MARKER);
    cellStart[i] = lines.length;
    lines.push(...(i === current ? cell.text.split(/\r?\n/) : pythonLines(body)));
  });
  return { lines, cellStart };
}

/** The notebook's module around cell `current` (which is kept whatever its kind, and not rewritten). */
export function notebookSource(cells: readonly NotebookCell[], current: number): NotebookSource {
  if (current < 0 || current >= cells.length) throw new RangeError(`cell ${current} outside 0..${cells.length - 1}`);
  const { lines, cellStart } = moduleLines(cells, current);
  return { source: { lineCount: lines.length, lineText: (i) => lines[i] }, firstLine: cellStart[current]! };
}

/**
 * The whole notebook as the module `make train` makes of its file (`notebookFileText`), for an open notebook sent
 * as extra context with another file's requests; `cellStart[i]`: the module line of cell i's first line (kept
 * cells' leading blank lines are stripped, so a cell's line maps as many lines late at most), undefined for a cell
 * left out.
 */
export function notebookModule(cells: readonly NotebookCell[]): { text: string; lines: string[]; cellStart: (number | undefined)[] } {
  const { lines, cellStart } = moduleLines(cells, undefined);
  return { text: lines.length ? `${lines.join('\n')}\n` : '', lines, cellStart };
}

/** A `.ipynb` file that is not a notebook this module can read (not JSON, no cells, another language's kernel). */
export class NotebookError extends Error {}

/** The language the notebook's kernel runs, lower case, as its metadata names it (dataset/notebooks.py
 *  `notebook_language`); undefined when it names none (then Python, Jupyter's default kernel). */
export function notebookLanguage(nb: { metadata?: unknown }): string | undefined {
  const meta = nb.metadata;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const m = meta as Record<string, unknown>;
  const field = (holder: unknown, key: string) => {
    const v = typeof holder === 'object' && holder !== null ? (holder as Record<string, unknown>)[key] : undefined;
    return typeof v === 'string' && v.trim() !== '' ? v.trim().toLowerCase() : undefined;
  };
  return field(m.kernelspec, 'language') ?? field(m.language_info, 'name') ?? field(m, 'language');
}

/** A cell's source: a string, or a list of lines (nbformat's two spellings); anything else is no text. */
const sourceText = (source: unknown): string =>
  Array.isArray(source) ? source.filter((s) => typeof s === 'string').join('') : typeof source === 'string' ? source : '';

/**
 * The module of a notebook file's code cells (dataset/notebooks.py `notebook_source`, so a notebook nobody opened
 * goes to the server as the text `make train` learned): each code cell opened by `# %%`, a blank line between
 * cells, IPython-only lines commented out; markdown, raw cells, outputs and metadata left out; nbformat 4
 * (`cells[].source`) and 3 (`worksheets[].cells[].input`). '' when it has no code. NotebookError when `raw` is
 * not a notebook, or one of another language's kernel (R, Julia: not sent, as `make train` skips it).
 */
export function notebookFileText(raw: string): string {
  let nb: unknown;
  try {
    nb = JSON.parse(raw);
  } catch (e) {
    throw new NotebookError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof nb !== 'object' || nb === null || Array.isArray(nb)) throw new NotebookError('not a notebook: the JSON is not an object');
  const o = nb as { cells?: unknown; worksheets?: unknown };
  let cells: unknown[];
  let key: 'source' | 'input';
  if (Array.isArray(o.cells)) {
    [cells, key] = [o.cells, 'source'];
  } else if (Array.isArray(o.worksheets)) {
    cells = o.worksheets.flatMap((ws) =>
      (typeof ws === 'object' && ws !== null && Array.isArray((ws as { cells?: unknown }).cells) ? (ws as { cells: unknown[] }).cells : []));
    key = 'input';
  } else {
    throw new NotebookError('not a notebook: no cells');
  }
  const language = notebookLanguage(o as { metadata?: unknown });
  if (language !== undefined && !/^(python|ipython)/.test(language)) throw new NotebookError(`its kernel runs '${language}', not Python`);
  // the module an open notebook makes of the same cells (notebookModule): code cells kept, the rest left out
  return notebookModule(cells.map((cell) => {
    const code = typeof cell === 'object' && cell !== null && (cell as { cell_type?: unknown }).cell_type === 'code';
    return { text: code ? sourceText((cell as Record<string, unknown>)[key]) : '', isPythonCode: code };
  })).text;
}
