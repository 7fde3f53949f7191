/**
 * The Docker API filter: a Unix socket that speaks the engine's API to the
 * compose worker and forwards only what policy.ts allows, rewritten to the
 * form it checked, to the engine's own socket.
 *
 * Per-container calls (start, kill, exec, archive, commit, remove) are made
 * only on patchbay's containers: the filter asks the engine for the named
 * container first, checks its name prefix and owner label, and forwards the
 * call to the full id it got back, so a name cannot be swapped in between.
 * Bind-mount sources are resolved on this side too: a folder reached
 * through a link is refused.
 */
import { lstatSync, realpathSync, unlinkSync, chmodSync } from 'node:fs';
import http from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import tar from 'tar-stream';
import type { Logger } from 'pino';
import { PatchbayError, errorMessage } from '../../services/domain/errors.ts';
import { Refused, route, type FilterRules, type Plan } from './policy.ts';

export interface DockerFilterOptions {
  /** The socket the worker connects to. */
  listen: string;
  /** The engine's socket. */
  upstream: string;
  rules: FilterRules;
  logger: Logger;
  /** Largest JSON body read (create, exec); larger is refused. */
  maxJsonBytes?: number;
}

const DROP_LIMIT = 1024 * 1024;
const CONTEXT_LIMIT = 64 * 1024;

/** A build context that holds exactly `dockerfile` as its Dockerfile, re-packed; anything else is refused. */
async function checkContext(raw: Buffer, dockerfile: string): Promise<Buffer> {
  const entries: Array<{ name: string; type: string; body: string }> = [];
  const extract = tar.extract();
  await new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (b: Buffer) => { chunks.push(b); });
      stream.on('end', () => {
        entries.push({ name: header.name, type: header.type ?? 'file', body: Buffer.concat(chunks).toString('utf8') });
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', () => { reject(new Refused('the build context is not a tar')); });
    Readable.from([raw]).pipe(extract);
  });
  const [only] = entries;
  if (entries.length !== 1 || only === undefined || only.type !== 'file' || only.name.replace(/^\.\//, '') !== 'Dockerfile' || only.body !== dockerfile) {
    throw new Refused('the build context must hold the job-image Dockerfile and nothing else');
  }
  const pack = tar.pack();
  pack.entry({ name: 'Dockerfile', mode: 0o644 }, dockerfile);
  pack.finalize();
  const out: Buffer[] = [];
  for await (const b of pack as AsyncIterable<Buffer>) out.push(b);
  return Buffer.concat(out);
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size > limit) {
        reject(new Refused(`the request body is larger than ${limit} bytes`, 413));
        req.destroy();
        return;
      }
      chunks.push(b);
    });
    req.on('end', () => { resolve(Buffer.concat(chunks)); });
    req.on('error', reject);
  });
}

/** The body of a request whose connection is being upgraded: Content-Length bytes from `head` and the socket. */
function readUpgradeBody(req: http.IncomingMessage, socket: Duplex, head: Buffer, limit: number): Promise<Buffer> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (req.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(length) || length < 0) {
    return Promise.reject(new Refused('exec start needs a Content-Length body', 411));
  }
  if (length > limit) return Promise.reject(new Refused(`the request body is larger than ${limit} bytes`, 413));
  return new Promise((resolve, reject) => {
    let buf = head;
    const done = (): void => {
      socket.off('data', more);
      socket.off('error', reject);
      // Anything after the body waits for the pipe to the engine.
      socket.pause();
      if (buf.length > length) socket.unshift(buf.subarray(length));
      resolve(buf.subarray(0, length));
    };
    const more = (b: Buffer): void => {
      buf = Buffer.concat([buf, b]);
      if (buf.length >= length) done();
    };
    if (buf.length >= length) {
      done();
      return;
    }
    socket.on('data', more);
    socket.on('error', reject);
  });
}

export class DockerFilter {
  private readonly server: http.Server;
  private readonly upgraded = new Set<Duplex>();
  private closing: Promise<void> | null = null;
  private readonly maxJson: number;

