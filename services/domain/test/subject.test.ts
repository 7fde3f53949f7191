import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSubject, versionWord, type SubjectInfo } from '../subject.ts';

type Expect = Partial<SubjectInfo>;

const cases: Array<[string, Expect]> = [
  [
    '[PATCH v3 06/25] io_uring/kbuf: add buffer ring pinning/unpinning',
    {
      isReply: false, isPatch: true, isRfc: false, isResend: false, version: 3, counter: 6, total: 25,
      treeTags: [], prefixes: ['PATCH', 'v3', '06/25'], title: 'io_uring/kbuf: add buffer ring pinning/unpinning',
    },
  ],
  [
    '[PATCH v3 00/25] fuse/io-uring: add kernel-managed buffer rings and zero-copy',
    { isPatch: true, version: 3, counter: 0, total: 25, title: 'fuse/io-uring: add kernel-managed buffer rings and zero-copy' },
  ],
  ['[RFC PATCH 0/3] fuse: zero copy', { isPatch: true, isRfc: true, version: 1, counter: 0, total: 3, prefixes: ['RFC', 'PATCH', '0/3'] }],
  [
    '[PATCH RESEND net-next v2 1/2] net: foo',
    { isPatch: true, isResend: true, version: 2, counter: 1, total: 2, treeTags: ['net-next'], title: 'net: foo' },
  ],
  ['[PATCHv2 3/7] fuse: bar', { isPatch: true, version: 2, counter: 3, total: 7, prefixes: ['PATCHv2', '3/7'], treeTags: [] }],
  ['[PATCH-v4 2/2] fuse: baz', { isPatch: true, version: 4, counter: 2, total: 2, treeTags: [] }],
  ['[PATCH V5] fuse: capital', { isPatch: true, version: 5, counter: null, total: null }],
  ['[PATCH 6.12.y] io_uring: backport', { isPatch: true, version: 1, counter: null, total: null, treeTags: ['6.12.y'], title: 'io_uring: backport' }],
  ['[PATCH] single', { isPatch: true, version: 1, counter: null, total: null, treeTags: [], prefixes: ['PATCH'], title: 'single' }],
  [
    'Re: [PATCH v3 06/25] io_uring/kbuf: add buffer ring pinning/unpinning',
    { isReply: true, isPatch: true, version: 3, counter: 6, total: 25, title: 'io_uring/kbuf: add buffer ring pinning/unpinning' },
  ],
  ['RE: Re: AW: [PATCH] x', { isReply: true, isPatch: true, title: 'x' }],
  ['Fwd: [PATCH 1/2] x', { isReply: true, counter: 1, total: 2 }],
  ['Sv: [PATCH] x', { isReply: true, title: 'x' }],
  ['[PATCH] [RFC] x', { isPatch: true, isRfc: true, prefixes: ['PATCH', 'RFC'], title: 'x' }],
  ['[PATCH 06/25 v3] version after counter', { version: 3, counter: 6, total: 25, title: 'version after counter' }],
  ['[PATCH v3 6 / 25] spaced counter', { version: 3, counter: 6, total: 25, prefixes: ['PATCH', 'v3', '6/25'] }],
  [
    '[RFC PATCH io_uring-6.19 bpf-next,for-next 2/4] tags',
    { isRfc: true, treeTags: ['io_uring-6.19', 'bpf-next', 'for-next'], counter: 2, total: 4 },
  ],
  ['[PATCH fuse] fuse: tree tag named like the subsystem', { treeTags: ['fuse'] }],
  ['[PATCH net-next,v2 1/3] comma', { version: 2, counter: 1, total: 3, treeTags: ['net-next'], prefixes: ['PATCH', 'net-next', 'v2', '1/3'] }],
  ['[RFC] only rfc', { isPatch: true, isRfc: true, title: 'only rfc' }],
  ['[RFCv2 1/3] rfc with version', { isPatch: true, isRfc: true, version: 2, counter: 1, total: 3 }],
  [
    'io_uring: a subject without brackets',
    { isReply: false, isPatch: false, version: 1, counter: null, total: null, prefixes: [], title: 'io_uring: a subject without brackets' },
  ],
  ['Re: io_uring: a reply without brackets', { isReply: true, isPatch: false, title: 'io_uring: a reply without brackets' }],
  ['[GIT PULL] io_uring fixes for 6.19-rc3', { isPatch: false, treeTags: ['GIT', 'PULL'], title: 'io_uring fixes for 6.19-rc3' }],
  ['[PATCH [net] v2] nested brackets', { isPatch: true, version: 2, treeTags: ['net'], title: 'nested brackets' }],
  ['[PATCH] io_uring: fix x[i] bounds', { title: 'io_uring: fix x[i] bounds' }],
  // Tree tags, RESEND in every place it is written.
  ['[PATCH io_uring-7.2] io_uring: x', { isPatch: true, version: 1, counter: null, treeTags: ['io_uring-7.2'], title: 'io_uring: x' }],
  ['[PATCH for-next 1/2] x', { version: 1, counter: 1, total: 2, treeTags: ['for-next'] }],
  ['[PATCH for-7.1/io_uring v3 02/11] x', { version: 3, counter: 2, total: 11, treeTags: ['for-7.1/io_uring'] }],
  ['[PATCHv2 3/4] x', { isPatch: true, version: 2, counter: 3, total: 4, treeTags: [] }],
  ['[RESEND PATCH] x', { isPatch: true, isResend: true, version: 1, counter: null, treeTags: [], title: 'x' }],
  ['[RESEND][PATCH v2 1/2] x', { isPatch: true, isResend: true, version: 2, counter: 1, total: 2, treeTags: [] }],
  ['[PATCH v2 RESEND 1/2] x', { isResend: true, version: 2, counter: 1, total: 2, treeTags: [] }],
  ['[PATCH v2 00/11 RESEND] x', { isResend: true, version: 2, counter: 0, total: 11 }],
  ['[RESENDv3 PATCH 2/2] x', { isPatch: true, isResend: true, version: 3, counter: 2, total: 2, treeTags: [] }],
  ['[PATCH RESEND^2 net] x', { isResend: true, version: 1, treeTags: ['net'] }],
  ['[PATCH v2] [RESEND] x', { isResend: true, version: 2, prefixes: ['PATCH', 'v2', 'RESEND'], title: 'x' }],
  ['RESEND: [PATCH] x', { isReply: false, isPatch: true, isResend: true, title: 'x' }],
  ['Re: [PATCH RESEND v2 1/2] x', { isReply: true, isResend: true, version: 2, counter: 1 }],
  ['  [PATCH   v2   1/3]   spaces\tand  tabs ', { version: 2, counter: 1, total: 3, title: 'spaces and tabs' }],
];

for (const [subject, expected] of cases) {
  test(`parseSubject: ${subject}`, () => {
    const info = parseSubject(subject);
    const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, info[k as keyof SubjectInfo]]));
    assert.deepEqual(picked, expected);
  });
}

test('parseSubject: a resend is a patch of the same version', () => {
  const a = parseSubject('[PATCH v2 1/2] x');
  const b = parseSubject('[RESEND PATCH v2 1/2] x');
  assert.equal(b.isResend, true);
  assert.equal(a.version, b.version);
  assert.equal(a.title, b.title);
});

test('versionWord', () => {
  assert.equal(versionWord('v3'), 3);
  assert.equal(versionWord('V12'), 12);
  assert.equal(versionWord('PATCHv2'), 2);
  assert.equal(versionWord('patch-v4'), 4);
  assert.equal(versionWord('RFC_v2'), 2);
  assert.equal(versionWord('RESENDv3'), 3);
  assert.equal(versionWord('resend-v2'), 2);
  assert.equal(versionWord('PATCH'), null);
  assert.equal(versionWord('v'), null);
  assert.equal(versionWord('6.12.y'), null);
  assert.equal(versionWord('vfs'), null);
});
