/**
 * The polite client against a real HTTP server on loopback: retries with
 * backoff (the sleep is the narrow port, recorded instead of waited),
 * Retry-After, the request budget, the User-Agent, spacing, and paging.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { isPatchbayError } from '../../domain/errors.ts';
import { ATOM_PAGE, PoliteClient, type PoliteOptions, listReceivedSince } from '../client.ts';

describe('PoliteClient', () => {
  let server: Server;
  let origin: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => { res.end('ok'); };
  const seen: Array<{ url: string; ua: string | undefined; at: number }> = [];

  before(async () => {
    server = createServer((req, res) => { seen.push({ url: req.url ?? '', ua: req.headers['user-agent'], at: Date.now() }); handler(req, res); });
    await new Promise<void>((r) => { server.listen(0, '127.0.0.1', r); });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => { server.close(); });

  const opts = (over: Partial<PoliteOptions> = {}): PoliteOptions => ({
    allow: [origin], userAgent: 'patchbay-test (contact: ci@patchbay.invalid)', timeoutMs: 5000, maxBytes: 1 << 20,
    spacingMs: 0, budget: 10, attempts: 4, backoffBaseMs: 1000, backoffMaxMs: 8000, ...over,
  });

  it('retries 429 and 5xx with growing, jittered waits, honours Retry-After, and sends its User-Agent', async () => {
    seen.length = 0;
    let n = 0;
    handler = (_req, res) => {
      n++;
      if (n === 1) { res.writeHead(503); res.end(); return; }
      if (n === 2) { res.writeHead(429, { 'retry-after': '3' }); res.end(); return; }
      res.end('body');
    };
    const waits: number[] = [];
    const client = new PoliteClient(opts(), new AbortController().signal, (ms) => { waits.push(ms); return Promise.resolve(); }, () => 0.5);
    const body = await client.request(new URL('/x/', origin), { method: 'GET', gzip: false });
    assert.equal(body?.toString(), 'body');
    assert.equal(client.requests, 3);
    assert.deepEqual(waits, [500, 3000], 'half of 1 s, then Retry-After 3 s over half of 2 s');
    assert.ok(seen.every((s) => s.ua === 'patchbay-test (contact: ci@patchbay.invalid)'));
  });

  it('gives up after its attempts with a retryable INBOX_FETCH_FAILED; a 404 is null, not an error', async () => {
    handler = (_req, res) => { res.writeHead(502); res.end(); };
    const client = new PoliteClient(opts({ attempts: 2 }), new AbortController().signal, () => Promise.resolve());
    await assert.rejects(client.request(new URL('/x/', origin), { method: 'GET', gzip: false }), (e) => isPatchbayError(e) && e.code === 'INBOX_FETCH_FAILED' && e.retryable);
    assert.equal(client.requests, 2);
    handler = (_req, res) => { res.writeHead(404); res.end(); };
    assert.equal(await new PoliteClient(opts(), new AbortController().signal).request(new URL('/x/', origin), { method: 'GET', gzip: false }), null);
  });

  it('stops at its request budget with LORE_BUDGET, retries counted', async () => {
    handler = (_req, res) => { res.writeHead(500); res.end(); };
    const client = new PoliteClient(opts({ budget: 3, attempts: 10 }), new AbortController().signal, () => Promise.resolve());
    await assert.rejects(client.request(new URL('/x/', origin), { method: 'GET', gzip: false }), (e) => isPatchbayError(e) && e.code === 'LORE_BUDGET');
    assert.equal(client.requests, 3);
  });

  it('spaces requests', async () => {
    handler = (_req, res) => { res.end('ok'); };
    const waits: number[] = [];
    const client = new PoliteClient(opts({ spacingMs: 5000 }), new AbortController().signal, (ms) => { waits.push(ms); return Promise.resolve(); });
    await client.request(new URL('/a/', origin), { method: 'GET', gzip: false });
    await client.request(new URL('/b/', origin), { method: 'GET', gzip: false });
    assert.equal(waits.length, 1);
    assert.ok((waits[0] ?? 0) > 4000 && (waits[0] ?? 0) <= 5000);
  });

  it('refuses an origin off the allowlist before any request', async () => {
    seen.length = 0;
    const client = new PoliteClient(opts({ allow: ['https://lore.kernel.org'] }), new AbortController().signal);
    await assert.rejects(client.request(new URL('/x/', origin), { method: 'GET', gzip: false }), (e) => isPatchbayError(e) && e.code === 'INBOX_NOT_ALLOWED');
    assert.equal(seen.length, 0);
  });

  it('lists by pages of received time, ascending, until a short page; an inbox that is not there is INBOX_NOT_FOUND', async () => {
    seen.length = 0;
    const entry = (i: number): string => `<entry><title>m${i}</title><updated>2026-12-03T07:00:00Z</updated><link\nhref="${origin}/io/m${i}@x.org/"/></entry>`;
    handler = (req, res) => {
      const url = new URL(req.url ?? '/', origin);
      const o = Number(url.searchParams.get('o'));
      const offset = -(o + 1);
      const ids = Array.from({ length: Math.max(0, Math.min(ATOM_PAGE, total - offset)) }, (_, i) => offset + i);
      res.writeHead(200, { 'content-type': 'application/atom+xml' });
      // As public-inbox does, the page just past the last result is only the feed's end.
      res.end(ids.length === 0 ? '</feed>' : `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">${ids.map(entry).join('')}</feed>`);
    };
    let total = 450;
    const client = new PoliteClient(opts(), new AbortController().signal);
    const got = await listReceivedSince(client, new URL('/io/', origin), 1796280000);
    assert.equal(got.length, 450);
    assert.equal(new Set(got.map((e) => e.messageId)).size, 450);
    assert.deepEqual(seen.map((s) => new URL(s.url, origin).searchParams.get('o')), ['-1', '-201', '-401']);
    assert.equal(new URL(seen[0]?.url ?? '', origin).searchParams.get('q'), 'rt:1796280000..');
    total = 400;
    assert.equal((await listReceivedSince(new PoliteClient(opts(), new AbortController().signal), new URL('/io/', origin), 1796280000)).length, 400, 'a multiple of the page size ends at the empty page');
    handler = (_req, res) => { res.writeHead(404, { 'content-type': 'text/html' }); res.end('[No results found]'); };
    await assert.rejects(listReceivedSince(new PoliteClient(opts(), new AbortController().signal), new URL('/nope/', origin), 0), (e) => isPatchbayError(e) && e.code === 'INBOX_NOT_FOUND');
  });
});
