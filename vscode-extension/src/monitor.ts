// Server state for the status bar, and quiet degradation when the server is down: one notice, then a
// periodic GET /health until it answers again. Pure: no `vscode` import.

export type ServerState = 'unknown' | 'ready' | 'working' | 'unreachable' | 'disabled';

export interface MonitorHooks {
  /** Called on every state change (status bar). `latencyMs` is the last request's round trip, when known. */
  onState(state: ServerState, latencyMs: number | undefined, detail: string): void;
  /** Called once per session, on the first time the server is found down (a non-modal notice). */
  onFirstDown(detail: string): void;
}

export class ServerMonitor {
  private stateValue: ServerState = 'unknown';
  private latency: number | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private notified = false;
  private checking = false;
  private inFlight = 0;

  constructor(
    private readonly health: () => Promise<boolean>,
    private readonly hooks: MonitorHooks,
    readonly recheckMs = 10000,
  ) {}

  get state(): ServerState {
    return this.stateValue;
  }

  get lastLatencyMs(): number | undefined {
    return this.latency;
  }

  /** Requests are only worth sending when the server is not known to be down. */
  get available(): boolean {
    return this.stateValue !== 'unreachable' && this.stateValue !== 'disabled';
  }

  setEnabled(enabled: boolean): void {
    if (!enabled) {
      this.stopRechecks();
      this.set('disabled', 'completions turned off');
    } else if (this.stateValue === 'disabled') {
      this.set('unknown', 'checking server');
      void this.check();
    }
  }

  requestStarted(): void {
    this.inFlight++;
    if (this.stateValue !== 'disabled') this.set('working', 'asking the server');
  }

  /** A request ended: `latencyMs` when it answered, `down` when the server could not be reached. */
  requestEnded(outcome: { latencyMs?: number; down?: string }): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.stateValue === 'disabled') return;
    if (outcome.down !== undefined) return this.markDown(outcome.down);
    if (outcome.latencyMs !== undefined) this.latency = outcome.latencyMs;
    if (this.inFlight === 0 && this.stateValue !== 'unreachable') this.set('ready', 'ready');
  }

  markDown(detail: string): void {
    if (this.stateValue === 'disabled') return;
    const first = !this.notified;
    this.notified = true;
    this.set('unreachable', detail);
    if (first) this.hooks.onFirstDown(detail);
    if (!this.timer) this.timer = setInterval(() => void this.check(), this.recheckMs);
  }

  /** One health check now; returns whether the server is up. */
  async check(): Promise<boolean> {
    if (this.checking || this.stateValue === 'disabled') return this.stateValue === 'ready';
    this.checking = true;
    try {
      const ok = await this.health().catch(() => false);
      if ((this.stateValue as ServerState) === 'disabled') return false;
      if (ok) {
        this.stopRechecks();
        if (this.stateValue !== 'working') this.set('ready', 'ready');
      } else {
        this.markDown('no answer from GET /health');
      }
      return ok;
    } finally {
      this.checking = false;
    }
  }

  dispose(): void {
    this.stopRechecks();
  }

  private stopRechecks(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private set(state: ServerState, detail: string): void {
    this.stateValue = state;
    this.hooks.onState(state, this.latency, detail);
  }
}
