/**
 * Whether a list's archive has a message: public-inbox's `<inbox>/<id>/raw`,
 * asked politely through the watcher's client (allowlist, spacing,
 * retries). Used only to settle a report in doubt.
 */
import type { Config } from '../config/config.ts';
import { fetchRaw, PoliteClient } from '../lore/client.ts';
import { normalizeInbox } from '../lore/inbox.ts';

export function archiveCheck(config: Pick<Config, 'lore' | 'api'>): (inbox: string, messageId: string, signal: AbortSignal) => Promise<boolean> {
  return async (inbox, messageId, signal) => {
    const c = config.lore;
    const client = new PoliteClient({
      allow: config.api.inboxAllowlist, userAgent: c.userAgent, timeoutMs: config.api.inboxTimeoutMs, maxBytes: config.api.mboxLimitBytes,
      spacingMs: c.requestSpacingMs, budget: c.requestAttempts, attempts: c.requestAttempts, backoffBaseMs: c.backoffBaseMs, backoffMaxMs: c.backoffMaxMs,
    }, signal);
    const raw = await fetchRaw(client, normalizeInbox(inbox), messageId);
    return raw !== null && raw.includes(messageId);
  };
}
