import * as assert from 'assert';
import { AutocompleteClient } from '../client';
import { buildContext, linesOf } from '../context';
import { CompletionEngine } from '../engine';
import { ServerMonitor, ServerState } from '../monitor';
import { deadPort, ok, sendJson, sleep, TestServer } from './httpServer';

const settings = { debounceMs: 10, maxSuggestionLength: 256, maxSuggestions: 3 };

function setup(url: string) {
  const states: ServerState[] = [];
  const notices: string[] = [];
  const client = new AutocompleteClient({ serverUrl: url, timeoutMs: 2000 });
  const monitor = new ServerMonitor(() => client.health(), {
    onState: (s) => states.push(s),
    onFirstDown: (d) => notices.push(d),
  }, 50);
  const engine = new CompletionEngine(() => client, monitor);
  return { states, notices, monitor, engine };
}

const at = (text: string) => {
  const lines = text.split('\n');
  return buildContext(linesOf(text), lines.length - 1, lines.at(-1)!.length, LIMITS);
};
const LIMITS = { promptMaxChars: 32768, suffixLines: 20, suffixMaxChars: 4096 };
/** The context with the cursor just after the first `|` of `text` (which is taken out). */
const atBar = (text: string) => {
  const before = text.slice(0, text.indexOf('|')).split('\n');
  return buildContext(linesOf(text.replace('|', '')), before.length - 1, before.at(-1)!.length, LIMITS);
};

