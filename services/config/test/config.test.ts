import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PatchbayError } from '../../domain/errors.ts';
import { defaultJobCpus, defaultJobMemory, loadConfig } from '../config.ts';

const GiB = 1024 ** 3;

test('a job leaves the host room: part of the CPUs and of the memory', () => {
  assert.deepEqual([1, 2, 4, 8, 16, 64].map(defaultJobCpus), [1, 1.5, 3, 7, 14, 56]);
  assert.equal(defaultJobMemory(24 * GiB), 6 * GiB);
  assert.equal(defaultJobMemory(8 * GiB), 6 * GiB);
  assert.equal(defaultJobMemory(4 * GiB), 2 * GiB);
  assert.equal(defaultJobMemory(1 * GiB), 512 * 1024 ** 2);
  const config = loadConfig({ HOME: '/nonexistent' });
  assert.ok(config.job.memoryBytes <= 6 * GiB);
  assert.equal(loadConfig({ PATCHBAY_JOB_CPUS: '2', PATCHBAY_JOB_MEMORY_MB: '1024' }).job.cpus, 2);
  assert.equal(loadConfig({ PATCHBAY_JOB_MEMORY_MB: '1024' }).job.memoryBytes, GiB);
});

test('no proxy is trusted unless named; the inbox allowlist is origins only', () => {
  const defaults = loadConfig({});
  assert.deepEqual(defaults.api.trustProxy, []);
  assert.deepEqual(defaults.api.inboxAllowlist, ['https://lore.kernel.org']);
  const set = loadConfig({ PATCHBAY_TRUST_PROXY: '10.0.0.1, 172.16.0.0/12', PATCHBAY_INBOX_ALLOW: 'HTTPS://Lore.Kernel.org:443,http://127.0.0.1:8080' });
  assert.deepEqual(set.api.trustProxy, ['10.0.0.1', '172.16.0.0/12']);
  assert.deepEqual(set.api.inboxAllowlist, ['https://lore.kernel.org', 'http://127.0.0.1:8080']);
  for (const bad of [{ PATCHBAY_TRUST_PROXY: 'proxy.example' }, { PATCHBAY_INBOX_ALLOW: 'https://lore.kernel.org/io-uring' }, { PATCHBAY_INBOX_ALLOW: 'ftp://x' }]) {
    assert.throws(() => loadConfig(bad), (e: unknown) => e instanceof PatchbayError && e.code === 'CONFIG_INVALID', JSON.stringify(bad));
  }
});

test('the lore watcher: off in the all-in-one unless asked, lore inboxes, 5-minute polls, a contact in the User-Agent', () => {
  const d = loadConfig({});
  assert.equal(d.lore.watch, false);
  assert.deepEqual(d.lore.inboxes, ['https://lore.kernel.org/io-uring/', 'https://lore.kernel.org/linux-fsdevel/']);
  assert.equal(d.lore.pollIntervalSeconds, 300);
  assert.equal(d.lore.settleSeconds, 300);
  assert.ok(d.lore.relevantPaths.includes('io_uring/') && d.lore.relevantPaths.includes('fs/fuse/'));
  const set = loadConfig({
    PATCHBAY_LORE_WATCH: 'true', PATCHBAY_LORE_INBOXES: 'http://127.0.0.1:8080/io-uring/', PATCHBAY_LORE_POLL_SECONDS: '60',
    PATCHBAY_LORE_CONTACT: 'ci@example.org', PATCHBAY_LORE_PATHS: 'io_uring/', PATCHBAY_LORE_TAGS: 'io_uring-7.2,for-next',
  });
  assert.equal(set.lore.watch, true);
  assert.deepEqual(set.lore.inboxes, ['http://127.0.0.1:8080/io-uring/']);
  assert.equal(set.lore.pollIntervalSeconds, 60);
  assert.match(set.lore.userAgent, /contact: ci@example\.org/);
  assert.deepEqual(set.lore.relevantTags, ['io_uring-7.2', 'for-next']);
  for (const bad of [{ PATCHBAY_LORE_INBOXES: 'lore.kernel.org/io-uring' }, { PATCHBAY_LORE_POLL_SECONDS: '0' }, { PATCHBAY_LORE_BUDGET: 'many' }]) {
    assert.throws(() => loadConfig(bad), (e: unknown) => e instanceof PatchbayError && e.code === 'CONFIG_INVALID', JSON.stringify(bad));
  }
});
