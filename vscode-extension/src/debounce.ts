// Debounce and cancellation: only the newest request lives. Pure: no `vscode` import.

/** Resolves true after `ms`, or false as soon as `signal` aborts (never rejects). */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Hands out one AbortController per request; starting a new one aborts the previous. */
export class LatestRequest {
  private current: AbortController | undefined;

  begin(): AbortController {
    this.current?.abort();
    this.current = new AbortController();
    return this.current;
  }

  /** Abort the live request, if any (disable, shutdown). */
  cancel(): void {
    this.current?.abort();
    this.current = undefined;
  }
}

/** An AbortSignal that aborts when any of `signals` does (AbortSignal.any exists only in newer runtimes). */
export function anySignal(signals: AbortSignal[]): AbortSignal {
  const ac = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      ac.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}
