// Recently edited regions: a ring buffer of ~64-line chunks taken where the user edited, saved or switched
// away (llama.vscode's "ring" of extra context, see docs/extension.md). Pure: no `vscode` import.
import { LineSource } from './context';

/** One entry of the request's `input_extra` (llama.cpp /infill's convention). */
export interface ExtraChunk {
  filename: string;
  text: string;
}

export interface RingChunk extends ExtraChunk {
  /** The document it was taken from (a URI string), so that it can be left out when that whole file is sent. */
  docKey: string;
  /** When it was taken (the caller's clock, larger = newer). */
  time: number;
  /** Its distinct non-blank lines, for the similarity check. */
  lines: Set<string>;
}

/** Distinct non-blank lines (trailing whitespace ignored): what the similarity check compares. */
export function lineSet(text: string): Set<string> {
  const s = new Set<string>();
  for (const l of text.split('\n')) {
    const t = l.trimEnd();
    if (t !== '') s.add(t);
  }
  return s;
}

/** |A ∩ B| / |A ∪ B| (1 for two empty sets). */
export function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let inter = 0;
  for (const x of small) if (large.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

/**
 * The `lines`-line window of `doc` centred on `center` (moved inward at the start/end of the document), whole
 * lines only, shrunk from the side farther from `center` until it has at most `maxChars` characters. Ends
 * with a line break. '' when the document has no such line.
 */
export function regionAround(doc: LineSource, center: number, lines = 64, maxChars = 4096): string {
  const n = doc.lineCount;
  if (n === 0 || lines <= 0 || maxChars <= 0) return '';
  const c = Math.max(0, Math.min(n - 1, Math.floor(center)));
  let start = Math.max(0, Math.min(c - Math.floor(lines / 2), n - lines));
  let end = Math.min(n, start + lines); // exclusive
  const text: string[] = [];
  for (let i = start; i < end; i++) text.push(doc.lineText(i));
  let size = text.reduce((s, t) => s + t.length + 1, 0);
  while (size > maxChars && end - start > 1) {
    // drop the line farther from the centre
    if (end - 1 - c >= c - start) {
      size -= text.pop()!.length + 1;
      end--;
    } else {
      size -= text.shift()!.length + 1;
      start++;
    }
  }
  if (size > maxChars) return text[0].slice(0, maxChars - 1) + '\n'; // one huge line
  return text.join('\n') + '\n';
}

/** What `add` did: a new chunk, one that replaced near-duplicates of it, or nothing (an exact repeat, too small). */
export type RingAddResult = 'added' | 'replaced' | 'repeat' | 'skipped';

export class RecentChunks {
  private items: RingChunk[] = []; // newest first
  private versionValue = 0;

  /**
   * @param capacity    chunks kept; the oldest one goes first
   * @param similarity  a new chunk whose line-set Jaccard similarity with an older one is at least this replaces it
   * @param minLines    chunks with fewer distinct non-blank lines are not worth keeping
   */
  constructor(readonly capacity = 16, readonly similarity = 0.9, readonly minLines = 3) {}

  /** Newest first. */
  get chunks(): readonly RingChunk[] {
    return this.items;
  }

  /** Changes whenever `chunks` does. */
  get version(): number {
    return this.versionValue;
  }

  add(chunk: { filename: string; docKey: string; text: string }, time: number): RingAddResult {
    if (this.capacity <= 0) return 'skipped';
    const lines = lineSet(chunk.text);
    if (lines.size < this.minLines) return 'skipped';
    // An exact repeat changes nothing, not even the order: the server re-indexes its context when the list of
    // chunks or their order changes.
    if (this.items.some((c) => c.text === chunk.text && c.docKey === chunk.docKey)) return 'repeat';
    // A near-duplicate is an older view of the same region: the new one (the code as it is now) replaces it,
    // so the ring never holds the same region twice and never keeps a stale copy of it.
    const before = this.items.length;
    this.items = this.items.filter((c) => jaccard(c.lines, lines) < this.similarity);
    const replaced = this.items.length < before;
    this.items.unshift({ filename: chunk.filename, docKey: chunk.docKey, text: chunk.text, time, lines });
    if (this.items.length > this.capacity) this.items.length = this.capacity;
    this.versionValue++;
    return replaced ? 'replaced' : 'added';
  }

  clear(): void {
    if (this.items.length) this.versionValue++;
    this.items = [];
  }
}
