/**
 * The lore watcher: polls each configured public-inbox for mail received
 * since its cursor, stores every new message once, then judges each thread
 * with new mail: which series revisions it holds, whether each is complete,
 * relevant and has a base, and queues each revision through the intake
 * exactly once. Every judgement is recorded with its reason
 * (store.lore.decide, unique per revision), so a restart, a re-post or a
 * cross-post never queues twice. One watcher polls at a time (a lease in
 * the database); a second one waits. Replies in the threads of series it
 * queued are read for reply commands (`patchbay: retest`, `base <commit>`,
 * `unrelated`), each acted on once and acknowledged in the thread.
 */
import { hostname } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { TreeCatalog } from '../catalog/trees.ts';
import type { Config } from '../config/config.ts';
import { PatchbayError, errorMessage, isPatchbayError } from '../domain/errors.ts';
import { type MailMessage, parseMbox, parseMessage, toMboxrd } from '../domain/mbox.ts';
import { type ReplyCommand, answeredIds, describeCommand, readCommand } from '../domain/report/commands.ts';
import { inboxPolicy } from '../domain/report/policy.ts';
import { threadTarget } from '../domain/report/thread.ts';
import { type RevisionSummary, type Series, assembleSeries, listRevisions, seriesPaths } from '../domain/series.ts';
import type { BaseDecision, BaseGit } from '../intake/base.ts';
import type { Intake, SubmitResult } from '../intake/intake.ts';
import type { CommandOutcome, Job, LoreDecision, NewLoreDecision, ReportPlanning, SeriesRecord, Store, StoredMail } from '../store/db.ts';
import { WATCHER_LEASE } from '../store/lore-repo.ts';
import { ATOM_PAGE, PoliteClient, type Sleep, fetchMessages, fetchRaw, fetchThread, listPage, sleep } from './client.ts';
import { normalizeInbox } from './inbox.ts';
import { type PrerequisiteOutcome, fetchPrerequisites } from './prerequisites.ts';

export type LoreConfig = Config['lore'];

export interface WatcherDeps {
  store: Store;
  intake: Pick<Intake, 'submit'>;
  trees: TreeCatalog;
  config: LoreConfig;
  /** Origins that may be fetched from (api.inboxAllowlist): every inbox must be on it. */
  allow: readonly string[];
  timeoutMs: number;
  /** Per response from an inbox. */
  maxBytes: number;
  /** Picks a series' base by a named rule (services/intake/base.ts resolveBase, bound to the mirrors), given its fetched prerequisites. */
  resolveBase: (series: Series, prerequisites: Series | null) => Promise<BaseDecision>;
  /** `git patch-id --stable` of mails as git am reads them (services/intake/mailinfo.ts patchIdsWithGit, bound to its limits). */
  patchIds: (mails: readonly MailMessage[]) => Promise<Array<string | null>>;
  logger: Logger;
  /** Reply commands in the threads of queued series; absent: none are read. */
  commands?: CommandSettings;
  now?: () => number;
  sleep?: Sleep;
}

export interface CommandSettings {
  /**
   * The report policy (who may command in which inbox: the series' author
   * and its maintainers; where the acknowledgement goes) and the robot's
   * address (its own mail is never a command). null: reports are off, and
   * with them commands (the robot says nothing in threads).
   */
  planning: ReportPlanning | null;
  /** The dashboard's public address (config.report.publicUrl): job links in acknowledgements. */
  publicUrl: string;
  /** Whether a commit is in a tree's mirror (`patchbay: base <commit>`). */
  git: Pick<BaseGit, 'resolveCommit'>;
}

/** What a command from someone who may give it came to. */
interface CommandResult {
  outcome: Exclude<CommandOutcome, 'ignored'>;
  detail: string;
  jobId: string | null;
  /** The acknowledgement's text. */
  ack: string;
}

export interface PollReport {
  inbox: string;
  listed: number;
  fetched: number;
  added: number;
  requests: number;
  error: string | null;
}

export interface JudgeReport {
  threads: number;
  decisions: LoreDecision[];
}

const LEASE_NAME = WATCHER_LEASE;
/** Most messages read from one thread when judging it (a series' own cap is higher, but a watched thread is mail of one series). */
export const THREAD_MAX_MESSAGES = 2000;
/** And at most this much of it: a thread is judged in memory. */
export const THREAD_MAX_BYTES = 256 * 1024 * 1024;
/** Threads read from the database at a time when judging (a pass judges every thread with new mail). */
const THREADS_PER_PAGE = 200;

