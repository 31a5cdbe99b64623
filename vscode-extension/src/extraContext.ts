// The request's `input_extra`: text from the user's other open Python files and from regions they recently
// edited, most recent first, under a character budget. Everything is prepared on editor events (open,
// close, switch, edit, save) and cached, so a keystroke only reads a prepared array: its cost does not grow
// with the number of open files. Chunk texts stay identical between keystrokes (the server caches what it
// builds from each chunk by content). Pure: no `vscode` import (extension.ts feeds it the events).
import { prefixKeys } from './cache';
import { LineSource } from './context';
import { ExtraChunk, RecentChunks, regionAround, RingChunk } from './ring';

/** What the store needs of a document (extension.ts wraps a vscode.TextDocument). */
/** The notebook a cell document's key (its URI) belongs to: the URI without its cell fragment; '' for a document
 *  that is no notebook cell. */
export function notebookOfKey(key: string): string {
  if (!key.startsWith('vscode-notebook-cell:')) return '';
  const hash = key.indexOf('#');
  return hash < 0 ? key : key.slice(0, hash);
}

export interface DocumentLike extends LineSource {
  /** Identity (a URI string). */
  readonly key: string;
  /** What the server is told the chunk comes from (a workspace-relative path). */
  readonly filename: string;
  /** The whole text. */
  getText(): string;
  /** Its length in characters (without reading the text, when the document can tell). */
  charLength(): number;
}

export interface ExtraContextOptions {
  /** Budget: characters of chunk text per request (0 = send nothing). */
  maxChars: number;
  /** A file longer than this is sent as a window of this many characters (around its last edit, else its start). */
  perFileMaxChars: number;
  /** Ring buffer of recently edited regions: chunks kept (0 = no ring). */
  ringChunks: number;
  /** Lines per ring chunk. */
  ringChunkLines: number;
  /** Characters per ring chunk at most. */
  ringChunkMaxChars: number;
  /** An edit this many lines away from a document's previous edit puts the previous edit's region in the ring. */
  farEditLines: number;
  /** Chunks per request at most (the server accepts 256). */
  maxChunks: number;
}

export const DEFAULT_EXTRA_OPTIONS: ExtraContextOptions = {
  maxChars: 131072,
  perFileMaxChars: 32768,
  ringChunks: 16,
  ringChunkLines: 64,
  ringChunkMaxChars: 4096,
  farEditLines: 32,
  maxChunks: 256,
};

/** What a request carries: the chunks (never mutated; a new array when anything changes) and a key of their content. */
export interface PreparedExtra {
  readonly chunks: readonly ExtraChunk[];
  /** Equal keys = equal chunk lists (filenames and texts): part of the client cache's key. */
  readonly key: string;
  /** Characters of chunk text. */
  readonly chars: number;
}

export const NO_EXTRA: PreparedExtra = Object.freeze({ chunks: Object.freeze([]) as readonly ExtraChunk[], key: '', chars: 0 });

interface DocState {
  doc: DocumentLike;
  /** When the user last switched to or edited it (0: never, e.g. opened in the background). */
  lastUsed: number;
  /** Order of opening, to order the never-used ones (newer first). */
  openSeq: number;
  /** Line of the last edit, if it was edited since it was opened. */
  lastEditLine?: number;
  /** Its chunk as last built (dropped when the document changes). */
  chunk?: { text: string; hash: string; whole: boolean };
}

const hashOf = (s: string) => prefixKeys(s, 0)[0];

export class ExtraContext {
  private readonly docs = new Map<string, DocState>();
  private readonly ring: RecentChunks;
  private clock = 0;
  private openSeq = 0;
  private prepared: { forKey: string; extra: PreparedExtra } | undefined;
  private builds = 0;
  /** Files of the workspace not open in an editor, for requests from `forKey` (workspaceContext.ts order). */
  private workspace: { forKey: string; files: readonly { filename: string; text: string; hash: string }[] } | undefined;

  private opts: ExtraContextOptions;

  constructor(options: Partial<ExtraContextOptions> = {}) {
    this.opts = { ...DEFAULT_EXTRA_OPTIONS, ...options };
    this.ring = new RecentChunks(this.opts.ringChunks);
  }

  get options(): Readonly<ExtraContextOptions> {
    return this.opts;
  }

  /** New budget (settings changed): the next request rebuilds. The ring keeps its chunks. */
  setMaxChars(maxChars: number): void {
    if (maxChars === this.opts.maxChars) return;
    this.opts = { ...this.opts, maxChars: Math.max(0, Math.floor(maxChars)) };
    this.invalidate();
  }

  /** How many times the chunk list was (re)built: a keystroke with nothing changed builds nothing. */
  get buildCount(): number {
    return this.builds;
  }

