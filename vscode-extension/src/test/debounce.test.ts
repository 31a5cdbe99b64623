import * as assert from 'assert';
import { AutocompleteClient, ClientError } from '../client';
import { anySignal, delay, LatestRequest } from '../debounce';
import { ok, sendJson, sleep, TestServer } from './httpServer';

describe('debounce and cancellation', () => {
  it('delay resolves true after the wait', async () => {
    assert.strictEqual(await delay(5), true);
  });

  it('delay resolves false when aborted during the wait, or already aborted', async () => {
    const ac = new AbortController();
    const p = delay(10_000, ac.signal);
    ac.abort();
    assert.strictEqual(await p, false); // a 10 s wait would time the test out if abort did nothing
    assert.strictEqual(await delay(10_000, ac.signal), false);
  });

  it('LatestRequest aborts the previous controller when a new request begins', () => {
    const latest = new LatestRequest();
    const a = latest.begin();
    const b = latest.begin();
    assert.ok(a.signal.aborted);
    assert.ok(!b.signal.aborted);
    latest.cancel();
    assert.ok(b.signal.aborted);
  });

  it('anySignal aborts when any input aborts', () => {
    const a = new AbortController();
    const b = new AbortController();
    const s = anySignal([a.signal, b.signal]);
    assert.ok(!s.aborted);
    b.abort();
    assert.ok(s.aborted);
    assert.ok(anySignal([a.signal, AbortSignal.abort()]).aborted);
  });

  describe('aborting a real fetch to a real server that delays its answer', () => {
    let server: TestServer;
    before(async () => {
      server = await new TestServer(async (_req, res) => {
        await sleep(5000); // far longer than the test waits
        if (!res.destroyed) sendJson(res, 200, ok(['late']));
      }).start();
    });
    after(() => server.stop());

    it('a new request aborts the previous one: the old fetch rejects as aborted and the server sees the client leave', async () => {
      const client = new AutocompleteClient({ serverUrl: server.url, timeoutMs: 30_000 });
      const latest = new LatestRequest();
      const first = client.complete({ prompt: 'a' }, latest.begin().signal).then(() => 'answered', (e) => e);
      while (server.received.length < 1) await sleep(5); // the request reached the server
      const second = latest.begin();
      const err = await first;
      assert.ok(err instanceof ClientError, String(err));
      assert.strictEqual(err.kind, 'aborted');
      for (let i = 0; i < 200 && !server.received[0].clientAborted; i++) await sleep(5);
      assert.ok(server.received[0].clientAborted, 'the server should see the connection closed before it answered');
      second.abort();
    });
  });
});
