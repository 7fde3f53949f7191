/**
 * A real SMTP server on loopback for the reporter's tests (the
 * `smtp-server` package): STARTTLS with a certificate made for the test
 * (the client checks it against that CA), AUTH PLAIN/LOGIN with one user,
 * and every accepted message kept. What it does with a message can be set
 * per test: refuse the next tries (451), hand it on (into a public-inbox,
 * as a list's mail server would), or act before answering (the test that
 * kills the reporter between sending and recording).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { freePort } from '../../platform/net.ts';

export interface Accepted {
  from: string;
  to: string[];
  raw: Buffer;
  messageId: string | null;
}

export interface SmtpSink {
  /** smtp://USER:PASS@127.0.0.1:PORT */
  url: string;
  /** The CA the server's certificate is signed by (PATCHBAY_SMTP_CA). */
  caFile: string;
  accepted: Accepted[];
  /** Answer the next n messages with 451 (a relay's temporary failure). */
  refuseNext(n: number): void;
  /** Runs on each message after it is read whole and before the server answers 250. */
  onMessage: ((m: Accepted) => void) | null;
  stop(): Promise<void>;
}

export const SMTP_USER = 'reporter';
export const SMTP_PASS = 'not-a-real-secret';

export async function startSmtpSink(): Promise<SmtpSink> {
  const dir = mkdtempSync(join(tmpdir(), 'patchbay-smtp-'));
  const ca = join(dir, 'ca.pem');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const caKey = join(dir, 'ca-key.pem');
  const csr = join(dir, 'cert.csr');
  const ext = join(dir, 'ext.cnf');
  const openssl = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'pipe' }); };
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=patchbay test CA']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1']);
  execFileSync('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > '${ext}'`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);

  const accepted: Accepted[] = [];
  let refuse = 0;
  const sink: SmtpSink = {
    url: '',
    caFile: ca,
    accepted,
    refuseNext(n) { refuse = n; },
    onMessage: null,
    async stop() {
      await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const server = new SMTPServer({
    key: readFileSync(key),
    cert: readFileSync(cert),
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASS) cb(null, { user: SMTP_USER });
      else cb(new Error('535 authentication failed'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => { chunks.push(c); });
      stream.on('end', () => {
        if (refuse > 0) {
          refuse--;
          cb(Object.assign(new Error('451 try again later'), { responseCode: 451 }));
          return;
        }
        const raw = Buffer.concat(chunks);
        const m: Accepted = {
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          messageId: /^Message-ID:\s*<([^>]+)>/mi.exec(raw.toString('latin1'))?.[1] ?? null,
        };
        accepted.push(m);
        sink.onMessage?.(m);
        cb(null, 'queued');
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => { resolve(); });
  });
  sink.url = `smtp://${SMTP_USER}:${SMTP_PASS}@127.0.0.1:${port}`;
  return sink;
}
