/**
 * Fetching a series by Message-ID: from a real public-inbox server on
 * loopback, reached through an explicit allowlist entry; and what the fetch
 * refuses, against small node:http servers, also on loopback. Nothing here
 * connects to any other address.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createGzip, gzipSync } from 'node:zlib';
import { PatchbayError } from '../../domain/errors.ts';
import { parseMbox, splitMbox } from '../../domain/mbox.ts';
import { assembleSeries } from '../../domain/series.ts';
import { freePort } from '../../platform/net.ts';
import { fetchThreadMbox, INBOX_FETCH_FAILED_MESSAGE, type InboxFetchOptions } from '../inbox.ts';
import { type PublicInbox, startPublicInbox } from './public-inbox-server.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const fixture = readFileSync(join(root, 'fixtures/series/pass-kbuf-pin.mbox'));
const ID = '20261120-kbuf-pin-v2-0@patchbay.invalid';
const MiB = 1024 * 1024;

interface TestServer {
  origin: string;
  /** Requests it has received. */
  readonly requests: number;
}

const servers: Server[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { origin: `http://127.0.0.1:${address.port}`, get requests() { return requests; } };
}

/** The caller's view of a generic failure: the fixed text, nothing about the network; the detail in details. */
function generic(check: (details: Readonly<Record<string, unknown>>) => void = () => undefined) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof PatchbayError, String(e));
    assert.equal(e.code, 'INBOX_FETCH_FAILED');
    assert.equal(e.message, INBOX_FETCH_FAILED_MESSAGE);
    check(e.details);
    return true;
  };
}

function code(expected: string) {
  return (e: unknown): boolean => e instanceof PatchbayError && e.code === expected;
}

describe('a public-inbox on loopback', { timeout: 120_000 }, () => {
  let inbox: PublicInbox;
  let limits: InboxFetchOptions;
  before(async () => {
    inbox = await startPublicInbox();
    for (const raw of splitMbox(fixture.toString('latin1'))) inbox.deliver(Buffer.from(raw, 'latin1'));
    limits = { allow: [new URL(inbox.url).origin], timeoutMs: 10_000, maxBytes: 5 * MiB };
  });
  after(() => { inbox.stop(); });

  test('a series is fetched by the Message-ID of any of its messages and assembles as sent', async () => {
    for (const id of [ID, '<20261120-kbuf-pin-v2-2@patchbay.invalid>']) {
      const series = assembleSeries(parseMbox(await fetchThreadMbox(inbox.url, id, limits)));
      assert.equal(series.title, 'io_uring/kbuf: buffer ring pinning');
      assert.equal(series.version, 2);
      assert.deepEqual(series.patches.map((p) => p.counter), [1, 2, 3]);
      assert.equal(series.cover?.messageId, '20261120-kbuf-pin-v2-0@patchbay.invalid');
      assert.equal(series.baseCommit, '0dfbac4f4be0f380cd34673a572ab902a33a82b2');
    }
    // The allowlist compares origins: another spelling of the same host and port is the same inbox.
    const decimal = inbox.url.replace('127.0.0.1', '2130706433');
    assert.ok((await fetchThreadMbox(decimal, ID, limits)).includes('buffer ring pinning'));
  });

  test('an unknown Message-ID is INBOX_NOT_FOUND; a malformed one is refused before any request', async () => {
    await assert.rejects(fetchThreadMbox(inbox.url, 'nobody@nowhere.invalid', limits), code('INBOX_NOT_FOUND'));
    await assert.rejects(fetchThreadMbox(inbox.url, 'not a message id', limits), code('MESSAGE_ID_INVALID'));
    await assert.rejects(fetchThreadMbox('ftp://x/y', 'a@b', limits), code('INBOX_INVALID'));
    // Credentials would be sent to the allowlisted host as the caller's Basic auth.
    await assert.rejects(fetchThreadMbox(inbox.url.replace('//', '//user:pw@'), ID, limits), code('INBOX_INVALID'));
  });

  test('a thread larger than the limit once inflated is BODY_TOO_LARGE; one at the limit is fetched', async () => {
    const size = (await fetchThreadMbox(inbox.url, ID, limits)).length;
    assert.equal((await fetchThreadMbox(inbox.url, ID, { ...limits, maxBytes: size })).length, size);
    await assert.rejects(fetchThreadMbox(inbox.url, ID, { ...limits, maxBytes: size - 1 }), code('BODY_TOO_LARGE'));
  });

  test('a redirect within the allowlist is followed, each hop checked again', async () => {
    const hop = await serve((req, res) => { res.writeHead(302, { location: `${inbox.url}${(req.url ?? '/').split('/').slice(2).join('/')}` }).end(); });
    const series = assembleSeries(parseMbox(await fetchThreadMbox(`${hop.origin}/test/`, ID, { ...limits, allow: [hop.origin, ...limits.allow] })));
    assert.equal(series.title, 'io_uring/kbuf: buffer ring pinning');
    assert.equal(hop.requests, 1);
  });
});

