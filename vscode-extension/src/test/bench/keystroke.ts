// Per-keystroke cost of building a request with 1, 10 and 100 open Python files (make -C vscode-extension bench).
// One keystroke = what the extension does between a key press and the request it would send:
//   the change event (ExtraContext.changed), the prompt (buildContext, promptMaxChars 32768), the prepared
//   input_extra (ExtraContext.chunksFor), the client cache look-up (CompletionCache.get) and the request
//   body (client.ts's requestBody: the prompt serialised, the prepared input_extra's JSON reused; in the
//   extension only after the debounce, counted here anyway).
// Documents mimic vscode.TextDocument: lineAt() makes a new object per call, as VS Code's extension host does.
// Second table: the suffix (the rest of the line + the next lines, by default up to 1,000 lines / 16K
// characters, issue #11) with the cursor in the middle of documents of 1,000 to 100,000 lines: building it
// must not grow with the document.
// Third table: the project's unopened files (workspaceContext.ts): what an editor switch costs with 100 to
// 5,000 .py files in the workspace (the order computed, the files that fit handed to ExtraContext, the list
// built; reading them from disk is extension.ts's, asynchronous and cached), and a keystroke after it.
// Fourth table: a keystroke in a cell of a notebook of 10 to 1,000 cells (notebook.ts): every cell's text read
// (extension.ts notebookCellOf), the notebook made one module (notebookSource), the context cut from it.
import * as os from 'os';
import { CompletionCache } from '../../cache';
import { requestBody } from '../../client';
import { buildContext, DEFAULT_LIMITS as DEFAULTS } from '../../context';
import { DocumentLike, ExtraContext } from '../../extraContext';
import { NotebookCell, notebookSource } from '../../notebook';
import { neighbourOrder } from '../../workspaceContext';

/** A deterministic Python-looking file of `lines` lines (~30 characters a line). */
function pythonFile(seed: number, lines: number): string {
  const out: string[] = [`"""Module ${seed}."""`, 'import os', 'import sys', ''];
  for (let f = 0; out.length < lines; f++) {
    out.push(`def function_${seed}_${f}(path, count=${f}):`, `    """Do thing ${f} of module ${seed}."""`);
    out.push(`    total = 0`, `    for name in os.listdir(path):`, `        if name.endswith(".py"):`);
    out.push(`            total += len(name) * ${f + 1}`, `    return total + count`, '');
  }
  return out.slice(0, lines).join('\n');
}

class BenchDoc implements DocumentLike {
  readonly key: string;
  private lines: string[];
  constructor(readonly filename: string, text: string) {
    this.key = `file:///ws/${filename}`;
    this.lines = text.split('\n');
  }
  get lineCount() { return this.lines.length; }
  lineAt(i: number) { return { text: this.lines[i], lineNumber: i }; }
  lineText(i: number) { return this.lineAt(i).text; }
  getText() { return this.lines.join('\n'); }
  charLength() { let n = this.lines.length - 1; for (const l of this.lines) n += l.length; return n; }
  type(line: number, ch: string) { this.lines[line] += ch; }
  /** Insert `ch` at column `col` of `line` (typing in the middle of a line). */
  typeAt(line: number, col: number, ch: string) { const t = this.lines[line]; this.lines[line] = t.slice(0, col) + ch + t.slice(col); }
}

const us = (ns: bigint) => Number(ns) / 1000;
function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: s[Math.floor(s.length / 2)], p99: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))], mean: xs.reduce((a, b) => a + b, 0) / xs.length };
}

