// A typist at a human rhythm against a real server, through the extension's own engine (cache, debounce, one live
// request, filters): does a suggestion arrive before the next key? Run by benchmarks/typing.py, which starts the
// server, writes the texts, reads the server's CPU time and prints the table (python -m benchmarks --only typing).
//
// Why: the keystroke-saving figures (python -m evaluate) assume a suggestion waits at every keystroke. In the
// editor one only helps if it is on screen before the user presses the next key, and the debounce
// (pythonAutocomplete.debounceMs) sits between a key and the request. With keys ~240 ms apart (Dhakal et al.,
// CHI 2018: 168,000 typists, mean inter-key interval 238.7 ms, SD 111.6) a 150 ms debounce, the request and
// VS Code's own scheduling and rendering (~90 ms, measured by the e2e test) leave little room.
//
// The typist: keys at log-normal intervals of the given mean (the same coefficient of variation as Dhakal's),
// seeded, so every debounce types the same texts at the same moments. After each key the provider is asked
// at once, the previous ask cancelled (as VS Code cancels its token); nothing is accepted (the typist types every
// character; a suggestion that the typed text follows is then answered from the cache, as in the editor).
// A suggestion is *in time* when it arrives `VSCODE_MS` before the next key, and *right* when the typist goes on to
// type it. Env: SERVER_URL, TEXTS (a JSON file:
// [{name, text}]), OUT (the JSON result), DEBOUNCES (ms, comma-separated), TYPISTS (mean interval ms,
// comma-separated), SEED.
import * as fs from 'fs';
import { AutocompleteClient, CompletionRequest } from '../../client';
import { buildContext, DEFAULT_LIMITS, linesOf } from '../../context';
import { CompletionEngine } from '../../engine';
import { ServerMonitor } from '../../monitor';
import { sleep } from '../httpServer';

/** VS Code's own part of keystroke -> ghost text (its inline-suggestion scheduling and rendering, e2e). */
const VSCODE_MS = 90;
/** Dhakal et al.'s coefficient of variation of the inter-key interval (111.6 / 238.7). */
const IKI_CV = 111.6 / 238.7;

/** A seeded uniform [0, 1) (mulberry32). */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Inter-key intervals (ms) with the given mean, log-normal: sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2 / 2. */
function intervals(n: number, meanMs: number, seed: number): number[] {
  const u = uniform(seed);
  const sigma = Math.sqrt(Math.log(1 + IKI_CV * IKI_CV));
  const mu = Math.log(meanMs) - (sigma * sigma) / 2;
  return Array.from({ length: n }, () => {
    const z = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()); // Box-Muller
    return Math.exp(mu + sigma * z);
  });
}


interface Key {
  /** ms from the key to the engine's answer (undefined: cancelled by the next key first, or no answer). */
  answerMs?: number;
  source?: 'cache' | 'server' | 'none';
  suggestions: number;
  /** The first suggestion is what the typist goes on to type (accepting it would be right). */
  right: boolean;
  /** ms to the next key (the last key of a text: Infinity). */
  gapMs: number;
}

async function typeAll(texts: { name: string; text: string }[], debounceMs: number, meanMs: number, seed: number) {
  let requests = 0;
  const client = new AutocompleteClient({ serverUrl: process.env.SERVER_URL!, timeoutMs: 5000, clientId: `typist-${debounceMs}-${meanMs}` });
  const counting = Object.create(client) as AutocompleteClient;
  counting.complete = (req: CompletionRequest, signal?: AbortSignal) => { requests++; return client.complete(req, signal); };
  const monitor = new ServerMonitor(async () => true, { onState: () => undefined, onFirstDown: () => undefined });
  const engine = new CompletionEngine(() => counting, monitor);
  const settings = { debounceMs, maxSuggestionLength: 256, maxSuggestions: 3, timeBudgetMs: 300 };
  const keys: Key[] = [];
  for (const [t, { text }] of texts.entries()) {
    const gaps = intervals(text.length, meanMs, seed + t);
    let cancel: AbortController | undefined;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < text.length; i++) {
      const typed = linesOf(text.slice(0, i + 1));
      const last = typed.lineCount - 1;
      const ctx = buildContext(typed, last, typed.lineText(last).length, DEFAULT_LIMITS);
      cancel?.abort(); // VS Code cancels the previous ask when the next key arrives
      cancel = new AbortController();
      const key: Key = { suggestions: 0, right: false, gapMs: i + 1 < text.length ? gaps[i + 1] : Infinity };
      keys.push(key);
      const t0 = performance.now();
      pending.push(engine.suggest(ctx, settings, cancel.signal).then((res) => {
        if (res.source === 'none') return;
        key.answerMs = performance.now() - t0;
        key.source = res.source;
        key.suggestions = res.suggestions.length;
        const first = res.suggestions[0]?.text ?? '';
        key.right = first.length > 0 && res.suggestions[0].replaceLength === 0 && text.startsWith(first, i + 1);
      }));
      if (i + 1 < text.length) await sleep(gaps[i + 1]);
    }
    await Promise.all(pending);
    await sleep(500); // a pause between files
  }
  const inTime = (k: Key) => k.answerMs !== undefined && k.suggestions > 0 && k.answerMs + VSCODE_MS <= k.gapMs;
  const answered = keys.filter((k) => k.answerMs !== undefined);
  return {
    debounceMs, meanMs, chars: keys.length, requests,
    inTime: keys.filter(inTime).length,
    rightInTime: keys.filter((k) => inTime(k) && k.right).length,
    inTimeFromServer: keys.filter((k) => inTime(k) && k.source === 'server').length,
    withSuggestion: keys.filter((k) => k.answerMs !== undefined && k.suggestions > 0).length,
    answerMs: answered.filter((k) => k.source === 'server').map((k) => k.answerMs!),
    gapsMs: keys.filter((k) => k.gapMs !== Infinity).map((k) => k.gapMs),
  };
}

async function main() {
  const texts = JSON.parse(fs.readFileSync(process.env.TEXTS!, 'utf8')) as { name: string; text: string }[];
  const debounces = (process.env.DEBOUNCES ?? '150').split(',').map(Number);
  const typists = (process.env.TYPISTS ?? '239').split(',').map(Number);
  const seed = Number(process.env.SEED ?? 1);
  const out: unknown[] = [];
  for (const meanMs of typists) {
    for (const debounceMs of debounces) {
      const mark = performance.now();
      process.stdout.write(`${JSON.stringify({ start: { meanMs, debounceMs } })}\n`); // the caller reads the server's CPU here
      const r = await typeAll(texts, debounceMs, meanMs, seed);
      out.push({ ...r, wallMs: performance.now() - mark });
      process.stdout.write(`${JSON.stringify({ end: { meanMs, debounceMs } })}\n`);
    }
  }
  fs.writeFileSync(process.env.OUT!, JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
