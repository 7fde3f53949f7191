/**
 * Which Docker API calls the compose worker may make, and in what form.
 * Pure: a request line goes in, a plan (or a refusal with its reason) comes
 * out; the proxy (proxy.ts) does the I/O.
 *
 * The allowlist is what runners/executor/docker.ts calls, nothing more:
 * hardened patchbay containers created, started, stopped, exec'd into,
 * copied in and out of, committed as warm bases, and removed. No pulls, no
 * builds (images are built by `patchbay prepare` on the host), no volumes,
 * networks, plugins, swarm or system calls.
 *
 * Bodies are never passed through as they came. A JSON body is parsed,
 * checked against an allowlist of keys with their exact spelling (Go's
 * decoder would also take "privileged" or "\u0050rivileged" for
 * "Privileged", and the last of two duplicate keys), and the checked value
 * is serialised again: the engine only ever reads what was checked. Query
 * strings are rebuilt the same way, from the parameters a route knows.
 */
import { posix } from 'node:path';

export interface FilterRules {
  /** Every container it creates is named with this prefix (patchbay-). */
  namePrefix: string;
  /** Label every container it creates carries (the owner), and that marks a container as patchbay's. */
  ownerLabel: string;
  /** Images containers may be created from: repositories (no registry host, no digest). */
  imageRepos: readonly string[];
  /** Repositories a container may be committed to (warm bases). */
  commitRepos: readonly string[];
  /** Host folders under which a folder may be bind-mounted, read-only (the tree mirrors). */
  bindRoots: readonly string[];
  /** Named volumes that may be mounted (the compiler cache). */
  volumes: readonly string[];
  /** Host devices that may be passed through (/dev/kvm). */
  devices: readonly string[];
  /**
   * The one image build a worker makes: a job image (runner files laid over
   * a warm base) into `repo`, from this Dockerfile alone, with these build
   * arguments naming images of these repositories.
   */
  overlay: { repo: string; dockerfile: string; args: Readonly<Record<string, string>> };
}

/** How the proxy must treat the request body. */
export type BodyRule =
  /** Dropped: the engine gets no body. */
  | { kind: 'none' }
  /** Streamed through as it is (a tar for the container's filesystem). */
  | { kind: 'stream' }
  /** Read (up to the proxy's cap), parsed and checked; the engine gets `check`'s result, serialised. */
  | { kind: 'json'; check: (value: unknown) => unknown }
  /** A build context: a tar that must hold this Dockerfile and nothing else; the engine gets a new tar of it. */
  | { kind: 'context'; dockerfile: string };

export interface Plan {
  method: string;
  /**
   * The path and query to send to the engine. `{container}` and `{exec}`
   * stand for the full id of the checked container or exec instance.
   */
  path: string;
  body: BodyRule;
  /** A container (id or name) that must be patchbay's; its full id replaces {container}. */
  container?: string;
  /** An exec instance that must belong to a patchbay container; its id replaces {exec}. */
  exec?: string;
  /** The call upgrades to a raw stream (exec start). */
  hijack?: boolean;
}

export type Decision = { allow: true; plan: Plan } | { allow: false; status: number; reason: string };

/** A refusal (or an answer the filter gives itself, e.g. 404), with the reason the worker gets back as the engine's error message. */
export class Refused extends Error {
  constructor(
    message: string,
    readonly status = 403,
  ) {
    super(message);
  }
}

const API_VERSION = /^\/v1\.\d{1,3}(?=\/)/;
/** Path characters the executor's calls use; anything else (%-escapes, spaces, ..) is refused. */
const PATH_CHARS = /^[A-Za-z0-9._:/-]+$/;
const CONTAINER_REF = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const EXEC_ID = /^[0-9a-f]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

// ---- small checkers over parsed JSON ----

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The object's keys must all be in `allowed`, spelled exactly. */
function onlyKeys(v: unknown, where: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isRecord(v)) throw new Refused(`${where} must be an object`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new Refused(`${where}: "${k}" is not allowed`);
  }
  return v;
}

function str(v: unknown, where: string, pattern?: RegExp): string {
  if (typeof v !== 'string') throw new Refused(`${where} must be a string`);
  if (pattern && !pattern.test(v)) throw new Refused(`${where} "${v}" is not allowed`);
  return v;
}

