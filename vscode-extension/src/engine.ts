// From a cursor context to filtered suggestions: cache first, then debounce, then one live request
// (a newer one aborts it), then the filter chain. Pure: no `vscode` import; the providers are thin wrappers.
import { AutocompleteClient, ClientError, CompletionRequest } from './client';
import { CachedCompletion, CompletionCache } from './cache';
import { CompletionContext } from './context';
import { NO_EXTRA, PreparedExtra } from './extraContext';
import { delay, LatestRequest, anySignal } from './debounce';
import { applyFilters, Suggestion } from './filters';
import { ServerMonitor } from './monitor';

export interface EngineSettings {
  debounceMs: number;
  maxSuggestionLength: number;
  maxSuggestions: number;
  /** The server's latency budget for an answer, counted from its arrival (`time_budget_ms`); 0 or absent: none. */
  timeBudgetMs?: number;
  /** The server's model to ask by name (`model`: its --models-dir NAME.pt); empty or absent: its default. */
  model?: string;
}

/** A cursor context plus what is sent with it from other files (`input_extra`). */
export interface RequestContext extends CompletionContext {
  extra?: PreparedExtra;
}

export interface EngineResult {
  suggestions: Suggestion[];
  /** Where they came from: 'cache' (no request), 'server', or 'none' (cancelled, down, error). */
  source: 'cache' | 'server' | 'none';
  /** The server's request id and raw predictions, for the log. */
  id?: string;
  raw?: string[];
}

interface Answer {
  completions: CachedCompletion[];
  id: string;
  raw: string[];
  ms: number;
  latencyMs: number;
}

/** `p`'s value, or undefined as soon as `signal` aborts (the shared request itself goes on). */
function untilAborted<T>(p: Promise<T | undefined>, signal?: AbortSignal): Promise<T | undefined> {
  if (!signal) return p;
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => {
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    });
  });
}

export class CompletionEngine {
  readonly cache = new CompletionCache();
  private readonly latest = new LatestRequest();
  private inflight: { key: string; done: Promise<Answer | undefined> } | undefined;
  /** Per model name asked for ('' the server's default): the model file that answered (the server's `model`
   *  field, a sha256 prefix), once one did. */
  private readonly models = new Map<string, string>();
  /** The last model that answered, as reported to `onModel`. */
  private model: string | undefined;

  constructor(
    private readonly client: () => AutocompleteClient,
    private readonly monitor: ServerMonitor,
    private readonly log: (line: string) => void = () => undefined,
    /** Called for a 4xx answer (e.g. 401 for a wrong apiToken), so the UI can tell the user once. */
    private readonly onRejected: (err: ClientError) => void = () => undefined,
    /** Called with the server's `model` (and the name asked for, '' for the default) when the first answer names
     *  it and whenever the answering model changes (a reload, or a file of another workspace folder's model). */
    private readonly onModel: (model: string, name: string) => void = () => undefined,
  ) {}

  async suggest(ctx: RequestContext, settings: EngineSettings, cancel?: AbortSignal): Promise<EngineResult> {
    const filterCtx = { linePrefix: ctx.linePrefix, lineSuffix: ctx.lineSuffix, nextNonBlankLine: ctx.nextNonBlankLine, maxLength: settings.maxSuggestionLength };
    const toSuggestions = (cs: CachedCompletion[]) =>
      applyFilters(cs.map((c) => ({ text: c.text, prob: c.prob, replaceLength: 0, id: c.id, index: c.index })), filterCtx);

    // an answer depends on the extra context and the model asked for too: they salt the cache key
    const extra = ctx.extra ?? NO_EXTRA;
    const salt = settings.model ? `${settings.model}\u0001${extra.key}` : extra.key;
    const cached = this.cache.get(ctx.prompt, ctx.suffix, salt);
    if (cached) {
      this.latest.cancel(); // an older request's answer is no longer wanted
      return { suggestions: toSuggestions(cached), source: 'cache' };
    }
    if (!this.monitor.available) return { suggestions: [], source: 'none' };

    // The inline and the list provider ask for the same position at once ('both' mode): share one request.
    const key = this.cache.key(ctx.prompt, ctx.suffix, salt);
    if (this.inflight?.key === key) {
      const res = await untilAborted(this.inflight.done, cancel);
      return res ? { suggestions: toSuggestions(res.completions), source: 'server', id: res.id, raw: res.raw } : { suggestions: [], source: 'none' };
    }
    const done = this.request(ctx, settings, salt, cancel);
    const entry = { key, done };
    this.inflight = entry;
    const res = await done;
    if (this.inflight === entry) this.inflight = undefined;
    if (!res) return { suggestions: [], source: 'none' };
    const suggestions = toSuggestions(res.completions);
    this.log(`response id=${res.id} server_ms=${res.ms.toFixed(1)} latency_ms=${res.latencyMs.toFixed(1)} prompt_chars=${ctx.prompt.length} suffix_chars=${ctx.suffix.length} extra=${extra.chunks.length}/${extra.chars} raw=${JSON.stringify(res.raw)} shown=${JSON.stringify(suggestions.map((s) => s.text))}`);
    return { suggestions, source: 'server', id: res.id, raw: res.raw };
  }

  /** Debounce, then one request (aborting the previous one); undefined when cancelled or failed. */
  private async request(ctx: RequestContext, settings: EngineSettings, salt: string, cancel?: AbortSignal): Promise<Answer | undefined> {
    const ac = this.latest.begin();
    const signal = cancel ? anySignal([cancel, ac.signal]) : ac.signal;
    if (!(await delay(settings.debounceMs, signal))) return undefined;

    this.monitor.requestStarted();
    try {
      const extra = ctx.extra ?? NO_EXTRA;
      const req: CompletionRequest = { prompt: ctx.prompt, suffix: ctx.suffix, max_suggestions: settings.maxSuggestions };
      if (extra.chunks.length) req.input_extra = extra.chunks;
      if (settings.timeBudgetMs) req.time_budget_ms = settings.timeBudgetMs;
      if (settings.model) req.model = settings.model;
      const res = await this.client().complete(req, signal);
      this.monitor.requestEnded({ latencyMs: res.latencyMs });
      const completions = res.prediction.map((text, i) => ({ text, prob: res.probs[i], id: res.id || undefined, index: i }));
      const name = settings.model ?? '';
      const before = this.models.get(name);
      if (res.model !== undefined && res.model !== before) {
        // The server now answers this name with another model (it reloaded a new file: make train): the cached
        // answers are the old model's.
        if (before !== undefined) {
          this.cache.clear();
          this.log(`server model changed: ${before} -> ${res.model}; cached answers dropped`);
        }
        this.models.set(name, res.model);
      }
      if (res.model !== undefined && res.model !== this.model) {
        this.model = res.model;
        this.onModel(res.model, name);
      }
      this.cache.set(ctx.prompt, ctx.suffix, completions, salt);
      return { completions, id: res.id, raw: res.prediction, ms: res.ms, latencyMs: res.latencyMs };
    } catch (e) {
      const err = e instanceof ClientError ? e : new ClientError('bad-response', String(e));
      if (err.kind === 'unreachable' || (err.kind === 'http' && err.status === 503)) {
        this.monitor.requestEnded({ down: err.message });
      } else {
        this.monitor.requestEnded({});
        if (err.kind !== 'aborted') this.log(`request failed (${err.kind}): ${err.message}`);
        if (err.kind === 'http') this.onRejected(err);
      }
      return undefined;
    }
  }

  cancel(): void {
    this.latest.cancel();
  }
}
