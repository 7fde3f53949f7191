/**
 * A real public-inbox on loopback for tests: a v2 inbox in a temporary
 * folder, messages delivered with public-inbox-mda, served by
 * public-inbox-httpd. It answers /NAME/<msgid>/t.mbox.gz as lore does.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../platform/net.ts';

export interface PublicInbox {
  /** The inbox's base URL, e.g. http://127.0.0.1:PORT/test/ */
  url: string;
  deliver(rawMessage: Buffer): void;
  stop(): void;
}

export async function startPublicInbox(name = 'test'): Promise<PublicInbox> {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-pi-'));
  const port = await freePort();
  const address = `${name}@patchbay.invalid`;
  const env = { ...process.env, PI_CONFIG: join(dir, 'config'), HOME: dir };
  execFileSync('public-inbox-init', ['-V2', name, join(dir, name), `http://127.0.0.1:${port}/${name}`, address], { env, stdio: 'pipe' });
  execFileSync('git', ['config', '-f', env.PI_CONFIG, 'publicinboxmda.spamcheck', 'none'], { env });
  const httpd: ChildProcess = spawn('public-inbox-httpd', ['-l', `http://127.0.0.1:${port}`], { env, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}/${name}/`;
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(url);
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    deliver(raw: Buffer) {
      execFileSync('public-inbox-mda', ['--no-precheck'], { env: { ...env, ORIGINAL_RECIPIENT: address }, input: raw, stdio: ['pipe', 'pipe', 'pipe'] });
    },
    stop() {
      httpd.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
