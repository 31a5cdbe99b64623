import * as assert from 'assert';
import {
  applyFilters, dropEmpty, dropRepeatOfNextLine, FilterContext, isOnlyClosers, replaceClosingSuffix,
  Suggestion, trimTrailingWhitespace, truncateToMaxLength,
} from '../filters';

const s = (text: string): Suggestion => ({ text, prob: 0.5, replaceLength: 0 });
const ctx = (over: Partial<FilterContext> = {}): FilterContext => ({ linePrefix: '', suffix: '', nextLine: '', maxLength: 256, ...over });

describe('filters', () => {
  describe('trimTrailingWhitespace', () => {
    it('removes trailing spaces and newlines, keeps leading and inner whitespace', () => {
      assert.strictEqual(trimTrailingWhitespace.apply(s(' x = 1  \n\n'), ctx())!.text, ' x = 1');
      assert.strictEqual(trimTrailingWhitespace.apply(s('a\n    b\t'), ctx())!.text, 'a\n    b');
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
      const r = replaceClosingSuffix.apply(s('"hello")'), ctx({ linePrefix: 'print(', suffix: ')' }))!;
      assert.deepStrictEqual([r.text, r.replaceLength], ['"hello")', 1]);
    });

    it('replaces several closers and quotes: print("|") + hi") ', () => {
      const r = replaceClosingSuffix.apply(s('hi")'), ctx({ linePrefix: 'print("', suffix: '")' }))!;
      assert.strictEqual(r.replaceLength, 2);
    });

    it('replaces only the closers the suggestion leaves open: f(g(|)) + x) replaces one', () => {
      const r = replaceClosingSuffix.apply(s('x)'), ctx({ linePrefix: 'f(g(', suffix: '))' }))!;
      assert.strictEqual(r.replaceLength, 1);
    });

    it('does not replace a closer that the suggestion balances itself: f(|) + g(x)', () => {
      const r = replaceClosingSuffix.apply(s('g(x)'), ctx({ linePrefix: 'f(', suffix: ')' }))!;
      assert.strictEqual(r.replaceLength, 0);
    });

    it('leaves the suffix alone when the suggestion does not end with it', () => {
      assert.strictEqual(replaceClosingSuffix.apply(s('x, y'), ctx({ suffix: ')' }))!.replaceLength, 0);
    });

    it('does nothing when the rest of the line is not only closers', () => {
      assert.strictEqual(replaceClosingSuffix.apply(s('a) + b'), ctx({ suffix: ') + b' }))!.replaceLength, 0);
      assert.strictEqual(replaceClosingSuffix.apply(s('x)'), ctx({ suffix: '' }))!.replaceLength, 0);
    });

    it('recognises closer-only suffixes', () => {
      assert.ok(isOnlyClosers(')'));
      assert.ok(isOnlyClosers('"])  '));
      assert.ok(isOnlyClosers('):'));
      assert.ok(!isOnlyClosers(''));
      assert.ok(!isOnlyClosers(') + 1'));
    });
  });

  describe('dropRepeatOfNextLine', () => {
    it('drops a suggestion whose first line is the next line', () => {
      assert.strictEqual(dropRepeatOfNextLine.apply(s('\n    return x'), ctx({ nextLine: '    return x' })), null);
    });

    it('drops a suggestion that completes the current line into the next line', () => {
      assert.strictEqual(dropRepeatOfNextLine.apply(s('x'), ctx({ linePrefix: '    return ', nextLine: '    return x' })), null);
    });

    it('keeps a different suggestion and ignores a blank next line', () => {
      assert.ok(dropRepeatOfNextLine.apply(s('y'), ctx({ linePrefix: '    return ', nextLine: '    return x' })));
      assert.ok(dropRepeatOfNextLine.apply(s('x'), ctx({ nextLine: '   ' })));
    });
  });

  describe('applyFilters (the chain)', () => {
    it('runs every filter in order, drops empties and duplicates, keeps the server order', () => {
      const out = applyFilters([s('  \n'), s('"a")  '), s('"a")'), s('b')], ctx({ linePrefix: 'print(', suffix: ')' }));
      assert.deepStrictEqual(out.map((x) => [x.text, x.replaceLength]), [['"a")', 1], ['b', 0]]);
    });

    it('drops the repeat of the next line after trimming', () => {
      const out = applyFilters([s('import sys\n'), s('import re')], ctx({ nextLine: 'import sys' }));
      assert.deepStrictEqual(out.map((x) => x.text), ['import re']);
    });
  });
});
