import * as assert from 'assert';
import { DocumentLike, ExtraContext } from '../extraContext';
import { importedModules, isNotProject, moduleParts, neighbourOrder } from '../workspaceContext';

/** An open document (as extension.ts wraps a vscode.TextDocument). */
const open = (filename: string, text: string): DocumentLike => {
  const lines = text.split('\n');
  return {
    key: `file:///ws/${filename}`, filename, lineCount: lines.length, lineText: (i) => lines[i],
    getText: () => text, charLength: () => text.length,
  };
};
const names = (e: { chunks: readonly { filename: string }[] }) => e.chunks.map((c) => c.filename);

describe('workspace context', () => {
  it('reads the imports as evaluate/project.py does (its output for this text)', () => {
    const text = [
      'import os, sys as system',
      'import billing.invoices',
      'from .models import Invoice, (Line)',
      'from ..util import helpers as h',
      'from pkg import (a,',
      '    b)',
      'x = 1  # import nothing',
      '    from . import sibling',
    ].join('\n');
    assert.deepStrictEqual(importedModules(text), [
      'os', 'sys', 'billing.invoices', 'models', 'models.Invoice', 'models.Line', 'util', 'util.helpers', 'util.h',
      'pkg', 'pkg.a', 'sibling']); // a parenthesised list is read to its line end, as in Python
    assert.deepStrictEqual(moduleParts('shop/billing/invoices.py'), ['shop', 'billing', 'invoices']);
    assert.deepStrictEqual(moduleParts('shop/billing/__init__.py'), ['shop', 'billing']);
  });

  it('orders the project: imported modules in import order, then the folder, then the rest by path', () => {
    const paths = ['shop/main.py', 'shop/util.py', 'shop/billing/invoices.py', 'shop/billing/__init__.py',
      'other/zeta.py', 'other/alpha.py', 'shop/models.py', 'docs/conf.py'];
    const text = 'from .models import Invoice\nimport shop.billing.invoices\n\nprint(1)\n';
    assert.deepStrictEqual(neighbourOrder('shop/main.py', text, paths), [
      'shop/models.py', // from .models (first import)
      'shop/billing/invoices.py', // import shop.billing.invoices
      'shop/util.py', // the folder
      'docs/conf.py', 'other/alpha.py', 'other/zeta.py', 'shop/billing/__init__.py', // the rest, by path
    ]);
    // no imports: the folder first; the target itself is never in the list
    assert.deepStrictEqual(neighbourOrder('other/zeta.py', '', paths).slice(0, 1), ['other/alpha.py']);
    assert.ok(!neighbourOrder('other/zeta.py', '', paths).includes('other/zeta.py'));
  });

  it('keeps dependencies and environments out', () => {
    assert.ok(isNotProject('.venv/lib/python3.12/site-packages/requests/api.py'));
    assert.ok(isNotProject('web/node_modules/x/y.py'));
    assert.ok(isNotProject('pkg/__pycache__/mod.py'));
    assert.ok(!isNotProject('pkg/builder.py') && !isNotProject('src/venvtools/mod.py'));
  });

  it('sends workspace files after the open ones, within the budget, skipping open files and the current one', () => {
    const x = new ExtraContext({ maxChars: 200, ringChunks: 0 });
    const main = open('shop/main.py', 'from .models import Invoice\n');
    const util = open('shop/util.py', 'def util_helper():\n    return 1\n');
    for (const d of [util, main]) { x.opened(d); x.activated(d); }
    const models = { filename: 'shop/models.py', text: 'class Invoice:\n    total = 0\n' };
    const big = { filename: 'shop/big.py', text: 'x = 1\n'.repeat(40) }; // 240 chars: never fits
    const tail = { filename: 'other/tail.py', text: 'y = 2\n' };
    // workspace files as extension.ts reads them (it leaves open ones out; a stale one is skipped here too)
    const files = [models, { filename: 'shop/util.py', text: 'stale on disk' }, big, tail,
      { filename: 'shop/main.py', text: 'stale copy of the current file' }];
    x.setWorkspace(main.key, files);
    const e = x.chunksFor(main.key);
    assert.deepStrictEqual(names(e), ['shop/util.py', 'shop/models.py', 'other/tail.py']);
    assert.strictEqual(e.chunks[0].text, util.getText()); // the open document's live text, not the disk's
    assert.ok(e.chars <= 200);
    // a keystroke in the current file reads the prepared list: no rebuild
    const builds = x.buildCount;
    assert.strictEqual(x.chunksFor(main.key), e);
    assert.strictEqual(x.buildCount, builds);
    // the same files again (an editor switch back, a save without changes): still no rebuild
    x.setWorkspace(main.key, files.map((f) => ({ ...f })));
    assert.strictEqual(x.chunksFor(main.key), e);
    // a file changed on disk: rebuilt, with its new text
    x.setWorkspace(main.key, [{ ...models, text: 'class Invoice:\n    total = 1\n' }]);
    const e2 = x.chunksFor(main.key);
    assert.notStrictEqual(e2, e);
    assert.ok(e2.chunks.some((c) => c.text.includes('total = 1')));
    // they belong to main.py's requests only
    assert.ok(!names(x.chunksFor(util.key)).includes('shop/models.py'));
  });

  it('cuts a long workspace file to its start (perFileMaxChars) and drops empty ones', () => {
    const x = new ExtraContext({ maxChars: 10_000, perFileMaxChars: 50, ringChunks: 0 });
    const cur = open('a.py', 'import b\n');
    x.opened(cur);
    x.activated(cur);
    x.setWorkspace(cur.key, [{ filename: 'b.py', text: 'b = 1\n'.repeat(100) }, { filename: 'c.py', text: '\n  \n' }]);
    const e = x.chunksFor(cur.key);
    assert.deepStrictEqual(names(e), ['b.py']);
    assert.strictEqual(e.chunks[0].text, 'b = 1\n'.repeat(100).slice(0, 50));
  });
});
