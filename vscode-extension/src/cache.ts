// An LRU cache of server answers keyed on (prompt, suffix, salt), with type-through reuse: when the user has
// typed characters that are the start of a cached suggestion, the rest of it is still a valid suggestion
// for the new prompt, so no request is needed. Pure: no `vscode` import.
//
// Prompts are long (up to promptMaxChars, 32K by default), so entries are keyed on a 64-bit hash of the
// prompt plus its length, never on the prompt itself: 200 entries cost a few KB, not 200 prompts. One pass
// over the prompt gives the hashes of the prompt and of its prefixes the type-through look-back needs.
// The suffix (the rest of the line and the next lines, up to 4K characters) is hashed too, once per
// keystroke: in the key as text it would be hashed again by the Map for each of the 65 type-through probes.

export interface CachedCompletion {
  text: string;
  prob: number;
  /** The answer's id and the completion's index in it (events.ts); a typed-into remainder keeps both. */
  id?: string;
  index?: number;
}

/** Hash states of s.slice(0, n) for n = s.length - back .. s.length (index k: the prefix s.length - k), as keys. */
export function prefixKeys(s: string, back: number): string[] {
  const n = s.length;
  const from = Math.max(0, n - Math.max(0, back));
  const keys: string[] = new Array(n - from + 1);
  // two 32-bit multiplicative lanes (cyrb53's), kept in locals: this loop is the whole cost (~1 ns a character)
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < from; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  for (let i = from; i < n; i++) {
    keys[n - i] = finish(h1, h2, i);
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  keys[0] = finish(h1, h2, n);
  return keys;
}

/** cyrb53's finalisation of the two lanes, then the length: equal keys need equal lengths too. */
function finish(h1: number, h2: number, len: number): string {
  const a = (Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)) >>> 0;
  const b = (Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)) >>> 0;
  return `${len}:${a.toString(36)}.${b.toString(36)}`;
}

export class CompletionCache {
  private readonly map = new Map<string, CachedCompletion[]>();

  /**
   * @param capacity   entries kept (least recently used ones go first)
   * @param maxTypeAhead  how many typed characters to look back for a cached prompt
   */
  constructor(readonly capacity = 200, readonly maxTypeAhead = 64) {
    if (!(capacity >= 1)) throw new RangeError('capacity must be >= 1');
  }

  get size(): number {
    return this.map.size;
  }

  // the last prompt's keys: a keystroke asks for the same prompt's key several times (get, in-flight, set)
  private memo: { prompt: string; keys: string[] } | undefined;
  // the last suffix's key: it stays the same while the user types on a line
  private suffixMemo: { suffix: string; key: string } | undefined;

  /** The map key of (prompt, suffix, salt): what else the answer depends on goes into `salt`. */
  key(prompt: string, suffix: string, salt = ''): string {
    return CompletionCache.join(this.promptKeys(prompt, 0)[0], this.suffixKey(suffix), salt);
  }

  /** The suffix as a key: short ones (the rest of a line) as they are, longer ones as their hash. */
  private suffixKey(suffix: string): string {
    if (suffix.length <= 64) return suffix;
    if (this.suffixMemo?.suffix !== suffix) this.suffixMemo = { suffix, key: `#${prefixKeys(suffix, 0)[0]}` };
    return this.suffixMemo.key;
  }

  /** prefixKeys(prompt, back), remembered for the last prompt. */
  private promptKeys(prompt: string, back: number): string[] {
    if (this.memo && this.memo.keys.length > back && this.memo.prompt === prompt) return this.memo.keys;
    const keys = prefixKeys(prompt, Math.max(back, Math.min(this.maxTypeAhead, prompt.length)));
    this.memo = { prompt, keys };
    return keys;
  }

  private static join(promptKey: string, suffixKey: string, salt: string): string {
    return `${salt}\u0000${suffixKey}\u0000${promptKey}`;
  }

  set(prompt: string, suffix: string, completions: CachedCompletion[], salt = ''): void {
    const k = this.key(prompt, suffix, salt);
    this.map.delete(k);
    this.map.set(k, completions);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
  }

  /** Exact hit, else the remainders of cached suggestions the user typed into; undefined on a miss. */
  get(prompt: string, suffix: string, salt = ''): CachedCompletion[] | undefined {
    const limit = Math.min(this.maxTypeAhead, prompt.length);
    const keys = this.promptKeys(prompt, limit);
    const suffixKey = this.suffixKey(suffix);
    const exact = this.touch(CompletionCache.join(keys[0], suffixKey, salt));
    if (exact) return exact;
    for (let typed = 1; typed <= limit; typed++) {
      const cached = this.touch(CompletionCache.join(keys[typed], suffixKey, salt));
      if (!cached) continue;
      const typedText = prompt.slice(prompt.length - typed);
      const rest = cached
        .filter((c) => c.text.length > typed && c.text.startsWith(typedText))
        .map((c) => ({ ...c, text: c.text.slice(typed) }));
      if (rest.length > 0) return rest;
    }
    return undefined;
  }

  clear(): void {
    this.map.clear();
    this.memo = undefined;
    this.suffixMemo = undefined;
  }

  private touch(k: string): CachedCompletion[] | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
}
