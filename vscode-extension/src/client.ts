// HTTP client for the completion server (docs/DESIGN.md, "Server"). Pure: no `vscode` import.
//   POST /autocomplete {prompt, suffix?, kind?, max_suggestions?, input_extra?: [{filename, text}], model?}
//     -> {success: true, prediction: [str], probs: [float], id, ms, model} | {success: false, error} (4xx/503)
//   GET /health -> 200 when ready
//   POST /v1/events {type: 'view' | 'select', completion_id, choice_index} -> 200 (events.ts)
import { anySignal } from './debounce';
import type { SuggestionEvent } from './events';

export interface CompletionRequest {
  prompt: string;
  suffix?: string;
  kind?: 'word' | 'line' | 'block';
  max_suggestions?: number;
  /** The server answers within this long of receiving the request, its wait for an engine included. */
  time_budget_ms?: number;
  /** Other files' text and recently edited regions (llama.cpp /infill's convention); see extraContext.ts. */
  input_extra?: readonly { filename: string; text: string }[];
  /** Which of the server's models answers (a --models-dir NAME, serving/models.py); absent: its default. */
  model?: string;
}

// The same input_extra array (extraContext.ts prepares it once and reuses it while nothing changes) is
// serialised once: up to 512K characters of JSON per request otherwise.
const serialised = new WeakMap<object, string>();

/** The JSON body of `req`: JSON.stringify(req), with a reused input_extra array serialised only once. */
export function requestBody(req: CompletionRequest): string {
  const { input_extra, ...rest } = req;
  if (!input_extra) return JSON.stringify(rest);
  let extra = serialised.get(input_extra);
  if (extra === undefined) serialised.set(input_extra, (extra = JSON.stringify(input_extra)));
  const head = JSON.stringify(rest);
  return `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"input_extra":${extra}}`;
}

export interface CompletionResponse {
  prediction: string[];
  probs: number[];
  id: string;
  /** Server-side time. */
  ms: number;
  /** Round trip measured here. */
  latencyMs: number;
  /** Which model answered (its file's sha256 prefix); it changes when the server reloads a new model. */
  model?: string;
}

/** Why a request gave nothing: the caller reacts differently to each (only 'unreachable' marks the server down). */
export type ClientErrorKind = 'aborted' | 'timeout' | 'unreachable' | 'http' | 'bad-response';

export class ClientError extends Error {
  /** `status`: the HTTP status of an 'http' error; `type`: the server's name for it (`unknown_model`, ...). */
  constructor(readonly kind: ClientErrorKind, message: string, readonly status?: number, readonly type?: string) {
    super(message);
    this.name = 'ClientError';
  }
}

export interface ClientOptions {
  serverUrl: string;
  apiToken?: string;
  timeoutMs: number;
  /**
   * Sent as `X-Client-Id`: the server's affinity key (serving/pool.py), so that this editor's requests reach the
   * worker and slot that cache its prefix states. Without it the server keys on the TCP connection, and Node's
   * fetch spreads requests over several pooled connections and opens a new one after each aborted request.
   */
  clientId?: string;
}

export class AutocompleteClient {
  private readonly base: string;

