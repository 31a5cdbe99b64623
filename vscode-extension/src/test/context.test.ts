import * as assert from 'assert';
import { buildContext, linesOf } from '../context';

describe('context', () => {
  const doc = linesOf(['import os', '', 'def f(x):', '    return os.path.join(x)', 'print(f(1))'].join('\n'));

  it('sends N lines before the cursor line plus the line up to the cursor as the prompt', () => {
    const c = buildContext(doc, 3, 'return os.'.length + 4, 2);
    assert.strictEqual(c.prompt, '\ndef f(x):\n    return os.');
    assert.strictEqual(c.linePrefix, '    return os.');
  });

  it('sends the rest of the cursor line as the suffix and remembers the next line', () => {
    const c = buildContext(doc, 3, 14, 20);
    assert.strictEqual(c.suffix, 'path.join(x)');
    assert.strictEqual(c.nextLine, 'print(f(1))');
    assert.strictEqual(c.prompt, 'import os\n\ndef f(x):\n    return os.');
  });

  it('stops at the start of the document and has no next line at the end', () => {
    const c = buildContext(doc, 4, 6, 100);
    assert.strictEqual(c.prompt, 'import os\n\ndef f(x):\n    return os.path.join(x)\nprint(');
    assert.strictEqual(c.nextLine, '');
  });

  it('with 0 context lines sends only the current line prefix', () => {
    assert.strictEqual(buildContext(doc, 2, 4, 0).prompt, 'def ');
  });

  it('clamps a character past the end of the line and handles CRLF text', () => {
    const c = buildContext(linesOf('a = 1\r\nb = '), 1, 99, 20);
    assert.strictEqual(c.prompt, 'a = 1\nb = ');
    assert.strictEqual(c.suffix, '');
  });

  it('rejects a line outside the document with a clear error', () => {
    assert.throws(() => buildContext(doc, 5, 0, 20), /line 5 outside 0\.\.4/);
    assert.throws(() => buildContext(doc, -1, 0, 20), RangeError);
  });
});
