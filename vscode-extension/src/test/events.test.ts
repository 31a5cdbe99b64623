import * as assert from 'assert';
import { AutocompleteClient } from '../client';
import { SuggestionEvent, SuggestionEvents } from '../events';
import { sendJson, TestServer } from './httpServer';

const flush = () => new Promise((r) => setImmediate(r));

describe('suggestion events', () => {
  const recorder = (status = 200) => {
    const sent: SuggestionEvent[] = [];
    return { sent, post: async (e: SuggestionEvent) => (sent.push(e), status) };
  };

  it('counts an answer viewed once, however often it is shown, and every accept', async () => {
    const r = recorder();
    const events = new SuggestionEvents(r.post);
    events.shown('a', 0);
    events.shown('a', 0); // the next keystroke shows the same answer's rest (the cache)
    events.shown('b', 1);
    events.accepted('a', 0);
    events.shown(undefined, 0); // a suggestion that no answer names: nothing to report
    events.accepted('c', undefined);
    await flush();
    assert.deepStrictEqual(r.sent, [
      { type: 'view', completion_id: 'a', choice_index: 0 },
      { type: 'view', completion_id: 'b', choice_index: 1 },
      { type: 'select', completion_id: 'a', choice_index: 0 },
    ]);
  });

  it('forgets the oldest answers beyond its capacity', async () => {
    const r = recorder();
    const events = new SuggestionEvents(r.post, () => true, 2);
    for (const id of ['a', 'b', 'c', 'a']) events.shown(id, 0);
    await flush();
    assert.deepStrictEqual(r.sent.map((e) => e.completion_id), ['a', 'b', 'c', 'a']);
  });

  it('sends nothing when turned off, and stops for good after a 404 (a server without the route)', async () => {
    let enabled = false;
    const off = recorder();
    const events = new SuggestionEvents(off.post, () => enabled);
    events.shown('a', 0);
    events.accepted('a', 0);
    await flush();
    assert.strictEqual(off.sent.length, 0);
    enabled = true;
    events.accepted('a', 0);
    await flush();
    assert.strictEqual(off.sent.length, 1);

    const old = recorder(404);
    const before = new SuggestionEvents(old.post);
    before.shown('a', 0);
    await flush();
    before.shown('b', 0);
    before.accepted('b', 0);
    await flush();
    assert.strictEqual(old.sent.length, 1);
    const failing = recorder(0); // unreachable: this event is lost, the next is tried
    const down = new SuggestionEvents(failing.post);
    down.shown('a', 0);
    await flush();
    down.shown('b', 0);
    await flush();
    assert.strictEqual(failing.sent.length, 2);
  });

  it('goes to POST /v1/events with the token, and never throws', async () => {
    const server = await new TestServer((_r, res) => sendJson(res, 200, {})).start();
    try {
      const client = new AutocompleteClient({ serverUrl: server.url, apiToken: 't0k', timeoutMs: 2000 });
      assert.strictEqual(await client.postEvent({ type: 'select', completion_id: 'x1', choice_index: 2 }), 200);
      const got = server.received.at(-1)!;
      assert.deepStrictEqual([got.method, got.url, got.headers.authorization], ['POST', '/v1/events', 'Bearer t0k']);
      assert.deepStrictEqual(JSON.parse(got.body), { type: 'select', completion_id: 'x1', choice_index: 2 });
      server.setHandler((_r, res) => sendJson(res, 404, { success: false }));
      assert.strictEqual(await client.postEvent({ type: 'view', completion_id: 'x', choice_index: 0 }), 404);
    } finally {
      await server.stop();
    }
    const gone = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 500 });
    assert.strictEqual(await gone.postEvent({ type: 'view', completion_id: 'x', choice_index: 0 }), 0);
  });
});