function strings(v: unknown, where: string, max = 4096): string[] {
  if (!Array.isArray(v) || v.length > max || !v.every((s) => typeof s === 'string')) {
    throw new Refused(`${where} must be a list of strings`);
  }
  return v;
}

function bool(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new Refused(`${where} must be true or false`);
  return v;
}

function positive(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new Refused(`${where} must be a positive integer`);
  return v;
}

/** `v` if it is one of `allowed` (compared as JSON), else a refusal. */
function fixed<T>(v: unknown, where: string, allowed: readonly T[]): T {
  const hit = allowed.find((a) => JSON.stringify(a) === JSON.stringify(v));
  if (hit === undefined) throw new Refused(`${where} must be ${allowed.map((a) => JSON.stringify(a)).join(' or ')}`);
  return hit;
}

function labels(v: unknown, where: string): Record<string, string> {
  if (!isRecord(v)) throw new Refused(`${where} must be an object`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) out[str(k, `${where} key`, LABEL_KEY)] = str(val, `${where}.${k}`);
  return out;
}

/** A normalised absolute path: no `..`, `.`, `//` or trailing slash. */
function absolutePath(v: unknown, where: string): string {
  const p = str(v, where);
  if (!p.startsWith('/') || p === '/' || posix.normalize(p) !== p || p.endsWith('/')) {
    throw new Refused(`${where} "${p}" must be a normalised absolute path below /`);
  }
  return p;
}

function imageRef(v: unknown, where: string, repos: readonly string[]): string {
  const ref = str(v, where);
  const colon = ref.lastIndexOf(':');
  const repo = colon > 0 ? ref.slice(0, colon) : ref;
  if (!repos.includes(repo) || colon <= 0 || !TAG.test(ref.slice(colon + 1))) {
    throw new Refused(`${where} "${ref}" is not one of patchbay's images (${repos.join(', ')})`);
  }
  return ref;
}

// ---- bodies ----

function checkMount(m: unknown, i: number, rules: FilterRules): Record<string, unknown> {
  const where = `HostConfig.Mounts[${i}]`;
  const o = onlyKeys(m, where, ['Type', 'Source', 'Target', 'ReadOnly']);
  const type = fixed(o.Type, `${where}.Type`, ['bind', 'volume']);
  const target = absolutePath(o.Target, `${where}.Target`);
  const readOnly = o.ReadOnly === undefined ? false : bool(o.ReadOnly, `${where}.ReadOnly`);
  if (type === 'volume') {
    const source = str(o.Source, `${where}.Source`);
    if (!rules.volumes.includes(source)) throw new Refused(`${where}: volume "${source}" is not one of ${rules.volumes.join(', ')}`);
    return { Type: type, Source: source, Target: target, ReadOnly: readOnly };
  }
  const source = absolutePath(o.Source, `${where}.Source`);
  if (!rules.bindRoots.some((root) => source.startsWith(`${root}/`))) {
    throw new Refused(`${where}: bind of "${source}" is outside ${rules.bindRoots.join(', ')}`);
  }
  if (!readOnly) throw new Refused(`${where}: a bind of a host folder must be read-only`);
  return { Type: type, Source: source, Target: target, ReadOnly: true };
}

