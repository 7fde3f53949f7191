/**
 * Fetching a thread from a public-inbox (lore.kernel.org or any other):
 * <inbox>/<Message-ID>/t.mbox.gz, bounded in time and size.
 */
import { gunzipSync } from 'node:zlib';
import { PatchbayError, errorMessage } from '../domain/errors.ts';

export interface FetchLimits {
  timeoutMs: number;
  maxBytes: number;
}

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
  return url;
}

/** The whole thread of a message, as an mbox binary (latin1) string. */
export async function fetchThreadMbox(inbox: string, messageId: string, limits: FetchLimits): Promise<string> {
  const id = normalizeMessageId(messageId);
  const url = new URL(`${encodeURIComponent(id)}/t.mbox.gz`, normalizeInbox(inbox));
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(limits.timeoutMs), redirect: 'follow' });
  } catch (e) {
    throw new PatchbayError('INBOX_FETCH_FAILED', `fetching ${url.href} failed: ${errorMessage(e)}`, { retryable: true });
  }
  if (res.status === 404) throw new PatchbayError('INBOX_NOT_FOUND', `${url.origin}${url.pathname} has no message <${id}>`);
  if (!res.ok) throw new PatchbayError('INBOX_FETCH_FAILED', `${url.href} answered ${res.status}`, { retryable: res.status >= 500 });
  const body = Buffer.from(await res.arrayBuffer());
  if (body.length > limits.maxBytes) throw new PatchbayError('BODY_TOO_LARGE', `the thread is larger than ${limits.maxBytes} bytes`);
  let mbox: Buffer;
  try {
    mbox = gunzipSync(body, { maxOutputLength: limits.maxBytes * 8 });
  } catch (e) {
    throw new PatchbayError('INBOX_FETCH_FAILED', `${url.href} did not send a gzipped mbox: ${errorMessage(e)}`);
  }
  return mbox.toString('latin1');
}
