/**
 * The runner's HTTP side: every call carries its credential, every answer
 * is validated against the protocol's schema, and a call that fails for a
 * reason a retry can fix (no connection, 5xx, 429) is retried with
 * exponential backoff and jitter until it succeeds, its deadline passes, or
 * the runner stops. What retrying cannot fix (401, 409 stale lease, 400)
 * is thrown at once, with the server's code.
 */
import type { TSchema, Static } from 'typebox';
import { Value } from 'typebox/value';
import { PatchbayError, errorMessage } from '../../services/domain/errors.ts';

export interface CallOptions {
  /** Give up retrying after this long (ms); default: never (until stopped). */
  retryForMs?: number;
  /** Stops waiting and retrying. */
  signal?: AbortSignal;
  /** Per attempt; default 60 s plus any long-poll wait. */
  timeoutMs?: number;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

export class RunnerClient {
  credential: string | null = null;

  constructor(
    private readonly server: string,
    private readonly onRetry: (what: string, why: string, inMs: number) => void,
  ) {}

  /** JSON in, JSON (checked against `reply`) out; null for 204. */
  async json<S extends TSchema>(method: string, path: string, body: unknown, reply: S | null, opts: CallOptions = {}): Promise<Static<S> | null> {
    const res = await this.send(method, path, { type: 'application/json', data: JSON.stringify(body ?? {}) }, {}, opts);
    if (res.status === 204 || reply === null) return null;
    const data: unknown = await res.json();
    if (!Value.Check(reply, data)) {
      const first = [...Value.Errors(reply, data)][0];
      throw new PatchbayError('RUNNER_PROTOCOL', `${method} ${path}: the server's answer does not fit the protocol (${first?.instancePath ?? '/'} ${first?.message ?? ''})`, { retryable: true });
    }
    return data;
  }

  /** A raw body (an artifact), with extra headers. */
  async upload(path: string, data: Buffer, headers: Record<string, string>, opts: CallOptions = {}): Promise<void> {
    await this.send('PUT', path, { type: 'application/octet-stream', data }, headers, opts);
  }

  private async send(method: string, path: string, body: { type: string; data: string | Buffer }, headers: Record<string, string>, opts: CallOptions): Promise<Response> {
    const giveUpAt = opts.retryForMs === undefined ? Infinity : Date.now() + opts.retryForMs;
    for (let attempt = 0; ; attempt++) {
      let why: string;
      let code = 'SERVER_UNREACHABLE';
      try {
        const res = await fetch(new URL(path, this.server), {
          method,
          headers: {
            'content-type': body.type,
            ...(this.credential !== null ? { authorization: `Bearer ${this.credential}` } : {}),
            ...headers,
          },
          body: body.data,
          signal: AbortSignal.any([AbortSignal.timeout(opts.timeoutMs ?? 90_000), ...(opts.signal ? [opts.signal] : [])]),
        });
        if (res.ok) return res;
        const text = await res.text();
        let err: { code?: string; message?: string } | undefined;
        try { err = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error; } catch { err = undefined; }
        code = err?.code ?? `HTTP_${res.status}`;
        why = `${res.status} ${err?.message ?? text.slice(0, 200)}`;
        if (res.status < 500 && res.status !== 429) throw new PatchbayError(code, `${method} ${path}: ${why}`, { details: { status: res.status } });
      } catch (e) {
        if (e instanceof PatchbayError) throw e;
        why = errorMessage(e);
      }
      if (opts.signal?.aborted) throw new PatchbayError('RUNNER_STOPPING', `${method} ${path}: stopped (${why})`);
      const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2);
      if (Date.now() + delay > giveUpAt) throw new PatchbayError(code, `${method} ${path}: ${why}`, { retryable: true });
      this.onRetry(`${method} ${path}`, why, Math.round(delay));
      await sleep(delay, opts.signal);
    }
  }
}
