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