  /** The ring buffer's chunks, newest first (for tests and the log). */
  get recent(): readonly ExtraChunk[] {
    return this.ring.chunks;
  }

  /** True when the next `chunksFor` has to build (extension.ts then builds ahead of the next keystroke). */
  needsBuild(currentKey: string | undefined): boolean {
    return this.opts.maxChars > 0 && (this.prepared === undefined || this.prepared.forKey !== (currentKey ?? ''));
  }

  opened(doc: DocumentLike): void {
    const known = this.docs.get(doc.key);
    if (known) {
      known.doc = doc;
      return;
    }
    this.docs.set(doc.key, { doc, lastUsed: 0, openSeq: ++this.openSeq });
    this.invalidate();
  }

  /** The document is closed: what the user last edited in it goes to the ring (its open-file chunk goes away). */
  closed(doc: DocumentLike): void {
    const st = this.docs.get(doc.key);
    if (!st) return;
    if (st.lastEditLine !== undefined) this.capture(doc, st.lastEditLine);
    this.docs.delete(doc.key);
    this.invalidate();
  }

  /** The user switched to this document's editor. */
  activated(doc: DocumentLike): void {
    const st = this.state(doc);
    st.lastUsed = ++this.clock;
    if (this.prepared?.forKey !== doc.key) this.invalidate();
  }

  /** The document's text changed at `line` (the first changed line). */
  changed(doc: DocumentLike, line: number): void {
    const st = this.state(doc);
    // The user moved on to another part of the file: the region they finished editing goes to the ring.
    if (st.lastEditLine !== undefined && Math.abs(line - st.lastEditLine) > this.opts.farEditLines) this.capture(doc, st.lastEditLine);
    st.lastEditLine = line;
    st.lastUsed = ++this.clock;
    st.chunk = undefined;
    // Typing in the current document changes nothing it is sent with (it is never its own extra context, nor is
    // a cell's notebook).
    const forKey = this.prepared?.forKey;
    if (forKey === undefined || (doc.key !== forKey && doc.key !== notebookOfKey(forKey))) this.invalidate();
  }

  /** Everything to send with a request from the document `currentKey` (excluded): prepared once, then cached. */
  chunksFor(currentKey: string | undefined): PreparedExtra {
    const forKey = currentKey ?? '';
    if (this.opts.maxChars <= 0) return NO_EXTRA;
    if (this.prepared?.forKey === forKey) return this.prepared.extra;
    const extra = this.build(forKey);
    this.prepared = { forKey, extra };
    return extra;
  }

  /**
   * Project files to send after the open documents and the ring, for requests from the document `forKey`, in
   * the order given (workspaceContext.ts: its imports, its folder, the rest), each at most `perFileMaxChars`
   * (its start). Files open in an editor are skipped here: they go in as open documents. Replaces what was set.
   */
  setWorkspace(forKey: string, files: readonly ExtraChunk[]): void {
    const max = this.opts.perFileMaxChars;
    const kept = files.filter((f) => f.text.trim() !== '').map((f) => {
      const text = f.text.length > max ? f.text.slice(0, max) : f.text;
      return { filename: f.filename, text, hash: hashOf(text) };
    });
    const old = this.workspace;
    if (old && old.forKey === forKey && old.files.length === kept.length
      && old.files.every((f, i) => f.filename === kept[i].filename && f.hash === kept[i].hash)) return;
    this.workspace = { forKey, files: kept };
    if (this.prepared?.forKey === forKey) this.invalidate();
  }

  clear(): void {
    this.ring.clear();
    this.workspace = undefined;
    this.invalidate();
  }

