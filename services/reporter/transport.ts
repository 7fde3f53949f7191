/**
 * Where a composed report goes: the one-method port the reporter sends
 * through (`MailTransport.deliver`), and its two ends. SMTP through
 * nodemailer's transport (STARTTLS when offered, or required; smtps;
 * AUTH from the URL, never logged), and the outbox folder of a dry run: one
 * `.eml` file a report, named by its row (never by anything a job or a
 * thread wrote), written whole or not at all.
 */
import { readFileSync } from 'node:fs';
import { link, mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import { PatchbayError, errorMessage } from '../domain/errors.ts';

export interface Delivery {
  /** The report's row id: names the outbox file. */
  id: string;
  from: string;
  to: readonly string[];
  raw: Buffer;
}

export interface MailTransport {
  /** Delivers the message; resolves with what the other end said. Throws REPORT_SEND_FAILED (retryable or not). */
  deliver(d: Delivery, signal?: AbortSignal): Promise<{ response: string }>;
  close(): void;
}

/** The outbox file of a report. */
export function outboxFile(dir: string, id: string): string {
  if (!/^m-[0-9a-z]{20}$/.test(id)) throw new PatchbayError('REPORT_BAD_ID', `not a report id: ${JSON.stringify(id).slice(0, 60)}`);
  return join(dir, `${id}.eml`);
}

/** Whether the outbox folder holds the report's file already (a dry-run row in doubt was written). */
export async function inOutboxFolder(dir: string, id: string): Promise<boolean> {
  try {
    return (await stat(outboxFile(dir, id))).isFile();
  } catch {
    return false;
  }
}

export function folderTransport(dir: string): MailTransport {
  return {
    async deliver(d) {
      await mkdir(dir, { recursive: true, mode: 0o750 });
      const final = outboxFile(dir, d.id);
      const partial = `${final}.${process.pid}.partial`;
      const fh = await open(partial, 'wx', 0o640);
      try {
        await fh.writeFile(d.raw);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // link(2) fails when the file exists: a report is written once, and a second writer leaves the first's.
      try {
        await link(partial, final);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        await rm(partial, { force: true });
      }
      return { response: `written to ${final}` };
    },
    close() { /* nothing held */ },
  };
}

export interface SmtpSettings {
  url: string;
  requireTls: boolean;
  caFile: string | null;
  timeoutMs?: number;
}

/** The relay's address without its credentials, for logs and errors. */
export function redactedSmtpUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = u.username === '' ? '' : '***';
    u.password = u.password === '' ? '' : '***';
    return u.href;
  } catch {
    return '(an SMTP URL that does not parse)';
  }
}

/** SMTP reply codes and socket errors a later try may get past. */
function retryable(e: unknown): boolean {
  const code = (e as { responseCode?: unknown }).responseCode;
  if (typeof code === 'number') return code < 500;
  return true;
}

export function smtpTransport(s: SmtpSettings): MailTransport {
  let url: URL;
  try {
    url = new URL(s.url);
  } catch {
    throw new PatchbayError('CONFIG_INVALID', `PATCHBAY_SMTP_URL does not parse: ${redactedSmtpUrl(s.url)}`);
  }
  const secure = url.protocol === 'smtps:';
  const timeout = s.timeoutMs ?? 60_000;
  const transport = createTransport({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
    secure,
    requireTLS: !secure && s.requireTls,
    ...(url.username !== '' ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } } : {}),
    tls: { minVersion: 'TLSv1.2', ...(s.caFile !== null ? { ca: readFileSync(s.caFile) } : {}) },
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const where = redactedSmtpUrl(s.url);
  return {
    async deliver(d) {
      try {
        const info = await transport.sendMail({ envelope: { from: d.from, to: [...d.to] }, raw: d.raw });
        if (info.rejected.length > 0 && info.accepted.length === 0) {
          throw Object.assign(new Error(`every recipient was refused: ${info.response}`), { responseCode: 550 });
        }
        return { response: `${info.response}${info.rejected.length > 0 ? ` (refused: ${info.rejected.join(', ')})` : ''}` };
      } catch (e) {
        throw new PatchbayError('REPORT_SEND_FAILED', `${where}: ${errorMessage(e)}`, { retryable: retryable(e), cause: e });
      }
    },
    close() { transport.close(); },
  };
}