function run(openFiles: number, keystrokes: number) {
  const others = Array.from({ length: openFiles }, (_, i) => new BenchDoc(`pkg/module_${i}.py`, pythonFile(i, 300)));
  const cur = new BenchDoc('main.py', pythonFile(9999, 2000) + '\n');
  const x = new ExtraContext(); // defaults: 131072 characters, 16 ring chunks
  for (const d of others) { x.opened(d); x.activated(d); x.changed(d, 100); x.changed(d, 250); }
  x.opened(cur);
  const tSwitch = process.hrtime.bigint();
  x.activated(cur);
  x.chunksFor(cur.key); // what the first keystroke after switching to main.py pays (built ahead of it in the extension)
  const switchUs = us(process.hrtime.bigint() - tSwitch);
  const cache = new CompletionCache();
  const line = cur.lineCount - 1;
  const parts = { event: [] as number[], prompt: [] as number[], extra: [] as number[], cache: [] as number[], body: [] as number[], total: [] as number[] };
  let bodyChars = 0;
  const builds0 = x.buildCount;
  for (let k = 0; k < keystrokes; k++) {
    cur.type(line, 'abcdefghij'[k % 10]);
    const t0 = process.hrtime.bigint();
    x.changed(cur, line);
    const t1 = process.hrtime.bigint();
    const ctx = buildContext(cur, line, cur.lineText(line).length, DEFAULTS);
    const t2 = process.hrtime.bigint();
    const extra = x.chunksFor(cur.key);
    const t3 = process.hrtime.bigint();
    cache.get(ctx.prompt, ctx.suffix, extra.key);
    const t4 = process.hrtime.bigint();
    const body = requestBody({ prompt: ctx.prompt, suffix: ctx.suffix, max_suggestions: 3, input_extra: extra.chunks });
    const t5 = process.hrtime.bigint();
    bodyChars = body.length;
    parts.event.push(us(t1 - t0));
    parts.prompt.push(us(t2 - t1));
    parts.extra.push(us(t3 - t2));
    parts.cache.push(us(t4 - t3));
    parts.body.push(us(t5 - t4));
    parts.total.push(us(t5 - t0));
    if (k % 7 === 0) cache.set(ctx.prompt, ctx.suffix, [{ text: 'x', prob: 0.5 }], extra.key); // some entries
  }
  const extra = x.chunksFor(cur.key);
  if (x.buildCount !== builds0) throw new Error('a keystroke rebuilt the chunk list');
  // a change in another open file (a formatter, git): the one rebuild it costs
  others[0].type(5, ' # changed');
  x.changed(others[0], 5);
  const tRe = process.hrtime.bigint();
  x.chunksFor(cur.key);
  const rebuildUs = us(process.hrtime.bigint() - tRe);
  return { openFiles, parts, bodyChars, chunks: extra.chunks.length, extraChars: extra.chars, switchUs, rebuildUs };
}

const KEYS = 2000;
for (const n of [1, 10, 100]) run(n, 200); // warm up the JIT
const rows = [1, 10, 100].map((n) => run(n, KEYS));
const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
console.log(`Per keystroke, µs (p50 / p99 of ${KEYS} keystrokes at the end of a 2,000-line main.py; open files of 300 lines, ~9 KB each)`);
console.log(`machine: ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}, node ${process.version}`);
console.log('');
console.log('| open files | input_extra sent | change event | prompt (32K) | input_extra | cache look-up | JSON body | total p50 / p99 | body size | rebuild after switching file / after another file changed |');
console.log('|---:|---|---|---|---|---|---|---|---:|---|');
for (const r of rows) {
  const c = (k: keyof typeof r.parts) => { const s = stats(r.parts[k]); return `${f(s.p50)} / ${f(s.p99)}`; };
  console.log(`| ${r.openFiles} | ${r.chunks} chunks, ${r.extraChars.toLocaleString('en')} chars | ${c('event')} | ${c('prompt')} | ${c('extra')} | ${c('cache')} | ${c('body')} | **${c('total')}** | ${(r.bodyChars / 1024).toFixed(0)} KB | ${(r.switchUs / 1000).toFixed(2)} ms / ${(r.rebuildUs / 1000).toFixed(2)} ms |`);
}

/** Keystrokes typed in the middle of the middle line of a `lines`-line document. The suffix's own cost is
 *  buildContext with a 1-character prompt budget (no line above the cursor is read) and suffixLines 0 (the
 *  rest of the line only, as before issue #11) against 20 (the default); then the whole context with the
 *  defaults (prompt 32K), the cache look-up and the request body with it. */