function checkHostConfig(v: unknown, rules: FilterRules): Record<string, unknown> {
  const o = onlyKeys(v, 'HostConfig', [
    'NetworkMode', 'CapDrop', 'SecurityOpt', 'Memory', 'MemorySwap', 'NanoCpus', 'PidsLimit',
    'ReadonlyRootfs', 'Init', 'AutoRemove', 'Mounts', 'Devices', 'Ulimits', 'Tmpfs',
  ]);
  const memory = positive(o.Memory, 'HostConfig.Memory');
  const swap = positive(o.MemorySwap, 'HostConfig.MemorySwap');
  if (swap !== memory) throw new Refused('HostConfig.MemorySwap must equal HostConfig.Memory (no swap)');
  const mounts = o.Mounts === undefined ? [] : o.Mounts;
  if (!Array.isArray(mounts) || mounts.length > 16) throw new Refused('HostConfig.Mounts must be a list of at most 16');
  const devices = o.Devices === undefined ? [] : o.Devices;
  if (!Array.isArray(devices) || devices.length > 4) throw new Refused('HostConfig.Devices must be a list of at most 4');
  const ulimits = o.Ulimits === undefined ? [] : o.Ulimits;
  if (!Array.isArray(ulimits) || ulimits.length > 4) throw new Refused('HostConfig.Ulimits must be a list of at most 4');
  const tmpfs = o.Tmpfs === undefined ? {} : onlyKeys(o.Tmpfs, 'HostConfig.Tmpfs', ['/tmp']);
  const out: Record<string, unknown> = {
    NetworkMode: fixed(o.NetworkMode, 'HostConfig.NetworkMode', ['none']),
    CapDrop: fixed(o.CapDrop, 'HostConfig.CapDrop', [['ALL']]),
    SecurityOpt: fixed(o.SecurityOpt, 'HostConfig.SecurityOpt', [['no-new-privileges']]),
    Memory: memory,
    MemorySwap: swap,
    NanoCpus: positive(o.NanoCpus, 'HostConfig.NanoCpus'),
    PidsLimit: positive(o.PidsLimit, 'HostConfig.PidsLimit'),
    ReadonlyRootfs: o.ReadonlyRootfs === undefined ? false : bool(o.ReadonlyRootfs, 'HostConfig.ReadonlyRootfs'),
    Init: o.Init === undefined ? false : bool(o.Init, 'HostConfig.Init'),
    AutoRemove: o.AutoRemove === undefined ? false : bool(o.AutoRemove, 'HostConfig.AutoRemove'),
    Mounts: mounts.map((m, i) => checkMount(m, i, rules)),
    Devices: devices.map((d, i) => {
      const where = `HostConfig.Devices[${i}]`;
      const dev = onlyKeys(d, where, ['PathOnHost', 'PathInContainer', 'CgroupPermissions']);
      const path = str(dev.PathOnHost, `${where}.PathOnHost`);
      if (!rules.devices.includes(path)) throw new Refused(`${where}: device "${path}" is not one of ${rules.devices.join(', ') || '(none)'}`);
      if (dev.PathInContainer !== path) throw new Refused(`${where}.PathInContainer must be ${path}`);
      return { PathOnHost: path, PathInContainer: path, CgroupPermissions: fixed(dev.CgroupPermissions, `${where}.CgroupPermissions`, ['rwm', 'rw']) };
    }),
    Ulimits: ulimits.map((u, i) => {
      const where = `HostConfig.Ulimits[${i}]`;
      const lim = onlyKeys(u, where, ['Name', 'Soft', 'Hard']);
      return { Name: fixed(lim.Name, `${where}.Name`, ['fsize', 'nofile', 'core']), Soft: positive(lim.Soft, `${where}.Soft`), Hard: positive(lim.Hard, `${where}.Hard`) };
    }),
    Tmpfs: Object.fromEntries(Object.entries(tmpfs).map(([k, val]) => [k, str(val, `HostConfig.Tmpfs["${k}"]`, /^rw,(no)?exec,nosuid,nodev,size=\d{1,15}$/)])),
  };
  return out;
}

/** POST /containers/create: a hardened container from a patchbay image, as runners/executor/docker.ts asks for. */
export function checkCreateBody(v: unknown, rules: FilterRules): Record<string, unknown> {
  // dockerode also sends the name (it is in the query too); it is dropped.
  const o = onlyKeys(v, 'the create body', ['name', 'Image', 'Cmd', 'Labels', 'NetworkDisabled', 'HostConfig']);
  const lab = labels(o.Labels, 'Labels');
  if (!(rules.ownerLabel in lab) || lab[rules.ownerLabel] === '') throw new Refused(`Labels must name the owner (${rules.ownerLabel})`);
  return {
    Image: imageRef(o.Image, 'Image', rules.imageRepos),
    ...(o.Cmd === undefined ? {} : { Cmd: strings(o.Cmd, 'Cmd') }),
    Labels: lab,
    NetworkDisabled: fixed(o.NetworkDisabled, 'NetworkDisabled', [true]),
    HostConfig: checkHostConfig(o.HostConfig, rules),
  };
}