  constructor(private readonly options: ClientOptions) {
    let url: URL;
    try {
      url = new URL(options.serverUrl);
    } catch {
      throw new ClientError('bad-response', `serverUrl is not a URL: ${JSON.stringify(options.serverUrl)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ClientError('bad-response', `serverUrl must be http(s): ${options.serverUrl}`);
    }
    this.base = url.toString().replace(/\/+$/, '');
  }

  async complete(req: CompletionRequest, signal?: AbortSignal): Promise<CompletionResponse> {
    const t0 = performance.now();
    const [res, timeout] = await this.send('/autocomplete', { method: 'POST', body: requestBody(req) }, signal);
    const body = await this.json(res, signal, timeout);
    if (!res.ok || body?.success !== true) {
      const msg = typeof body?.error === 'string' ? body.error : `HTTP ${res.status}`;
      if (!res.ok) throw new ClientError('http', `server answered ${res.status}: ${msg}`, res.status,
        typeof body?.type === 'string' ? body.type : undefined);
      throw new ClientError('bad-response', `server answered success=false: ${msg}`, res.status);
    }
    const { prediction, probs } = body;
    if (!Array.isArray(prediction) || !prediction.every((p: unknown) => typeof p === 'string')) {
      throw new ClientError('bad-response', 'response has no prediction list of strings');
    }
    const p = Array.isArray(probs) ? probs.map((x: unknown) => (typeof x === 'number' ? x : 0)) : [];
    return {
      prediction,
      probs: prediction.map((_: string, i: number) => p[i] ?? 0),
      id: typeof body.id === 'string' ? body.id : '',
      ms: typeof body.ms === 'number' ? body.ms : NaN,
      latencyMs: performance.now() - t0,
      model: typeof body.model === 'string' ? body.model : undefined,
    };
  }

  /**
   * What GET /health says of the served model, in a line for people ("personal, step 540, fine-tuned from
   * default.pt on myproject"); undefined when the server does not say (not ready, or a token it was not given).
   * Never throws except for 'aborted'.
   */
  async modelDescription(signal?: AbortSignal): Promise<string | undefined> {
    try {
      const [res] = await this.send('/health', { method: 'GET' }, signal);
      const body = await res.json().catch(() => undefined);
      return res.ok ? describeModel(body?.model) : undefined;
    } catch (e) {
      if (e instanceof ClientError && e.kind === 'aborted') throw e;
      return undefined;
    }
  }

  /**
   * What GET /models lists: the server's default model and the names a request's `model` may take (its
   * --models-dir models). Throws ClientError when it cannot say (unreachable, a 401, a server before /models).
   */
  async models(signal?: AbortSignal): Promise<{ default: string; models: string[] }> {
    const [res, timeout] = await this.send('/models', { method: 'GET' }, signal);
    const body = await this.json(res, signal, timeout);
    if (!res.ok) {
      const msg = typeof body?.error === 'string' ? body.error : `HTTP ${res.status}`;
      throw new ClientError('http', `server answered ${res.status}: ${msg}`, res.status, typeof body?.type === 'string' ? body.type : undefined);
    }
    const names = Array.isArray(body?.models) ? body.models.filter((n: unknown): n is string => typeof n === 'string') : [];
    return { default: typeof body?.default === 'string' ? body.default : '', models: names };
  }

  /** POST /v1/events (events.ts): the HTTP status, 0 when it was not answered. Never throws. */
  async postEvent(event: SuggestionEvent): Promise<number> {
    try {
      const [res] = await this.send('/v1/events', { method: 'POST', body: JSON.stringify(event) });
      await res.arrayBuffer().catch(() => undefined);
      return res.status;
    } catch {
      return 0;
    }
  }

  /** True when GET /health answers 2xx; never throws except for 'aborted'. */
  async health(signal?: AbortSignal): Promise<boolean> {
    try {
      const [res] = await this.send('/health', { method: 'GET' }, signal);
      await res.arrayBuffer().catch(() => undefined);
      return res.ok;
    } catch (e) {
      if (e instanceof ClientError && e.kind === 'aborted') throw e;
      return false;
    }
  }

  /** The response (headers read) and the timeout signal that still guards reading its body. */
  private async send(path: string, init: RequestInit, signal?: AbortSignal): Promise<[Response, AbortSignal]> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (init.body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.options.apiToken) headers.Authorization = `Bearer ${this.options.apiToken}`;
    if (this.options.clientId) headers['X-Client-Id'] = this.options.clientId;
    try {
      const res = await fetch(this.base + path, {
        ...init,
        headers,
        signal: anySignal(signal ? [signal, timeout] : [timeout]),
      });
      return [res, timeout];
    } catch (e) {
      throw this.classify(e, signal, timeout);
    }
  }

  private async json(res: Response, signal: AbortSignal | undefined, timeout: AbortSignal): Promise<any> {
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw this.classify(e, signal, timeout);
    }
    try {
      return JSON.parse(text);
    } catch {
      if (!res.ok) throw new ClientError('http', `server answered ${res.status}: ${text.slice(0, 200)}`, res.status);
      throw new ClientError('bad-response', `response is not JSON: ${text.slice(0, 200)}`, res.status);
    }
  }

  private classify(e: unknown, signal: AbortSignal | undefined, timeout: AbortSignal | undefined): ClientError {
    if (e instanceof ClientError) return e;
    if (signal?.aborted) return new ClientError('aborted', 'request cancelled');
    if (timeout?.aborted) return new ClientError('timeout', `no answer within ${this.options.timeoutMs} ms`);
    const name = (e as { name?: string })?.name;
    if (name === 'TimeoutError') return new ClientError('timeout', `no answer within ${this.options.timeoutMs} ms`);
    if (name === 'AbortError') return new ClientError('aborted', 'request cancelled');
    const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
    return new ClientError('unreachable', `cannot reach ${this.base}: ${cause?.code ?? cause?.message ?? String(e)}`);
  }
}

/** /health's `model` object as one line: its name, step, what it was fine-tuned from and on, its sha256 prefix. */
export function describeModel(model: unknown): string | undefined {
  if (!model || typeof model !== 'object') return undefined;
  const m = model as Record<string, unknown>;
  const meta = (m.meta && typeof m.meta === 'object' ? m.meta : {}) as Record<string, unknown>;
  if (typeof m.name !== 'string') return undefined;
  const base = (p: string) => p.split(/[\\/]/).filter((x) => x).pop() ?? p;
  const parts = [m.name];
  if (typeof m.step === 'number') parts.push(`step ${m.step}`);
  if (typeof meta.finetuned_from === 'string') {
    const sources = Array.isArray(meta.sources) ? meta.sources.filter((x): x is string => typeof x === 'string') : [];
    parts.push(`fine-tuned from ${base(meta.finetuned_from)}${sources.length ? ` on ${sources.map(base).join(', ')}` : ''}`);
  }
  if (typeof m.sha256 === 'string') parts.push(`sha256 ${m.sha256}`);
  return parts.join(', ');
}