/** The messages a message answers, oldest first (References, then In-Reply-To). */
function parentsOf(m: Pick<MailMessage, 'references' | 'inReplyTo' | 'messageId'>): string[] {
  const ids = [...m.references];
  if (m.inReplyTo !== null && !ids.includes(m.inReplyTo)) ids.push(m.inReplyTo);
  return ids.filter((id) => id !== m.messageId);
}

/**
 * Each message's thread: that of the first message it answers which is
 * stored already (`known`) or in the same batch, else its oldest reference,
 * else itself. A v2 patch sent in reply to v1's patch (whose References name
 * only that patch) so joins v1's thread, where the rest of v1 is.
 */
export function assignThreadRoots(batch: ReadonlyArray<Pick<MailMessage, 'references' | 'inReplyTo' | 'messageId'>>, known: ReadonlyMap<string, string>): Map<string, string> {
  const byId = new Map(batch.map((m) => [m.messageId, m]));
  const roots = new Map<string, string>();
  const rootOf = (id: string, depth: number): string | undefined => {
    const done = roots.get(id) ?? known.get(id);
    if (done !== undefined) return done;
    const m = byId.get(id);
    if (m === undefined || depth > 64) return undefined;
    const parents = parentsOf(m);
    let root: string | undefined;
    for (const p of parents) {
      root = rootOf(p, depth + 1);
      if (root !== undefined) break;
    }
    root ??= parents[0] ?? id;
    roots.set(id, root);
    return root;
  };
  for (const m of batch) rootOf(m.messageId, 0);
  return roots;
}

/** A key unique per revision: identity and version; a RESEND is its own (its content decides whether it is a duplicate). */
export function revisionKey(r: Pick<RevisionSummary, 'identity' | 'version' | 'isResend' | 'rootMessageId'>): string {
  return `rev:${JSON.stringify(r.isResend ? [r.identity, r.version, 'resend', r.rootMessageId] : [r.identity, r.version])}`;
}

/** Which configured path prefixes or tags make this series relevant; empty: not relevant. */
export function relevance(series: Pick<Series, 'treeTags'> & { paths: readonly string[] }, config: Pick<LoreConfig, 'relevantPaths' | 'relevantTags'>): string[] {
  const hits: string[] = [];
  for (const prefix of config.relevantPaths) {
    const path = series.paths.find((p) => p === prefix || p.startsWith(prefix));
    if (path !== undefined) hits.push(path);
  }
  const tags = new Set(config.relevantTags.map((t) => t.toLowerCase()));
  for (const t of series.treeTags) if (tags.has(t.toLowerCase())) hits.push(`[${t}]`);
  return [...new Set(hits)];
}

/**
 * sha256 of the series' diffs, in order, without their mail (subject,
 * Message-ID, dates, commit message): the same patches re-sent (RESEND,
 * cross-posted anew) hash the same.
 */
export function diffHash(series: Pick<Series, 'patches'>): string {
  const h = createHash('sha256');
  for (const p of series.patches) {
    const body = p.message.body;
    const at = body.search(/^diff --git /m);
    // git send-email's signature ("-- \n2.47.0") differs between senders.
    const diff = at < 0 ? '' : body.slice(at).replace(/\n-- \n[^\n]*\n*$/, '\n');
    h.update(diff).update('\0');
  }
  return h.digest('hex');
}

function authorOf(r: RevisionSummary): string {
  return r.author.name === '' ? r.author.email : `${r.author.name} <${r.author.email}>`;
}

export class LoreWatcher {
  readonly holder = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  readonly #inboxes: URL[];
  readonly #now: () => number;
  readonly #sleep: Sleep;
  readonly #log: Logger;
  #closing: AbortController | null = null;
  /** Whether this watcher runs its loop under the lease (pollAll/judge called directly, as tests do, take none). */
  #leased = false;
  #loop: Promise<void> | null = null;

