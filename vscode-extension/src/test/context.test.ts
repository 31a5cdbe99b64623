import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { buildContext, ContextLimits, DEFAULT_LIMITS, LineSource, linesOf, NEXT_LINE_SCAN } from '../context';

/** Limits with the prompt budget `promptMaxChars` and, unless given, a suffix of the rest of the line only. */
const limits = (promptMaxChars: number, over: Partial<ContextLimits> = {}): ContextLimits =>
  ({ promptMaxChars, suffixLines: 0, suffixMaxChars: 4096, ...over });

describe('context', () => {
  it("uses package.json's setting defaults, and by default sends the rest of the file as the suffix", () => {
    const props = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'))
      .contributes.configuration.properties;
    for (const key of ['promptMaxChars', 'suffixLines', 'suffixMaxChars'] as const) {
      assert.strictEqual(props[`pythonAutocomplete.${key}`].default, DEFAULT_LIMITS[key], key);
    }
    // the suffix's default is all the server keeps
    assert.strictEqual(DEFAULT_LIMITS.suffixMaxChars, props['pythonAutocomplete.suffixMaxChars'].maximum);
    const lines = Array.from({ length: 300 }, (_, i) => `value_${i} = ${i}`);
    const c = buildContext(linesOf(lines.join('\n')), 10, 3, DEFAULT_LIMITS);
    assert.strictEqual(c.suffix, [lines[10].slice(3), ...lines.slice(11)].join('\n'));
  });

  const text = ['import os', '', 'def f(x):', '    return os.path.join(x)', 'print(f(1))'].join('\n');
  const doc = linesOf(text);

  it('sends the whole text before the cursor when it fits in promptMaxChars', () => {
    const c = buildContext(doc, 3, 'return os.'.length + 4, limits(32768));
    assert.strictEqual(c.prompt, 'import os\n\ndef f(x):\n    return os.');
    assert.strictEqual(c.linePrefix, '    return os.');
  });

  it('with suffixLines 0 sends only the rest of the cursor line as the suffix, and still finds the next line', () => {
    const c = buildContext(doc, 3, 14, limits(32768));
    assert.strictEqual(c.suffix, 'path.join(x)');
    assert.strictEqual(c.lineSuffix, 'path.join(x)');
    assert.strictEqual(c.nextNonBlankLine, 'print(f(1))');
  });

  it('has no next line at the end of the document', () => {
    const c = buildContext(doc, 4, 6, limits(32768, { suffixLines: 20 }));
    assert.strictEqual(c.prompt, text.slice(0, text.indexOf('print(') + 6));
    assert.strictEqual(c.suffix, 'f(1))');
    assert.strictEqual(c.nextNonBlankLine, '');
  });

  it('cuts at a line start: drops whole lines from the top until the prompt fits', () => {
    // 'def f(x):\n' (10) + '    return os.' (14) = 24 fits; one more line ('\n', 1) would make 25
    assert.strictEqual(buildContext(doc, 3, 14, limits(24)).prompt, 'def f(x):\n    return os.');
    assert.strictEqual(buildContext(doc, 3, 14, limits(25)).prompt, '\ndef f(x):\n    return os.');
    assert.strictEqual(buildContext(doc, 3, 14, limits(23)).prompt, '    return os.');
  });

  it('for every budget the prompt is the longest line-aligned tail of the text before the cursor that fits', () => {
    // a document with lines of varied lengths; the cursor in the middle of its last line
    const lines = Array.from({ length: 60 }, (_, i) => 'x'.repeat((i * 7) % 23) + `# ${i}`);
    const d = linesOf(lines.join('\n'));
    const ch = 3;
    const before = lines.slice(0, -1).join('\n') + '\n' + lines.at(-1)!.slice(0, ch);
    for (let max = ch; max <= before.length + 2; max += 5) {
      const { prompt } = buildContext(d, lines.length - 1, ch, limits(max));
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
    const c = buildContext(linesOf('a = 1\nb = "0123456789"'), 1, 15, limits(6));
    assert.strictEqual(c.prompt, '456789');
    assert.strictEqual(c.linePrefix, 'b = "0123456789');
  });

  it('clamps a character past the end of the line and handles CRLF text', () => {
    const c = buildContext(linesOf('a = 1\r\nb = '), 1, 99, limits(32768));
    assert.strictEqual(c.prompt, 'a = 1\nb = ');
    assert.strictEqual(c.suffix, '');
  });

  describe('suffix: the rest of the line and the next lines', () => {
    // 10 lines: 'line 0 = 0', 'line 1 = 10', ...
    const ten = Array.from({ length: 10 }, (_, i) => `line ${i} = ${i * 10}`);
    const tenDoc = linesOf(ten.join('\n'));

    it('sends the rest of the cursor line and the next suffixLines lines, joined by line breaks', () => {
      const c = buildContext(tenDoc, 2, 'line 2 = '.length, limits(32768, { suffixLines: 3 }));
      assert.strictEqual(c.suffix, '20\nline 3 = 30\nline 4 = 40\nline 5 = 50');
      assert.strictEqual(c.lineSuffix, '20');
      assert.strictEqual(c.linePrefix, 'line 2 = ');
      assert.strictEqual(c.prompt, 'line 0 = 0\nline 1 = 10\nline 2 = ');
    });

    it('stops at the end of the document', () => {
      const c = buildContext(tenDoc, 7, 0, limits(32768, { suffixLines: 20 }));
      assert.strictEqual(c.suffix, 'line 7 = 70\nline 8 = 80\nline 9 = 90');
      // a document that ends with a line break ends with an empty line: the suffix ends with the break
      const c2 = buildContext(linesOf('a = 1\nb = 2\n'), 0, 5, limits(32768, { suffixLines: 20 }));
      assert.strictEqual(c2.suffix, '\nb = 2\n');
    });

    it('joins CRLF lines with \\n, like the prompt', () => {
      const c = buildContext(linesOf('a = (\r\n  1,\r\n  2)\r\nb = a'), 0, 4, limits(32768, { suffixLines: 2 }));
      assert.strictEqual(c.prompt, 'a = ');
      assert.strictEqual(c.suffix, '(\n  1,\n  2)');
      assert.strictEqual(c.nextNonBlankLine, '  1,');
    });

    it('for every character budget the suffix is the longest line-aligned start of the text after the cursor that fits', () => {
      const lines = Array.from({ length: 40 }, (_, i) => 'y'.repeat((i * 5) % 17) + `# ${i}`);
      const d = linesOf(lines.join('\n'));
      const line = 10;
      const ch = 2;
      const suffixLines = 12;
      const after = [lines[line].slice(ch), ...lines.slice(line + 1, line + 1 + suffixLines)].join('\n');
      for (let max = 0; max <= after.length + 2; max += 3) {
        const { suffix } = buildContext(d, line, ch, limits(32768, { suffixLines, suffixMaxChars: max }));
        assert.ok(suffix.length <= max, `budget ${max}: ${suffix.length} chars`);
        assert.ok(after.startsWith(suffix), `budget ${max}: not a start of the text after the cursor`);
        const end = suffix.length;
        if (max >= lines[line].length - ch) {
          // whole lines only, and maximal: the next whole line would not have fitted
          assert.ok(end === after.length || after[end] === '\n', `budget ${max}: does not end at a line end`);
          if (end < after.length) {
            const nextEnd = after.indexOf('\n', end + 1);
            assert.ok((nextEnd < 0 ? after.length : nextEnd) > max, `budget ${max}: one more line would have fitted`);
          }
        } else {
          // a rest of the line longer than the budget: its first characters
          assert.strictEqual(suffix, lines[line].slice(ch, ch + max), `budget ${max}`);
        }
      }
    });

    it('keeps the start of a rest of the line longer than suffixMaxChars, and no following line', () => {
      const c = buildContext(linesOf('x = "0123456789"\ny = 1'), 0, 4, limits(32768, { suffixLines: 5, suffixMaxChars: 6 }));
      assert.strictEqual(c.suffix, '"01234');
      assert.strictEqual(c.lineSuffix, '"0123456789"');
      assert.strictEqual(c.nextNonBlankLine, 'y = 1');
    });

    it('finds the next non-blank line past blank ones, within NEXT_LINE_SCAN lines whatever suffixLines is', () => {
      const c = buildContext(linesOf('a = 1\n\n   \n    b = 2'), 0, 5, limits(32768, { suffixLines: 1 }));
      assert.strictEqual(c.nextNonBlankLine, '    b = 2');
      assert.strictEqual(c.suffix, '\n');
      const far = ['x = 1', ...Array(NEXT_LINE_SCAN).fill(''), 'y = 2'].join('\n');
      assert.strictEqual(buildContext(linesOf(far), 0, 5, limits(32768)).nextNonBlankLine, '');
      const near = ['x = 1', ...Array(NEXT_LINE_SCAN - 1).fill(''), 'y = 2'].join('\n');
      assert.strictEqual(buildContext(linesOf(near), 0, 5, limits(32768)).nextNonBlankLine, 'y = 2');
    });

    it('reads only the lines it needs, not the document: a 100,000-line document, cursor in the middle', () => {
      const read = new Set<number>();
      const big: LineSource = { lineCount: 100000, lineText: (i) => { read.add(i); return `v${i} = ${i}`; } };
      const c = buildContext(big, 50000, 3, limits(200, { suffixLines: 20 }));
      assert.strictEqual(c.suffix.split('\n').length, 21);
      assert.ok(c.suffix.endsWith('\nv50020 = 50020'));
      const lines = [...read].sort((a, b) => a - b);
      // the prompt's ~16 lines above (200 chars), the cursor line, the 20 below; one more above that did not fit
      assert.ok(lines[0] >= 50000 - 20 && lines.at(-1)! === 50020, `read lines ${lines[0]}..${lines.at(-1)}`);
      assert.ok(read.size <= 40, `read ${read.size} lines`);
    });
  });

  it('rejects a line outside the document with a clear error', () => {
    assert.throws(() => buildContext(doc, 5, 0, limits(100)), /line 5 outside 0\.\.4/);
    assert.throws(() => buildContext(doc, -1, 0, limits(100)), RangeError);
  });
});
