/**
 * Reply commands: a maintainer or a series' author answering in its thread
 * with a line `patchbay: retest`, `patchbay: base <commit>` or
 * `patchbay: unrelated`. Pure reading of one mail: which command it carries
 * (if any) and which mail it answers. Who may command, and what is done,
 * is the watcher's (services/lore/watcher.ts).
 *
 * A command is a line of the reply's own text: not a quoted line (`>`),
 * not below the signature separator (`-- `), the whole line the command
 * (keyword case-insensitive, trailing whitespace ignored). The first
 * command of a mail counts; a line that starts `patchbay:` but is not one
 * of the three (`patchbay: rm -rf`) is not a command. Mail from the robot
 * itself, mail a program sent (Auto-Submitted: other than `no`, as
 * vacation responders and other robots mark theirs), and a posting of
 * patches (a `[PATCH ...]` subject that is not a reply: a cover letter or
 * commit message that mentions a command) never carry one.
 */
import type { MailMessage } from '../mbox.ts';
import { parseSubject } from '../subject.ts';

export type ReplyCommand =
  | { command: 'retest' }
  /** The commit as written (7 to 40 hex digits), lower case. */
  | { command: 'base'; commit: string }
  | { command: 'unrelated' };

export type ReplyCommandName = ReplyCommand['command'];

const COMMAND_LINE = /^patchbay:\s*(retest|base\s+([0-9a-f]{7,40})|unrelated)\s*$/i;
/** The signature separator ("-- "; also "--", as some clients and lists strip the trailing space). */
const SIGNATURE = /^-- ?$/;

/** The command a line is, or null. */
export function commandOfLine(line: string): ReplyCommand | null {
  const m = COMMAND_LINE.exec(line.replace(/\r$/, ''));
  if (m === null) return null;
  const word = (m[1] ?? '').toLowerCase();
  if (word === 'retest') return { command: 'retest' };
  if (word === 'unrelated') return { command: 'unrelated' };
  return { command: 'base', commit: (m[2] ?? '').toLowerCase() };
}

/** The first command in a reply's text: its own lines, above the signature. */
export function commandInText(body: string): ReplyCommand | null {
  for (const line of body.split('\n')) {
    const l = line.replace(/\r$/, '');
    if (SIGNATURE.test(l)) return null;
    if (/^\s*>/.test(l)) continue;
    const c = commandOfLine(l);
    if (c !== null) return c;
  }
  return null;
}

/**
 * The command a mail carries, or null: never from the robot's own address
 * (`robot`, compared case-insensitively), from a program (Auto-Submitted:
 * anything but `no`), nor in a patch or cover letter.
 */
export function readCommand(mail: Pick<MailMessage, 'body' | 'from' | 'header' | 'subject'>, robot: string): ReplyCommand | null {
  if (mail.from.email.trim().toLowerCase() === robot.trim().toLowerCase()) return null;
  const subject = parseSubject(mail.subject);
  if (subject.isPatch && !subject.isReply) return null;
  const auto = mail.header('auto-submitted');
  if (auto !== undefined && auto.trim().toLowerCase().replace(/\s*[;(].*$/, '') !== 'no') return null;
  return commandInText(mail.body);
}

/**
 * The mails a reply answers, nearest first: its In-Reply-To, then its
 * References newest first, without repeats or itself. The first of them
 * that is a patch, cover letter or report of ours names the revision the
 * command is about.
 */
export function answeredIds(mail: Pick<MailMessage, 'inReplyTo' | 'references' | 'messageId'>): string[] {
  const ids = [...(mail.inReplyTo === null ? [] : [mail.inReplyTo]), ...[...mail.references].reverse()];
  return [...new Set(ids)].filter((id) => id !== mail.messageId);
}

/** How a command reads in logs and acknowledgements: "retest", "base 1234abcd...", "unrelated". */
export function describeCommand(c: ReplyCommand): string {
  return c.command === 'base' ? `base ${c.commit}` : c.command;
}
