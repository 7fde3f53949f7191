/** Runs `patchbay run --json` on a fixture series as a user would; progress goes to stderr. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobResult } from '../../../services/domain/job.ts';

export const root = fileURLToPath(new URL('../../..', import.meta.url));
export const fixtures = join(root, 'fixtures', 'series');

export function patchbayRun(mbox: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; result: JobResult }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'patchbay.mjs'), 'run', '--tree', 'linux-7.1.y', '--mbox', join(fixtures, mbox), '--json', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { process.stderr.write(b); });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code: code ?? -1, result: JSON.parse(stdout) as JobResult });
      } catch (e) {
        reject(new Error(`patchbay run ${mbox} printed no JSON (exit ${code}): ${stdout.slice(0, 2000)}`, { cause: e }));
      }
    });
  });
}
