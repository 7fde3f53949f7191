/**
 * The reporter (`patchbay serve --role reporter`): sends what the outbox
 * holds, each report once.
 *
 * Each tick it first settles the rows in doubt (claimed by a sender that
 * died before marking them), then claims due rows one at a time: compose
 * once (the bytes are kept), deliver, mark sent. A failed try waits with
 * exponential backoff and jitter, up to maxAttempts; a refusal (5xx) or a
 * report that cannot be rendered fails at once. See README.md for what
 * "exactly once" holds to, and the window that remains.
 */
import type { Logger } from 'pino';
import { errorMessage, isPatchbayError, PatchbayError } from '../domain/errors.ts';
import type { OutboxEntry, OutboxRepo } from '../store/db.ts';
import { composeMessage, envelopeOf, type Robot } from './message.ts';
import { inOutboxFolder, type MailTransport } from './transport.ts';

export interface ReporterSettings {
  pollIntervalMs: number;
  claimSeconds: number;
  archiveWaitSeconds: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface ReporterDeps {
  outbox: OutboxRepo;
  /** A result report's body (an acknowledgement carries its own). */
  render(entry: OutboxEntry): Promise<string>;
  robot: Robot;
  /** null: no relay configured; every report goes to the outbox folder. */
  smtp: MailTransport | null;
  folder: MailTransport;
  outboxDir: string;
  /** Whether the list's archive has the message (public-inbox's <Message-ID>/raw); null: not asked. */
  inArchive: ((inbox: string, messageId: string, signal: AbortSignal) => Promise<boolean>) | null;
  settings: ReporterSettings;
  /** Who claims (host and pid). */
  holder: string;
  logger: Logger;
  random?: () => number;
}

/** Delay before try `attempts + 1`: base·2^(attempts-1), capped, with jitter between half and all of it. */
export function backoffMs(attempts: number, s: Pick<ReporterSettings, 'backoffBaseMs' | 'backoffMaxMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(s.backoffMaxMs, s.backoffBaseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export class Reporter {
  readonly #deps: ReporterDeps;
  readonly #abort = new AbortController();
  #loop: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  #wake: (() => void) | null = null;

  constructor(deps: ReporterDeps) {
    this.#deps = deps;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Ask for a tick now (a verdict was just recorded). */
  poke(): void {
    this.#wake?.();
  }

  /** Stops taking reports, lets the one being sent finish (bounded), closes the transports. Idempotent. */
  close(timeoutMs = 15_000): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort();
      this.#wake?.();
      if (this.#loop !== null) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); });
        await Promise.race([this.#loop, late]);
        clearTimeout(timer);
      }
      this.#deps.smtp?.close();
      this.#deps.folder.close();
    })();
    return this.#closing;
  }

  /** Whether close() was called (a method, so that a check after an await is not narrowed away). */
  #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #run(): Promise<void> {
    const log = this.#deps.logger;
    while (!this.#stopped()) {
      try {
        await this.tick();
      } catch (e) {
        log.error({ err: errorMessage(e), code: isPatchbayError(e) ? e.code : undefined }, 'reporter tick failed');
      }
      if (this.#stopped()) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#deps.settings.pollIntervalMs);
        this.#wake = () => { clearTimeout(timer); resolve(); };
      });
      this.#wake = null;
    }
  }

  /** One pass: settle what is in doubt, then send every due report. Returns how many were sent. */
  async tick(): Promise<number> {
    for (const entry of await this.#deps.outbox.inDoubt()) await this.#settle(entry);
    let sent = 0;
    while (!this.#abort.signal.aborted) {
      const entry = await this.#deps.outbox.claim(this.#deps.holder, this.#deps.settings.claimSeconds);
      if (entry === null) break;
      if (await this.#send(entry)) sent++;
    }
    return sent;
  }

  #transportFor(entry: OutboxEntry): { transport: MailTransport; via: 'smtp' | 'outbox-folder' } {
    if (entry.mode === 'dry-run' || this.#deps.smtp === null) return { transport: this.#deps.folder, via: 'outbox-folder' };
    return { transport: this.#deps.smtp, via: 'smtp' };
  }

  async #send(entry: OutboxEntry): Promise<boolean> {
    const { outbox, holder, settings } = this.#deps;
    const log = this.#deps.logger.child({ report: entry.id, jobId: entry.jobId ?? undefined, seriesId: entry.seriesId, kind: entry.kind, attempt: entry.attempts });
    let raw: Buffer;
    try {
      const stored = entry.composed ? await outbox.raw(entry.id) : null;
      if (stored !== null) raw = stored;
      else {
        const body = entry.body ?? await this.#deps.render(entry);
        raw = await outbox.setRaw(entry.id, holder, await composeMessage(entry, body, this.#deps.robot, new Date()));
      }
    } catch (e) {
      const message = `REPORT_RENDER_FAILED: ${errorMessage(e)}`;
      const again = isPatchbayError(e) && e.retryable && entry.attempts < settings.maxAttempts;
      await outbox.tryFailed(entry.id, holder, message, again ? new Date(Date.now() + backoffMs(entry.attempts, settings, this.#deps.random)) : null);
      log.error({ err: message }, again ? 'report could not be composed; will try again' : 'report could not be composed');
      return false;
    }
    const { transport, via } = this.#transportFor(entry);
    try {
      const { response } = await transport.deliver({ id: entry.id, from: this.#deps.robot.address, to: envelopeOf(entry), raw }, this.#abort.signal);
      const marked = await outbox.markSent(entry.id, holder, via, response);
      if (!marked) log.warn('report delivered after its claim was lost; the row is settled as in doubt');
      else log.info({ via, recipients: envelopeOf(entry).length, messageId: entry.messageId }, 'report sent');
      return marked;
    } catch (e) {
      const retry = !(e instanceof PatchbayError) || e.retryable;
      const again = retry && entry.attempts < settings.maxAttempts;
      const next = again ? new Date(Date.now() + backoffMs(entry.attempts, settings, this.#deps.random)) : null;
      await outbox.tryFailed(entry.id, holder, errorMessage(e), next);
      log.warn({ err: errorMessage(e), next: next?.toISOString() ?? null }, again ? 'report not sent; will try again' : 'report not sent; given up');
      return false;
    }
  }

  /**
   * A row whose claim expired while sending. Not composed: it was never
   * handed to a transport, so it is sent again. Dry run: the file tells.
   * SMTP to a list: the list's archive tells once it has the Message-ID;
   * not there after archiveWaitSeconds, it is sent again (same bytes, same
   * Message-ID). SMTP to the author alone: nothing can tell, so an
   * operator decides (held).
   */
  async #settle(entry: OutboxEntry): Promise<void> {
    const { outbox, settings } = this.#deps;
    const log = this.#deps.logger.child({ report: entry.id, jobId: entry.jobId ?? undefined, seriesId: entry.seriesId });
    const { via } = this.#transportFor(entry);
    if (!entry.composed) {
      await outbox.settle(entry.id, { status: 'pending', detail: 'its sender stopped before composing it; sent again' });
      return;
    }
    if (via === 'outbox-folder') {
      const there = await inOutboxFolder(this.#deps.outboxDir, entry.id);
      await outbox.settle(entry.id, there
        ? { status: 'sent', via: 'outbox-folder', detail: 'found in the outbox folder after its sender stopped' }
        : { status: 'pending', detail: 'its sender stopped before writing it; written again' });
      return;
    }
    if (entry.mode === 'author+list' && entry.inbox !== null && this.#deps.inArchive !== null) {
      let found: boolean;
      try {
        found = await this.#deps.inArchive(entry.inbox, entry.messageId, this.#abort.signal);
      } catch (e) {
        log.warn({ err: errorMessage(e) }, 'the archive could not be asked about a report in doubt; asking again next tick');
        return;
      }
      if (found) {
        if (await outbox.settle(entry.id, { status: 'sent', via: 'archive', detail: `its sender stopped before recording it; the list's archive has <${entry.messageId}>` })) {
          log.info({ messageId: entry.messageId }, 'report in doubt found in the archive: sent, not sent again');
        }
        return;
      }
      const waited = entry.claimedUntil === null ? Infinity : (Date.now() - entry.claimedUntil.getTime()) / 1000;
      if (waited < settings.archiveWaitSeconds) return;
      await outbox.settle(entry.id, { status: 'pending', detail: `its sender stopped before recording it, and the archive has no <${entry.messageId}> after ${settings.archiveWaitSeconds}s: sent again with the same Message-ID` });
      log.warn({ messageId: entry.messageId }, 'report in doubt not in the archive; sending again');
      return;
    }
    await outbox.settle(entry.id, { status: 'held', detail: 'its sender stopped between handing it to the relay and recording the answer, and nothing can tell whether it went out: resend it or mark it sent (POST /api/v1/outbox/ID/resend or /mark-sent)' });
    log.error('report in doubt held for an operator');
  }
}
