/**
 * Fetching a thread from a public-inbox: <inbox>/<Message-ID>/t.mbox.gz.
 *
 * The caller of the API names the inbox, so the fetch is fenced: only
 * origins in the configured allowlist; a host name must resolve to public
 * addresses only (checked in the connection's own lookup, so the address
 * checked is the address connected to: no DNS rebinding); redirects only to
 * allowlisted origins, each hop checked again; bytes counted as they arrive
 * and the gzip inflated here, both capped; one deadline for the whole fetch.
 * The caller learns "not allowed", "no such message", "too large" or one
 * generic failure; what went wrong stays in the error's details, for the log.
 *
 * An allowlist entry whose host is an IP literal is trusted as the admin
 * wrote it: node connects to a literal without a lookup, so no address check
 * runs (the tests' loopback inbox is reached this way).
 */
import { lookup as dnsLookup } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { PatchbayError, errorMessage, isPatchbayError } from '../domain/errors.ts';
import { isPublicAddress } from './address.ts';

export interface InboxFetchOptions {
  /** Origins (scheme://host[:port]) that may be fetched from: config api.inboxAllowlist. */
  allow: readonly string[];
  /** For the whole fetch: lookups, connections, redirects and body. */
  timeoutMs: number;
  /**
   * Cap on the bytes received and, separately, on the inflated mbox: the
   * upload limit, so a thread fetched is held to what an upload would be.
   */
  maxBytes: number;
}

/** What the caller is told for every failure that could describe the network behind the service. */
export const INBOX_FETCH_FAILED_MESSAGE = 'the inbox could not be fetched; try again later';

/** lore moves a message to its list's canonical URL at most once or twice. */
const MAX_REDIRECTS = 3;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export function normalizeMessageId(raw: string): string {
  const id = raw.trim().replace(/^<|>$/g, '').replace(/^id:/, '');
  if (!/^[^\s<>/]+@[^\s<>/]+$/.test(id) || id.length > 250) {
    throw new PatchbayError('MESSAGE_ID_INVALID', `"${raw.slice(0, 100)}" is not a Message-ID (local@domain)`);
  }
  return id;
}

