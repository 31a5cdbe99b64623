import * as assert from 'assert';
import { buildContext, linesOf } from '../context';

describe('context', () => {
  const text = ['import os', '', 'def f(x):', '    return os.path.join(x)', 'print(f(1))'].join('\n');
  const doc = linesOf(text);

  it('sends the whole text before the cursor when it fits in promptMaxChars', () => {
    const c = buildContext(doc, 3, 'return os.'.length + 4, 32768);
    assert.strictEqual(c.prompt, 'import os\n\ndef f(x):\n    return os.');
    assert.strictEqual(c.linePrefix, '    return os.');
  });

  it('sends the rest of the cursor line as the suffix and remembers the next line', () => {
    const c = buildContext(doc, 3, 14, 32768);
    assert.strictEqual(c.suffix, 'path.join(x)');
    assert.strictEqual(c.nextLine, 'print(f(1))');
  });

  it('has no next line at the end of the document', () => {
    const c = buildContext(doc, 4, 6, 32768);
    assert.strictEqual(c.prompt, text.slice(0, text.indexOf('print(') + 6));
    assert.strictEqual(c.nextLine, '');
  });

  it('cuts at a line start: drops whole lines from the top until the prompt fits', () => {
    // 'def f(x):\n' (10) + '    return os.' (14) = 24 fits; one more line ('\n', 1) would make 25
    assert.strictEqual(buildContext(doc, 3, 14, 24).prompt, 'def f(x):\n    return os.');
    assert.strictEqual(buildContext(doc, 3, 14, 25).prompt, '\ndef f(x):\n    return os.');
    assert.strictEqual(buildContext(doc, 3, 14, 23).prompt, '    return os.');
  });

  it('for every budget the prompt is the longest line-aligned tail of the text before the cursor that fits', () => {
    // a document with lines of varied lengths; the cursor in the middle of its last line
    const lines = Array.from({ length: 60 }, (_, i) => 'x'.repeat((i * 7) % 23) + `# ${i}`);
    const d = linesOf(lines.join('\n'));
    const ch = 3;
    const before = lines.slice(0, -1).join('\n') + '\n' + lines.at(-1)!.slice(0, ch);
    for (let max = ch; max <= before.length + 2; max += 5) {
      const { prompt } = buildContext(d, lines.length - 1, ch, max);
      assert.ok(prompt.length <= max, `budget ${max}: ${prompt.length} chars`);
      assert.ok(before.endsWith(prompt), `budget ${max}: not a tail of the text before the cursor`);
      const start = before.length - prompt.length;
      assert.ok(start === 0 || before[start - 1] === '\n', `budget ${max}: does not start at a line start`);
      // maximal: the previous whole line would not have fitted
      if (start > 0) {
        const prevStart = before.lastIndexOf('\n', start - 2) + 1;
        assert.ok(before.length - prevStart > max, `budget ${max}: one more line would have fitted`);
      }
    }
  });

  it('keeps the last promptMaxChars characters of a cursor line longer than the budget', () => {
    const c = buildContext(linesOf('a = 1\nb = "0123456789"'), 1, 15, 6);
    assert.strictEqual(c.prompt, '456789');
    assert.strictEqual(c.linePrefix, 'b = "0123456789');
  });

  it('clamps a character past the end of the line and handles CRLF text', () => {
    const c = buildContext(linesOf('a = 1\r\nb = '), 1, 99, 32768);
    assert.strictEqual(c.prompt, 'a = 1\nb = ');
    assert.strictEqual(c.suffix, '');
  });

  it('rejects a line outside the document with a clear error', () => {
    assert.throws(() => buildContext(doc, 5, 0, 100), /line 5 outside 0\.\.4/);
    assert.throws(() => buildContext(doc, -1, 0, 100), RangeError);
  });
});
