import * as assert from 'assert';
import { CompletionCache, prefixKeys } from '../cache';

const c = (text: string, prob = 0.5) => ({ text, prob });

describe('cache', () => {
  it('returns what was stored for the same prompt and suffix, and nothing for another suffix', () => {
    const cache = new CompletionCache();
    cache.set('x = os.', '', [c('path')]);
    assert.deepStrictEqual(cache.get('x = os.', ''), [c('path')]);
    assert.strictEqual(cache.get('x = os.', ')'), undefined);
    assert.strictEqual(cache.get('y = os.', ''), undefined);
  });

  it('tells long suffixes (the next lines, kept as hashes) apart, even when only their last character differs', () => {
    const cache = new CompletionCache();
    const below = '\n' + Array.from({ length: 20 }, (_, i) => `    line_${i} = ${i}`).join('\n');
    cache.set('x = os.', ')' + below, [c('path')]);
    cache.set('x = os.', ')' + below.slice(0, -1) + 'X', [c('sep')]);
    // an equal suffix built anew (another string object) hits; typing through works with it
    assert.deepStrictEqual(cache.get('x = os.', [')', below].join('')), [c('path')]);
    assert.deepStrictEqual(cache.get('x = os.pa', ')' + below), [c('th')]);
    assert.deepStrictEqual(cache.get('x = os.', ')' + below.slice(0, -1) + 'X'), [c('sep')]);
    assert.strictEqual(cache.get('x = os.', ')' + below.slice(0, -1) + 'Y'), undefined);
    assert.strictEqual(cache.get('x = os.', ')' + below + '\n'), undefined);
  });

  it('typing through a suggestion gives the rest of it without a new entry', () => {
    const cache = new CompletionCache();
    cache.set('x = os.', '', [c('path.join(a, b)', 0.7), c('pathsep', 0.2), c('getcwd()', 0.1)]);
    assert.deepStrictEqual(cache.get('x = os.pa', ''), [c('th.join(a, b)', 0.7), c('thsep', 0.2)]);
    assert.deepStrictEqual(cache.get('x = os.path.j', ''), [c('oin(a, b)', 0.7)]);
    assert.strictEqual(cache.size, 1);
  });

  it('a typed-into remainder keeps its answer\'s id and index', () => {
    const cache = new CompletionCache();
    cache.set('x = os.', '', [{ text: 'path', prob: 0.6, id: 'a1', index: 0 }, { text: 'pardir', prob: 0.3, id: 'a1', index: 1 }]);
    assert.deepStrictEqual(cache.get('x = os.pat', ''), [{ text: 'h', prob: 0.6, id: 'a1', index: 0 }]);
  });

  it('misses when the typed characters leave every suggestion, or complete it exactly', () => {
    const cache = new CompletionCache();
    cache.set('x = os.', '', [c('path')]);
    assert.strictEqual(cache.get('x = os.q', ''), undefined);
    assert.strictEqual(cache.get('x = os.path', ''), undefined);
  });

  it('looks back at most maxTypeAhead characters', () => {
    const cache = new CompletionCache(10, 3);
    cache.set('a', '', [c('bcdefg')]);
    assert.deepStrictEqual(cache.get('abcd', ''), [c('efg')]);
    assert.strictEqual(cache.get('abcde', ''), undefined);
  });

  it('evicts the least recently used entry, where a read counts as a use', () => {
    const cache = new CompletionCache(2);
    cache.set('p1', '', [c('a')]);
    cache.set('p2', '', [c('b')]);
    assert.ok(cache.get('p1', ''));
    cache.set('p3', '', [c('c')]);
    assert.ok(cache.get('p1', ''));
    assert.strictEqual(cache.get('p2', ''), undefined);
    assert.ok(cache.get('p3', ''));
    assert.strictEqual(cache.size, 2);
  });

  it('keys on a short hash: a 32K prompt costs a few bytes of key, and prompts differing far back do not collide', () => {
    const head = 'x = 1\n'.repeat(5000);
    const a = head + 'def f():\n    return os.';
    const b = 'y' + a.slice(1); // same length, same tail, one character different at the very start
    const cache = new CompletionCache();
    assert.ok(cache.key(a, '').length < 40, cache.key(a, ''));
    assert.notStrictEqual(cache.key(a, ''), cache.key(b, ''));
    cache.set(a, '', [c('path')]);
    assert.deepStrictEqual(cache.get(a, ''), [c('path')]);
    assert.strictEqual(cache.get(b, ''), undefined);
    assert.deepStrictEqual(cache.get(a + 'pa', ''), [c('th')]); // type-through on a long prompt
  });

  it('the one-pass prefix keys equal the keys of the sliced prompts', () => {
    const s = 'import os\nprint(os.path.join("a", "b"))\n' + 'é😀\t';
    const keys = prefixKeys(s, 12);
    assert.strictEqual(keys.length, 13);
    for (let k = 0; k <= 12; k++) assert.strictEqual(keys[k], prefixKeys(s.slice(0, s.length - k), 0)[0], `k=${k}`);
    assert.strictEqual(new Set(keys).size, keys.length);
    assert.deepStrictEqual(prefixKeys('ab', 10), [prefixKeys('ab', 0)[0], prefixKeys('a', 0)[0], prefixKeys('', 0)[0]]);
  });

  it('a different salt (another extra context) is another entry', () => {
    const cache = new CompletionCache();
    cache.set('x = ', '', [c('1')], 'extra-A');
    assert.deepStrictEqual(cache.get('x = ', '', 'extra-A'), [c('1')]);
    assert.strictEqual(cache.get('x = ', '', 'extra-B'), undefined);
    assert.strictEqual(cache.get('x = ', ''), undefined);
  });

  it('rejects a capacity below 1', () => {
    assert.throws(() => new CompletionCache(0), /capacity/);
  });
});
