import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage } from '../mbox.ts';
import { answeredIds, commandInText, commandOfLine, describeCommand, readCommand } from '../report/commands.ts';

const ROBOT = 'patchbay@ci.example.org';

function mail(body: string, headers: string[] = [], from = 'Pat Author <pat@example.org>', subject = 'Re: [PATCH v2 0/3] io_uring: things'): ReturnType<typeof parseMessage> {
  return parseMessage([
    `From: ${from}`, 'To: io-uring@vger.example.org', `Subject: ${subject}`, 'Message-ID: <reply-1@example.org>',
    'In-Reply-To: <report-7@ci.example.org>', 'References: <cover-v2@example.org> <patch-2@example.org> <report-7@ci.example.org>',
    ...headers, '', body, '',
  ].join('\n'));
}

describe('reply commands', () => {
  it('reads the three commands, keyword in any case, trailing whitespace ignored', () => {
    assert.deepEqual(commandOfLine('patchbay: retest'), { command: 'retest' });
    assert.deepEqual(commandOfLine('PatchBay: RETEST  \t'), { command: 'retest' });
    assert.deepEqual(commandOfLine('patchbay:retest'), { command: 'retest' });
    assert.deepEqual(commandOfLine('patchbay: unrelated\r'), { command: 'unrelated' });
    assert.deepEqual(commandOfLine('patchbay: base 1234abc'), { command: 'base', commit: '1234abc' });
    assert.deepEqual(commandOfLine('Patchbay: Base  ABCDEF0123456789abcdef0123456789ABCDEF01'), { command: 'base', commit: 'abcdef0123456789abcdef0123456789abcdef01' });
  });

  it('anything else is not a command', () => {
    for (const line of [
      'patchbay: rm -rf /', 'patchbay: retest please', 'patchbay: retest; patchbay: unrelated', 'patchbay: base', 'patchbay: base 123456',
      'patchbay: base 1234abz', `patchbay: base ${'a'.repeat(41)}`, 'patchbay: base v7.1-rc1', 'patchbay: base HEAD~1', ' patchbay: retest',
      'please patchbay: retest', 'patchbay retest', 'patchbay: re-test', 'patchbay: unrelated!', '',
    ]) assert.equal(commandOfLine(line), null, line);
  });

  it('a quoted line is not the reply\'s own text', () => {
    assert.equal(commandInText('On Mon, someone wrote:\n> patchbay: retest\n\nThanks, applied.\n'), null);
    assert.equal(commandInText('>> patchbay: retest\n  > patchbay: unrelated\n'), null);
    assert.deepEqual(commandInText('> patchbay: unrelated\n\npatchbay: retest\n'), { command: 'retest' });
  });

  it('nothing below the signature separator counts', () => {
    assert.equal(commandInText('Thanks.\n\n-- \npatchbay: retest\n'), null);
    assert.equal(commandInText('Thanks.\n\n--\npatchbay: retest\n'), null);
    assert.deepEqual(commandInText('patchbay: unrelated\n-- \npatchbay: retest\n'), { command: 'unrelated' });
    // Not a separator: more than the two dashes.
    assert.deepEqual(commandInText('--- \npatchbay: retest\n'), { command: 'retest' });
  });

  it('the first command in a mail counts; junk before it is skipped', () => {
    assert.deepEqual(commandInText('patchbay: rm -rf\nHi,\n\npatchbay: base deadbeef\npatchbay: retest\n'), { command: 'base', commit: 'deadbeef' });
    assert.equal(commandInText('Looks fine to me.\n\nReviewed-by: M <m@example.org>\n'), null);
  });

  it('reads a whole mail; the robot\'s own mail and a program\'s never carry a command', () => {
    assert.deepEqual(readCommand(mail('Hi,\n\npatchbay: retest\n\nThanks'), ROBOT), { command: 'retest' });
    assert.equal(readCommand(mail('patchbay: retest', [], `CI <${ROBOT}>`), ROBOT), null);
    assert.equal(readCommand(mail('patchbay: retest', [], `CI <${ROBOT.toUpperCase()}>`), ROBOT), null);
    assert.equal(readCommand(mail('patchbay: retest', ['Auto-Submitted: auto-replied']), ROBOT), null);
    assert.equal(readCommand(mail('patchbay: retest', ['Auto-Submitted: auto-generated; owner-email="x@example.org"']), ROBOT), null);
    assert.deepEqual(readCommand(mail('patchbay: retest', ['Auto-Submitted: No']), ROBOT), { command: 'retest' });
    assert.deepEqual(readCommand(mail('patchbay: retest', ['Auto-Submitted: no (a person)']), ROBOT), { command: 'retest' });
  });

  it('a posting of patches (cover letter, patch) is not a reply and carries no command', () => {
    assert.equal(readCommand(mail('v3: patchbay: retest\npatchbay: retest\n', [], undefined, '[PATCH v3 0/2] io_uring: things'), ROBOT), null);
    assert.equal(readCommand(mail('patchbay: unrelated\n', [], undefined, '[RFC PATCH 1/2] io_uring: x'), ROBOT), null);
    assert.deepEqual(readCommand(mail('patchbay: unrelated\n', [], undefined, 'Re: [RFC PATCH 1/2] io_uring: x'), ROBOT), { command: 'unrelated' });
    assert.deepEqual(readCommand(mail('patchbay: unrelated\n', [], undefined, 'about the CI'), ROBOT), { command: 'unrelated' });
  });

  it('reads a quoted-printable body as its text', () => {
    const m = mail('patchbay: base 0123456=\n789\n', ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable']);
    assert.deepEqual(readCommand(m, ROBOT), { command: 'base', commit: '0123456789' });
  });

  it('the mails a reply answers: In-Reply-To, then References newest first, no repeats', () => {
    assert.deepEqual(answeredIds(mail('x')), ['report-7@ci.example.org', 'patch-2@example.org', 'cover-v2@example.org']);
    assert.deepEqual(answeredIds({ messageId: 'a', inReplyTo: null, references: [] }), []);
    assert.deepEqual(answeredIds({ messageId: 'a', inReplyTo: 'b', references: ['c', 'a'] }), ['b', 'c']);
  });

  it('describes a command as it was asked', () => {
    assert.equal(describeCommand({ command: 'base', commit: 'abcdef1' }), 'base abcdef1');
    assert.equal(describeCommand({ command: 'retest' }), 'retest');
  });
});
