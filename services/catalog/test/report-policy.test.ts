import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { errorCodeOf } from '../../domain/test/error-code.ts';
import { loadReportPolicy } from '../report-policy.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('report policy file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-policy-'));
  after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = (content: unknown): string => {
    const path = join(dir, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify(content));
    return path;
  };

  it('the shipped deploy/report-policy.json loads: dry run everywhere', () => {
    const p = loadReportPolicy(join(root, 'deploy', 'report-policy.json'));
    assert.equal(p.default.mode, 'dry-run');
    assert.ok(Object.values(p.inboxes).every((i) => i.mode === 'dry-run'));
    assert.ok(Object.keys(p.inboxes).every((k) => k.endsWith('/')));
  });

  it('inboxes are keyed with a trailing slash; addresses are lower-cased', () => {
    const p = loadReportPolicy(file({
      default: { mode: 'author', results: 'failures' },
      inboxes: [{ inbox: 'http://127.0.0.1:1/list', mode: 'author+list', results: 'all', maintainers: ['Jens@Example.org'], optOut: ['X@Example.org'] }],
      optOut: ['Global@Example.org'],
    }));
    assert.deepEqual(p.inboxes['http://127.0.0.1:1/list/'], { mode: 'author+list', results: 'all', maintainers: ['jens@example.org'], optOut: ['x@example.org'] });
    assert.deepEqual(p.optOut, ['global@example.org']);
    assert.deepEqual(p.default, { mode: 'author', results: 'failures', maintainers: [], optOut: [] });
  });

  it('refuses what it cannot mean: unknown modes and fields, non-addresses, an inbox named twice', () => {
    const bad = [
      { default: { mode: 'everyone', results: 'all' } },
      { default: { mode: 'author', results: 'all', cc: ['x@y.z'] } },
      { default: { mode: 'author', results: 'all' }, inboxes: [{ inbox: 'http://h/l/', mode: 'author', results: 'all', extra: 1 }] },
      { default: { mode: 'author', results: 'all', optOut: ['not an address'] } },
      { default: { mode: 'author', results: 'all' }, inboxes: [{ inbox: 'http://h/l', mode: 'author', results: 'all' }, { inbox: 'http://h/l/', mode: 'author', results: 'all' }] },
      { default: { mode: 'author', results: 'all' }, surprise: true },
    ];
    for (const content of bad) assert.equal(errorCodeOf(() => loadReportPolicy(file(content))), 'CONFIG_INVALID', JSON.stringify(content));
  });
});