  private build(forKey: string): PreparedExtra {
    this.builds++;
    const o = this.opts;
    // candidates: the other open documents and the ring's chunks, newest first
    type Item = { time: number; seq: number; doc?: DocState; ring?: RingChunk };
    const items: Item[] = [];
    // a notebook's other cells are in its cell's prompt and suffix already (notebook.ts): not extra context for it
    const notebook = notebookOfKey(forKey);
    const other = (key: string) => key !== forKey && (notebook === '' || notebookOfKey(key) !== notebook);
    for (const st of this.docs.values()) if (other(st.doc.key)) items.push({ time: st.lastUsed, seq: st.openSeq, doc: st });
    for (const r of this.ring.chunks) if (r.docKey === forKey || other(r.docKey)) items.push({ time: r.time, seq: 0, ring: r });
    items.sort((a, b) => b.time - a.time || b.seq - a.seq);

    const chunks: ExtraChunk[] = [];
    const hashes: string[] = [];
    let left = o.maxChars;
    for (const it of items) {
      if (chunks.length >= o.maxChunks || left <= 0) break;
      if (it.doc) {
        // the chunk's size is known (at most) before its text is read: a file that cannot fit is never read
        if (Math.min(it.doc.doc.charLength(), o.perFileMaxChars) > left) continue;
        const c = this.docChunk(it.doc);
        if (c.text === '' || c.text.length > left) continue;
        chunks.push({ filename: it.doc.doc.filename, text: c.text });
        hashes.push(c.hash);
        left -= c.text.length;
      } else if (it.ring) {
        const r = it.ring;
        // a region of a file that is sent whole anyway adds nothing
        const owner = this.docs.get(r.docKey);
        if (owner && r.docKey !== forKey && owner.doc.charLength() <= o.perFileMaxChars) continue;
        if (r.text.length > left) continue;
        chunks.push({ filename: r.filename, text: r.text });
        hashes.push(hashOf(r.text));
        left -= r.text.length;
      }
    }
    // then the project's files nobody opened (workspaceContext.ts), while the budget lasts
    if (this.workspace?.forKey === forKey) {
      const open = new Set([...this.docs.values()].map((st) => st.doc.filename));
      for (const f of this.workspace.files) {
        if (chunks.length >= o.maxChunks || left <= 0) break;
        if (open.has(f.filename) || f.text.length > left) continue;
        chunks.push({ filename: f.filename, text: f.text });
        hashes.push(f.hash);
        left -= f.text.length;
      }
    }
    const key = chunks.length ? hashOf(chunks.map((c, i) => `${c.filename}\u0000${hashes[i]}`).join('\u0001')) : '';
    return Object.freeze({ chunks: Object.freeze(chunks), key, chars: o.maxChars - left });
  }

  /** The document's chunk: its whole text, or for a long one a window around its last edit (else its start). */
  private docChunk(st: DocState): { text: string; hash: string; whole: boolean } {
    if (st.chunk) return st.chunk;
    const max = this.opts.perFileMaxChars;
    const len = st.doc.charLength();
    let text: string;
    let whole = true;
    if (len <= max) {
      text = st.doc.getText();
    } else {
      whole = false;
      text = windowAround(st.doc, st.lastEditLine ?? 0, max);
    }
    st.chunk = { text, hash: hashOf(text), whole };
    return st.chunk;
  }

  private capture(doc: DocumentLike, line: number): void {
    const o = this.opts;
    if (o.ringChunks <= 0) return;
    const text = regionAround(doc, line, o.ringChunkLines, o.ringChunkMaxChars);
    const res = this.ring.add({ filename: doc.filename, docKey: doc.key, text }, ++this.clock);
    if (res !== 'skipped') this.invalidate();
  }

  private state(doc: DocumentLike): DocState {
    this.opened(doc); // known: keeps the newest wrapper
    return this.docs.get(doc.key)!;
  }

  private invalidate(): void {
    this.prepared = undefined;
  }
}

/**
 * `text` with Windows (`\r\n`) and old Mac (`\r`) line ends as `\n`: what the server reads them as (it
 * normalises every text it is sent), so a CRLF file's `\r`s take no room in the character budgets and are
 * not sent.
 */
export function withLf(text: string): string {
  return text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
}

/**
 * Whole lines around `center` with at most `maxChars` characters: a quarter of the budget before the centre
 * line, the rest after it (what follows an edit is what the user is likely to use next), moved inward at the
 * start/end of the document.
 */
export function windowAround(doc: LineSource, center: number, maxChars: number): string {
  const n = doc.lineCount;
  if (n === 0 || maxChars <= 0) return '';
  const c = Math.max(0, Math.min(n - 1, Math.floor(center)));
  const before: string[] = []; // lines above the centre, nearest first
  const after: string[] = []; // the centre line and those below it
  let start = c;
  let end = c; // exclusive
  let size = 0;
  let nextUp = start > 0 ? doc.lineText(start - 1) : undefined;
  let nextDown = end < n ? doc.lineText(end) : undefined;
  const up = (limit: number) => {
    while (nextUp !== undefined && size < limit && size + nextUp.length + 1 <= maxChars) {
      size += nextUp.length + 1;
      before.push(nextUp);
      start--;
      nextUp = start > 0 ? doc.lineText(start - 1) : undefined;
    }
  };
  // a quarter before, then after, then whatever is left above
  up(maxChars / 4);
  while (nextDown !== undefined && size + nextDown.length + 1 <= maxChars) {
    size += nextDown.length + 1;
    after.push(nextDown);
    end++;
    nextDown = end < n ? doc.lineText(end) : undefined;
  }
  up(Infinity);
  const lines = before.reverse().concat(after);
  return lines.length ? lines.join('\n') + '\n' : '';
}
