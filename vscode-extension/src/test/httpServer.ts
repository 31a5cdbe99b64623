// A real HTTP server on 127.0.0.1 for the tests: a handler per test, and a record of what arrived.
import * as http from 'http';
import { AddressInfo } from 'net';

export interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Set when the client went away before the answer was sent (an aborted fetch). */
  clientAborted: boolean;
}

export type Handler = (req: Received, res: http.ServerResponse) => void | Promise<void>;

export class TestServer {
  readonly received: Received[] = [];
  private server!: http.Server;
  url = '';

  constructor(private handler: Handler) {}

  async start(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, clientAborted: false };
        res.on('close', () => {
          if (!res.writableFinished) r.clientAborted = true;
        });
        this.received.push(r);
        void this.handler(r, res);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(port, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  setHandler(h: Handler): void {
    this.handler = h;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A server-contract answer (docs/DESIGN.md). */
export function ok(prediction: string[], probs = prediction.map(() => 0.5)) {
  return { success: true, prediction, probs, id: 'req-1', ms: 1.5 };
}

/** A port nothing listens on (bound then released). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
