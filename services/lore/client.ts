/**
 * A polite public-inbox client for the watcher: every request fenced by the
 * allowlist (inbox.ts fencedFetch), spaced from the one before, retried on
 * 429, 5xx, timeouts and connection failures with exponential backoff and
 * full jitter (Retry-After honoured, capped), and counted against a
 * per-poll request budget. The User-Agent names the service and a contact.
 */
import { PatchbayError, isPatchbayError } from '../domain/errors.ts';
import { type AtomEntry, parseAtom } from './atom.ts';
import { fencedFetch } from './inbox.ts';

export interface PoliteOptions {
  allow: readonly string[];
  userAgent: string;
  timeoutMs: number;
  /** Per response, as received and as inflated. */
  maxBytes: number;
  /** The least time between the start of two requests. */
  spacingMs: number;
  /** Requests (retries included) one poll may make. */
  budget: number;
  /** Tries per request, the first included. */
  attempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** public-inbox's page size for search results (SearchQuery's $LIM). */
export const ATOM_PAGE = 200;
/** Message-IDs asked for in one `m:` search: keeps the query short. */
export const FETCH_BATCH = 50;

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const sleep: Sleep = (ms, signal) => new Promise((resolve, reject) => {
  if (signal?.aborted === true) {
    reject(signal.reason as Error);
    return;
  }
  const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
  const onAbort = (): void => { clearTimeout(timer); reject(signal?.reason as Error); };
  signal?.addEventListener('abort', onAbort, { once: true });
});

/** One poll's session with an inbox: its own request count. */
export class PoliteClient {
  #requests = 0;
  #lastStart = 0;

  constructor(
    private readonly opts: PoliteOptions,
    private readonly signal: AbortSignal,
    private readonly wait: Sleep = sleep,
    private readonly random: () => number = Math.random,
  ) {}

  get requests(): number {
    return this.#requests;
  }

  /** The body, or null for a 404 (public-inbox answers a search with no results with 404). */
  async request(url: URL, how: { method: 'GET' | 'POST'; gzip: boolean; accept?: string }): Promise<Buffer | null> {
    for (let attempt = 1; ; attempt++) {
      if (this.#requests >= this.opts.budget) {
        throw new PatchbayError('LORE_BUDGET', `this poll used its ${this.opts.budget} requests; the rest waits for the next poll`, {
          retryable: true, details: { budget: this.opts.budget },
        });
      }
      const gap = this.#lastStart + this.opts.spacingMs - Date.now();
      if (gap > 0) await this.wait(gap, this.signal);
      this.#lastStart = Date.now();
      this.#requests++;
      try {
        return await fencedFetch(url, {
          allow: this.opts.allow, timeoutMs: this.opts.timeoutMs, maxBytes: this.opts.maxBytes,
          method: how.method, gzip: how.gzip, userAgent: this.opts.userAgent, ...(how.accept !== undefined ? { accept: how.accept } : {}),
        });
      } catch (e) {
        if (isPatchbayError(e) && e.code === 'INBOX_NOT_FOUND') return null;
        if (!isPatchbayError(e) || !e.retryable || attempt >= this.opts.attempts || this.signal.aborted) throw e;
        const ceiling = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** (attempt - 1));
        const retryAfter = typeof e.details.retryAfterSeconds === 'number' ? Math.min(e.details.retryAfterSeconds * 1000, this.opts.backoffMaxMs) : 0;
        await this.wait(Math.max(retryAfter, Math.floor(this.random() * ceiling)), this.signal);
      }
    }
  }
}

/**
 * Every message the inbox received at or after `since` (seconds since the
 * epoch), oldest first, by pages of ATOM_PAGE. An inbox that does not exist
 * throws INBOX_NOT_FOUND (told apart from "no results", which public-inbox
 * also answers with 404, by asking for its _/text/config/raw).
 */
export async function listReceivedSince(client: PoliteClient, inbox: URL, since: number): Promise<AtomEntry[]> {
  const out: AtomEntry[] = [];
  for (let offset = 0; ; offset += ATOM_PAGE) {
    const page = await listPage(client, inbox, since, offset);
    out.push(...page);
    if (page.length < ATOM_PAGE) return out;
  }
}

/**
 * One page (ATOM_PAGE entries from `offset`) of what the inbox received at
 * or after `since`, ascending; fewer than ATOM_PAGE: the last page.
 */
export async function listPage(client: PoliteClient, inbox: URL, since: number, offset: number): Promise<AtomEntry[]> {
  const url = new URL(inbox.href);
  url.searchParams.set('q', `rt:${Math.floor(since)}..`);
  url.searchParams.set('x', 'A');
  // o < 0: ascending by received time, from offset -(o + 1).
  url.searchParams.set('o', String(-(offset + 1)));
  const body = await client.request(url, { method: 'GET', gzip: false, accept: 'application/atom+xml' });
  if (body === null) {
    // An empty inbox has no new.atom either; its config file is always there.
    if (offset === 0 && (await client.request(new URL('_/text/config/raw', inbox), { method: 'GET', gzip: false })) === null) {
      throw new PatchbayError('INBOX_NOT_FOUND', `${inbox.href} is not a public-inbox (it has no _/text/config/raw)`);
    }
    return [];
  }
  return parseAtom(body.toString('utf8'), inbox);
}

/** A Message-ID the search's `m:` prefix takes as one term. */
function searchable(id: string): boolean {
  return /^[A-Za-z0-9._%+=$#&!*'~@-]+$/.test(id) && !/^[-+]/.test(id);
}

/**
 * The raw messages with these Message-IDs, as one mboxrd binary string per
 * request: batches of FETCH_BATCH through one `m:` search (x=m, gzip), and
 * an id the search syntax cannot carry through its own `raw` URL.
 */
export async function fetchMessages(client: PoliteClient, inbox: URL, ids: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const plain = ids.filter(searchable);
  for (let i = 0; i < plain.length; i += FETCH_BATCH) {
    const body = await searchMbox(client, inbox, plain.slice(i, i + FETCH_BATCH).map((id) => `m:${id}`).join(' OR '));
    if (body !== null) out.push(body);
  }
  for (const id of ids.filter((x) => !searchable(x))) {
    const body = await fetchRaw(client, inbox, id);
    if (body !== null) out.push(body);
  }
  return out;
}

/**
 * One message by its own raw URL, as a one-message mboxrd binary string
 * (public-inbox escapes its body); null when the inbox has no such id.
 * For ids a search cannot carry, or did not find.
 */
export async function fetchRaw(client: PoliteClient, inbox: URL, id: string): Promise<string | null> {
  const body = await client.request(new URL(`${encodeURIComponent(id)}/raw`, inbox), { method: 'GET', gzip: false });
  return body === null ? null : body.toString('latin1');
}

/**
 * Every message a search finds, as one mboxrd binary string (POST x=m,
 * gzip); null when it finds none (public-inbox answers 404).
 */
export async function searchMbox(client: PoliteClient, inbox: URL, query: string): Promise<string | null> {
  const url = new URL(inbox.href);
  url.searchParams.set('q', query);
  url.searchParams.set('x', 'm');
  const body = await client.request(url, { method: 'POST', gzip: true });
  return body === null ? null : body.toString('latin1');
}

/** A whole thread (t.mbox.gz) as an mboxrd binary string; null when the inbox has no such message. */
export async function fetchThread(client: PoliteClient, inbox: URL, messageId: string): Promise<string | null> {
  const body = await client.request(new URL(`${encodeURIComponent(messageId)}/t.mbox.gz`, inbox), { method: 'GET', gzip: true });
  return body === null ? null : body.toString('latin1');
}