  constructor(private readonly deps: WatcherDeps) {
    const allowed = deps.allow.map((o) => new URL(o).origin);
    this.#inboxes = deps.config.inboxes.map((raw) => {
      const url = normalizeInbox(raw);
      if (!allowed.includes(url.origin)) {
        throw new PatchbayError('CONFIG_INVALID', `lore inbox ${url.href} is not on the inbox allowlist (${allowed.join(', ') || 'empty'}); add its origin to PATCHBAY_INBOX_ALLOW`);
      }
      return url;
    });
    this.#now = deps.now ?? Date.now;
    this.#sleep = deps.sleep ?? sleep;
    this.#log = deps.logger.child({ component: 'lore', holder: this.holder });
  }

  get inboxes(): readonly string[] {
    return this.#inboxes.map((u) => u.href);
  }

  /** Starts the poll loop (lease, poll every inbox, judge, sleep). */
  start(): void {
    if (this.#loop !== null) return;
    const controller = new AbortController();
    this.#closing = controller;
    this.#loop = this.#run(controller.signal).catch((e: unknown) => {
      if (!controller.signal.aborted) this.#log.error({ err: errorMessage(e) }, 'lore watcher stopped');
    });
  }

  /** Stops the loop: an HTTP request in flight is aborted; bounded by timeoutMs. Idempotent. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.#loop === null) return;
    this.#closing?.abort(new PatchbayError('SHUTTING_DOWN', 'the watcher is stopping'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); })]);
    clearTimeout(timer);
    await this.deps.store.lore.releaseLease(LEASE_NAME, this.holder).catch(() => undefined);
  }

  async #run(signal: AbortSignal): Promise<void> {
    const interval = this.deps.config.pollIntervalSeconds * 1000;
    const stopped = (): boolean => signal.aborted;
    while (!stopped()) {
      const started = this.#now();
      try {
        if (await this.#renew()) {
          this.#leased = true;
          await this.pollAll(signal);
          if (await this.#renew()) await this.judge(signal);
          await this.prune();
        } else {
          this.#log.debug('another watcher holds the lease');
        }
      } catch (e) {
        if (stopped()) return;
        this.#log.error({ err: errorMessage(e), code: isPatchbayError(e) ? e.code : undefined }, 'lore pass failed');
      }
      const wait = Math.max(1000, interval - (this.#now() - started));
      try {
        await this.#sleep(wait, signal);
      } catch {
        return;
      }
    }
  }

  /**
   * Takes or renews the lease for two poll intervals and 10 s: renewed at
   * each pass, each inbox and each batch of a poll, so a long poll keeps it
   * and a watcher that died is replaced within that time.
   */
  async #renew(): Promise<boolean> {
    return this.deps.store.lore.lease(LEASE_NAME, this.holder, 2 * this.deps.config.pollIntervalSeconds * 1000 + 10_000);
  }

  /** In the loop: false when another watcher took the lease (this one stalled past it); the pass stops. */
  async #stillLeased(): Promise<boolean> {
    if (!this.#leased) return true;
    if (await this.#renew()) return true;
    this.#log.warn('another watcher took the lease; this pass stops');
    return false;
  }

  /** One poll of every inbox; an inbox that fails is recorded and does not stop the others. */
  async pollAll(signal: AbortSignal): Promise<PollReport[]> {
    const out: PollReport[] = [];
    for (const inbox of this.#inboxes) {
      if (signal.aborted || !(await this.#stillLeased())) break;
      out.push(await this.poll(inbox, signal));
    }
    return out;
  }

  /**
   * Lists what the inbox received since its cursor (less the overlap), fetches
   * the messages not stored yet and stores them. The cursor moves to this
   * poll's start only when everything listed was fetched; otherwise the next
   * poll lists the same range again (stored messages are not fetched twice).
   */
  async poll(inbox: URL, signal: AbortSignal): Promise<PollReport> {
    const { store, config } = this.deps;
    const log = this.#log.child({ inbox: inbox.href });
    const client = this.#client(signal, config.requestBudget);
    const startedAt = this.#now();
    const state = await store.lore.inbox(inbox.href);
    const cursor = state.cursorAt?.getTime() ?? startedAt - config.lookbackSeconds * 1000;
    const since = Math.max(0, Math.floor((cursor - config.overlapSeconds * 1000) / 1000));
    const report: PollReport = { inbox: inbox.href, listed: 0, fetched: 0, added: 0, requests: 0, error: null };
    // A poll that stopped part way (budget, error, kill) left where it got to
    // for this same lower bound: resume a page before it (a message indexed
    // late can push the rest one place on), not from the first page.
    const resumeAt = state.resumeSince === since ? Math.max(0, state.resumeOffset - ATOM_PAGE) : 0;
    try {
      for (let offset = resumeAt; ; offset += ATOM_PAGE) {
        if (!(await this.#stillLeased())) throw new PatchbayError('LORE_LEASE_LOST', 'another watcher took the lease');
        const entries = await listPage(client, inbox, since, offset);
        report.listed += entries.length;
        const ids = [...new Set(entries.map((e) => e.messageId))];
        const seen = await store.lore.seen(ids);
        const wanted = ids.filter((id) => !seen.has(id));
        // Cross-posts: a message stored from another inbox gains this one without a fetch.
        await store.lore.addInbox(inbox.href, [...seen]);
        const found = this.#parse(await fetchMessages(client, inbox, wanted), log);
        // What the search did not find (public-inbox's m: misses some ids it
        // lists, e.g. long ones), each by its own raw URL.
        const got = new Set(found.map((m) => m.messageId));
        const rest: string[] = [];
        for (const id of wanted.filter((x) => !got.has(x))) {
          const raw = await fetchRaw(client, inbox, id);
          if (raw !== null) rest.push(raw);
        }
        const mail = await this.#withRoots([...found, ...this.#parse(rest, log)]);
        report.fetched += mail.length;
        report.added += await store.lore.addMail(inbox.href, mail);
        if (entries.length < ATOM_PAGE) break;
        await store.lore.recordProgress(inbox.href, since, offset + entries.length);
      }
      report.requests = client.requests;
      await store.lore.recordPoll(inbox.href, { ok: true, error: null, cursorAt: new Date(startedAt), messages: report.added, requests: client.requests });
      log.info({ since, resumedAt: resumeAt, listed: report.listed, fetched: report.fetched, added: report.added, requests: client.requests }, 'inbox polled');
    } catch (e) {
      report.requests = client.requests;
      report.error = isPatchbayError(e) ? `${e.code}: ${e.message}` : errorMessage(e);
      if (signal.aborted) return report;
      await store.lore.recordPoll(inbox.href, { ok: false, error: report.error, cursorAt: null, messages: report.added, requests: client.requests })
        .catch(() => undefined);
      log.warn({ err: report.error, details: isPatchbayError(e) ? e.details : undefined }, 'inbox poll failed; the cursor stays');
    }
    return report;
  }

  /** A polite client for one poll (or one thread fetch): its own request count against `budget`. */
  #client(signal: AbortSignal, budget: number): PoliteClient {
    const c = this.deps.config;
    return new PoliteClient({
      allow: this.deps.allow, userAgent: c.userAgent, timeoutMs: this.deps.timeoutMs, maxBytes: this.deps.maxBytes,
      spacingMs: c.requestSpacingMs, budget, attempts: c.requestAttempts, backoffBaseMs: c.backoffBaseMs, backoffMaxMs: c.backoffMaxMs,
    }, signal, this.#sleep);
  }

  /** Stored form of fetched mboxes; a message that does not parse is logged and dropped. */
  #parse(mboxes: readonly string[], log: Logger): Array<StoredMail & { parents: string[] }> {
    const out: Array<StoredMail & { parents: string[] }> = [];
    for (const mbox of mboxes) {
      let messages: MailMessage[];
      try {
        messages = parseMbox(mbox);
      } catch (e) {
        log.warn({ err: errorMessage(e) }, 'an mbox from the inbox did not parse');
        continue;
      }
      for (const m of messages) {
        out.push({
          messageId: m.messageId,
          threadRoot: m.messageId,
          parents: parentsOf(m),
          subject: m.subject,
          fromEmail: m.from.email,
          date: m.date,
          raw: Buffer.from(m.raw, 'latin1'),
        });
      }
    }
    return out;
  }

  /** The batch with each message's thread (assignThreadRoots), from what is stored and the batch itself. */
  async #withRoots(mail: ReadonlyArray<StoredMail & { parents: string[] }>): Promise<StoredMail[]> {
    const known = await this.deps.store.lore.threadRoots([...new Set(mail.flatMap((m) => m.parents))]);
    const roots = assignThreadRoots(mail.map((m) => ({ messageId: m.messageId, references: m.parents, inReplyTo: null })), known);
    return mail.map(({ parents: _parents, ...m }) => ({ ...m, threadRoot: roots.get(m.messageId) ?? m.messageId }));
  }

  /** Forgets mail and discussion decisions older than lore.retentionDays (store.lore.prune). */
  async prune(): Promise<void> {
    const before = new Date(this.#now() - this.deps.config.retentionDays * 86_400_000);
    const removed = await this.deps.store.lore.prune(before);
    if (removed.messages + removed.threads + removed.decisions > 0) this.#log.info({ ...removed, before: before.toISOString() }, 'forgot old mail');
  }

  /** Judges every thread with new mail, a page at a time; returns the decisions made. */
  async judge(signal: AbortSignal): Promise<JudgeReport> {
    const decisions: LoreDecision[] = [];
    let judged = 0;
    let after: { lastMailAt: Date; root: string } | undefined;
    for (;;) {
      const threads = await this.deps.store.lore.dirtyThreads(THREADS_PER_PAGE, after);
      for (const t of threads) {
        if (signal.aborted) return { threads: judged, decisions };
        judged++;
        try {
          decisions.push(...await this.#judgeThread(t, signal));
        } catch (e) {
          this.#log.warn({ thread: t.root, err: errorMessage(e) }, 'could not judge a thread; it is judged again next pass');
        }
      }
      const last = threads[threads.length - 1];
      if (last === undefined || threads.length < THREADS_PER_PAGE) return { threads: judged, decisions };
      after = { lastMailAt: last.lastMailAt, root: last.root };
      if (!(await this.#stillLeased())) return { threads: judged, decisions };
    }
  }

  async #judgeThread(t: { root: string; inbox: string; fetched: boolean; lastMailAt: Date }, signal: AbortSignal): Promise<LoreDecision[]> {
    const { store, config } = this.deps;
    const log = this.#log.child({ thread: t.root });
    const rows = await store.lore.threadMail(t.root, THREAD_MAX_MESSAGES, THREAD_MAX_BYTES);
    const messages: MailMessage[] = [];
    for (const r of rows) {
      if (r.raw.length === 0) continue;
      try {
        messages.push(parseMessage(r.raw.toString('latin1')));
      } catch (e) {
        log.warn({ messageId: r.messageId, err: errorMessage(e) }, 'a stored message does not parse');
      }
    }
    const inbox = new URL(t.inbox);
    // A thread whose first message predates the watcher (a v2 patch in reply
    // to a v1 it never saw): the rest of the thread is fetched once.
    if (!t.fetched && !rows.some((r) => r.messageId === t.root) && messages.some((m) => /\[[^\]]*PATCH/i.test(m.subject))) {
      await this.#fetchWholeThread(inbox, t.root, signal, log);
      await store.lore.markThread(t.root, { fetched: true });
      return [];
    }
    const revisions = listRevisions(messages);
    const made: LoreDecision[] = [];
    if (revisions.length === 0) {
      const first = messages[0];
      const { decision, created } = await store.lore.decide({
        key: `thread:${t.root}`, threadRoot: t.root, inbox: t.inbox, identity: null, version: null,
        title: first?.subject ?? '', author: first === undefined ? '' : first.from.email, rootMessageId: t.root,
        decision: 'no-patches', reason: `no patch mail among ${messages.length} message${messages.length === 1 ? '' : 's'}: a discussion, not a series`,
        tree: null, base: null, baseRule: null, patchHash: null, seriesId: null, jobId: null,
      });
      if (created) made.push(decision);
      await store.lore.markThread(t.root, { dirty: false });
      return made;
    }
    let pending = false;
    const byId = new Map(messages.map((m) => [m.messageId, m]));
    for (const rev of revisions) {
      const key = revisionKey(rev);
      if ((await store.lore.decisionByKey(key)) !== null) continue;
      const base: Omit<NewLoreDecision, 'decision' | 'reason'> = {
        key, threadRoot: t.root, inbox: t.inbox, identity: rev.identity, version: rev.version,
        title: rev.title, author: authorOf(rev), rootMessageId: rev.rootMessageId,
        tree: null, base: null, baseRule: null, patchHash: null, seriesId: null, jobId: null,
      };
      if (!rev.complete) {
        const quiet = this.#now() - t.lastMailAt.getTime();
        if (quiet < config.settleSeconds * 1000) {
          pending = true;
          continue;
        }
        const missing = rev.missing.length > 0 ? `missing ${rev.missing.map((c) => `${c}/${rev.total}`).join(', ')}` : (rev.problem ?? 'not complete');
        made.push(await this.#decide({ ...base, decision: 'incomplete', reason: `${missing}; nothing new in the thread for ${config.settleSeconds} s` }, log));
        continue;
      }
      const mail = rev.messageIds.map((id) => byId.get(id)).filter((m): m is MailMessage => m !== undefined);
      const decision = await this.#judgeRevision(rev, mail, base, inbox, signal, log);
      if (decision === null) pending = true;
      else made.push(decision);
    }
    // Replies with commands: also in a thread whose revisions were all decided before (new mail is what made it dirty).
    if (await this.#readCommands(t, messages, log)) pending = true;
    if (!pending) await store.lore.markThread(t.root, { dirty: false });
    return made;
  }

  /**
   * The reply commands of a thread the watcher queued a series from: each
   * message carrying one (readCommand) that is not recorded yet is acted
   * on and recorded (#command). True when one could not be handled now
   * (git or the intake failing): the thread is judged again next pass.
   */
  async #readCommands(t: { root: string; inbox: string }, messages: readonly MailMessage[], log: Logger): Promise<boolean> {
    const settings = this.deps.commands;
    const planning = settings?.planning ?? null;
    if (settings === undefined || planning === null) return false;
    const found: Array<{ mail: MailMessage; command: ReplyCommand }> = [];
    for (const mail of messages) {
      const command = readCommand(mail, planning.robot);
      if (command !== null) found.push({ mail, command });
    }
    if (found.length === 0) return false;
    const { store } = this.deps;
    if (!(await store.lore.threadQueued(t.root))) return false;
    const recorded = await store.commands.recorded(found.map((f) => f.mail.messageId));
    let again = false;
    for (const { mail, command } of found) {
      if (recorded.has(mail.messageId)) continue;
      try {
        await this.#command(t, mail, command, planning, settings, log);
      } catch (e) {
        again = true;
        log.warn({ messageId: mail.messageId, command: describeCommand(command), err: errorMessage(e) }, 'a reply command could not be handled now; it is tried again next pass');
      }
    }
    return again;
  }

  /**
   * One command, once: the revision it answers (the first of the mails it
   * answers that is a patch, cover letter or report of a stored series;
   * none: not for us, nothing recorded), whether its sender may give it
   * (the series' author or one of the inbox's maintainers; anyone else:
   * recorded as ignored, nothing done), the action (idempotent: a job is
   * keyed by the command's Message-ID), then the command and its
   * acknowledgement recorded in one transaction.
   */
  async #command(t: { root: string; inbox: string }, mail: MailMessage, command: ReplyCommand, planning: ReportPlanning, settings: CommandSettings, log: Logger): Promise<void> {
    const { store } = this.deps;
    const answered = await store.commands.seriesOfReply(answeredIds(mail));
    if (answered === null) return;
    const series = await store.series.get(answered.seriesId);
    if (series === null) return;
    const from = mail.from.email.trim().toLowerCase();
    const inbox = series.inboxUrl ?? t.inbox;
    const asked = describeCommand(command);
    const clog = log.child({ seriesId: series.id, messageId: mail.messageId, from, command: asked });
    const row = {
      messageId: mail.messageId, threadRoot: t.root, seriesId: series.id, fromEmail: from,
      command: command.command, argument: command.command === 'base' ? command.commit : null,
    };
    const maintainers = inboxPolicy(planning.policy, inbox).maintainers.map((a) => a.toLowerCase());
    const authors = new Set([...(await store.series.patches(series.id)), ...[await store.series.cover(series.id)].filter((c) => c !== null)]
      .map((p) => p.authorEmail.trim().toLowerCase()));
    if (!authors.has(from) && !maintainers.includes(from)) {
      const detail = `${from} is neither the series' author (${[...authors].join(', ')}) nor a maintainer of ${inbox}`;
      const { created } = await store.commands.record({ ...row, outcome: 'ignored', detail, jobId: null }, null);
      if (created) clog.info({ outcome: 'ignored', detail }, 'reply command ignored');
      return;
    }
    const result = await this.#act(series, mail.messageId, command, from, settings);
    const { created, ack } = await store.commands.record({ ...row, outcome: result.outcome, detail: result.detail, jobId: result.jobId }, {
      target: threadTarget(mail), inbox, body: result.ack, reason: `acknowledges "patchbay: ${asked}" from ${from} (${result.outcome})`, planning,
    });
    if (created) clog.info({ outcome: result.outcome, detail: result.detail, jobId: result.jobId ?? undefined, ack: ack?.id }, 'reply command handled');
  }

  /** The action of a command from someone who may give it. Throws when it cannot be done now (git, the intake, the database failing). */
  async #act(series: SeriesRecord, messageId: string, command: ReplyCommand, from: string, settings: CommandSettings): Promise<CommandResult> {
    const { store } = this.deps;
    const v = `v${series.version}`;
    const jobUrl = (id: string): string => `${settings.publicUrl.replace(/\/+$/, '')}/jobs/${id}`;
    const refused = (detail: string, ack: string): CommandResult => ({ outcome: 'refused', detail, jobId: null, ack });
    const later = 'the result will be reported in this thread if it differs from the last one.';
    switch (command.command) {
      case 'unrelated': {
        const failed = await store.jobs.latestWithStatus(series.id, 'FAIL');
        const marked = failed === null ? null : await store.jobs.markUnrelated(failed.id, from);
        if (marked === null) {
          return refused(`${v} has no failed job`, `patchbay: nothing to mark: ${v} of this series has no failed job. Nothing was changed.`);
        }
        const by = marked.unrelatedBy ?? from;
        return {
          outcome: 'done', jobId: marked.id, detail: `job ${marked.id}'s failure marked as not the series' doing by ${by}`,
          ack: by === from
            ? `patchbay: the failure of ${v} in job ${marked.id} (${jobUrl(marked.id)}) is recorded as not caused by the series, as ${from} said.`
            : `patchbay: the failure of ${v} in job ${marked.id} (${jobUrl(marked.id)}) was already recorded as not caused by the series, by ${by}.`,
        };
      }
      case 'retest':
      case 'base': {
        const latest = (await store.jobs.forSeries(series.id))[0];
        if (latest === undefined) return refused(`${v} has no job to go by`, `patchbay: ${v} of this series was never tested here, so there is nothing to ${command.command === 'retest' ? 'repeat' : 'move to another base'}. Nothing was queued.`);
        let base = latest.base ?? latest.baseCommit;
        let baseRule = latest.baseRule;
        if (command.command === 'base') {
          const found = await settings.git.resolveCommit(latest.tree, command.commit);
          if (found.kind === 'missing') {
            return refused(`the ${latest.tree} tree has no commit ${command.commit}`, `patchbay: cannot test ${v} on ${command.commit}: the ${latest.tree} tree has no such commit. Nothing was queued.`);
          }
          if (found.kind === 'ambiguous') {
            return refused(`${command.commit} names more than one commit of the ${latest.tree} tree`, `patchbay: cannot test ${v} on ${command.commit}: it names more than one commit of the ${latest.tree} tree; give more of its digits. Nothing was queued.`);
          }
          base = found.sha;
          baseRule = 'requested';
        }
        let submitted: SubmitResult;
        try {
          submitted = await this.#resubmit(series, latest, base, baseRule, messageId);
        } catch (e) {
          if (!isPatchbayError(e) || e.retryable) throw e;
          return refused(`${e.code}: ${e.message}`, `patchbay: ${command.command === 'retest' ? 'retest' : `test on ${command.commit}`} of ${v} could not be queued: ${e.message}`);
        }
        const job = submitted.jobs[0];
        if (job === undefined) throw new PatchbayError('INTAKE_NO_JOB', 'the intake returned no job');
        const on = base === null ? '' : ` on ${latest.tree} at ${base.slice(0, 12)}`;
        return command.command === 'retest'
          ? { outcome: 'done', jobId: job.id, detail: `queued job ${job.id}${on}`, ack: `patchbay: retest of ${v} queued as job ${job.id} (${jobUrl(job.id)}); ${later}` }
          : { outcome: 'done', jobId: job.id, detail: `queued job ${job.id}${on}`, ack: `patchbay: ${v} queued${on} as job ${job.id} (${jobUrl(job.id)}); ${later}` };
      }
    }
  }

  /**
   * A new job for a stored series like `like` (tree, suites,
   * prerequisites) on `base`, through the intake as any submission,
   * keyed by the command's Message-ID: asked again (after a crash before
   * the command was recorded), the same job comes back.
   */
  async #resubmit(series: SeriesRecord, like: Job, base: string | null, baseRule: string | null, commandMessageId: string): Promise<SubmitResult> {
    const mboxOf = async (seriesId: string, cover: boolean): Promise<string> => {
      const { store } = this.deps;
      const patches = await store.series.patches(seriesId);
      const first = cover ? await store.series.cover(seriesId) : null;
      return toMboxrd([...(first === null ? [] : [first]), ...patches].map((p) => parseMessage(p.raw.toString('latin1'))));
    };
    return this.deps.intake.submit({
      mbox: await mboxOf(series.id, true), source: series.source, inboxUrl: series.inboxUrl, tree: like.tree, base, baseRule,
      prerequisites: like.prerequisitesId === null ? null : await mboxOf(like.prerequisitesId, false),
      suites: like.suites, force: true, rerunKey: `reply-command:${commandMessageId}`, submittedBy: null, activeJobCap: null,
    });
  }

  /** A complete revision: assembled, checked for relevance and a base, then queued; null: try again next pass. */
  async #judgeRevision(rev: RevisionSummary, mail: readonly MailMessage[], base: Omit<NewLoreDecision, 'decision' | 'reason'>, inbox: URL, signal: AbortSignal, log: Logger): Promise<LoreDecision | null> {
    let series: Series;
    try {
      series = assembleSeries(mail, { version: rev.version });
    } catch (e) {
      if (!isPatchbayError(e)) throw e;
      return this.#decide({ ...base, decision: 'invalid', reason: `${e.code}: ${e.message}` }, log);
    }
    const hits = relevance({ treeTags: series.treeTags, paths: seriesPaths(series) }, this.deps.config);
    if (hits.length === 0) {
      const paths = seriesPaths(series);
      const shown = paths.slice(0, 5).join(', ') + (paths.length > 5 ? `, and ${paths.length - 5} more` : '');
      return this.#decide({ ...base, decision: 'not-relevant', reason: `touches none of the watched paths or tags (${shown || 'no paths'})` }, log);
    }
    // Prerequisites first: they decide where the series applies. The inbox it came from is searched first.
    let pre: PrerequisiteOutcome;
    try {
      const inboxes = [inbox, ...this.#inboxes.filter((u) => u.href !== inbox.href)];
      pre = await fetchPrerequisites(series, { client: this.#client(signal, this.deps.config.requestBudget), inboxes, patchIds: this.deps.patchIds });
    } catch (e) {
      log.warn({ err: errorMessage(e) }, 'the prerequisites could not be fetched now; tried again next pass');
      return null;
    }
    if (pre.kind === 'missing') {
      return this.#decide({ ...base, decision: 'no-base', reason: `prerequisites: ${pre.reason}` }, log);
    }
    const prerequisites = pre.kind === 'found' ? pre.prerequisites : null;
    const picked = await this.deps.resolveBase(series, prerequisites);
    if (picked.kind === 'no-base') {
      return this.#decide({ ...base, decision: 'no-base', reason: [picked.reason, ...picked.tried].join('; ') }, log);
    }
    // The same patches on the same prerequisites: a series' diffs, then its prerequisites'.
    const patchHash = prerequisites === null ? diffHash(series) : createHash('sha256').update(`${diffHash(series)}\0prerequisites\0${diffHash(prerequisites)}`).digest('hex');
    const placed = { ...base, tree: picked.tree, base: picked.commit, baseRule: picked.rule, patchHash };
    const earlier = await this.deps.store.lore.queuedWithPatches(patchHash, picked.tree, picked.commit);
    if (earlier !== null && earlier.key !== base.key) {
      return this.#decide({ ...placed, seriesId: earlier.seriesId, jobId: earlier.jobId, decision: 'duplicate', reason: `the same patches on the same base as "${earlier.title}" v${earlier.version ?? 1}, queued ${earlier.decidedAt.toISOString().slice(0, 16)}${earlier.jobId === null ? '' : ` (job ${earlier.jobId})`}` }, log);
    }
    let submitted;
    try {
      submitted = await this.deps.intake.submit({
        mbox: toMboxrd(mail), source: 'lore', inboxUrl: inbox.href, tree: picked.tree, base: picked.commit, baseRule: picked.rule,
        prerequisites: pre.kind === 'found' ? pre.mbox : null,
        suites: this.deps.config.suites.length > 0 ? this.deps.config.suites : null, force: false, submittedBy: null, activeJobCap: null,
      });
    } catch (e) {
      if (isPatchbayError(e) && !e.retryable) {
        return this.#decide({ ...placed, decision: 'invalid', reason: `${e.code}: ${e.message}` }, log);
      }
      log.warn({ err: errorMessage(e) }, 'the intake could not queue the series now; it is tried again next pass');
      return null;
    }
    const job = submitted.jobs[0] ?? null;
    const why = `${picked.rule}: ${picked.detail}${pre.kind === 'found' ? `; ${pre.detail}` : ''}; touches ${hits.slice(0, 3).join(', ')}${hits.length > 3 ? ', …' : ''}`;
    if (!submitted.created && job !== null) {
      const earlier = await this.deps.store.lore.decisionByJob(job.id);
      if (earlier !== null && earlier.key !== base.key) {
        return this.#decide({ ...placed, seriesId: submitted.series.id, jobId: job.id, decision: 'duplicate', reason: `the same patches on the same base as "${earlier.title}" v${earlier.version ?? 1} (job ${job.id})` }, log);
      }
    }
    return this.#decide({ ...placed, seriesId: submitted.series.id, jobId: job?.id ?? null, decision: 'queued', reason: why }, log);
  }

  async #decide(d: NewLoreDecision, log: Logger): Promise<LoreDecision> {
    const { decision, created } = await this.deps.store.lore.decide(d);
    if (created) log.info({ decision: decision.decision, title: decision.title, version: decision.version, jobId: decision.jobId, reason: decision.reason }, 'series revision judged');
    return decision;
  }

  async #fetchWholeThread(inbox: URL, root: string, signal: AbortSignal, log: Logger): Promise<void> {
    // One request and its retries.
    const client = this.#client(signal, this.deps.config.requestAttempts);
    const mbox = await fetchThread(client, inbox, root);
    if (mbox === null) return;
    const mail = this.#parse([mbox], log).map(({ parents: _parents, ...m }) => ({ ...m, threadRoot: root }));
    const added = await this.deps.store.lore.addMail(inbox.href, mail);
    log.info({ added }, 'fetched the rest of a thread that began before the watcher saw it');
  }
}