/** POST /containers/{id}/exec: a command with output attached; never privileged, never as another user. */
export function checkExecBody(v: unknown): Record<string, unknown> {
  const o = onlyKeys(v, 'the exec body', ['Cmd', 'AttachStdout', 'AttachStderr', 'Tty', 'Env']);
  const cmd = strings(o.Cmd, 'Cmd');
  if (cmd.length === 0) throw new Refused('Cmd must not be empty');
  return {
    Cmd: cmd,
    AttachStdout: o.AttachStdout === undefined ? false : bool(o.AttachStdout, 'AttachStdout'),
    AttachStderr: o.AttachStderr === undefined ? false : bool(o.AttachStderr, 'AttachStderr'),
    Tty: fixed(o.Tty ?? false, 'Tty', [false]),
    Env: o.Env === undefined ? [] : strings(o.Env, 'Env').map((e) => str(e, 'Env entry', /^[A-Za-z_][A-Za-z0-9_]*=/)),
  };
}

/** POST /exec/{id}/start: attached, no TTY (dockerode sends its own options; the engine gets these). */
export function checkExecStartBody(v: unknown): Record<string, unknown> {
  const o = onlyKeys(v ?? {}, 'the exec start body', ['hijack', 'stdin', 'Detach', 'Tty']);
  if (o.stdin === true) throw new Refused('exec start: stdin is not allowed');
  if (o.Detach === true || o.Tty === true) throw new Refused('exec start: Detach and Tty are not allowed');
  return { Detach: false, Tty: false };
}

// ---- routes ----

/** The known parameters, in a fixed order; each once, but those in `repeated` (the engine reads them all). */
function queryOf(search: URLSearchParams, where: string, allowed: readonly string[], repeated: readonly string[] = []): URLSearchParams {
  for (const k of search.keys()) {
    if (!allowed.includes(k)) throw new Refused(`${where}: query parameter "${k}" is not allowed`);
  }
  const out = new URLSearchParams();
  for (const k of allowed) {
    const values = search.getAll(k);
    if (values.length > 1 && !repeated.includes(k)) throw new Refused(`${where}: query parameter "${k}" is given twice`);
    for (const v of values) out.append(k, v);
  }
  return out;
}

function withQuery(path: string, q: URLSearchParams): string {
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

function boolParam(q: URLSearchParams, k: string, where: string): void {
  const v = q.get(k);
  if (v !== null && !['true', 'false', '1', '0'].includes(v)) throw new Refused(`${where}: ${k} must be true or false`);
}

/** The `filters` of a list call must select by one of these labels, so the list is patchbay's things only. */
function labelFilter(q: URLSearchParams, where: string, label: string): void {
  const raw = q.get('filters');
  let filters: unknown;
  try {
    filters = raw === null ? null : JSON.parse(raw);
  } catch {
    throw new Refused(`${where}: filters is not JSON`);
  }
  const byLabel = isRecord(filters) ? filters.label : undefined;
  const labelsList = Array.isArray(byLabel) ? byLabel : isRecord(byLabel) ? Object.keys(byLabel) : [];
  if (!labelsList.some((l) => typeof l === 'string' && (l === label || l.startsWith(`${label}=`)))) {
    throw new Refused(`${where}: the list must be filtered by the label ${label}`);
  }
}

function commitPlan(q: URLSearchParams, rules: FilterRules): Plan {
  const where = 'POST /commit';
  const query = queryOf(q, where, ['container', 'repo', 'tag', 'pause', 'changes', 'comment', 'author'], ['changes']);
  const container = str(query.get('container') ?? undefined, `${where}: container`, CONTAINER_REF);
  const repo = str(query.get('repo') ?? undefined, `${where}: repo`);
  if (!rules.commitRepos.includes(repo)) throw new Refused(`${where}: repo "${repo}" is not one of ${rules.commitRepos.join(', ')}`);
  str(query.get('tag') ?? undefined, `${where}: tag`, TAG);
  boolParam(query, 'pause', where);
  // Only labels: no CMD, ENTRYPOINT, USER, ENV or VOLUME for whoever runs the image next.
  for (const line of query.getAll('changes').flatMap((c) => c.split('\n')).filter((l) => l !== '')) {
    if (!/^LABEL [A-Za-z0-9][A-Za-z0-9._-]*="(?:[^"\\\n]|\\.)*"$/.test(line)) throw new Refused(`${where}: change "${line.slice(0, 80)}" is not a LABEL`);
  }
  query.delete('container');
  // The container's full id is put in by the proxy once it is checked.
  return { method: 'POST', path: `/commit?container={container}&${query.toString()}`, body: { kind: 'none' }, container };
}

