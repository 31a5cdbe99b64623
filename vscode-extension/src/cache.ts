// An LRU cache of server answers keyed on (prompt, suffix), with type-through reuse: when the user has
// typed characters that are the start of a cached suggestion, the rest of it is still a valid suggestion
// for the new prompt, so no request is needed. Pure: no `vscode` import.

export interface CachedCompletion {
  text: string;
  prob: number;
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

  private static key(prompt: string, suffix: string): string {
    return `${suffix}\u0000${prompt}`;
  }

  set(prompt: string, suffix: string, completions: CachedCompletion[]): void {
    const k = CompletionCache.key(prompt, suffix);
    this.map.delete(k);
    this.map.set(k, completions);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
  }

  /** Exact hit, else the remainders of cached suggestions the user typed into; undefined on a miss. */
  get(prompt: string, suffix: string): CachedCompletion[] | undefined {
    const exact = this.touch(CompletionCache.key(prompt, suffix));
    if (exact) return exact;
    const limit = Math.min(this.maxTypeAhead, prompt.length);
    for (let typed = 1; typed <= limit; typed++) {
      const cached = this.touch(CompletionCache.key(prompt.slice(0, prompt.length - typed), suffix));
      if (!cached) continue;
      const typedText = prompt.slice(prompt.length - typed);
      const rest = cached
        .filter((c) => c.text.length > typed && c.text.startsWith(typedText))
        .map((c) => ({ text: c.text.slice(typed), prob: c.prob }));
      if (rest.length > 0) return rest;
    }
    return undefined;
  }

  clear(): void {
    this.map.clear();
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
