import * as assert from 'assert';
import { DocumentLike, ExtraContext, NO_EXTRA, windowAround, withLf } from '../extraContext';
import { linesOf } from '../context';

/** A document whose text the test can change (like a vscode.TextDocument). */
class Doc implements DocumentLike {
  readonly key: string;
  reads = 0; // getText/lineText calls: what a build costs
  private lines: string[];
  constructor(readonly filename: string, text: string) {
    this.key = `file:///ws/${filename}`;
    this.lines = text.split('\n');
  }
  get lineCount() { return this.lines.length; }
  lineText(i: number) { this.reads++; return this.lines[i]; }
  getText() { this.reads++; return this.lines.join('\n'); }
  charLength() { return this.lines.join('\n').length; }
  /** Replace line `i` (an edit); returns the line for ExtraContext.changed. */
  edit(i: number, text: string) { this.lines[i] = text; return i; }
}

/** A small Python file with a distinctive name in it. */
const py = (name: string, n = 5) => new Doc(`${name}.py`, Array.from({ length: n }, (_, i) => `def ${name}_${i}(x):\n    return x + ${i}`).join('\n\n'));
const names = (e: { chunks: readonly { filename: string }[] }) => e.chunks.map((c) => c.filename);

describe('extra context', () => {
  it("leaves out the other cells of the cell's own notebook (they are its prompt and suffix), not other notebooks'", () => {
    const x = new ExtraContext();
    const cell = (nb: string, id: string, name: string) => {
      const d = py(name);
      (d as { key: string }).key = `vscode-notebook-cell:/ws/${nb}.ipynb#${id}`;
      return d;
    };
    const [a1, a2, b1, f] = [cell('a', 'W0', 'a_first'), cell('a', 'W1', 'a_second'), cell('b', 'W0', 'b_first'), py('lib')];
    for (const d of [a1, a2, b1, f]) x.opened(d);
    assert.deepStrictEqual(names(x.chunksFor(a2.key)).sort(), ['b_first.py', 'lib.py']);
    assert.deepStrictEqual(names(x.chunksFor(f.key)).sort(), ['a_first.py', 'a_second.py', 'b_first.py']);
  });

  it('takes an open notebook as one document (as extension.ts keys it): sent whole, left out of its own cells\' requests, '
    + 'and typing in a cell rebuilds nothing', () => {
    const x = new ExtraContext({ maxChunks: 4 });
    // the notebook's module, keyed as its cells' notebook (notebookOfKey of `vscode-notebook-cell:/ws/nb.ipynb#W3`)
    const nb = new Doc('nb.ipynb', Array.from({ length: 300 }, (_, i) => `# %%\nframe_${i} = load(${i})`).join('\n\n'));
    (nb as { key: string }).key = 'vscode-notebook-cell:/ws/nb.ipynb';
    const [lib, other] = [py('lib'), py('other')];
    for (const d of [nb, lib, other]) { x.opened(d); x.activated(d); }
    // from a file: the 300 cells are one chunk, so the other files still fit in the request's 4 chunks
    assert.deepStrictEqual(names(x.chunksFor(other.key)), ['lib.py', 'nb.ipynb']);
    assert.strictEqual(x.chunksFor(other.key).chunks[1].text, nb.getText());
    // from one of its cells: not its own notebook (its prompt and suffix hold it)
    const cellKey = 'vscode-notebook-cell:/ws/nb.ipynb#W3';
    const first = x.chunksFor(cellKey);
    assert.deepStrictEqual(names(first), ['other.py', 'lib.py']);
    const builds = x.buildCount;
    for (let i = 0; i < 10; i++) x.changed(nb, nb.edit(20, `frame_9 = load(${'9'.repeat(i)})`)); // typing in the cell
    assert.strictEqual(x.chunksFor(cellKey), first);
    assert.strictEqual(x.buildCount, builds);
    // ... where a change in a file it is sent with rebuilds, with the change
    x.changed(lib, lib.edit(0, 'def lib_changed(x):'));
    assert.ok(x.chunksFor(cellKey).chunks.some((c) => c.text.startsWith('def lib_changed')));
  });

  it('sends the other open files, most recently used first, never the current one', () => {
    const x = new ExtraContext();
    const [a, b, c] = [py('a'), py('b'), py('c')];
    for (const d of [a, b, c]) x.opened(d);
    x.activated(b);
    x.activated(a);
    x.activated(c); // c is the current file
    const e = x.chunksFor(c.key);
    assert.deepStrictEqual(names(e), ['a.py', 'b.py']);
    assert.strictEqual(e.chunks[0].text, a.getText());
    assert.ok(!e.chunks.some((ch) => ch.text.includes('def c_')), 'the current file is in its own extra context');
    // from a's point of view: c, then b
    assert.deepStrictEqual(names(x.chunksFor(a.key)), ['c.py', 'b.py']);
  });

  it('editing a file makes it the most recent; files never shown come last, newest opened first', () => {
    const x = new ExtraContext();
    const [a, b, bg1, bg2, cur] = [py('a'), py('b'), py('bg1'), py('bg2'), py('cur')];
    for (const d of [a, b, bg1, bg2, cur]) x.opened(d);
    x.activated(a);
    x.activated(b);
    x.changed(a, a.edit(0, 'def a_0(y):'));
    x.activated(cur);
    assert.deepStrictEqual(names(x.chunksFor(cur.key)).filter((n) => !n.startsWith('cur')), ['a.py', 'b.py', 'bg2.py', 'bg1.py']);
  });

  it('respects the character budget and the chunk count limit, skipping what does not fit', () => {
    const docs = Array.from({ length: 50 }, (_, i) => new Doc(`f${i}.py`, `# file ${i}\n` + 'x = 1\n'.repeat(3 + i)));
    const x = new ExtraContext({ maxChars: 2000, ringChunks: 0 });
    docs.forEach((d) => { x.opened(d); x.activated(d); });
    const e = x.chunksFor(docs[0].key);
    const sum = e.chunks.reduce((s, c) => s + c.text.length, 0);
    assert.ok(sum <= 2000, `${sum} chars`);
    assert.strictEqual(e.chars, sum);
    assert.ok(e.chunks.length >= 5, `${e.chunks.length} chunks`);
    // newest first; a file that does not fit in what is left is skipped, smaller older ones still go in
    const nums = names(e).map((n) => Number(n.slice(1, -3)));
    assert.deepStrictEqual(nums, [...nums].sort((p, q) => q - p));
    assert.strictEqual(nums[0], 49);
    const skipped = docs.filter((d, i) => i > 0 && i > nums.at(-1)! && !nums.includes(i));
    assert.ok(skipped.length > 0, 'nothing was skipped: the test does not exercise the budget');
    let left = 2000;
    for (let i = 49; i > nums.at(-1)!; i--) {
      const len = docs[i].getText().length;
      if (nums.includes(i)) left -= len;
      else assert.ok(len > left, `f${i} (${len} chars) was skipped with ${left} chars left`);
    }
    const few = new ExtraContext({ maxChars: 1e6, maxChunks: 4, ringChunks: 0 });
    docs.forEach((d) => few.opened(d));
    assert.strictEqual(few.chunksFor(undefined).chunks.length, 4);
  });

  it('a keystroke in the current file reads the prepared array: same chunks, nothing rebuilt or re-read', () => {
    const x = new ExtraContext();
    const [other, cur] = [py('other', 40), py('cur', 40)];
    x.opened(other);
    x.opened(cur);
    x.activated(other);
    x.activated(cur);
    const first = x.chunksFor(cur.key);
    const builds = x.buildCount;
    const reads = other.reads + cur.reads;
    for (let i = 0; i < 20; i++) {
      x.changed(cur, cur.edit(10, `    return x + ${'1'.repeat(i)}`)); // typing on one line
      const e = x.chunksFor(cur.key);
      assert.strictEqual(e, first);
    }
    assert.strictEqual(x.buildCount, builds);
    assert.strictEqual(other.reads + cur.reads, reads);
    assert.deepStrictEqual(first.chunks.map((c) => c.text), [other.getText()]);
  });

  it('a change in another file rebuilds once, with that file\'s new text; chunk texts of unchanged files stay identical', () => {
    const x = new ExtraContext();
    const [a, b, cur] = [py('a'), py('b'), py('cur')];
    for (const d of [a, b, cur]) { x.opened(d); x.activated(d); }
    const before = x.chunksFor(cur.key);
    x.changed(a, a.edit(2, 'A_CHANGED = 1')); // e.g. a formatter or git changed it in the background
    const after = x.chunksFor(cur.key);
    assert.notStrictEqual(after, before);
    assert.notStrictEqual(after.key, before.key);
    const textOf = (e: typeof after, f: string) => e.chunks.find((c) => c.filename === f)!.text;
    assert.ok(textOf(after, 'a.py').includes('A_CHANGED = 1'));
    assert.strictEqual(textOf(after, 'b.py'), textOf(before, 'b.py'));
    assert.strictEqual(x.chunksFor(cur.key), after);
  });

  it('equal content gives an equal key (the client cache survives a rebuild that changed nothing)', () => {
    const x = new ExtraContext({ ringChunks: 0 });
    const [a, cur] = [py('a'), py('cur')];
    for (const d of [a, cur]) { x.opened(d); x.activated(d); }
    const k1 = x.chunksFor(cur.key).key;
    x.activated(a);
    x.activated(cur);
    assert.strictEqual(x.chunksFor(cur.key).key, k1);
    assert.notStrictEqual(k1, '');
  });

  it('a file longer than perFileMaxChars is sent as a window around its last edit, else its start', () => {
    const big = new Doc('big.py', Array.from({ length: 2000 }, (_, i) => `value_${i} = ${i}`).join('\n'));
    const cur = py('cur');
    const x = new ExtraContext({ perFileMaxChars: 1000, ringChunks: 0 });
    x.opened(big);
    x.opened(cur);
    const start = x.chunksFor(cur.key).chunks[0].text;
    assert.ok(start.startsWith('value_0 = 0\n') && start.length <= 1000, `${start.length}`);
    x.changed(big, big.edit(1500, 'value_1500 = "edited"'));
    big.reads = 0;
    const win = x.chunksFor(cur.key).chunks[0].text;
    assert.ok(win.length <= 1000 && win.length > 900, `${win.length}`);
    assert.ok(win.includes('value_1500 = "edited"\n'));
    assert.ok(win.indexOf('value_1500') > 0 && win.indexOf('value_1500') < win.length / 2, 'the edit is not in the window\'s first half');
    assert.ok(big.reads < 150, `${big.reads} line reads for a window of ~70 lines of a 2000-line file`);
  });

  it('windowAround: whole lines, at most maxChars, moved inward at the end of the document', () => {
    const doc = linesOf(Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n'));
    const w = windowAround(doc, 99, 70);
    assert.ok(w.length <= 70 && w.endsWith('line 99\n') && w.startsWith('line '), JSON.stringify(w));
    assert.ok(w.length > 60);
  });

  it('ring: editing far away and closing put the edited regions in, newest first; the oldest is evicted', () => {
    const x = new ExtraContext({ ringChunks: 2, farEditLines: 32 });
    const big = new Doc('big.py', Array.from({ length: 400 }, (_, i) => `v${i} = ${i}`).join('\n'));
    const small = py('small', 10);
    const cur = py('cur');
    for (const d of [big, small, cur]) x.opened(d);
    x.activated(big);
    x.changed(big, big.edit(10, 'v10 = "first edit"'));
    x.changed(big, big.edit(12, 'v12 = "near"')); // near the previous edit: no chunk yet
    assert.strictEqual(x.recent.length, 0);
    x.changed(big, big.edit(300, 'v300 = "far"')); // far: the region around line 12 goes in
    assert.strictEqual(x.recent.length, 1);
    assert.ok(x.recent[0].text.includes('v10 = "first edit"') && x.recent[0].text.includes('v12 = "near"'));
    assert.ok(!x.recent[0].text.includes('v300'));
    x.changed(big, big.edit(100, 'v100 = "back up"')); // far again: line 300's region
    assert.strictEqual(x.recent.length, 2);
    assert.ok(x.recent[0].text.includes('v300 = "far"'));
    x.activated(small);
    x.changed(small, small.edit(4, 'SMALL_EDITED = 1'));
    x.activated(cur); // switching away takes nothing: small.py is sent whole while it is open
    assert.strictEqual(x.recent.length, 2);
    x.closed(small); // closing it keeps the region of its last edit
    assert.deepStrictEqual(x.recent.map((c) => c.filename), ['small.py', 'big.py']); // capacity 2: line 12's region is gone
    assert.ok(x.recent[0].text.includes('SMALL_EDITED = 1'));
    assert.ok(x.recent[1].text.includes('v300 = "far"'));
  });

  it('ring: an exact repeat changes neither the chunks nor their order (the server re-indexes on any change)', () => {
    const x = new ExtraContext();
    const [a, b, cur] = [py('a', 10), py('b', 10), py('cur')];
    for (const d of [a, b, cur]) x.opened(d);
    x.changed(a, 4);
    x.closed(a);
    x.changed(b, 4);
    x.closed(b);
    x.activated(cur);
    const first = x.chunksFor(cur.key);
    assert.deepStrictEqual(names(first), ['b.py', 'a.py']);
    x.opened(a);
    x.changed(a, 4); // the same text as before: reopened and edited back
    x.closed(a);
    assert.deepStrictEqual(names(x.chunksFor(cur.key)), ['b.py', 'a.py']);
    assert.strictEqual(x.chunksFor(cur.key).key, first.key);
  });

  it('ring: a region of a file that is sent whole is left out; after the file is closed its region stays', () => {
    const x = new ExtraContext({ farEditLines: 2 });
    const [lib, cur] = [py('lib', 10), py('cur', 10)];
    x.opened(lib);
    x.opened(cur);
    x.activated(lib);
    x.changed(lib, lib.edit(4, 'LIB_EDITED = 1'));
    x.changed(lib, lib.edit(20, 'LIB_EDITED_AGAIN = 1')); // far: line 4's region goes in
    assert.strictEqual(x.recent.length, 1);
    x.activated(cur);
    assert.deepStrictEqual(names(x.chunksFor(cur.key)), ['lib.py']); // the whole file, not also its region
    assert.strictEqual(x.chunksFor(cur.key).chunks[0].text, lib.getText());
    x.closed(lib);
    const e = x.chunksFor(cur.key);
    assert.deepStrictEqual(names(e), ['lib.py']); // the region of its last edit (same whole small file)
    assert.strictEqual(e.chunks[0].text, x.recent[0].text);
    assert.ok(e.chunks[0].text.includes('LIB_EDITED_AGAIN = 1'));
  });

  it('ring: regions of the current file are sent (they may lie beyond the prompt, after the cursor)', () => {
    const x = new ExtraContext();
    const cur = new Doc('cur.py', Array.from({ length: 300 }, (_, i) => `c${i} = ${i}`).join('\n'));
    x.opened(cur);
    x.activated(cur);
    x.changed(cur, cur.edit(250, 'c250 = "below"'));
    x.changed(cur, cur.edit(5, 'c5 = "top"')); // the user goes back up: line 250's region goes in
    const e = x.chunksFor(cur.key);
    assert.deepStrictEqual(names(e), ['cur.py']);
    assert.ok(e.chunks[0].text.includes('c250 = "below"'));
  });

  it('texts go with LF line ends, as the server reads them: a CRLF file takes no budget for its \\r', () => {
    assert.strictEqual(withLf('a = 1\r\nb = 2\r\n'), 'a = 1\nb = 2\n');
    assert.strictEqual(withLf('a\rb\r\n\nc'), 'a\nb\n\nc');
    const lf = 'x = 1\n';
    assert.strictEqual(withLf(lf), lf);
  });

  it('a budget of 0 sends nothing; a new budget applies to the next request', () => {
    const x = new ExtraContext({ maxChars: 0 });
    const [a, cur] = [py('a'), py('cur')];
    x.opened(a);
    x.opened(cur);
    assert.strictEqual(x.chunksFor(cur.key), NO_EXTRA);
    assert.strictEqual(x.needsBuild(cur.key), false);
    x.setMaxChars(100000);
    assert.strictEqual(x.needsBuild(cur.key), true);
    assert.deepStrictEqual(names(x.chunksFor(cur.key)), ['a.py']);
    assert.strictEqual(x.needsBuild(cur.key), false);
  });
});