/** POST /build: only the job-image overlay (warm-base.ts), whose Dockerfile runs nothing of a series'. */
function overlayBuild(q: URLSearchParams, rules: FilterRules, version: string): Plan {
  const where = 'POST /build';
  const query = queryOf(q, where, ['t', 'dockerfile', 'buildargs', 'labels', 'rm', 'forcerm']);
  imageRef(query.get('t') ?? undefined, `${where}: t`, [rules.overlay.repo]);
  fixed(query.get('dockerfile'), `${where}: dockerfile`, ['Dockerfile']);
  boolParam(query, 'rm', where);
  boolParam(query, 'forcerm', where);
  const parse = (k: string): unknown => {
    try {
      return JSON.parse(query.get(k) ?? '{}');
    } catch {
      throw new Refused(`${where}: ${k} is not JSON`);
    }
  };
  const args = onlyKeys(parse('buildargs'), `${where}: buildargs`, Object.keys(rules.overlay.args));
  for (const [k, repo] of Object.entries(rules.overlay.args)) imageRef(args[k], `${where}: buildargs.${k}`, [repo]);
  labels(parse('labels'), `${where}: labels`);
  return { method: 'POST', path: `${version}${withQuery('/build', query)}`, body: { kind: 'context', dockerfile: rules.overlay.dockerfile } };
}

/**
 * The plan for one request line, or why it is refused. `rawUrl` is the
 * request target as it came (path and query).
 */
export function route(method: string, rawUrl: string, rules: FilterRules): Decision {
  try {
    return { allow: true, plan: plan(method, rawUrl, rules) };
  } catch (e) {
    if (e instanceof Refused) return { allow: false, status: e.status, reason: e.message };
    throw e;
  }
}

