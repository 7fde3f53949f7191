/**
 * A cross-process lock on a path (mkdir is atomic). A lock whose holder
 * process is gone is taken over, so a killed runner never wedges a key.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive } from '../../services/platform/process.ts';

function holderAlive(dir: string): boolean {
  try {
    return processAlive(Number(readFileSync(join(dir, 'pid'), 'utf8')));
  } catch {
    return false; // No pid file: its holder is gone, or not yet written (the caller waited).
  }
}

export async function withLock<T>(path: string, onWait: () => void, fn: () => Promise<T>): Promise<T> {
  const dir = `${path}.lock`;
  let announced = false;
  mkdirSync(dirname(dir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // The holder may be between mkdir and writing its pid: give it a moment.
      await sleep(500);
      if (!holderAlive(dir)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (!announced) {
        onWait();
        announced = true;
      }
      await sleep(2000);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