function runMiddle(lines: number, keystrokes: number) {
  const doc = new BenchDoc('big.py', pythonFile(7, lines));
  const line = Math.floor(lines / 2);
  doc.typeAt(line, 0, '    x = f(a, b)  # typed here'); // a rest of the line to carry
  let col = 4;
  const cache = new CompletionCache();
  const parts = { lineOnly: [] as number[], withLines: [] as number[], context: [] as number[], cache: [] as number[], body: [] as number[] };
  let suffixChars = 0;
  for (let k = 0; k < keystrokes; k++) {
    doc.typeAt(line, col++, 'abcdefghij'[k % 10]);
    const t0 = process.hrtime.bigint();
    buildContext(doc, line, col, { ...DEFAULTS, promptMaxChars: 1, suffixLines: 0 });
    const t1 = process.hrtime.bigint();
    buildContext(doc, line, col, { ...DEFAULTS, promptMaxChars: 1 });
    const t2 = process.hrtime.bigint();
    const ctx = buildContext(doc, line, col, DEFAULTS);
    const t3 = process.hrtime.bigint();
    cache.get(ctx.prompt, ctx.suffix, '');
    const t4 = process.hrtime.bigint();
    requestBody({ prompt: ctx.prompt, suffix: ctx.suffix, max_suggestions: 3 });
    const t5 = process.hrtime.bigint();
    parts.lineOnly.push(us(t1 - t0));
    parts.withLines.push(us(t2 - t1));
    parts.context.push(us(t3 - t2));
    parts.cache.push(us(t4 - t3));
    parts.body.push(us(t5 - t4));
    suffixChars = ctx.suffix.length;
    if (k % 7 === 0) cache.set(ctx.prompt, ctx.suffix, [{ text: 'x', prob: 0.5 }]);
  }
  return { lines, parts, suffixChars };
}

const MID_KEYS = 2000;
for (const n of [1000, 5000]) runMiddle(n, 200); // warm up
const mid = [1000, 5000, 100000].map((n) => runMiddle(n, MID_KEYS));
console.log('');
console.log(`Cursor in the middle of the middle line, µs (p50 / p99 of ${MID_KEYS} keystrokes); defaults: prompt 32K, suffix ${DEFAULTS.suffixLines} lines / ${DEFAULTS.suffixMaxChars} chars`);
console.log('');
console.log('| document lines | suffix sent | suffix: rest of the line only | suffix: + the next lines (default) | whole context (prompt 32K + suffix) | cache look-up | JSON body |');
console.log('|---:|---:|---|---|---|---|---|');
for (const r of mid) {
  const c = (k: keyof typeof r.parts) => { const s = stats(r.parts[k]); return `${f(s.p50)} / ${f(s.p99)}`; };
  console.log(`| ${r.lines.toLocaleString('en')} | ${r.suffixChars} chars | ${c('lineOnly')} | **${c('withLines')}** | ${c('context')} | ${c('cache')} | ${c('body')} |`);
}

/** An editor switch to main.py in a workspace of `files` .py files (none open but main.py), then keystrokes. */
function runWorkspace(files: number, keystrokes: number) {
  const paths = Array.from({ length: files }, (_, i) => `pkg${i % 40}/sub${i % 7}/module_${i}.py`);
  const texts = new Map<string, string>();
  const textOf = (p: string) => { let t = texts.get(p); if (!t) texts.set(p, (t = pythonFile(paths.indexOf(p), 300))); return t; };
  const head = Array.from({ length: 20 }, (_, i) => `from pkg${i}.sub${i % 7} import module_${i * 7}`).join('\n');
  const cur = new BenchDoc('pkg1/sub1/main.py', head + '\n' + pythonFile(9999, 2000) + '\n');
  const x = new ExtraContext();
  x.opened(cur);
  x.activated(cur);
  const t0 = process.hrtime.bigint();
  const order = neighbourOrder(cur.filename, cur.getText(), paths);
  const t1 = process.hrtime.bigint();
  const chosen: { filename: string; text: string }[] = [];
  let chars = 0;
  for (const p of order) {
    if (chars >= x.options.maxChars) break;
    const text = textOf(p); // in the extension: workspace.fs.readFile, cached until the file changes
    chosen.push({ filename: p, text });
    chars += Math.min(text.length, x.options.perFileMaxChars);
  }
  const t2 = process.hrtime.bigint();
  x.setWorkspace(cur.key, chosen);
  const extra0 = x.chunksFor(cur.key);
  const t3 = process.hrtime.bigint();
  const builds0 = x.buildCount;
  const line = cur.lineCount - 1;
  const total: number[] = [];
  for (let k = 0; k < keystrokes; k++) {
    cur.type(line, 'abcdefghij'[k % 10]);
    const a = process.hrtime.bigint();
    x.changed(cur, line);
    const ctx = buildContext(cur, line, cur.lineText(line).length, DEFAULTS);
    const extra = x.chunksFor(cur.key);
    requestBody({ prompt: ctx.prompt, suffix: ctx.suffix, max_suggestions: 3, input_extra: extra.chunks });
    total.push(us(process.hrtime.bigint() - a));
  }
  if (x.buildCount !== builds0) throw new Error('a keystroke rebuilt the chunk list');
  return { files, orderMs: Number(t1 - t0) / 1e6, readFiles: chosen.length, handMs: Number(t3 - t2) / 1e6,
    chunks: extra0.chunks.length, extraChars: extra0.chars, total: stats(total) };
}

