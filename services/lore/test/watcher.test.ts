/** The watcher's pure pieces: threads, revision keys, relevance, the diff hash. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignThreadRoots, diffHash, relevance, revisionKey } from '../watcher.ts';

const msg = (messageId: string, references: string[] = [], inReplyTo: string | null = null) => ({ messageId, references, inReplyTo });

describe('assignThreadRoots', () => {
  it('a message joins the thread of the first message it answers that is known, else its oldest reference', () => {
    const roots = assignThreadRoots([msg('v2-3', ['v1-3'], 'v1-3'), msg('new-1'), msg('reply', ['new-1'], 'new-1'), msg('orphan', ['gone', 'also-gone'])], new Map([['v1-3', 'v1-cover']]));
    assert.deepEqual(Object.fromEntries(roots), { 'v2-3': 'v1-cover', 'new-1': 'new-1', reply: 'new-1', orphan: 'gone' });
  });
  it('a reply before its parent in the batch, and a loop of references, still get one root each', () => {
    const roots = assignThreadRoots([msg('c', ['a', 'b'], 'b'), msg('b', ['a'], 'a'), msg('a'), msg('x', ['y']), msg('y', ['x'])], new Map());
    assert.equal(roots.get('c'), 'a');
    assert.equal(roots.get('b'), 'a');
    assert.ok(roots.get('x') !== undefined && roots.get('y') !== undefined);
  });
});

describe('revisionKey', () => {
  it('identity and version; a RESEND is keyed by its own root; no NUL (PostgreSQL text)', () => {
    const a = revisionKey({ identity: 'subject:a@x:t', version: 2, isResend: false, rootMessageId: 'r1' });
    assert.equal(a, revisionKey({ identity: 'subject:a@x:t', version: 2, isResend: false, rootMessageId: 'r2' }));
    assert.notEqual(a, revisionKey({ identity: 'subject:a@x:t', version: 3, isResend: false, rootMessageId: 'r1' }));
    assert.notEqual(a, revisionKey({ identity: 'subject:a@x:t', version: 2, isResend: true, rootMessageId: 'r1' }));
    assert.ok(!a.includes('\u0000'));
  });
});

describe('relevance', () => {
  const config = { relevantPaths: ['io_uring/', 'fs/fuse/', 'include/uapi/linux/io_uring.h'], relevantTags: ['io_uring-7.2'] };
  it('names the paths and tags that make a series relevant', () => {
    assert.deepEqual(relevance({ treeTags: [], paths: ['Documentation/x.rst', 'io_uring/kbuf.c'] }, config), ['io_uring/kbuf.c']);
    assert.deepEqual(relevance({ treeTags: ['IO_URING-7.2'], paths: ['net/core/dev.c'] }, config), ['[IO_URING-7.2]']);
    assert.deepEqual(relevance({ treeTags: [], paths: ['include/uapi/linux/io_uring.h'] }, config), ['include/uapi/linux/io_uring.h']);
  });
  it('a prefix is a prefix of a path, not of a name: io_uring_x/ is not io_uring/', () => {
    assert.deepEqual(relevance({ treeTags: ['net-next'], paths: ['io_uring_x/a.c', 'fs/fuse.c'] }, config), []);
  });
});

describe('diffHash', () => {
  const patch = (body: string) => ({ message: { body } }) as unknown as Parameters<typeof diffHash>[0]['patches'][number];
  const diff = 'diff --git a/a b/a\nindex 1..2 100644\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n';
  it('the same diffs hash the same whatever the commit message and signature', () => {
    assert.equal(diffHash({ patches: [patch(`one message\n---\n a | 2 +-\n\n${diff}-- \n2.47.0\n`)] }), diffHash({ patches: [patch(`another\n---\n${diff}-- \n2.39.5\n`)] }));
  });
  it('different diffs, or the same diffs in another order, hash differently', () => {
    const other = diff.replace('+y', '+z');
    assert.notEqual(diffHash({ patches: [patch(diff)] }), diffHash({ patches: [patch(other)] }));
    assert.notEqual(diffHash({ patches: [patch(diff), patch(other)] }), diffHash({ patches: [patch(other), patch(diff)] }));
  });
});

describe('LoreWatcher configuration', () => {
  it('refuses at start an inbox whose origin is not on the inbox allowlist, before any request', async () => {
    const { LoreWatcher } = await import('../watcher.ts');
    const { loadConfig } = await import('../../config/config.ts');
    const { pino } = await import('pino');
    const config = loadConfig({ PATCHBAY_LORE_INBOXES: 'http://127.0.0.1:9/io-uring/' });
    const deps = {
      store: {} as never, intake: {} as never, trees: {} as never, config: config.lore, logger: pino({ level: 'silent' }),
      allow: ['https://lore.kernel.org'], timeoutMs: 1000, maxBytes: 1024, resolveBase: () => Promise.reject(new Error('unused')), patchIds: () => Promise.reject(new Error('unused')),
    };
    assert.throws(() => new LoreWatcher(deps), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'CONFIG_INVALID' && /not on the inbox allowlist/.test(e.message));
    assert.deepEqual(new LoreWatcher({ ...deps, allow: ['http://127.0.0.1:9'] }).inboxes, ['http://127.0.0.1:9/io-uring/']);
  });
});
