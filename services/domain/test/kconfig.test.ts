import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KCONFIG_LINE, mergeFragments } from '../kconfig.ts';
import { PatchbayError } from '../errors.ts';

test('fragments merge into one sorted fragment, comments dropped, duplicates folded', () => {
  const merged = mergeFragments([
    { from: 'guest', text: '# the guest\nCONFIG_TTY=y\nCONFIG_IO_URING=y\n\n# CONFIG_VT is not set\n' },
    { from: 'suite smoke', text: 'CONFIG_IO_URING=y\nCONFIG_LOG_BUF_SHIFT=17\nCONFIG_CMDLINE="console=ttyS0"' },
  ]);
  assert.equal(merged, 'CONFIG_CMDLINE="console=ttyS0"\nCONFIG_IO_URING=y\nCONFIG_LOG_BUF_SHIFT=17\nCONFIG_TTY=y\n# CONFIG_VT is not set\n');
});

test('conflicting values are an error naming both sources', () => {
  assert.throws(
    () => mergeFragments([{ from: 'guest', text: 'CONFIG_FUSE_FS=y' }, { from: 'suite fuse', text: 'CONFIG_FUSE_FS=m' }]),
    (e: unknown) => e instanceof PatchbayError && e.code === 'KCONFIG_CONFLICT' && /guest/.test(e.message) && /suite fuse/.test(e.message),
  );
  assert.throws(
    () => mergeFragments([{ from: 'a', text: 'CONFIG_VT=y' }, { from: 'b', text: '# CONFIG_VT is not set' }]),
    (e: unknown) => e instanceof PatchbayError && e.code === 'KCONFIG_CONFLICT',
  );
});

test('a line that is not kernel config is refused with its place', () => {
  assert.throws(
    () => mergeFragments([{ from: 'suite x', text: 'CONFIG_OK=y\nIO_URING=y' }]),
    (e: unknown) => e instanceof PatchbayError && e.code === 'KCONFIG_INVALID' && e.message.startsWith('suite x:2:'),
  );
});

test('KCONFIG_LINE accepts the kernel\'s value forms only', () => {
  for (const ok of ['CONFIG_A=y', 'CONFIG_A=m', 'CONFIG_A=n', 'CONFIG_B=17', 'CONFIG_B=-1', 'CONFIG_C=0x10', 'CONFIG_D="x y"', '# CONFIG_E is not set']) {
    assert.match(ok, KCONFIG_LINE);
  }
  for (const bad of ['CONFIG_A=yes', 'config_a=y', 'CONFIG_A', 'CONFIG_A=y # note', '#CONFIG_E is not set']) {
    assert.doesNotMatch(bad, KCONFIG_LINE);
  }
});