describe('engine (real HTTP server)', () => {
  let server: TestServer;
  let { states, notices, monitor, engine } = setup('http://127.0.0.1:1');
  beforeEach(async () => {
    server = await new TestServer((r, res) => {
      const { prompt } = JSON.parse(r.body || '{}');
      if (r.url === '/health') return sendJson(res, 200, {});
      sendJson(res, 200, ok(prompt?.endsWith('os.') ? ['path.join(a, b)  \n', 'getcwd()'] : ['x']));
    }).start();
    ({ states, notices, monitor, engine } = setup(server.url));
  });
  afterEach(async () => {
    monitor.dispose();
    await server.stop();
  });

  it('asks the server once, then serves the same context and typed-through text from the cache', async () => {
    const r1 = await engine.suggest(at('import os\np = os.'), settings);
    assert.strictEqual(r1.source, 'server');
    assert.deepStrictEqual(r1.suggestions.map((s) => s.text), ['path.join(a, b)', 'getcwd()']); // trailing whitespace trimmed
    assert.deepStrictEqual(JSON.parse(server.received[0].body), { prompt: 'import os\np = os.', suffix: '', max_suggestions: 3 });
    const r2 = await engine.suggest(at('import os\np = os.'), settings);
    const r3 = await engine.suggest(at('import os\np = os.path.j'), settings);
    assert.deepStrictEqual([r2.source, r3.source], ['cache', 'cache']);
    assert.deepStrictEqual(r3.suggestions.map((s) => s.text), ['oin(a, b)']);
    assert.strictEqual(server.received.length, 1);
    assert.deepStrictEqual(states, ['working', 'ready']);
    assert.ok(monitor.lastLatencyMs! >= 0);
  });

  it('names each suggestion\'s answer and place in it, also when it comes from the cache (suggestion events)', async () => {
    server.setHandler((_r, res) => sendJson(res, 200, { ...ok(['path.join(a, b)', 'getcwd()']), id: 'answer-1' }));
    const r1 = await engine.suggest(at('import os\np = os.'), settings);
    assert.deepStrictEqual(r1.suggestions.map((s) => [s.text, s.id, s.index]), [['path.join(a, b)', 'answer-1', 0], ['getcwd()', 'answer-1', 1]]);
    const r2 = await engine.suggest(at('import os\np = os.g'), settings); // typed into the second
    assert.deepStrictEqual([r2.source, r2.suggestions.map((s) => [s.text, s.id, s.index])], ['cache', [['etcwd()', 'answer-1', 1]]]);
  });

  it('drops its cached answers when the server answers with another model (a reload)', async () => {
    const models: string[] = [];
    const client = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 });
    engine = new CompletionEngine(() => client, monitor, () => undefined, () => undefined, (m) => models.push(m));
    let model = '34b5509aae956e51';
    server.setHandler((r, res) => {
      if (r.url === '/health') return sendJson(res, 200, {});
      sendJson(res, 200, { ...ok([`by ${model}`]), model });
    });
    assert.strictEqual((await engine.suggest(at('a = 1'), settings)).source, 'server');
    assert.strictEqual((await engine.suggest(at('b = 2'), settings)).source, 'server');
    assert.strictEqual((await engine.suggest(at('a = 1'), settings)).source, 'cache'); // the same model: kept
    model = 'f24ef680e639a3a6';
    const r = await engine.suggest(at('c = 3'), settings);
    assert.deepStrictEqual(r.suggestions.map((s) => s.text), ['by f24ef680e639a3a6']);
    const again = await engine.suggest(at('a = 1'), settings); // cached by the old model: asked again
    assert.deepStrictEqual([again.source, again.suggestions[0].text], ['server', 'by f24ef680e639a3a6']);
    assert.strictEqual((await engine.suggest(at('c = 3'), settings)).source, 'cache'); // the new model's answer stays
    assert.strictEqual(server.received.length, 4);
    assert.deepStrictEqual(models, ['34b5509aae956e51', 'f24ef680e639a3a6']); // the first model, then each change
  });

  it('keeps the answers of each model asked for apart, and two folders\' models do not drop each other\'s', async () => {
    const reported: string[] = [];
    const client = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 });
    engine = new CompletionEngine(() => client, monitor, () => undefined, () => undefined, (m, name) => reported.push(`${name}:${m}`));
    const shas: Record<string, string> = { '': 'aaaaaaaaaaaaaaaa', billing: 'bbbbbbbbbbbbbbbb' };
    server.setHandler((r, res) => {
      if (r.url === '/health') return sendJson(res, 200, {});
      const model = JSON.parse(r.body).model ?? '';
      sendJson(res, 200, { ...ok([`by ${model || 'default'}`]), model: shas[model] });
    });
    const billing = { ...settings, model: 'billing' };
    const text = async (s: typeof settings) => (await engine.suggest(at('a = 1'), s)).suggestions[0]?.text;
    assert.strictEqual(await text(settings), 'by default');
    assert.strictEqual(await text(billing), 'by billing'); // the same prompt for another model: asked, not cached
    assert.strictEqual(server.received.length, 2);
    assert.strictEqual(await text(settings), 'by default'); // each from the cache, neither dropped by the other
    assert.strictEqual(await text(billing), 'by billing');
    assert.strictEqual(server.received.length, 2);
    shas.billing = 'cccccccccccccccc'; // billing.pt reloaded: its answers are asked again
    assert.strictEqual((await engine.suggest(at('b = 2'), billing)).source, 'server');
    assert.strictEqual((await engine.suggest(at('a = 1'), billing)).source, 'server');
    // reported when the answering model changes (answers from the cache report nothing)
    assert.deepStrictEqual(reported, [':aaaaaaaaaaaaaaaa', 'billing:bbbbbbbbbbbbbbbb', 'billing:cccccccccccccccc']);
  });

  it('sends its latency budget as time_budget_ms, and none when it is 0', async () => {
    await engine.suggest(at('import os\np = os.'), { ...settings, timeBudgetMs: 300 });
    assert.deepStrictEqual(JSON.parse(server.received[0].body),
      { prompt: 'import os\np = os.', suffix: '', max_suggestions: 3, time_budget_ms: 300 });
    await engine.suggest(at('import sys\nsys.'), { ...settings, timeBudgetMs: 0 });
    assert.ok(!('time_budget_ms' in JSON.parse(server.received[1].body)));
  });

  it('sends the workspace\'s model by name as model, and none when it is empty', async () => {
    await engine.suggest(at('import os\np = os.'), { ...settings, model: 'billing' });
    assert.deepStrictEqual(JSON.parse(server.received[0].body),
      { prompt: 'import os\np = os.', suffix: '', max_suggestions: 3, model: 'billing' });
    await engine.suggest(at('import sys\nsys.'), { ...settings, model: '' });
    assert.ok(!('model' in JSON.parse(server.received[1].body)));
  });

  it('sends the following lines as the suffix; typing on the line is still served from the cache', async () => {
    const below = '\n\ndef g():\n    return p\n';
    const r1 = await engine.suggest(atBar(`import os\np = os.|${below}`), settings);
    assert.strictEqual(r1.source, 'server');
    assert.deepStrictEqual(JSON.parse(server.received[0].body), { prompt: 'import os\np = os.', suffix: below, max_suggestions: 3 });
    // the suffix does not change while the user types on the line, only the prompt grows
    const r2 = await engine.suggest(atBar(`import os\np = os.path.j|${below}`), settings);
    assert.strictEqual(r2.source, 'cache');
    assert.deepStrictEqual(r2.suggestions.map((s) => s.text), ['oin(a, b)']);
    // other following lines are another request
    const r3 = await engine.suggest(atBar(`import os\np = os.|\nq = 1\n`), settings);
    assert.strictEqual(r3.source, 'server');
    assert.strictEqual(server.received.length, 2);
  });

  it('never shows a suggestion that repeats the next line: cut before it, or dropped', async () => {
    server.setHandler((r, res) => sendJson(res, 200, ok(['total = 0\n    return total', '    return total', 'x'])));
    const r = await engine.suggest(atBar('def f(xs):\n    |\n    return total\n'), settings);
    assert.deepStrictEqual(r.suggestions.map((s) => s.text), ['total = 0', 'x']);
  });

  it('sends the prepared extra context as input_extra; another extra context is not answered from the cache', async () => {
    const extra = (key: string, text: string) => ({ chunks: [{ filename: 'billing.py', text }], key, chars: text.length });
    const A = extra('A', 'def normalise_invoice_total(x):\n    return x\n');
    const r1 = await engine.suggest({ ...at('import os\np = os.'), extra: A }, settings);
    assert.strictEqual(r1.source, 'server');
    assert.deepStrictEqual(JSON.parse(server.received[0].body), {
      prompt: 'import os\np = os.', suffix: '', max_suggestions: 3,
      input_extra: [{ filename: 'billing.py', text: 'def normalise_invoice_total(x):\n    return x\n' }],
    });
    assert.strictEqual((await engine.suggest({ ...at('import os\np = os.'), extra: A }, settings)).source, 'cache');
    const r3 = await engine.suggest({ ...at('import os\np = os.'), extra: extra('B', 'other = 1\n') }, settings);
    assert.strictEqual(r3.source, 'server');
    assert.strictEqual(server.received.length, 2);
    assert.deepStrictEqual(JSON.parse(server.received[1].body).input_extra, [{ filename: 'billing.py', text: 'other = 1\n' }]);
  });

  it('a newer request cancels the older one: only the newest is answered', async () => {
    server.setHandler(async (r, res) => { await sleep(300); if (!res.destroyed) sendJson(res, 200, ok([JSON.parse(r.body).prompt.slice(-1)])); });
    const first = engine.suggest(at('a = 1'), settings);
    await sleep(50); // past the debounce: the first request is on the wire
    const second = engine.suggest(at('a = 2'), settings);
    const [r1, r2] = await Promise.all([first, second]);
    assert.deepStrictEqual([r1.source, r2.source], ['none', 'server']);
    assert.deepStrictEqual(r2.suggestions.map((s) => s.text), ['2']);
    assert.ok(server.received[0].clientAborted);
  });

  it('two providers asking for the same position at once share one request', async () => {
    const [a, b] = await Promise.all([engine.suggest(at('import os\np = os.'), settings), engine.suggest(at('import os\np = os.'), settings)]);
    assert.deepStrictEqual([a.source, b.source], ['server', 'server']);
    assert.deepStrictEqual(b.suggestions, a.suggestions);
    assert.strictEqual(a.suggestions[0].text, 'path.join(a, b)');
    assert.strictEqual(server.received.length, 1);
  });

  it('requests within the debounce window never reach the server', async () => {
    const results = await Promise.all(['b = 1', 'b = 12', 'b = 123'].map((t) => engine.suggest(at(t), { ...settings, debounceMs: 100 })));
    assert.deepStrictEqual(results.map((r) => r.source), ['none', 'none', 'server']);
    assert.strictEqual(server.received.length, 1);
  });

  it('the caller cancelling (CancellationToken) aborts the wait and the request', async () => {
    const ac = new AbortController();
    const p = engine.suggest(at('c = 1'), settings, ac.signal);
    ac.abort();
    assert.strictEqual((await p).source, 'none');
    await sleep(30);
    assert.strictEqual(server.received.length, 0);
  });

  it('a server that goes down gives one notice, no more requests, and comes back through /health', async () => {
    const port = Number(new URL(server.url).port);
    await server.stop();
    const r1 = await engine.suggest(at('d = 1'), settings);
    assert.strictEqual(r1.source, 'none');
    assert.strictEqual(monitor.state, 'unreachable');
    const r2 = await engine.suggest(at('d = 2'), settings);
    assert.strictEqual(r2.source, 'none');
    await sleep(120); // rechecks fail quietly
    assert.strictEqual(notices.length, 1);
    assert.match(notices[0], /ECONNREFUSED/);
    // bring a server back on the same port: the periodic /health check notices it
    server = new TestServer((r, res) => sendJson(res, 200, r.url === '/health' ? {} : ok(['back'])));
    await listenOn(server, port);
    for (let i = 0; i < 100 && (monitor.state as ServerState) !== 'ready'; i++) await sleep(20);
    assert.strictEqual(monitor.state, 'ready');
    const r3 = await engine.suggest(at('d = 3'), settings);
    assert.deepStrictEqual(r3.suggestions.map((s) => s.text), ['back']);
    assert.strictEqual(notices.length, 1);
  });

  it('disabled: no requests, and re-enabling checks the server', async () => {
    monitor.setEnabled(false);
    assert.strictEqual((await engine.suggest(at('e = 1'), settings)).source, 'none');
    assert.strictEqual(server.received.length, 0);
    monitor.setEnabled(true);
    for (let i = 0; i < 50 && monitor.state !== 'ready'; i++) await sleep(10);
    assert.strictEqual(monitor.state, 'ready');
  });

  it('a server that cannot be reached at all is reported once', async () => {
    const dead = setup(`http://127.0.0.1:${await deadPort()}`);
    assert.strictEqual(await dead.monitor.check(), false);
    assert.strictEqual(await dead.monitor.check(), false);
    dead.monitor.dispose();
    assert.strictEqual(dead.notices.length, 1);
    assert.deepStrictEqual(dead.states, ['unreachable', 'unreachable']);
  });
});

/** Start `server` on a given port (the one a stopped server used). */
async function listenOn(server: TestServer, port: number): Promise<void> {
  await server.start(port);
}