  private constructor(private readonly opts: DockerFilterOptions) {
    this.maxJson = opts.maxJsonBytes ?? 1024 * 1024;
    this.server = http.createServer((req, res) => { void this.onRequest(req, res); });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => { void this.onUpgrade(req, socket, head); });
    // Waits (container wait) and copies can take long; the engine bounds them, not this.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 60_000;
  }

  /** Listens on opts.listen (a stale socket file there is replaced); mode 0660. */
  static async start(opts: DockerFilterOptions): Promise<DockerFilter> {
    const filter = new DockerFilter(opts);
    try {
      if (lstatSync(opts.listen).isSocket()) unlinkSync(opts.listen);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await new Promise<void>((resolve, reject) => {
      filter.server.once('error', reject);
      filter.server.listen(opts.listen, () => {
        filter.server.off('error', reject);
        resolve();
      });
    });
    chmodSync(opts.listen, 0o660);
    opts.logger.info({ listen: opts.listen, upstream: opts.upstream }, 'docker filter listening');
    return filter;
  }

  /** Stops listening and cuts every connection, upgraded ones too; idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => { resolve(); });
      this.server.closeAllConnections();
      for (const s of this.upgraded) s.destroy();
    });
    return this.closing;
  }

  private refuse(method: string | undefined, url: string | undefined, status: number, reason: string): { status: number; body: string } {
    // A 404 is the engine's answer (a container already removed), not a refusal.
    const level = status === 404 ? 'debug' : 'warn';
    this.opts.logger[level]({ method, url: url?.slice(0, 300), status, reason }, status === 404 ? 'docker filter: not found' : 'docker filter: refused');
    return { status, body: JSON.stringify({ message: `patchbay docker filter: ${reason}` }) };
  }

  /** GET of an engine path, parsed; 404 stays a 404 for the caller. */
  private inspect(path: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.opts.upstream, path, method: 'GET', headers: { Host: 'docker' } }, (res) => {
        readBody(res, 16 * 1024 * 1024).then((b) => {
          if (res.statusCode === 404) reject(new Refused(`no such object: ${path}`, 404));
          else if (res.statusCode !== 200) reject(new Refused(`the engine answered ${res.statusCode} to ${path}`, 502));
          else resolve(JSON.parse(b.toString('utf8')) as Record<string, unknown>);
        }, reject);
      });
      req.on('error', (e) => { reject(new Refused(`the engine is not reachable: ${errorMessage(e)}`, 502)); });
      req.end();
    });
  }

  /** The full id of a container that is patchbay's (name prefix and owner label), else a refusal. */
  private async ourContainer(ref: string): Promise<string> {
    const info = await this.inspect(`/containers/${ref}/json`);
    const name = typeof info.Name === 'string' ? info.Name : '';
    const labels = (info.Config as { Labels?: Record<string, string> } | undefined)?.Labels ?? {};
    if (!name.startsWith(`/${this.opts.rules.namePrefix}`) || !(this.opts.rules.ownerLabel in labels)) {
      throw new Refused(`container ${ref} is not one of patchbay's`, 403);
    }
    return String(info.Id);
  }

  /** The plan's path with the checked ids put in. */
  private async resolve(plan: Plan): Promise<string> {
    let path = plan.path;
    if (plan.container !== undefined) path = path.replace('{container}', await this.ourContainer(plan.container));
    if (plan.exec !== undefined) {
      const exec = await this.inspect(`/exec/${plan.exec}/json`);
      await this.ourContainer(String(exec.ContainerID));
      path = path.replace('{exec}', String(exec.ID));
    }
    return path;
  }

  /** A checked JSON body, serialised; bind sources resolved on this side. */
  private checkJson(plan: Plan, raw: Buffer): Buffer {
    if (plan.body.kind !== 'json') return Buffer.alloc(0);
    let value: unknown;
    try {
      value = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
    } catch {
      throw new Refused('the body is not JSON', 400);
    }
    const checked = plan.body.check(value) as { HostConfig?: { Mounts?: Array<{ Type: string; Source: string }> } };
    for (const m of checked.HostConfig?.Mounts ?? []) {
      if (m.Type !== 'bind') continue;
      let real: string;
      try {
        real = realpathSync(m.Source);
      } catch (e) {
        throw new Refused(`bind source ${m.Source} cannot be resolved here: ${errorMessage(e)}`);
      }
      if (real !== m.Source) throw new Refused(`bind source ${m.Source} goes through a link (to ${real})`);
    }
    return Buffer.from(JSON.stringify(checked));
  }

  private answerOf(e: unknown, req: http.IncomingMessage): { status: number; body: string } {
    if (e instanceof Refused) return this.refuse(req.method, req.url, e.status, e.message);
    return this.refuse(req.method, req.url, 500, `internal error: ${errorMessage(e)}`);
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (a: { status: number; body: string }): void => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(a.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(a.body) });
      res.end(a.body);
    };
    const decision = route(req.method ?? '', req.url ?? '', this.opts.rules);
    if (!decision.allow) {
      send(this.refuse(req.method, req.url, decision.status, decision.reason));
      req.resume();
      return;
    }
    const plan = decision.plan;
    try {
      if (plan.hijack === true) throw new Refused('exec start must upgrade the connection (hijack)', 400);
      let body: Buffer | null = null;
      const headers: http.OutgoingHttpHeaders = { Host: 'docker' };
      if (plan.body.kind === 'json') {
        body = this.checkJson(plan, await readBody(req, this.maxJson));
        headers['Content-Type'] = 'application/json';
      } else if (plan.body.kind === 'context') {
        body = await checkContext(await readBody(req, CONTEXT_LIMIT), plan.body.dockerfile);
        headers['Content-Type'] = 'application/x-tar';
      } else if (plan.body.kind === 'none') await readBody(req, DROP_LIMIT);
      const path = await this.resolve(plan);
      if (body !== null) headers['Content-Length'] = body.length;
      if (plan.body.kind === 'stream') {
        headers['Content-Type'] = 'application/x-tar';
        if (req.headers['content-length'] !== undefined) headers['Content-Length'] = req.headers['content-length'];
        else headers['Transfer-Encoding'] = 'chunked';
      }
      const up = http.request({ socketPath: this.opts.upstream, method: plan.method, path, headers }, (upRes) => {
        const keep: http.OutgoingHttpHeaders = {};
        for (const h of ['content-type', 'content-length', 'transfer-encoding', 'x-docker-container-path-stat', 'api-version', 'docker-experimental', 'ostype', 'server']) {
          if (upRes.headers[h] !== undefined) keep[h] = upRes.headers[h];
        }
        res.writeHead(upRes.statusCode ?? 502, keep);
        upRes.pipe(res);
      });
      up.on('error', (e) => { send(this.refuse(req.method, req.url, 502, `the engine is not reachable: ${errorMessage(e)}`)); });
      res.on('close', () => up.destroy());
      if (plan.body.kind === 'stream') req.pipe(up);
      else up.end(body ?? undefined);
    } catch (e) {
      send(this.answerOf(e, req));
      req.resume();
    }
  }

  private async onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const fail = (a: { status: number; body: string }): void => {
      socket.end(`HTTP/1.1 ${a.status} ${http.STATUS_CODES[a.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(a.body)}\r\nConnection: close\r\n\r\n${a.body}`);
    };
    socket.on('error', () => socket.destroy());
    const decision = route(req.method ?? '', req.url ?? '', this.opts.rules);
    if (!decision.allow) {
      fail(this.refuse(req.method, req.url, decision.status, decision.reason));
      return;
    }
    const plan = decision.plan;
    try {
      if (plan.hijack !== true) throw new Refused('only exec start may upgrade the connection', 400);
      const body = this.checkJson(plan, await readUpgradeBody(req, socket, head, this.maxJson));
      const path = await this.resolve(plan);
      const up = http.request({
        socketPath: this.opts.upstream,
        method: plan.method,
        path,
        headers: { Host: 'docker', Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json', 'Content-Length': body.length },
      });
      up.on('upgrade', (upRes, upSocket, upHead) => {
        const lines = [`HTTP/1.1 101 ${upRes.statusMessage ?? 'UPGRADED'}`];
        for (const h of ['content-type', 'connection', 'upgrade']) {
          const v = upRes.headers[h];
          if (typeof v === 'string') lines.push(`${h}: ${v}`);
        }
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (upHead.length > 0) socket.write(upHead);
        this.upgraded.add(socket);
        const end = (): void => {
          this.upgraded.delete(socket);
          socket.destroy();
          upSocket.destroy();
        };
        upSocket.on('error', end);
        upSocket.on('close', end);
        socket.on('close', end);
        upSocket.pipe(socket);
        socket.pipe(upSocket);
      });
      up.on('response', (upRes) => {
        readBody(upRes, DROP_LIMIT).then(
          (b) => { fail({ status: upRes.statusCode ?? 502, body: b.toString('utf8') }); },
          () => socket.destroy(),
        );
      });
      up.on('error', (e) => { fail(this.refuse(req.method, req.url, 502, `the engine is not reachable: ${errorMessage(e)}`)); });
      up.end(body);
    } catch (e) {
      fail(this.answerOf(e, req));
    }
  }
}

/** Why the filter could not start, as a coded error. */
export function filterStartError(listen: string, e: unknown): PatchbayError {
  return new PatchbayError('DOCKER_FILTER_FAILED', `the docker filter cannot listen on ${listen}: ${errorMessage(e)}`, { cause: e });
}
