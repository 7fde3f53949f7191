/**
 * The CLI as a client of a running service: submit, follow a job's live log
 * (Server-Sent Events), read its status.
 */
import { PatchbayError, errorMessage } from '../domain/errors.ts';
import type { LogEntry } from '../queue/logs.ts';

export interface ClientOptions {
  server: string;
  token: string | null;
}

export class ServiceClient {
  constructor(private readonly opts: ClientOptions) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}), ...extra };
  }

  async request<T>(method: string, path: string, body?: { type: string; data: Buffer | string }): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.opts.server), {
        method,
        headers: this.headers(body ? { 'content-type': body.type } : {}),
        ...(body ? { body: body.data } : {}),
      });
    } catch (e) {
      throw new PatchbayError('SERVER_UNREACHABLE', `cannot reach ${this.opts.server}: ${errorMessage(e)} (is \`patchbay serve\` running?)`, { retryable: true });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
      throw new PatchbayError(err?.code ?? `HTTP_${res.status}`, err?.message ?? `${method} ${path}: ${res.status} ${text.slice(0, 200)}`, { retryable: res.status >= 500 });
    }
    return json as T;
  }

  /** Follows a job's log until its end entry; returns the final status. */
  async follow(jobId: string, onEntry: (e: LogEntry) => void): Promise<string> {
    let last = '0';
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(new URL(`/api/v1/jobs/${jobId}/log`, this.opts.server), {
          headers: this.headers({ accept: 'text/event-stream', 'last-event-id': last }),
        });
        if (!res.ok || !res.body) throw new Error(`log stream answered ${res.status}`);
        const decoder = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body) {
          buf += decoder.decode(chunk as Uint8Array, { stream: true });
          let sep: number;
          while ((sep = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, sep);
            buf = buf.slice(sep + 2);
            const id = /^id: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (id !== undefined) last = id;
            if (data === undefined) continue;
            const entry = JSON.parse(data) as LogEntry;
            onEntry(entry);
            if (entry.kind === 'end') return entry.status;
          }
        }
      } catch (e) {
        // The server restarted or the connection dropped: resume where we were.
        if (attempt >= 30) throw new PatchbayError('FOLLOW_FAILED', `lost the log of ${jobId}: ${errorMessage(e)}`, { retryable: true });
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }
}
