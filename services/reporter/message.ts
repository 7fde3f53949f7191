/**
 * A report as a mail message, composed by nodemailer's MailComposer: the
 * threading headers from the outbox row, the robot's From, the headers
 * that mark it automated, and the plain-text body. The same bytes are
 * written to the outbox folder (dry run) or sent over SMTP.
 */
import MailComposer from 'nodemailer/lib/mail-composer';
import type { OutboxEntry } from '../store/db.ts';

export interface Robot {
  name: string;
  address: string;
}

/** The headers a report carries besides the threading ones; each marks it as a robot's (RFC 3834) and names the job. */
export function automationHeaders(entry: Pick<OutboxEntry, 'jobId' | 'verdict' | 'kind' | 'id'>): Record<string, string> {
  return {
    'Auto-Submitted': 'auto-generated',
    'X-Auto-Response-Suppress': 'All',
    'X-Patchbay-Report': entry.id,
    'X-Patchbay-Kind': entry.kind,
    ...(entry.jobId !== null ? { 'X-Patchbay-Job': entry.jobId } : {}),
    ...(entry.verdict !== null ? { 'X-Patchbay-Verdict': entry.verdict } : {}),
  };
}

/** Composes the message; `date` is when it is first composed (a resend keeps it). */
export async function composeMessage(entry: OutboxEntry, body: string, robot: Robot, date: Date): Promise<Buffer> {
  const mail = new MailComposer({
    from: { name: robot.name, address: robot.address },
    to: entry.recipients.to.map((m) => ({ name: m.name, address: m.email })),
    ...(entry.recipients.cc.length > 0 ? { cc: entry.recipients.cc.map((m) => ({ name: m.name, address: m.email })) } : {}),
    subject: entry.subject,
    messageId: `<${entry.messageId}>`,
    inReplyTo: `<${entry.inReplyTo}>`,
    references: entry.references.map((r) => `<${r}>`),
    date,
    text: { content: body, contentType: 'text/plain; charset=utf-8' },
    headers: automationHeaders(entry),
    disableFileAccess: true,
    disableUrlAccess: true,
    newline: 'linux',
  });
  return mail.compile().build();
}

/** Envelope recipients: To then Cc, as plain addresses. */
export function envelopeOf(entry: Pick<OutboxEntry, 'recipients'>): string[] {
  return [...entry.recipients.to, ...entry.recipients.cc].map((m) => m.email);
}