function plan(method: string, rawUrl: string, rules: FilterRules): Plan {
  const qAt = rawUrl.indexOf('?');
  let path = qAt < 0 ? rawUrl : rawUrl.slice(0, qAt);
  const search = new URLSearchParams(qAt < 0 ? '' : rawUrl.slice(qAt + 1));
  if (!PATH_CHARS.test(path) || path.includes('//') || path.split('/').some((s) => s === '.' || s === '..')) {
    throw new Refused(`the path "${path.slice(0, 120)}" is not allowed`, 400);
  }
  const version = API_VERSION.exec(path)?.[0] ?? '';
  path = path.slice(version.length);
  const where = `${method} ${path}`;
  const seg = path.split('/').slice(1);
  const keep = (p: string, q = new URLSearchParams()): string => `${version}${withQuery(p, q)}`;

  if (path === '/_ping' && (method === 'GET' || method === 'HEAD')) return { method, path: keep(path), body: { kind: 'none' } };
  if (path === '/version' && method === 'GET') return { method, path: keep(path), body: { kind: 'none' } };

  if (path === '/containers/create' && method === 'POST') {
    const q = queryOf(search, where, ['name', 'Image', 'Cmd', 'Labels', 'NetworkDisabled', 'HostConfig']);
    const name = str(q.get('name') ?? undefined, `${where}: name`, CONTAINER_REF);
    if (!name.startsWith(rules.namePrefix)) throw new Refused(`${where}: the name must start with ${rules.namePrefix}`);
    return {
      method,
      path: keep(path, new URLSearchParams({ name })),
      body: {
        kind: 'json',
        check: (v) => {
          if (isRecord(v) && v.name !== undefined && v.name !== name) throw new Refused(`${where}: two different names`);
          return checkCreateBody(v, rules);
        },
      },
    };
  }
  if (path === '/containers/json' && method === 'GET') {
    const q = queryOf(search, where, ['all', 'filters']);
    boolParam(q, 'all', where);
    labelFilter(q, where, rules.ownerLabel);
    return { method, path: keep(path, q), body: { kind: 'none' } };
  }
  if (seg[0] === 'containers' && seg.length >= 2 && seg[1] !== undefined) {
    const ref = str(seg[1], `${where}: container`, CONTAINER_REF);
    const action = seg.slice(2).join('/');
    const c = (suffix: string, q: URLSearchParams, body: BodyRule, m = method): Plan => ({
      method: m,
      path: keep(`/containers/{container}${suffix}`, q),
      body,
      container: ref,
    });
    if (action === '' && method === 'DELETE') {
      const q = queryOf(search, where, ['force', 'v']);
      boolParam(q, 'force', where);
      boolParam(q, 'v', where);
      return c('', q, { kind: 'none' });
    }
    if (action === 'json' && method === 'GET') {
      const q = queryOf(search, where, ['size']);
      boolParam(q, 'size', where);
      return c('/json', q, { kind: 'none' });
    }
    if (action === 'start' && method === 'POST') return c('/start', queryOf(search, where, []), { kind: 'none' });
    if (action === 'kill' && method === 'POST') {
      const q = queryOf(search, where, ['signal']);
      if (q.get('signal') !== null) str(q.get('signal'), `${where}: signal`, /^(SIG)?(KILL|TERM|INT)$|^(9|15|2)$/);
      return c('/kill', q, { kind: 'none' });
    }
    if (action === 'wait' && method === 'POST') {
      const q = queryOf(search, where, ['condition']);
      if (q.get('condition') !== null) fixed(q.get('condition'), `${where}: condition`, ['not-running', 'next-exit', 'removed']);
      return c('/wait', q, { kind: 'none' });
    }
    if (action === 'archive' && (method === 'GET' || method === 'HEAD')) {
      const q = queryOf(search, where, ['path']);
      absolutePath(q.get('path') ?? undefined, `${where}: path`);
      return c('/archive', q, { kind: 'none' });
    }
    if (action === 'archive' && method === 'PUT') {
      const q = queryOf(search, where, ['path', 'noOverwriteDirNonDir', 'copyUIDGID']);
      fixed(q.get('path'), `${where}: path`, ['/']);
      boolParam(q, 'noOverwriteDirNonDir', where);
      boolParam(q, 'copyUIDGID', where);
      return c('/archive', q, { kind: 'stream' });
    }
    if (action === 'exec' && method === 'POST') return c('/exec', queryOf(search, where, []), { kind: 'json', check: checkExecBody });
  }
  if (seg[0] === 'exec' && seg.length === 3 && seg[1] !== undefined) {
    const id = str(seg[1], `${where}: exec id`, EXEC_ID);
    if (seg[2] === 'start' && method === 'POST') {
      return { method, path: keep('/exec/{exec}/start'), body: { kind: 'json', check: checkExecStartBody }, exec: id, hijack: true };
    }
    if (seg[2] === 'json' && method === 'GET') return { method, path: keep('/exec/{exec}/json', queryOf(search, where, [])), body: { kind: 'none' }, exec: id };
  }
  if (path === '/commit' && method === 'POST') {
    const p = commitPlan(search, rules);
    return { ...p, path: `${version}${p.path}` };
  }
  if (path === '/images/json' && method === 'GET') {
    const q = queryOf(search, where, ['filters', 'all']);
    boolParam(q, 'all', where);
    labelFilter(q, where, 'org.patchbay.image');
    return { method, path: keep(path, q), body: { kind: 'none' } };
  }
  if (seg[0] === 'images' && seg.at(-1) === 'json' && seg.length >= 3 && method === 'GET') {
    imageRef(seg.slice(1, -1).join('/'), `${where}: image`, [...rules.imageRepos, ...rules.commitRepos]);
    return { method, path: keep(path, queryOf(search, where, [])), body: { kind: 'none' } };
  }
  if (path === '/build' && method === 'POST') return overlayBuild(search, rules, version);
  if (path === '/images/create' || path === '/images/load') {
    throw new Refused(`${where}: the worker does not pull images; \`patchbay prepare\` (deploy/compose.sh up) builds them, on the host`);
  }
  throw new Refused(`${where} is not a call the executor makes`);
}