export function normalizeInbox(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw.endsWith('/') ? raw : `${raw}/`);
  } catch {
    throw new PatchbayError('INBOX_INVALID', `"${raw.slice(0, 100)}" is not an http(s) URL of a public-inbox`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PatchbayError('INBOX_INVALID', `the inbox URL must be http or https, not ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new PatchbayError('INBOX_INVALID', 'the inbox URL must not carry credentials');
  }
  return url;
}

/** A failure whose detail is for the log only; the caller gets INBOX_FETCH_FAILED_MESSAGE. */
class FetchFailure extends Error {
  constructor(readonly reason: string, readonly retryable: boolean, readonly details: Record<string, unknown> = {}) {
    super(reason);
  }
}

/** A host name that resolved to an address patchbay does not connect to for a caller. */
class AddressRefused extends Error {
  readonly code = 'PATCHBAY_ADDRESS_REFUSED';
  constructor(readonly hostname: string, readonly addresses: readonly string[]) {
    super(addresses.length === 0 ? `${hostname} resolves to no address` : `${hostname} resolves to ${addresses.join(', ')}, not a public address`);
  }
}

/**
 * The connection's lookup: every address the name resolves to must be public
 * (one private answer among public ones refuses the lot, or a retry could pick
 * it); the connection then goes to an address checked here.
 */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) {
      callback(err, []);
      return;
    }
    const refused = addresses.filter((a) => !isPublicAddress(a.address)).map((a) => a.address);
    const first = addresses[0];
    if (refused.length > 0 || first === undefined) {
      callback(new AddressRefused(hostname, refused), []);
      return;
    }
    if (options.all === true) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
};

export interface RequestOptions {
  method: 'GET' | 'POST';
  /** Sent as the User-Agent: who polls, with a contact address (config lore.userAgent). */
  userAgent: string;
  accept: string;
}

function send(url: URL, signal: AbortSignal, opts: RequestOptions): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, {
      method: opts.method,
      // identity: the body is counted as sent and inflated here, under a cap.
      headers: { accept: opts.accept, 'accept-encoding': 'identity', 'user-agent': opts.userAgent, ...(opts.method === 'POST' ? { 'content-length': '0' } : {}) },
      lookup: publicOnlyLookup,
      // A fresh connection per request: never one pooled by a lookup that did not check.
      agent: false,
      signal,
    }, resolve);
    req.on('error', reject);
    req.end();
  });
}

function isZlibError(e: unknown): e is Error {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('Z_');
}

/** Reads a body (gzipped or not): at most maxBytes received, at most maxBytes inflated. */
async function readBody(res: IncomingMessage, maxBytes: number, gzip: boolean, signal: AbortSignal): Promise<Buffer> {
  let received = 0;
  let inflated = 0;
  const chunks: Buffer[] = [];
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > maxBytes) done(new FetchFailure('the body is over the limit', false, { receivedBytes: received, limit: maxBytes }));
      else done(null, chunk);
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      inflated += chunk.length;
      if (inflated > maxBytes) {
        done(new PatchbayError('BODY_TOO_LARGE', `the answer is larger than the limit of ${maxBytes} bytes`, {
          details: { limit: maxBytes, inflatedBytes: inflated, receivedBytes: received },
        }));
        return;
      }
      chunks.push(chunk);
      done();
    },
  });
  try {
    if (gzip) await pipeline(res, count, createGunzip(), sink, { signal });
    else await pipeline(res, count, sink, { signal });
  } catch (e) {
    if (isZlibError(e)) throw new FetchFailure('the body is not gzip', false, { error: e.message, receivedBytes: received });
    throw e;
  }
  return Buffer.concat(chunks);
}

function notAllowed(allowed: readonly string[]): PatchbayError {
  if (allowed.length === 0) return new PatchbayError('INBOX_NOT_ALLOWED', 'this service fetches from no public-inbox; submit the series as an mbox');
  return new PatchbayError('INBOX_NOT_ALLOWED', `this service fetches only from ${allowed.join(', ')}; submit other series as an mbox`);
}

export interface FencedFetchOptions extends InboxFetchOptions, Partial<RequestOptions> {
  /** The body is gzip (t.mbox.gz, x=m): inflated here, under the same cap. */
  gzip: boolean;
}

/**
 * One fenced request to a public-inbox: the URL's origin must be in the
 * allowlist, redirects only to allowlisted origins (at most 3), the body
 * capped as received and inflated, one deadline for all of it. Throws
 * INBOX_NOT_ALLOWED, INBOX_NOT_FOUND (404), BODY_TOO_LARGE or
 * INBOX_FETCH_FAILED (retryable for 429, 5xx, timeouts and connection
 * failures; details.status, details.retryAfterSeconds when the inbox said).
 */
export async function fencedFetch(target: URL, opts: FencedFetchOptions): Promise<Buffer> {
  const allowed = opts.allow.map((o) => new URL(o).origin);
  if (!allowed.includes(target.origin)) throw notAllowed(allowed);
  const request: RequestOptions = {
    method: opts.method ?? 'GET',
    userAgent: opts.userAgent ?? 'patchbay',
    accept: opts.accept ?? (opts.gzip ? 'application/gzip, */*' : '*/*'),
  };
  let url = target;
  const controller = new AbortController();
  const timer = setTimeout(() => { controller.abort(); }, opts.timeoutMs);
  try {
    for (let hops = 0; ; hops++) {
      const res = await send(url, controller.signal, request);
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status)) {
        res.destroy();
        const location = res.headers.location;
        if (location === undefined) throw new FetchFailure('a redirect without a Location', false, { status });
        if (hops >= MAX_REDIRECTS) throw new FetchFailure('too many redirects', false, { status, location });
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new FetchFailure('a redirect to no valid URL', false, { status, location });
        }
        if (!allowed.includes(next.origin)) throw new FetchFailure('a redirect to an origin not in the allowlist', false, { status, location: next.href });
        url = next;
        continue;
      }
      if (status === 404) {
        res.destroy();
        throw new PatchbayError('INBOX_NOT_FOUND', `${url.origin}${url.pathname} was not found`, { details: { status } });
      }
      if (status < 200 || status > 299) {
        res.destroy();
        const retryAfter = Number(res.headers['retry-after']);
        throw new FetchFailure('the inbox answered with an unexpected status', status >= 500 || status === 429, {
          status,
          ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterSeconds: retryAfter } : {}),
        });
      }
      const encoding = (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (encoding !== 'identity') {
        res.destroy();
        throw new FetchFailure('the inbox sent an encoding not asked for', false, { status, contentEncoding: encoding });
      }
      const length = Number(res.headers['content-length'] ?? '0');
      if (length > opts.maxBytes) {
        res.destroy();
        throw new FetchFailure('the body is over the limit', false, { status, contentLength: length, limit: opts.maxBytes });
      }
      return await readBody(res, opts.maxBytes, opts.gzip, controller.signal);
    }
  } catch (e) {
    if (isPatchbayError(e)) throw e;
    const failure = controller.signal.aborted
      ? new FetchFailure(`timed out after ${opts.timeoutMs} ms`, true)
      : e instanceof FetchFailure ? e
        : e instanceof AddressRefused ? new FetchFailure('the inbox host resolves to an address that is not public', false, { addresses: e.addresses })
          : new FetchFailure('the connection failed', true);
    throw new PatchbayError('INBOX_FETCH_FAILED', INBOX_FETCH_FAILED_MESSAGE, {
      retryable: failure.retryable,
      cause: e,
      details: { url: url.href, reason: failure.reason, ...failure.details, ...(e === failure ? {} : { error: errorMessage(e) }) },
    });
  } finally {
    clearTimeout(timer);
  }
}

/** The whole thread of a message, as an mbox binary (latin1) string. */
export async function fetchThreadMbox(inbox: string, messageId: string, opts: InboxFetchOptions & { userAgent?: string }): Promise<string> {
  const id = normalizeMessageId(messageId);
  const base = normalizeInbox(inbox);
  const allowed = opts.allow.map((o) => new URL(o).origin);
  if (!allowed.includes(base.origin)) throw notAllowed(allowed);
  try {
    return (await fencedFetch(new URL(`${encodeURIComponent(id)}/t.mbox.gz`, base), { ...opts, gzip: true })).toString('latin1');
  } catch (e) {
    if (isPatchbayError(e) && e.code === 'INBOX_NOT_FOUND') throw new PatchbayError('INBOX_NOT_FOUND', `${base.href} has no message <${id}>`);
    if (isPatchbayError(e) && e.code === 'BODY_TOO_LARGE') throw new PatchbayError('BODY_TOO_LARGE', `the thread is larger than the limit of ${opts.maxBytes} bytes`, { details: e.details });
    throw e;
  }
}
