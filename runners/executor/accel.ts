/**
 * KVM or TCG. KVM only where a probe boot of the base kernel under KVM
 * reaches the end of the guest init; the answer is remembered per host boot
 * (boot_id), since nested virtualization can offer /dev/kvm and still kill
 * guests in early boot.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PatchbayError } from '../../services/domain/errors.ts';
import { GUEST_MARKERS } from '../../services/domain/job.ts';
import type { Running } from './sandbox.ts';

export type Accel = 'kvm' | 'tcg';
export type AccelMode = 'auto' | Accel;

export const KVM_DEVICE = '/dev/kvm';
export const BASE_KERNEL = '/work/build/arch/x86/boot/bzImage';
const PROBE_TIMEOUT_SECONDS = 45;

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function kvmPresent(): boolean {
  return existsSync(KVM_DEVICE);
}

/** Chooses the accelerator; `container` must have been started with /dev/kvm when it exists. */
export async function chooseAccel(
  mode: AccelMode,
  container: Running,
  cacheFile: string,
  onLog: (text: string) => void,
): Promise<Accel> {
  if (mode === 'tcg') return 'tcg';
  if (!kvmPresent()) {
    if (mode === 'kvm') throw new PatchbayError('ACCEL_UNAVAILABLE', `accel kvm was asked for but ${KVM_DEVICE} does not exist`);
    return 'tcg';
  }
  if (mode === 'kvm') return 'kvm';
  const id = bootId();
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { bootId?: string; accel?: Accel };
    if (cached.bootId === id && (cached.accel === 'kvm' || cached.accel === 'tcg')) return cached.accel;
  } catch {
    // No answer for this boot yet.
  }
  onLog(`probing KVM: booting the base kernel under KVM (at most ${PROBE_TIMEOUT_SECONDS}s)\n`);
  const r = await container.exec(
    ['/opt/patchbay/stages/boot.sh', 'kvm', String(PROBE_TIMEOUT_SECONDS), BASE_KERNEL, '/tmp/kvm-probe', '/dev/null'],
    { timeoutSeconds: PROBE_TIMEOUT_SECONDS + 30 },
  );
  const accel: Accel = r.exitCode === 0 && r.tail.includes(GUEST_MARKERS.done) ? 'kvm' : 'tcg';
  onLog(accel === 'kvm' ? 'KVM works: guests boot under KVM\n' : `KVM guests do not boot here (exit ${r.exitCode}); using TCG\n`);
  mkdirSync(dirname(cacheFile), { recursive: true });
  writeFileSync(cacheFile, JSON.stringify({ bootId: id, accel, probedAt: new Date().toISOString() }));
  return accel;
}
