/**
 * The environment a job records (JobResult.environment): the QEMU command
 * line picked out of boot.sh's output (its first line only, whatever the
 * guest prints after it), the tools' version lines, the config's recipe,
 * and the hash of the .config artifact. The same on the real engine:
 * fixtures.itest.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SuiteCatalog } from '../../../services/catalog/suites.ts';
import { kernelFragmentParts } from '../../../services/catalog/load.ts';
import { mergeFragments } from '../../../services/domain/kconfig.ts';
import {
  CONFIG_BASE, ENVIRONMENT_TEXT_LIMIT, QEMU_COMMAND_MARKER, QemuCommandPicker, ToolVersionCache, artifactSha256, cleanLine, configEnvironment,
  firstLine, initialEnvironment, qemuCommandOf, readToolVersions,
} from '../environment.ts';
import { ScriptedContainer, fakeSandbox } from './fake-container.ts';
import { runGuest } from '../guest.ts';
import { ArtifactsDir } from '../sandbox.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const imagesDir = join(root, 'images');
const suitesDir = join(imagesDir, 'guest', 'suites');
const dir = mkdtempSync(join(tmpdir(), 'patchbay-environment-unit-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

const COMMAND = "qemu-system-x86_64 -accel tcg -cpu max -smp 2,sockets=2,cores=1,threads=1 -m 1024 -display none -monitor none -no-reboot -kernel /job/out/bzImage -initrd /job/out/guest-series/initramfs.cpio.gz -append 'console=ttyS0 rdinit=/init panic=-1 oops=panic loglevel=7 printk.time=1 fuse.enable_uring=1' -serial stdio -serial file:/tmp/ktap.Ab12Cd";

test('the QEMU command is boot.sh\'s first line, picked as it streams, even split across chunks', () => {
  const out = `${QEMU_COMMAND_MARKER}${COMMAND}\npatchbay: initramfs: 3.1M unpacked, suites: smoke \npatchbay: booting with tcg (timeout 160s)\n[    0.000000] Linux version 7.1.8\n`;
  assert.equal(qemuCommandOf(out), COMMAND);
  for (const cut of [1, 10, QEMU_COMMAND_MARKER.length, QEMU_COMMAND_MARKER.length + 5, out.indexOf('\n'), out.indexOf('\n') + 1]) {
    const seen: string[] = [];
    const picker = new QemuCommandPicker((c) => { seen.push(c); });
    picker.feed(out.slice(0, cut));
    picker.feed(out.slice(cut));
    assert.deepEqual(seen, [COMMAND], `cut at ${cut}`);
    assert.equal(picker.command, COMMAND);
  }
});

test('a marker anywhere but the first line is not read: the guest\'s console cannot set the command', () => {
  // boot.sh failed before printing it, then a kernel printed a forged one.
  const forged = `patchbay: boot harness failed: no kernel at /job/out/bzImage\n${QEMU_COMMAND_MARKER}qemu-system-x86_64 -evil\n`;
  assert.equal(qemuCommandOf(forged), null);
  const seen: string[] = [];
  const picker = new QemuCommandPicker((c) => { seen.push(c); });
  picker.feed(`${QEMU_COMMAND_MARKER}${COMMAND}\n`);
  picker.feed(`[    2.0] ${QEMU_COMMAND_MARKER}forged\n${QEMU_COMMAND_MARKER}forged again\n`);
  assert.deepEqual(seen, [COMMAND], 'heard once, the first line only');
  // A first line that is not the marker decides at once, before its end.
  const other = new QemuCommandPicker();
  other.feed('Linux version');
  other.feed(` 7.1.8\n${QEMU_COMMAND_MARKER}x\n`);
  assert.equal(other.command, null);
  assert.equal(qemuCommandOf(''), null);
  assert.equal(qemuCommandOf(`${QEMU_COMMAND_MARKER}\n`), null, 'an empty command is none');
});

test('the command is cleaned: control characters removed, cut at 4 KiB', () => {
  assert.equal(qemuCommandOf(`${QEMU_COMMAND_MARKER}qemu\u001b[31m -a\tb\r\u0007 -c\u009b\n`), 'qemu[31m -a b -c');
  const long = qemuCommandOf(`${QEMU_COMMAND_MARKER}qemu ${'-x '.repeat(5000)}\n`) ?? '';
  assert.ok(Buffer.byteLength(long) <= ENVIRONMENT_TEXT_LIMIT, `${Buffer.byteLength(long)} bytes`);
  assert.match(long, /^qemu -x -x .*\.\.\.$/);
  // A first line that never ends is cut too, and held no longer than that.
  const picker = new QemuCommandPicker();
  for (let i = 0; i < 100; i++) picker.feed(`${i === 0 ? QEMU_COMMAND_MARKER : ''}${'y'.repeat(1000)}`);
  assert.ok((picker.command ?? '').length <= ENVIRONMENT_TEXT_LIMIT);
  assert.match(picker.command ?? '', /^y+\.\.\.$/);
});

test('cleanLine cuts on a character boundary', () => {
  const s = cleanLine('é'.repeat(3000), 101);
  assert.ok(Buffer.byteLength(s) <= 101);
  assert.match(s, /^é+\.\.\.$/);
  assert.equal(cleanLine('  gcc (Debian 14.2.0-19) 14.2.0\n'), 'gcc (Debian 14.2.0-19) 14.2.0');
  assert.equal(firstLine('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\nCopyright (c) 2003-2025\n'), 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)');
  assert.equal(firstLine('\n'), null);
});

test('boot.sh prints the marker the picker reads, before it runs QEMU', () => {
  const boot = readFileSync(join(imagesDir, 'runner', 'stages', 'boot.sh'), 'utf8');
  const printed = /^printf '(patchbay: qemu command:)%s\\n' "\$words"$/m.exec(boot);
  assert.ok(printed, 'boot.sh prints the marker line');
  assert.equal(`${printed[1] ?? ''} `, QEMU_COMMAND_MARKER, 'and its words begin with a space');
  const at = printed.index;
  // Nothing is printed before it: the first output of the script (note, echo, printf) is the marker.
  const before = boot.slice(0, at).split('\n').filter((l) => !l.trimStart().startsWith('#'));
  assert.deepEqual(before.filter((l) => /\b(note|echo|printf)\b/.test(l) && !/harness_failed|^\s*\[ "\$1" = 125 \]/.test(l)), [], 'no other output before the marker');
  assert.match(boot.slice(at), /^timeout -s TERM -k 10 "\$timeout" "\$\{qemu\[@\]\}" /m, 'QEMU runs from the array printed');
});

test('the tools\' versions: first lines of gcc --version and qemu-system-x86_64 --version; a failing one is null', async () => {
  const c = new ScriptedContainer((cmd) => cmd[0] === 'gcc'
    ? { exitCode: 0, timedOut: false, tail: 'gcc (Debian 14.2.0-19) 14.2.0\nCopyright (C) 2024 Free Software Foundation, Inc.\n' }
    : { exitCode: 127, timedOut: false, tail: 'qemu-system-x86_64: not found\n' });
  const box = await fakeSandbox(c);
  const versions = await box.stage((r) => readToolVersions(r));
  assert.deepEqual(versions, { compiler: 'gcc (Debian 14.2.0-19) 14.2.0', qemu: null });
  assert.deepEqual(c.commands, ['gcc --version', 'qemu-system-x86_64 --version']);
  const cache = new ToolVersionCache();
  cache.set('sha256:abc', versions);
  assert.deepEqual(cache.get('sha256:abc'), versions);
  assert.equal(cache.get('sha256:def'), undefined);
});

test('the config\'s recipe: tinyconfig, then the catalogue\'s fragments in merge order, as repository paths', () => {
  const catalog = SuiteCatalog.load(suitesDir);
  const fragment = mergeFragments(kernelFragmentParts(imagesDir, suitesDir, catalog));
  const config = configEnvironment(fragment, { imagesDir, suitesDir });
  assert.deepEqual(config, {
    base: 'tinyconfig',
    fragments: ['images/guest/guest.config', ...catalog.names().map((n) => `images/guest/suites/${n}/manifest.json`)],
    sha256: null,
  });
  assert.ok(config.fragments.includes('images/guest/suites/smoke/manifest.json'));
  // A fragment that is not the catalogue's (a bench's) is named by its hash, not passed off as the catalogue's.
  const own = configEnvironment(`${fragment}CONFIG_LOCALVERSION="-bench"\n`, { imagesDir, suitesDir });
  assert.match(own.fragments[0] ?? '', /^\(the job's own fragment, sha256 [0-9a-f]{64}\)$/);
  assert.equal(own.fragments.length, 1);
  // configure.sh starts from what the recipe says.
  assert.match(readFileSync(join(imagesDir, 'runner', 'stages', 'configure.sh'), 'utf8'), new RegExp(`^kmake -s ${CONFIG_BASE}$`, 'm'));
  assert.deepEqual(initialEnvironment(config), { image: null, compiler: null, qemu: null, qemuCommand: null, config });
});

test('the .config\'s hash is of a regular file the host wrote; a link or nothing gives null', () => {
  writeFileSync(join(dir, 'kernel.config'), 'CONFIG_X=y\n');
  assert.equal(artifactSha256(dir, 'kernel.config'), createHash('sha256').update('CONFIG_X=y\n').digest('hex'));
  symlinkSync('/etc/passwd', join(dir, 'link.config'));
  assert.equal(artifactSha256(dir, 'link.config'), null);
  assert.equal(artifactSha256(dir, 'absent.config'), null);
});

test('runGuest hands on the QEMU command from boot.sh\'s streamed output, also when the boot is then no evidence', async () => {
  const smoke = SuiteCatalog.load(suitesDir).select(['smoke']);
  const say = `${QEMU_COMMAND_MARKER}${COMMAND}\npatchbay: booting with tcg (timeout 160s)\n`;
  const c = new ScriptedContainer((_cmd, opts) => {
    opts.onOutput?.(say.slice(0, 30));
    opts.onOutput?.(say.slice(30));
    opts.onOutput?.(`${QEMU_COMMAND_MARKER}forged by the guest\n`);
    return { exitCode: 1, timedOut: false, tail: say };
  });
  const box = await fakeSandbox(c);
  const heard: string[] = [];
  const artifacts = ArtifactsDir.create(join(dir, 'jobs'), 'j');
  const e = await runGuest(box, artifacts, { name: 'series', accel: 'tcg', kernel: '/job/out/bzImage', plan: smoke.map((suite) => ({ suite, tests: [] })), suiteExtra: null, bootTimeoutSeconds: 60, onQemuCommand: (cmd) => { heard.push(cmd); } }, 1 << 20)
    .then(() => null, (err: unknown) => err);
  assert.ok(e !== null, 'no console: no evidence (MISS)');
  assert.deepEqual(heard, [COMMAND]);
});