describe('what the inbox fetch refuses', { timeout: 60_000 }, () => {
  const mbox = gzipSync(fixture);
  const opts = (allow: string[], more: Partial<InboxFetchOptions> = {}): InboxFetchOptions => ({ allow, timeoutMs: 10_000, maxBytes: 5 * MiB, ...more });
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  test('an inbox outside the allowlist is INBOX_NOT_ALLOWED and gets no request', async () => {
    const outside = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'application/gzip' }).end(mbox); });
    const allowed = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'application/gzip' }).end(mbox); });
    const port = new URL(outside.origin).port;
    for (const url of [`${outside.origin}/test/`, `http://localhost:${port}/test/`, `http://2130706433:${port}/`, `https://127.0.0.1:${port}/`]) {
      await assert.rejects(fetchThreadMbox(url, ID, opts([allowed.origin])), (e: unknown) => {
        assert.ok(e instanceof PatchbayError);
        assert.equal(e.code, 'INBOX_NOT_ALLOWED');
        assert.match(e.message, new RegExp(allowed.origin));
        return true;
      });
    }
    await assert.rejects(fetchThreadMbox(`${outside.origin}/test/`, ID, opts([])), code('INBOX_NOT_ALLOWED'));
    assert.equal(outside.requests, 0);
    assert.equal(allowed.requests, 0);
  });

  test('a redirect to a server outside the allowlist is refused and that server gets no request', async () => {
    const target = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'application/gzip' }).end(mbox); });
    for (const status of [301, 302, 303, 307, 308]) {
      const hop = await serve((_req, res) => { res.writeHead(status, { location: `${target.origin}/test/${ID}/t.mbox.gz` }).end(); });
      await assert.rejects(fetchThreadMbox(`${hop.origin}/test/`, ID, opts([hop.origin])), generic((d) => {
        assert.equal(d.location, `${target.origin}/test/${ID}/t.mbox.gz`);
      }));
      assert.equal(hop.requests, 1);
    }
    assert.equal(target.requests, 0);
  });

  test('redirects end after a few hops', async () => {
    const loop = await serve((req, res) => { res.writeHead(302, { location: req.url ?? '/' }).end(); });
    await assert.rejects(fetchThreadMbox(`${loop.origin}/test/`, ID, opts([loop.origin])), generic((d) => {
      assert.equal(d.reason, 'too many redirects');
    }));
    assert.equal(loop.requests, 4);
  });

  test('a host name is checked after DNS: localhost, even allowlisted, resolves to loopback and gets no request', async () => {
    const local = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'application/gzip' }).end(mbox); });
    const byName = `http://localhost:${new URL(local.origin).port}`;
    await assert.rejects(fetchThreadMbox(`${byName}/test/`, ID, opts([byName])), generic((d) => {
      assert.ok(Array.isArray(d.addresses) && d.addresses.includes('127.0.0.1'), JSON.stringify(d));
    }));
    assert.equal(local.requests, 0);
  });

  test('a gzip bomb is inflated no further than the limit: BODY_TOO_LARGE', async () => {
    // 1 GiB of zeros: 64 gzip members of 16 MiB each, about 1 MB on the wire.
    const member = gzipSync(Buffer.alloc(16 * MiB));
    const bomb = Buffer.concat(new Array<Buffer>(64).fill(member));
    assert.ok(bomb.length < MiB);
    const server = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': bomb.length }).end(bomb); });
    await assert.rejects(fetchThreadMbox(`${server.origin}/test/`, ID, opts([server.origin], { maxBytes: MiB })), (e: unknown) => {
      assert.ok(e instanceof PatchbayError);
      assert.equal(e.code, 'BODY_TOO_LARGE');
      const { inflatedBytes, receivedBytes } = e.details;
      assert.ok(typeof inflatedBytes === 'number' && inflatedBytes > MiB && inflatedBytes <= MiB + 64 * 1024, `inflated ${String(inflatedBytes)}`);
      assert.ok(typeof receivedBytes === 'number' && receivedBytes <= 256 * 1024, `received ${String(receivedBytes)}`);
      return true;
    });
  });

  test('an endless body is cut at the limit and the connection closed', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => { closed = resolve; });
    const server = await serve((_req, res) => {
      res.on('close', closed);
      res.writeHead(200, { 'content-type': 'application/gzip' });
      // Stored (level 0) gzip of random bytes: valid, never ending, inflating to less than it weighs.
      const endless = new Readable({ read() { this.push(randomBytes(64 * 1024)); } });
      pipeline(endless, createGzip({ level: 0 }), res).catch(() => undefined);
    });
    const started = Date.now();
    await assert.rejects(fetchThreadMbox(`${server.origin}/test/`, ID, opts([server.origin], { maxBytes: MiB })), generic((d) => {
      assert.equal(d.reason, 'the body is over the limit');
      assert.ok(typeof d.receivedBytes === 'number' && d.receivedBytes <= MiB + 64 * 1024, JSON.stringify(d));
    }));
    assert.ok(Date.now() - started < 5_000, 'cut at the limit, not at the deadline');
    await serverSawClose;
  });

  test('a Content-Encoding the fetch did not ask for is refused', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-encoding': 'gzip' }).end(gzipSync(mbox));
    });
    await assert.rejects(fetchThreadMbox(`${server.origin}/test/`, ID, opts([server.origin])), generic((d) => {
      assert.equal(d.contentEncoding, 'gzip');
    }));
  });

  test('every other failure reads the same to the caller: no port, address or status; the detail stays in details', async () => {
    const forbidden = await serve((_req, res) => { res.writeHead(403).end('no'); });
    const broken = await serve((_req, res) => { res.writeHead(500).end('oops'); });
    const notGzip = await serve((_req, res) => { res.writeHead(200, { 'content-type': 'application/gzip' }).end('plain text'); });
    const silent = await serve(() => undefined);
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const cases: Array<[string, string, Partial<InboxFetchOptions>, Record<string, unknown>, boolean]> = [
      ['403', forbidden.origin, {}, { status: 403 }, false],
      ['500', broken.origin, {}, { status: 500 }, true],
      ['not gzip', notGzip.origin, {}, { reason: 'the body is not gzip' }, false],
      ['no answer', silent.origin, { timeoutMs: 500 }, { reason: 'timed out after 500 ms' }, true],
      ['nobody listening', nobody, {}, { reason: 'the connection failed' }, true],
    ];
    for (const [what, origin, more, expected, retryable] of cases) {
      await assert.rejects(fetchThreadMbox(`${origin}/test/`, ID, opts([origin], more)), (e: unknown) => {
        generic((d) => {
          for (const [k, v] of Object.entries(expected)) assert.equal(d[k], v, `${what}: ${k} in ${JSON.stringify(d)}`);
          assert.equal(d.url, `${origin}/test/${encodeURIComponent(ID)}/t.mbox.gz`, what);
        })(e);
        assert.ok(e instanceof PatchbayError);
        assert.equal(e.retryable, retryable, what);
        assert.doesNotMatch(e.message, /127\.0\.0\.1|\d{3,}/, what);
        return true;
      }, what);
    }
  });
});