for (const n of [100, 1000]) runWorkspace(n, 200); // warm up
const ws = [100, 1000, 5000].map((n) => runWorkspace(n, KEYS));
console.log('');
console.log(`The project's unopened files: an editor switch to main.py (20 imports) and ${KEYS} keystrokes after it`);
console.log('');
console.log('| workspace .py files | order (neighbourOrder) | files that fit the budget | setWorkspace + build | input_extra sent | keystroke total p50 / p99 µs |');
console.log('|---:|---:|---:|---:|---|---|');
for (const r of ws) {
  console.log(`| ${r.files.toLocaleString('en')} | ${r.orderMs.toFixed(2)} ms | ${r.readFiles} | ${r.handMs.toFixed(2)} ms | ${r.chunks} chunks, ${r.extraChars.toLocaleString('en')} chars | ${f(r.total.p50)} / ${f(r.total.p99)} |`);
}

/** Keystrokes at the end of the middle cell of a notebook of `cells` code cells of 12 lines each. */
function runNotebook(cells: number, keystrokes: number) {
  const docs = Array.from({ length: cells }, (_, i) => new BenchDoc(`nb.ipynb#cell${i}`, pythonFile(i, 12)));
  const current = Math.floor(cells / 2);
  const line = docs[current].lineCount - 1;
  const parts = { cells: [] as number[], module: [] as number[], context: [] as number[], total: [] as number[] };
  let promptChars = 0;
  for (let k = 0; k < keystrokes; k++) {
    docs[current].type(line, 'abcdefghij'[k % 10]);
    const t0 = process.hrtime.bigint();
    const all: NotebookCell[] = docs.map((d) => ({ text: d.getText(), isPythonCode: true }));
    const t1 = process.hrtime.bigint();
    const { source, firstLine } = notebookSource(all, current);
    const t2 = process.hrtime.bigint();
    const ctx = buildContext(source, firstLine + line, docs[current].lineText(line).length, DEFAULTS);
    const t3 = process.hrtime.bigint();
    parts.cells.push(us(t1 - t0));
    parts.module.push(us(t2 - t1));
    parts.context.push(us(t3 - t2));
    parts.total.push(us(t3 - t0));
    promptChars = ctx.prompt.length;
  }
  return { cells, lines: cells * 12, parts, promptChars };
}

for (const n of [10, 100]) runNotebook(n, 200); // warm up
const nbs = [10, 100, 1000].map((n) => runNotebook(n, KEYS));
console.log('');
console.log(`A keystroke in the middle cell of a notebook, µs (p50 / p99 of ${KEYS} keystrokes; cells of 12 lines)`);
console.log('');
console.log('| cells (lines) | prompt sent | read every cell | the notebook as one module | context (prompt 32K + suffix) | total p50 / p99 |');
console.log('|---:|---:|---|---|---|---|');
for (const r of nbs) {
  const c = (k: keyof typeof r.parts) => { const s = stats(r.parts[k]); return `${f(s.p50)} / ${f(s.p99)}`; };
  console.log(`| ${r.cells.toLocaleString('en')} (${r.lines.toLocaleString('en')}) | ${r.promptChars.toLocaleString('en')} chars | ${c('cells')} | ${c('module')} | ${c('context')} | **${c('total')}** |`);
}
