import * as assert from 'assert';
import { linesOf } from '../context';
import { jaccard, lineSet, RecentChunks, regionAround } from '../ring';

/** n distinct lines "<tag> line i" */
const block = (tag: string, n: number, from = 0) => Array.from({ length: n }, (_, i) => `${tag} line ${from + i}`).join('\n') + '\n';
const chunk = (text: string, filename = 'a.py') => ({ filename, docKey: `file:///${filename}`, text });

describe('ring: similarity and regions', () => {
  it('jaccard compares the sets of non-blank lines, ignoring trailing whitespace and repeats', () => {
    assert.strictEqual(jaccard(lineSet('a\nb\nc\n'), lineSet('a\nb\nc')), 1);
    assert.strictEqual(jaccard(lineSet('a\nb  \n\n\nb\n'), lineSet('b\na')), 1);
    assert.strictEqual(jaccard(lineSet('a\nb\nc\nd'), lineSet('a\nb\nc\ne')), 3 / 5);
    assert.strictEqual(jaccard(lineSet('a'), lineSet('b')), 0);
    assert.strictEqual(jaccard(lineSet(''), lineSet('\n')), 1);
  });

  it('regionAround takes `lines` lines centred on the line, moved inward at the ends, ending with a line break', () => {
    const doc = linesOf(block('L', 200).slice(0, -1));
    const mid = regionAround(doc, 100, 64, 1e9).split('\n');
    assert.strictEqual(mid.length, 65); // 64 lines + '' after the final line break
    assert.strictEqual(mid[0], 'L line 68');
    assert.strictEqual(mid[63], 'L line 131');
    assert.strictEqual(regionAround(doc, 3, 64, 1e9).split('\n')[0], 'L line 0');
    assert.strictEqual(regionAround(doc, 199, 64, 1e9).split('\n')[63], 'L line 199');
    assert.strictEqual(regionAround(doc, 199, 64, 1e9).split('\n')[0], 'L line 136');
    assert.strictEqual(regionAround(linesOf('a\nb'), 0, 64, 1e9), 'a\nb\n');
  });

  it('regionAround shrinks to maxChars from the side farther from the centre, keeping the centre line', () => {
    const doc = linesOf(block('L', 200).slice(0, -1));
    const r = regionAround(doc, 100, 64, 300);
    assert.ok(r.length <= 300, `${r.length}`);
    assert.ok(r.includes('L line 100\n'));
    const lines = r.split('\n').slice(0, -1).map((l) => Number(l.split(' ').pop()));
    assert.ok(Math.abs(100 - lines[0] - (lines.at(-1)! - 100)) <= 1, `not centred: ${lines[0]}..${lines.at(-1)}`);
    assert.strictEqual(regionAround(linesOf('x'.repeat(50)), 0, 64, 10), 'x'.repeat(9) + '\n');
  });
});

describe('ring: RecentChunks', () => {
  it('keeps newest first and evicts the oldest beyond its capacity', () => {
    const ring = new RecentChunks(3);
    for (let i = 0; i < 5; i++) assert.strictEqual(ring.add(chunk(block(`c${i}`, 10)), i + 1), 'added');
    assert.deepStrictEqual(ring.chunks.map((c) => c.text.split(' ')[0]), ['c4', 'c3', 'c2']);
    assert.deepStrictEqual(ring.chunks.map((c) => c.time), [5, 4, 3]);
  });

  it('a near-duplicate of an existing chunk is not added twice: the newer view of the region replaces it', () => {
    const ring = new RecentChunks(16);
    const old = block('f', 40);
    ring.add(chunk(old), 1);
    ring.add(chunk(block('other', 10)), 2);
    // the user edited 1 of 40 lines: Jaccard 39/41 = 0.95
    const edited = old.replace('f line 7\n', 'f line 7 edited\n');
    assert.ok(jaccard(lineSet(old), lineSet(edited)) >= 0.9);
    assert.strictEqual(ring.add(chunk(edited), 3), 'replaced');
    assert.strictEqual(ring.chunks.length, 2);
    assert.strictEqual(ring.chunks[0].text, edited);
    assert.ok(!ring.chunks.some((c) => c.text === old));
  });

  it('an exact repeat is not added again and keeps its place; a clearly different chunk of the same file is added', () => {
    const ring = new RecentChunks(16);
    ring.add(chunk(block('a', 10)), 1);
    ring.add(chunk(block('b', 10)), 2);
    const v = ring.version;
    assert.strictEqual(ring.add(chunk(block('a', 10)), 3), 'repeat');
    assert.deepStrictEqual(ring.chunks.map((c) => c.text[0]), ['b', 'a']);
    assert.strictEqual(ring.version, v);
    // 10 shared lines of 20 distinct: Jaccard 0.5, kept apart
    assert.strictEqual(ring.add(chunk(block('a', 10) + block('a', 10, 10)), 4), 'added');
    assert.strictEqual(ring.chunks.length, 3);
  });

  it('skips chunks with fewer than 3 distinct non-blank lines, and everything when its capacity is 0', () => {
    const ring = new RecentChunks(16);
    assert.strictEqual(ring.add(chunk('x = 1\n\n\nx = 1\ny\n'), 1), 'skipped');
    assert.strictEqual(ring.chunks.length, 0);
    assert.strictEqual(new RecentChunks(0).add(chunk(block('a', 10)), 1), 'skipped');
  });
});
