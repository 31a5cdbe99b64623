import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { buildContext, DEFAULT_LIMITS, LineSource } from '../context';
import { CELL_MARKER, NotebookCell, NotebookError, notebookFileText, notebookModule, notebookSource, pythonLines } from '../notebook';

// The repository's fixture notebook and the module `make train` makes of it (dataset/notebooks.py; the same
// pair is checked in tests/test_notebooks.py): the editor must show the model a notebook as it was trained on it.
const FIXTURES = path.join(__dirname, '..', '..', '..', 'tests', 'fixtures', 'notebooks');
const notebook = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'sales.ipynb'), 'utf8'));
const trainedOn = fs.readFileSync(path.join(FIXTURES, 'sales.py'), 'utf8');
const cells: NotebookCell[] = notebook.cells.map((c: { cell_type: string; source: string[] }) =>
  ({ text: c.source.join(''), isPythonCode: c.cell_type === 'code' }));

const all = (source: LineSource) => Array.from({ length: source.lineCount }, (_, i) => source.lineText(i)).join('\n');

describe('notebook', () => {
  it('reads a notebook as the module make train learned from it', () => {
    const last = cells.length - 1; // a cell with no IPython line: it reads the same kept as it is
    const { source, firstLine } = notebookSource(cells, last);
    assert.strictEqual(all(source) + '\n', trainedOn);
    assert.strictEqual(source.lineText(firstLine - 1), CELL_MARKER);
    assert.strictEqual(source.lineText(firstLine), 'by_quarter = quarterly(sales)');
  });

  it("gives a cell's prompt the cells above and its suffix the cells below", () => {
    const current = cells.findIndex((c) => c.text.startsWith('def quarterly'));
    const { source, firstLine } = notebookSource(cells, current);
    // the cursor after `frame.` on the cell's last line
    const line = cells[current].text.split('\n').length - 1;
    const character = '    return frame.'.length;
    const c = buildContext(source, firstLine + line, character, DEFAULT_LIMITS);
    assert.ok(c.prompt.startsWith('# %%\n# %matplotlib inline\nimport pandas as pd\n'), c.prompt);
    assert.ok(c.prompt.includes('sales = pd.read_csv("sales.csv")\n# sales.head?\n\n# %%\ndef quarterly(frame):\n'), c.prompt);
    assert.ok(c.prompt.endsWith('\n    return frame.'));
    assert.strictEqual(c.linePrefix, '    return frame.');
    assert.strictEqual(c.suffix, 'groupby("quarter").amount.sum()\n\n# %%\n# %%timeit\nquarterly(sales)\n\n# %%\n# %%bash\n# ls data\n\n# echo done\n\n'
      + '# %%\n# %%writefile helpers.py\ndef to_cents(amount):\n    return round(amount * 100)\n\n# %%\nby_quarter = quarterly(sales)\nby_quarter.plot()');
    assert.strictEqual(c.nextNonBlankLine, CELL_MARKER);
    // markdown and raw cells, and the empty code cell, are not in it
    assert.ok(!all(source).includes('Quarterly sales') && !all(source).includes('not code'));
  });

  it("keeps the cursor's cell as it is, blank lines and magics included, so its positions hold", () => {
    const current = 1; // `%matplotlib inline` ...
    const edited = [...cells];
    edited[current] = { text: '\n%matplotlib inline\nimport pandas as pd\n', isPythonCode: true };
    const { source, firstLine } = notebookSource(edited, current);
    assert.strictEqual(source.lineText(firstLine), '');
    assert.strictEqual(source.lineText(firstLine + 1), '%matplotlib inline');
    assert.strictEqual(firstLine, 1); // the first code cell: only its marker above
    // a markdown cell being edited (the provider asks only for Python, but the module must not lose it)
    const md = notebookSource(cells, 0);
    assert.strictEqual(md.source.lineText(md.firstLine), '# Quarterly sales');
    assert.throws(() => notebookSource(cells, cells.length), RangeError);
  });

  it('reads a notebook file nobody opened as the module make train learned from it', () => {
    const raw = fs.readFileSync(path.join(FIXTURES, 'sales.ipynb'), 'utf8');
    assert.strictEqual(notebookFileText(raw), trainedOn);
    // outputs (a plot as base64) and metadata are not code
    const withOutputs = JSON.parse(raw);
    withOutputs.cells[1].outputs = [{ output_type: 'display_data', data: { 'image/png': 'iVBORw0KGgo'.repeat(50) } }];
    assert.strictEqual(notebookFileText(JSON.stringify(withOutputs)), trainedOn);
  });

  it('makes an open notebook the module its file makes, and maps a cell\'s lines into it', () => {
    const m = notebookModule(cells);
    assert.strictEqual(m.text, trainedOn);
    assert.strictEqual(m.lines.join('\n') + '\n', trainedOn);
    const quarterly = cells.findIndex((c) => c.text.startsWith('def quarterly'));
    assert.strictEqual(m.lines[m.cellStart[quarterly]! + 1], '    total = (frame.amount.sum()');
    assert.strictEqual(m.cellStart[0], undefined); // the markdown cell is left out
    assert.strictEqual(m.lines[m.cellStart[quarterly]! - 1], CELL_MARKER);
    assert.deepStrictEqual(notebookModule([{ text: '# prose', isPythonCode: false }]), { text: '', lines: [], cellStart: [undefined] });
  });

  it('reads nbformat 3 and sources given as one string, as dataset/notebooks.py does', () => {
    const v3 = { nbformat: 3, worksheets: [{ cells: [
      { cell_type: 'markdown', source: ['prose\n'] },
      { cell_type: 'code', input: ['import math\n'], outputs: [] }] }] };
    assert.strictEqual(notebookFileText(JSON.stringify(v3)), '# %%\nimport math\n');
    assert.strictEqual(notebookFileText('{"cells": [{"cell_type": "code", "source": "x = 1"}]}'), '# %%\nx = 1\n');
    assert.strictEqual(notebookFileText('{"cells": [{"cell_type": "code", "source": "\\r\\n\\r\\nx = 1\\r\\n"}, '
      + '{"cell_type": "code", "source": ["  \\n"]}]}'), '# %%\nx = 1\n');
    assert.strictEqual(notebookFileText('{"cells": [{"cell_type": "markdown", "source": "only prose"}]}'), '');
  });

  it("refuses a notebook of another language's kernel, as dataset/notebooks.py does", () => {
    const of = (metadata: object) => JSON.stringify({ nbformat: 4, metadata, cells: [{ cell_type: 'code', source: ["df <- read.csv('x')\n"] }] });
    assert.throws(() => notebookFileText(of({ kernelspec: { name: 'ir', language: 'R' } })), /'r', not Python/);
    assert.throws(() => notebookFileText(of({ language_info: { name: 'julia' } })), NotebookError);
    for (const metadata of [{ kernelspec: { language: 'python' } }, { language_info: { name: 'Python' } }, {},
      { kernelspec: { name: 'python3' } }, { language: 'python' }]) {
      assert.strictEqual(notebookFileText(of(metadata)), "# %%\ndf <- read.csv('x')\n");
    }
  });

  it('refuses what is not a notebook by name', () => {
    for (const raw of ['{not json', '[1, 2]', '{"metadata": {}}', 'null']) {
      assert.throws(() => notebookFileText(raw), NotebookError, raw);
    }
  });

  it('comments out IPython-only lines as dataset/notebooks.py does, and nothing that is Python', () => {
    assert.deepStrictEqual(
      pythonLines('%time f()\n!ls -l\n??os\nos.path?\nos.sep??\nx = (a\n   % b)\ny = "why?"\n  !not\n    Is this right?'),
      ['# %time f()', '# !ls -l', '# ??os', '# os.path?', '# os.sep??', 'x = (a', '   % b)', 'y = "why?"', '  !not',
        '    Is this right?']);
  });

  it('comments out a whole cell that a cell magic runs as another language, as dataset/notebooks.py does', () => {
    // the same cases as tests/test_notebooks.py test_a_cell_magic_of_another_language_is_commented_out_whole
    assert.deepStrictEqual(pythonLines('%%bash\nls data\n\n  echo done'), ['# %%bash', '# ls data', '', '#   echo done']);
    assert.deepStrictEqual(pythonLines('%%sql sqlite://\nSELECT 1'), ['# %%sql sqlite://', '# SELECT 1']);
    assert.deepStrictEqual(pythonLines('%%writefile notes.txt\nhello'), ['# %%writefile notes.txt', '# hello']);
    assert.deepStrictEqual(pythonLines('%%writefile -a helpers.py\nx = 1\n!ls'), ['# %%writefile -a helpers.py', 'x = 1', '# !ls']);
    assert.deepStrictEqual(pythonLines('%%capture out\nx = 1'), ['# %%capture out', 'x = 1']);
    assert.deepStrictEqual(pythonLines('x = 1\n%%bash'), ['x = 1', '# %%bash']); // only a first line is a cell magic
  });
});
