import * as assert from 'assert';
import { AutocompleteClient, ClientError, describeModel, requestBody } from '../client';
import { deadPort, Handler, ok, sendJson, sleep, TestServer } from './httpServer';

async function failure(p: Promise<unknown>): Promise<ClientError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ClientError, `expected a ClientError, got ${e}`);
    return e;
  }
  assert.fail('expected the request to fail');
}

describe('client: request body', () => {
  it('is JSON.stringify of the request, the input_extra array serialised once and reused', () => {
    const extra = Object.freeze([{ filename: 'a.py', text: 'x = "1"\n' }, { filename: 'b.py', text: 'é\u2028\t' }]);
    const req = { prompt: 'p "q"\n', suffix: ')', max_suggestions: 3, input_extra: extra };
    assert.strictEqual(requestBody(req), JSON.stringify(req));
    assert.deepStrictEqual(JSON.parse(requestBody({ ...req, prompt: 'other' })), { ...req, prompt: 'other' });
    assert.strictEqual(requestBody({ prompt: '' }), '{"prompt":""}');
    assert.deepStrictEqual(JSON.parse(requestBody({ input_extra: extra } as never)), { input_extra: extra });
  });
});

describe('client', () => {
  let server: TestServer;
  const use = (h: Handler) => server.setHandler(h);
  before(async () => (server = await new TestServer(() => undefined).start()));
  after(() => server.stop());

  it('posts the prompt and suffix as JSON and returns the predictions best first', async () => {
    use((_r, res) => sendJson(res, 200, { success: true, prediction: ['path', 'sep'], probs: [0.8, 0.1], id: 'abc', ms: 12.5 }));
    const client = new AutocompleteClient({ serverUrl: server.url + '/', timeoutMs: 2000 });
    const r = await client.complete({ prompt: 'os.', suffix: ')', max_suggestions: 2 });
    assert.deepStrictEqual([r.prediction, r.probs, r.id, r.ms], [['path', 'sep'], [0.8, 0.1], 'abc', 12.5]);
    assert.ok(r.latencyMs >= 0);
    const got = server.received.at(-1)!;
    assert.strictEqual(got.method, 'POST');
    assert.strictEqual(got.url, '/autocomplete');
    assert.strictEqual(got.headers['content-type'], 'application/json');
    assert.strictEqual(got.headers.authorization, undefined);
    assert.deepStrictEqual(JSON.parse(got.body), { prompt: 'os.', suffix: ')', max_suggestions: 2 });
  });

  it('sends the API token as a Bearer header', async () => {
    use((_r, res) => sendJson(res, 200, ok(['x'])));
    await new AutocompleteClient({ serverUrl: server.url, apiToken: 's3cret', timeoutMs: 2000 }).complete({ prompt: 'a' });
    assert.strictEqual(server.received.at(-1)!.headers.authorization, 'Bearer s3cret');
    assert.strictEqual(server.received.at(-1)!.headers['x-client-id'], undefined);
    await new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000, clientId: 'window-1' }).complete({ prompt: 'a' });
    assert.strictEqual(server.received.at(-1)!.headers['x-client-id'], 'window-1'); // the server's affinity key
  });

  it('turns a JSON error answer into an http error with the status and the server message', async () => {
    use((_r, res) => sendJson(res, 401, { success: false, error: 'missing or wrong token' }));
    const e = await failure(new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 }).complete({ prompt: 'a' }));
    assert.deepStrictEqual([e.kind, e.status], ['http', 401]);
    assert.match(e.message, /401: missing or wrong token/);
    assert.strictEqual(e.type, undefined);
    use((_r, res) => sendJson(res, 404, { success: false, error: "no model 'payroll' on this server", type: 'unknown_model' }));
    const named = await failure(new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 }).complete({ prompt: 'a', model: 'payroll' }));
    assert.deepStrictEqual([named.status, named.type], [404, 'unknown_model']);
    assert.deepStrictEqual(JSON.parse(server.received.at(-1)!.body), { prompt: 'a', model: 'payroll' });
  });

  it('reports a 503 (model not ready) and a non-JSON 500 as http errors', async () => {
    const client = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 });
    use((_r, res) => sendJson(res, 503, { success: false, error: 'loading' }));
    assert.strictEqual((await failure(client.complete({ prompt: 'a' }))).status, 503);
    use((_r, res) => { res.writeHead(500); res.end('<html>boom</html>'); });
    const e = await failure(client.complete({ prompt: 'a' }));
    assert.deepStrictEqual([e.kind, e.status], ['http', 500]);
    assert.match(e.message, /boom/);
  });

  it('rejects answers that break the contract', async () => {
    const client = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 });
    use((_r, res) => { res.writeHead(200); res.end('not json'); });
    assert.strictEqual((await failure(client.complete({ prompt: 'a' }))).kind, 'bad-response');
    use((_r, res) => sendJson(res, 200, { success: true, prediction: [1, 2] }));
    assert.strictEqual((await failure(client.complete({ prompt: 'a' }))).kind, 'bad-response');
    use((_r, res) => sendJson(res, 200, { success: false, error: 'nope' }));
    assert.match((await failure(client.complete({ prompt: 'a' }))).message, /success=false: nope/);
  });

  it('fills missing probs with 0', async () => {
    use((_r, res) => sendJson(res, 200, { success: true, prediction: ['a', 'b'] }));
    const r = await new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 }).complete({ prompt: 'a' });
    assert.deepStrictEqual(r.probs, [0, 0]);
  });

  it('gives up after the timeout with a timeout error', async () => {
    use(async (_r, res) => { await sleep(3000); if (!res.destroyed) sendJson(res, 200, ok(['late'])); });
    const e = await failure(new AutocompleteClient({ serverUrl: server.url, timeoutMs: 100 }).complete({ prompt: 'a' }));
    assert.strictEqual(e.kind, 'timeout');
  });

  it('reports a server that is not there as unreachable', async () => {
    const e = await failure(new AutocompleteClient({ serverUrl: `http://127.0.0.1:${await deadPort()}`, timeoutMs: 2000 }).complete({ prompt: 'a' }));
    assert.strictEqual(e.kind, 'unreachable');
    assert.match(e.message, /ECONNREFUSED/);
  });

  it('health is true on 200 and false on an error status or no server', async () => {
    use((r, res) => sendJson(res, r.url === '/health' ? 200 : 404, { status: 'ok' }));
    assert.strictEqual(await new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 }).health(), true);
    use((_r, res) => sendJson(res, 503, { status: 'loading' }));
    assert.strictEqual(await new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 }).health(), false);
    assert.strictEqual(await new AutocompleteClient({ serverUrl: `http://127.0.0.1:${await deadPort()}`, timeoutMs: 2000 }).health(), false);
  });

  it("lists the server's models from /models, and throws when it cannot", async () => {
    use((r, res) => sendJson(res, r.url === '/models' ? 200 : 404, { default: 'default', models: ['billing', 7, 'payroll'] }));
    const client = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000, apiToken: 't0k' });
    assert.deepStrictEqual(await client.models(), { default: 'default', models: ['billing', 'payroll'] });
    assert.strictEqual(server.received.at(-1)!.headers.authorization, 'Bearer t0k');
    use((_r, res) => sendJson(res, 401, { success: false, error: 'missing or wrong API token', type: 'unauthorized' }));
    const e = await failure(client.models());
    assert.deepStrictEqual([e.kind, e.status, e.type], ['http', 401, 'unauthorized']);
    const gone = await failure(new AutocompleteClient({ serverUrl: `http://127.0.0.1:${await deadPort()}`, timeoutMs: 2000 }).models());
    assert.strictEqual(gone.kind, 'unreachable');
  });

  it('describes the served model from /health in one line, and nothing when the server does not say', async () => {
    const model = { name: 'personal', file: 'personal.pt', sha256: '307598e8ef7c7fb9', step: 540,
      meta: { finetuned_from: 'checkpoints/default.pt', sources: ['/home/me/code/proj', '/home/me/code/lib/'] } };
    use((r, res) => sendJson(res, 200, { status: 'ok', model }));
    const client = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 2000 });
    assert.strictEqual(await client.modelDescription(),
      'personal, step 540, fine-tuned from default.pt on proj, lib, sha256 307598e8ef7c7fb9');
    assert.strictEqual(server.received.at(-1)!.url, '/health');
    assert.strictEqual(describeModel({ name: 'default', sha256: 'f24ef680e639a3a6', step: 6192, meta: {} }),
      'default, step 6192, sha256 f24ef680e639a3a6');
    use((_r, res) => sendJson(res, 200, { status: 'ok' })); // a token the extension was not given: no model
    assert.strictEqual(await client.modelDescription(), undefined);
    use((_r, res) => sendJson(res, 503, { success: false, type: 'loading' }));
    assert.strictEqual(await client.modelDescription(), undefined);
    assert.strictEqual(await new AutocompleteClient({ serverUrl: `http://127.0.0.1:${await deadPort()}`, timeoutMs: 2000 }).modelDescription(), undefined);
  });

  it('rejects a server URL that is not http(s) with a clear error', () => {
    assert.throws(() => new AutocompleteClient({ serverUrl: 'not a url', timeoutMs: 1 }), /not a URL/);
    assert.throws(() => new AutocompleteClient({ serverUrl: 'ftp://x', timeoutMs: 1 }), /must be http/);
  });
});
