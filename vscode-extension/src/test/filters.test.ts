import * as assert from 'assert';
import {
  applyFilters, cutRepeatOfNextLine, dropEmpty, FilterContext, isOnlyClosers, replaceClosingSuffix,
  Suggestion, trimTrailingWhitespace, truncateToMaxLength,
} from '../filters';

const s = (text: string): Suggestion => ({ text, prob: 0.5, replaceLength: 0 });
const ctx = (over: Partial<FilterContext> = {}): FilterContext => ({ linePrefix: '', lineSuffix: '', nextNonBlankLine: '', maxLength: 256, ...over });

describe('filters', () => {
  describe('trimTrailingWhitespace', () => {
    it('cuts a trailing line break with the blanks around it, keeps leading and inner whitespace', () => {
      assert.strictEqual(trimTrailingWhitespace.apply(s(' x = 1  \n\n'), ctx())!.text, ' x = 1');
      assert.strictEqual(trimTrailingWhitespace.apply(s('a\n    b\n    '), ctx())!.text, 'a\n    b');
      assert.strictEqual(trimTrailingWhitespace.apply(s('\n    '), ctx())!.text, ''); // blanks only: dropEmpty drops it
    });

    it('keeps the blanks that end the last line at the end of a line (the next key), cuts them before code', () => {
      assert.strictEqual(trimTrailingWhitespace.apply(s('return '), ctx({ linePrefix: '    ' }))!.text, 'return ');
      assert.strictEqual(trimTrailingWhitespace.apply(s('import '), ctx({ lineSuffix: '  ' }))!.text, 'import ');
      assert.strictEqual(trimTrailingWhitespace.apply(s('a\n    b\t'), ctx())!.text, 'a\n    b\t');
      assert.strictEqual(applyFilters([s('        ')], ctx({ linePrefix: '    ' }))[0]?.text, '        '); // indentation
      assert.strictEqual(trimTrailingWhitespace.apply(s('x '), ctx({ linePrefix: 'f(', lineSuffix: ')' }))!.text, 'x');
      assert.strictEqual(trimTrailingWhitespace.apply(s('x, '), ctx({ linePrefix: 'f(', lineSuffix: ' as f:' }))!.text, 'x,');
    });
  });

  describe('dropEmpty', () => {
    it('drops empty text, keeps the rest', () => {
      assert.strictEqual(dropEmpty.apply(s(''), ctx()), null);
      assert.deepStrictEqual(dropEmpty.apply(s('x'), ctx()), s('x'));
    });
  });

  describe('truncateToMaxLength', () => {
    it('keeps short text and cuts long text at the last line break within the limit', () => {
      assert.strictEqual(truncateToMaxLength.apply(s('abc'), ctx({ maxLength: 3 }))!.text, 'abc');
      assert.strictEqual(truncateToMaxLength.apply(s('abcdef'), ctx({ maxLength: 4 }))!.text, 'abcd');
      assert.strictEqual(truncateToMaxLength.apply(s('ab\ncd\nef'), ctx({ maxLength: 7 }))!.text, 'ab\ncd');
    });
  });

  describe('replaceClosingSuffix', () => {
    it('replaces auto-closed brackets the suggestion ends with', () => {
      const r = replaceClosingSuffix.apply(s('"hello")'), ctx({ linePrefix: 'print(', lineSuffix: ')' }))!;
      assert.deepStrictEqual([r.text, r.replaceLength], ['"hello")', 1]);
    });

    it('replaces several closers and quotes: print("|") + hi") ', () => {
      const r = replaceClosingSuffix.apply(s('hi")'), ctx({ linePrefix: 'print("', lineSuffix: '")' }))!;
      assert.strictEqual(r.replaceLength, 2);
    });

    it('replaces only the closers the suggestion leaves open: f(g(|)) + x) replaces one', () => {
      const r = replaceClosingSuffix.apply(s('x)'), ctx({ linePrefix: 'f(g(', lineSuffix: '))' }))!;
      assert.strictEqual(r.replaceLength, 1);
    });

    it('does not replace a closer that the suggestion balances itself: f(|) + g(x)', () => {
      const r = replaceClosingSuffix.apply(s('g(x)'), ctx({ linePrefix: 'f(', lineSuffix: ')' }))!;
      assert.strictEqual(r.replaceLength, 0);
    });

    it('leaves the suffix alone when the suggestion does not end with it', () => {
      assert.strictEqual(replaceClosingSuffix.apply(s('x, y'), ctx({ lineSuffix: ')' }))!.replaceLength, 0);
    });

    it('does nothing when the rest of the line is not only closers', () => {
      assert.strictEqual(replaceClosingSuffix.apply(s('a) + b'), ctx({ lineSuffix: ') + b' }))!.replaceLength, 0);
      assert.strictEqual(replaceClosingSuffix.apply(s('x)'), ctx({ lineSuffix: '' }))!.replaceLength, 0);
    });

    it('recognises closer-only suffixes', () => {
      assert.ok(isOnlyClosers(')'));
      assert.ok(isOnlyClosers('"])  '));
      assert.ok(isOnlyClosers('):'));
      assert.ok(!isOnlyClosers(''));
      assert.ok(!isOnlyClosers(') + 1'));
    });
  });

  describe('cutRepeatOfNextLine', () => {
    const cut = (text: string, over: Partial<FilterContext>) => cutRepeatOfNextLine.apply(s(text), ctx(over))?.text ?? null;

    it('drops a suggestion whose first line is the next line', () => {
      assert.strictEqual(cut('\n    return x', { nextNonBlankLine: '    return x' }), null);
    });

    it('drops a suggestion that completes the current line into the next line', () => {
      assert.strictEqual(cut('x', { linePrefix: '    return ', nextNonBlankLine: '    return x' }), null);
    });

    it('counts the rest of the line a single-line suggestion leaves in place, minus what it replaces', () => {
      // foo(|) + a  ->  foo(a) is the next line
      assert.strictEqual(cut('a', { linePrefix: 'foo(', lineSuffix: ')', nextNonBlankLine: 'foo(a)' }), null);
      // print(|) + "a") replaces the ')': the line reads print("a"), the next line
      const r = cutRepeatOfNextLine.apply({ text: '"a")', prob: 0.5, replaceLength: 1 }, ctx({ linePrefix: 'print(', lineSuffix: ')', nextNonBlankLine: 'print("a")' }));
      assert.strictEqual(r, null);
      assert.strictEqual(cut('a', { linePrefix: 'foo(', lineSuffix: ')', nextNonBlankLine: 'foo(b)' }), 'a');
    });

    it('cuts a multi-line suggestion before the line that repeats the next line', () => {
      const next = '    return total';
      assert.strictEqual(cut('0\n    for v in xs:\n        total += v\n    return total', { linePrefix: '    total = ', nextNonBlankLine: next }), '0\n    for v in xs:\n        total += v');
      // and a run of lines that duplicates the following lines goes with it
      assert.strictEqual(cut('a = 1\n    b = 2\n    c = 3', { linePrefix: '    ', nextNonBlankLine: '    b = 2' }), 'a = 1');
    });

    it('drops a multi-line suggestion left with only whitespace once cut', () => {
      assert.strictEqual(cut('\n\n    b = 2\n    c = 3', { linePrefix: '    a = 1', nextNonBlankLine: '    b = 2' }), null);
    });

    it('after a cut, replaces the closers after the cursor only if the new end leaves them open', () => {
      // print(|) + 'x)' + a line that repeats the next one: cut to 'x)', whose ')' replaces the line's ')'
      const c = ctx({ linePrefix: 'print(', lineSuffix: ')', nextNonBlankLine: 'y = 2' });
      const r = applyFilters([s('x)\ny = 2')], c);
      assert.deepStrictEqual(r.map((x) => [x.text, x.replaceLength]), [['x)', 1]]);
      // the uncut suggestion ends with '2': nothing to replace before the cut
      assert.strictEqual(replaceClosingSuffix.apply(s('x)\ny = 2'), c)!.replaceLength, 0);
      // f(|) + 'a,\n    g(b)' + repeat: the cut end 'a,' closes nothing
      const r2 = applyFilters([s('a,\n    g(b)\nz = 1')], ctx({ linePrefix: 'f(', lineSuffix: ')', nextNonBlankLine: 'z = 1' }));
      assert.deepStrictEqual(r2.map((x) => [x.text, x.replaceLength]), [['a,\n    g(b)', 0]]);
    });

    it('keeps a different suggestion, a line that only resembles the next one, and ignores a blank next line', () => {
      assert.strictEqual(cut('y', { linePrefix: '    return ', nextNonBlankLine: '    return x' }), 'y');
      assert.strictEqual(cut('x = 1\n    return x + 1', { nextNonBlankLine: '    return x' }), 'x = 1\n    return x + 1');
      assert.strictEqual(cut('x', { nextNonBlankLine: '   ' }), 'x');
      assert.strictEqual(cut('x\n\ny', { nextNonBlankLine: '' }), 'x\n\ny');
    });
  });

  describe('applyFilters (the chain)', () => {
    it('runs every filter in order, drops empties and duplicates, keeps the server order', () => {
      const out = applyFilters([s('  \n'), s('"a")  '), s('"a")'), s('b')], ctx({ linePrefix: 'print(', lineSuffix: ')' }));
      assert.deepStrictEqual(out.map((x) => [x.text, x.replaceLength]), [['"a")', 1], ['b', 0]]);
    });

    it('drops the repeat of the next line after trimming', () => {
      const out = applyFilters([s('import sys\n'), s('import re')], ctx({ nextNonBlankLine: 'import sys' }));
      assert.deepStrictEqual(out.map((x) => x.text), ['import re']);
    });
  });
});
