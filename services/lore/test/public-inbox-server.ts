/**
 * A real public-inbox on loopback for tests: v2 inboxes in a temporary
 * folder, messages delivered with public-inbox-mda, served by one
 * public-inbox-httpd. It answers /NAME/<msgid>/t.mbox.gz, /NAME/new.atom and
 * searches (`?q=rt:...&x=A`, POST `x=m`) as lore does.
 *
 * Each inbox is indexed once before the server starts, so that its search
 * exists from the first request. Like lore's, the server's search lags
 * delivery (public-inbox-httpd reopens its Xapian index on a timer, up to
 * about 30 s): a watcher's overlap margin has to cover that. Delivery ends
 * with a SIGHUP, which makes the server reopen at once, unless the test
 * asks for the lag (`refresh: false`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../platform/net.ts';

export interface PublicInbox {
  /** The first inbox's base URL, e.g. http://127.0.0.1:PORT/test/ */
  url: string;
  /** Every inbox's base URL by name. */
  urls: Readonly<Record<string, string>>;
  /** The server's origin, e.g. http://127.0.0.1:PORT */
  origin: string;
  /**
   * Delivers one message into an inbox (the first unless named). With
   * `received`, a Received: header stamped now goes on top, as lore's mail
   * server adds one: public-inbox's rt: is that time (else the Date:).
   */
  deliver(rawMessage: Buffer, opts?: { inbox?: string; received?: boolean; refresh?: boolean }): void;
  /**
   * Delivers many messages in one process (deliver-many.pl: what
   * public-inbox-mda does after its spam check, one commit for all),
   * each with a Received: header stamped now unless received is false.
   */
  deliverMany(rawMessages: readonly Buffer[], opts?: { inbox?: string; received?: boolean; refresh?: boolean }): void;
  /**
   * Makes the server's search see what was delivered now (SIGHUP: it
   * reopens its inboxes) instead of after its ~30 s timer. Delivery does
   * this unless `refresh` is false.
   */
  refresh(): void;
  stop(): void;
}

export async function startPublicInbox(names: string | readonly string[] = 'test'): Promise<PublicInbox> {
  const list = typeof names === 'string' ? [names] : [...names];
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-pi-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env = { ...process.env, PI_CONFIG: join(dir, 'config'), HOME: dir };
  for (const name of list) {
    execFileSync('public-inbox-init', ['-V2', name, join(dir, name), `${origin}/${name}`, `${name}@patchbay.invalid`], { env, stdio: 'pipe' });
    execFileSync('public-inbox-index', [join(dir, name)], { env, stdio: 'pipe' });
  }
  execFileSync('git', ['config', '-f', env.PI_CONFIG, 'publicinboxmda.spamcheck', 'none'], { env });
  const httpd: ChildProcess = spawn('public-inbox-httpd', ['-l', origin], { env, stdio: 'ignore' });
  const urls = Object.fromEntries(list.map((n) => [n, `${origin}/${n}/`]));
  const first = urls[list[0] ?? 'test'] ?? `${origin}/test/`;
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(first);
      if (res.status < 500) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const refresh = (): void => { httpd.kill('SIGHUP'); };
  return {
    url: first,
    urls,
    origin,
    deliver(raw: Buffer, opts = {}) {
      const name = opts.inbox ?? list[0] ?? 'test';
      const stamped = opts.received !== true
        ? raw
        : Buffer.concat([Buffer.from(`Received: from sender.example.org by lists.patchbay.invalid; ${new Date().toUTCString().replace('GMT', '+0000')}\n`), raw]);
      execFileSync('public-inbox-mda', ['--no-precheck'], { env: { ...env, ORIGINAL_RECIPIENT: `${name}@patchbay.invalid` }, input: stamped, stdio: ['pipe', 'pipe', 'pipe'] });
      if (opts.refresh !== false) refresh();
    },
    deliverMany(raws: readonly Buffer[], opts = {}) {
      const name = opts.inbox ?? list[0] ?? 'test';
      const stamp = `Received: from sender.example.org by lists.patchbay.invalid; ${new Date().toUTCString().replace('GMT', '+0000')}\n`;
      const mbox = raws.map((raw) => {
        const text = raw.toString('latin1').replace(/^(>*From )/gm, '>$1');
        return `From mboxrd@z Thu Jan  1 00:00:00 1970\n${opts.received === false ? '' : stamp}${text}${text.endsWith('\n') ? '' : '\n'}\n`;
      }).join('');
      execFileSync('perl', [join(import.meta.dirname, 'deliver-many.pl')], {
        env: { ...env, ORIGINAL_RECIPIENT: `${name}@patchbay.invalid` }, input: Buffer.from(mbox, 'latin1'), stdio: ['pipe', 'pipe', 'pipe'],
      });
      if (opts.refresh !== false) refresh();
    },
    refresh,
    stop() {
      httpd.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
