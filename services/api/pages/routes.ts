/**
 * Server-rendered pages with stable URLs that emails link to: the series
 * list, a series (patches, jobs), a job (stage timeline, live log, results,
 * crashes, artifacts). The live log is the API's SSE stream.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { PatchbayError } from '../../domain/errors.ts';
import { type ComparedResult, type Comparison, formatTally } from '../../domain/compare.ts';
import { prerequisitePatches, prerequisitesLine } from '../../domain/prerequisites.ts';
import type { OutboxEntry, Store } from '../../store/db.ts';
import type { Job } from '../../store/job-repo.ts';
import type { RunnerWithLeases } from '../../store/runner-repo.ts';
import { WATCHER_LEASE } from '../../store/lore-repo.ts';
import { LORE_DECISIONS, OUTBOX_STATUSES } from '../../store/schema.ts';
import { outboxCounts } from '../routes/outbox.ts';
import { Html, ago, badge, duration, html, outboxBadge, page, when } from './html.ts';

export interface PageRoutesOptions {
  store: Store;
}

/** The job page's one script, inline; the CSP allows it by its hash (csp.ts). */
export const LIVE_LOG_SCRIPT = `
(function () {
  var pre = document.getElementById('log');
  var status = document.getElementById('job-status');
  if (!pre || !window.EventSource) return;
  var es = new EventSource(pre.dataset.src);
  es.addEventListener('log', function (ev) {
    var e = JSON.parse(ev.data);
    var stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
    pre.append(document.createTextNode(e.text));
    if (stick) pre.scrollTop = pre.scrollHeight;
  });
  es.addEventListener('stage', function (ev) {
    if (pre.dataset.live !== '1') return;
    var e = JSON.parse(ev.data);
    var li = document.querySelector('[data-stage="' + e.stage + '"]');
    if (!li) { li = document.createElement('li'); li.dataset.stage = e.stage; document.getElementById('timeline').append(li); }
    li.textContent = e.stage + (e.phase === 'end' ? ' ' + e.status + ' ' + Math.round(e.durationMs / 100) / 10 + ' s' : ' running');
  });
  es.addEventListener('end', function (ev) {
    es.close();
    var e = JSON.parse(ev.data);
    if (pre.dataset.live === '1') { status.textContent = e.status; setTimeout(function () { location.reload(); }, 500); }
  });
})();`;

export default function pageRoutes(fastify: FastifyInstance, opts: PageRoutesOptions, done: (err?: Error) => void): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { store } = opts;
  const hide = { hide: true } as const;

  app.get('/', { schema: hide }, (_request, reply) => reply.redirect('/series'));

  app.get('/series', { config: { scope: 'read' }, schema: { ...hide, querystring: Type.Object({ cursor: Type.Optional(Type.String({ maxLength: 200 })) }) } }, async (request, reply) => {
    const list = await store.series.list({ limit: 50, ...(request.query.cursor ? { cursor: request.query.cursor } : {}) });
    const rows = await Promise.all(list.items.map(async (s) => {
      const jobs = await store.jobs.forSeries(s.id);
      return html`<tr><td><a href="/series/${s.id}">${s.title}</a></td><td>v${s.version}</td><td>${s.total}</td>
        <td>${jobs.map((j) => html`<a href="/jobs/${j.id}">${badge(j.status)}</a> `)}</td><td class="muted">${s.createdAt.toISOString().replace('T', ' ').slice(0, 16)}</td></tr>`;
    }));
    const next = list.nextCursor ? html`<a href="/series?cursor=${encodeURIComponent(list.nextCursor)}">older</a>` : '';
    return reply.type('text/html; charset=utf-8').send(page('Series', html`<h1>Series</h1>
      <table><thead><tr><th>Series</th><th>Version</th><th>Patches</th><th>Jobs</th><th>Submitted</th></tr></thead><tbody>${rows}</tbody></table>${next}`));
  });

  app.get('/series/:id', { config: { scope: 'read' }, schema: { ...hide, params: Type.Object({ id: Type.String({ maxLength: 64 }) }) } }, async (request, reply) => {
    const s = await store.series.get(request.params.id);
    if (!s) throw new PatchbayError('SERIES_UNKNOWN', `no series ${request.params.id}`);
    const [cover, patches, jobs] = await Promise.all([store.series.cover(s.id), store.series.patches(s.id), store.jobs.forSeries(s.id)]);
    return reply.type('text/html; charset=utf-8').send(page(s.title, html`
      <h1>${s.title} <span class="muted">v${s.version}${s.isRfc ? ' RFC' : ''}</span></h1>
      <p class="muted">Message-ID &lt;${s.rootMessageId}&gt;${s.baseCommit ? html` · base-commit <code>${s.baseCommit.slice(0, 12)}</code>` : ''}</p>
      ${cover ? html`<p>Cover letter: ${cover.subject} — ${cover.authorName}</p>` : ''}
      <h2>Patches</h2><table><thead><tr><th>#</th><th>Subject</th><th>Author</th><th>Files</th></tr></thead><tbody>
      ${patches.map((p) => html`<tr><td>${p.counter}/${s.total}</td><td>${p.subject}</td><td>${p.authorName}</td><td><code>${p.files.map((f) => f.newPath ?? f.oldPath ?? '').join(' ')}</code></td></tr>`)}
      </tbody></table>
      <h2>Jobs</h2><table><thead><tr><th>Job</th><th>Status</th><th>Tree</th><th>Suites</th><th>Summary</th></tr></thead><tbody>
      ${jobs.map((j) => html`<tr><td><a href="/jobs/${j.id}">${j.id}</a></td><td>${badge(j.status)}</td><td>${j.tree}</td><td>${j.suites.join(', ')}</td><td>${j.summary}</td></tr>`)}
      </tbody></table>`));
  });

  app.get('/lore', {
    config: { scope: 'read' },
    schema: { ...hide, querystring: Type.Object({ cursor: Type.Optional(Type.String({ maxLength: 200 })), decision: Type.Optional(Type.Enum([...LORE_DECISIONS, 'all'])) }) },
  }, async (request, reply) => {
    // By default the series the watcher found; threads without patches (the list's discussions) on demand.
    const shown = request.query.decision ?? 'series';
    const filter = shown === 'series' ? { exclude: ['no-patches'] as const } : shown === 'all' ? {} : { decision: shown };
    const [inboxes, lease, list, counts] = await Promise.all([
      store.lore.inboxes(),
      store.lore.leaseHolder(WATCHER_LEASE),
      store.lore.decisions({ limit: 100, ...filter, ...(request.query.cursor ? { cursor: request.query.cursor } : {}) }),
      store.lore.counts(),
    ]);
    const query = (extra: Record<string, string>): string => new URLSearchParams({ ...(shown === 'series' ? {} : { decision: shown }), ...extra }).toString();
    const next = list.nextCursor ? html`<a href="/lore?${query({ cursor: list.nextCursor })}">older</a>` : '';
    const filters = html`<p>Show: ${[['series', 'series'], ...LORE_DECISIONS.map((k) => [k, `${k} (${counts.decisions[k] ?? 0})`]), ['all', 'all']].map(([k, label]) =>
      k === shown ? html`<b>${label}</b> ` : html`<a href="/lore${k === 'series' ? '' : `?decision=${k}`}">${label}</a> `)}</p>`;
    return reply.type('text/html; charset=utf-8').send(page('Lore watcher', html`<h1>Lore watcher</h1>
      <p class="muted">${lease ? html`Polling: ${lease.holder} (lease until ${when(lease.expiresAt)})` : 'No watcher holds the lease: none is polling.'}</p>
      <h2>Inboxes</h2>
      <table><thead><tr><th>Inbox</th><th>Cursor (received since)</th><th>Last poll</th><th>Last success</th><th>Polls</th><th>Errors</th><th>Messages</th><th>Requests</th><th>Last error</th></tr></thead><tbody>
      ${inboxes.map((i) => html`<tr data-inbox="${i.url}"><td>${i.url}</td><td>${when(i.cursorAt)}</td><td>${when(i.lastPollAt)}</td><td>${when(i.lastOkAt)}</td><td>${i.polls}</td><td>${i.pollErrors}</td><td>${i.messagesSeen}</td><td>${i.requests}</td>
        <td>${i.lastError === null ? '' : html`${i.lastError} <span class="muted">(${when(i.lastErrorAt)})</span>`}</td></tr>`)}
      </tbody></table>
      <h2>Decisions</h2>
      <p class="muted">Every series revision the watcher found, and every thread without patches, with why it was or was not queued.</p>
      ${filters}
      <table><thead><tr><th>When</th><th>Decision</th><th>Series</th><th>Author</th><th>Base</th><th>Why</th></tr></thead><tbody>
      ${list.items.map((d) => html`<tr data-decision="${d.decision}"><td class="muted">${when(d.decidedAt)}</td>
        <td><span class="d d-${d.decision}">${d.decision}</span>${d.jobId ? html` <a href="/jobs/${d.jobId}">job</a>` : ''}</td>
        <td>${d.seriesId ? html`<a href="/series/${d.seriesId}">${d.title}</a>` : d.title}${d.version !== null ? html` <span class="muted">v${d.version}</span>` : ''}<br><span class="muted">&lt;${d.rootMessageId}&gt;</span></td>
        <td>${d.author}</td>
        <td>${d.tree ? html`${d.tree} <code>${(d.base ?? '').slice(0, 12)}</code><br><span class="muted">${d.baseRule ?? ''}</span>` : ''}</td>
        <td>${d.reason}</td></tr>`)}
      </tbody></table>${next}`));
  });

  app.get('/outbox', {
    config: { scope: 'read' },
    schema: { ...hide, querystring: Type.Object({ cursor: Type.Optional(Type.String({ maxLength: 200 })), status: Type.Optional(Type.Enum(OUTBOX_STATUSES)) }) },
  }, async (request, reply) => {
    const shown = request.query.status;
    const [list, counts] = await Promise.all([
      store.outbox.list({ limit: 100, ...(shown ? { status: shown } : {}), ...(request.query.cursor ? { cursor: request.query.cursor } : {}) }),
      outboxCounts(store),
    ]);
    const total = OUTBOX_STATUSES.reduce((n, k) => n + counts[k], 0);
    const query = (extra: Record<string, string>): string => new URLSearchParams({ ...(shown ? { status: shown } : {}), ...extra }).toString();
    const next = list.nextCursor ? html`<a href="/outbox?${query({ cursor: list.nextCursor })}">older</a>` : '';
    const filters = html`<p id="outbox-counts">Show: ${shown === undefined ? html`<b>all (${total})</b> ` : html`<a href="/outbox">all (${total})</a> `}${OUTBOX_STATUSES.map((k) =>
      html`${k === shown ? html`<b>${k}</b>` : html`<a href="/outbox?status=${k}">${k}</a>`} (<span data-count="${k}">${counts[k]}</span>) `)}</p>`;
    return reply.type('text/html; charset=utf-8').send(page('Mail reports', html`<h1>Mail reports</h1>
      <p class="muted">Every report planned for a verdict, newest first: sent once, to the thread the series was posted in. Held: in doubt whether it went out (an operator resends it or marks it sent). Skipped: the author opted out (or has no usable address).</p>
      ${filters}
      <table id="outbox"><thead><tr><th>When</th><th>Status</th><th>Kind</th><th>Verdict</th><th>Series</th><th>Job</th><th>Mode</th><th>Recipients</th><th>Tries</th><th>Last error or relay's answer</th><th>Message</th></tr></thead><tbody>
      ${list.items.map((e) => html`<tr data-report="${e.id}"><td class="muted">${when(e.createdAt)}</td>
        <td>${outboxBadge(e.status)}${e.sentAt ? html`<br><span class="muted">${when(e.sentAt)}${e.sentVia ? ` via ${e.sentVia}` : ''}</span>` : ''}</td>
        <td>${e.kind}</td>
        <td>${e.verdict === null ? '' : badge(e.verdict)}</td>
        <td><a href="/series/${e.seriesId}">${e.subject}</a><br><span class="muted">${e.reason}</span></td>
        <td>${e.jobId ? html`<a href="/jobs/${e.jobId}">${e.jobId}</a>` : ''}</td>
        <td>${e.mode}</td>
        <td>${recipients(e)}</td>
        <td>${e.attempts}</td>
        <td>${outcome(e)}</td>
        <td>${rawLink(e)}</td></tr>`)}
      </tbody></table>
      ${list.items.length === 0 ? html`<p class="muted">No report${shown ? html` is ${shown}` : ' was planned yet'}.</p>` : ''}${next}`));
  });

  app.get('/runners', { config: { scope: 'read' }, schema: hide }, async (_request, reply) => {
    const runners = await store.runners.list();
    const now = new Date();
    return reply.type('text/html; charset=utf-8').send(page('Runners', html`<h1>Lab runners</h1>
      <p class="muted">Machines in the labs that pull jobs of the runners pool over HTTPS and run them on their own Docker and KVM. Draining: finishes what it holds, takes nothing new. Revoked: its credential is refused.</p>
      <table id="runners"><thead><tr><th>Runner</th><th>State</th><th>Last seen</th><th>Current jobs</th><th>Capacity</th><th>Labels</th><th>Warm bases</th><th>Jobs done</th><th>Failures</th></tr></thead><tbody>
      ${runners.map((r) => runnerRow(r, now))}
      </tbody></table>
      ${runners.length === 0 ? html`<p class="muted" id="no-runners">No runner registered yet: <code>patchbay runners token</code> on the server gives a lab machine its registration token (README, Lab runners).</p>` : ''}`));
  });

  app.get('/jobs/:id', { config: { scope: 'read' }, schema: { ...hide, params: Type.Object({ id: Type.String({ maxLength: 64 }) }) } }, async (request, reply) => {
    const job = await store.jobs.get(request.params.id);
    if (!job) throw new PatchbayError('JOB_UNKNOWN', `no job ${request.params.id}`);
    const [series, { stages, tests }, reports] = await Promise.all([store.series.get(job.seriesId), store.jobs.results(job.id), store.outbox.list({ limit: 100, jobId: job.id })]);
    const r = job.result;
    const live = job.status === 'queued' || job.status === 'running';
    const timeline = html`<ol class="timeline" id="timeline">${stages.map((s) => html`<li data-stage="${s.stage}">${s.stage} ${badge(s.status)} ${duration(s.durationMs)}<br><span class="muted">${s.summary}</span></li>`)}</ol>`;
    // Blamed first, then what differs, then the rest, each in suite/test order.
    const rank: Record<Comparison, number> = { 'new-failure': 0, 'now-skips': 1, 'now-missing': 2, unconfirmed: 3, 'no-base': 4, flaky: 5, 'pre-existing': 6, fixed: 7, unchanged: 8 };
    const ordered = [...tests].sort((a, b) => rank[a.comparison] - rank[b.comparison]);
    const runs = (t: ComparedResult): string => (t.baseRuns ? `${formatTally(t.seriesRuns)} / ${formatTally(t.baseRuns)}` : formatTally(t.seriesRuns));
    const results = tests.length === 0 ? html`<p class="muted">No test results${live ? ' yet' : ''}.</p>` : html`
      <table id="results"><thead><tr><th>Suite</th><th>Test</th><th>Status</th><th>Base</th><th>Against base</th><th title="failed runs : runs, series / base">Fails:runs</th><th>Detail</th></tr></thead><tbody>
      ${ordered.map((t) => html`<tr class="cmp-${t.comparison}"><td>${t.suite}</td><td>${t.test}</td><td>${badge(t.status)}</td><td>${t.baseStatus === null ? html`<span class="muted">-</span>` : badge(t.baseStatus)}</td><td>${t.comparison}</td><td>${runs(t)}</td><td><pre>${t.detail}</pre></td></tr>`)}
      </tbody></table>`;
    const cmp = r?.base ?? null;
    const prerequisites = prerequisitesLine(r?.prerequisites);
    const baseInfo = cmp === null ? '' : html`<p id="base-comparison">Compared with the base <code>${cmp.commit.slice(0, 12)}</code>${(cmp.prerequisites ?? 0) > 0 ? ` + ${prerequisitePatches(cmp.prerequisites ?? 0)}` : ''}: ${cmp.suites.map((b) => html`${b.suite} ${b.source === 'cached' && b.jobId ? html`(cached from <a href="/jobs/${b.jobId}">${b.jobId}</a>)` : html`(${b.summary})`} `)}${cmp.rerun ? html`· ${cmp.rerun.tests} differing test(s) re-run ${cmp.rerun.times} time(s) on both kernels` : ''}</p>`;
    const splats = r?.splats ?? [];
    const splatTable = splats.length === 0 ? '' : html`<h2>Kernel splats, per boot</h2>
      <table id="splats"><thead><tr><th>Splat</th><th>Fingerprint</th><th>Series boots</th><th>Base boots</th><th>Against base</th><th>Came in</th></tr></thead><tbody>
      ${splats.map((x) => html`<tr class="cmp-${x.comparison}"><td>${x.title}</td><td><code>${x.fingerprint}</code></td><td>${x.series.fails} of ${x.series.runs}</td><td>${x.base ? `${x.base.fails} of ${x.base.runs}` : '-'}</td><td>${x.comparison}</td><td>${x.landed.join(', ')}</td></tr>`)}
      </tbody></table>`;
    const crashes = (r?.crashes ?? []).map((c) => html`<h3>${c.title}</h3><p>fingerprint <code>${c.fingerprint}</code>${c.culprit ? html`, culprit <code>${c.culprit}</code>` : ''}</p><pre>${c.excerpt}</pre>`);
    const artifacts = (r?.artifacts ?? []).map((name) => html`<li><a href="/api/v1/jobs/${job.id}/artifacts/${name}">${name}</a></li>`);
    const mail = reports.items.length === 0
      ? html`<p class="muted" id="no-reports">${live ? 'No report yet: one is planned when the verdict is recorded; ' : 'No report planned for this job: '}uploads, MISS and repeated verdicts are never mailed.</p>`
      : html`<table id="reports"><thead><tr><th>Status</th><th>Verdict</th><th>Mode</th><th>Message-ID</th><th>Recipients</th><th>Why</th><th>Message</th></tr></thead><tbody>
        ${reports.items.map((e) => html`<tr data-report="${e.id}"><td>${outboxBadge(e.status)}${e.sentAt ? html`<br><span class="muted">${when(e.sentAt)}${e.sentVia ? ` via ${e.sentVia}` : ''}</span>` : ''}</td>
          <td>${e.verdict === null ? '' : badge(e.verdict)}</td><td>${e.mode}</td><td><code>&lt;${e.messageId}&gt;</code></td><td>${recipients(e)}</td>
          <td>${e.reason}${outcome(e) ? html`<br><span class="muted">${outcome(e)}</span>` : ''}</td><td>${rawLink(e)}</td></tr>`)}
        </tbody></table>`;
    const logUrl = `/api/v1/jobs/${job.id}/log`;
    return reply.type('text/html; charset=utf-8').send(page(`Job ${job.id}`, html`
      <h1>Job ${job.id} <span id="job-status">${badge(job.status)}</span></h1>
      <p>${series ? html`<a href="/series/${series.id}">${series.title}</a> v${series.version}` : ''} on <b>${job.tree}</b>${job.baseCommit ? html` @ <code>${job.baseCommit.slice(0, 12)}</code>${job.baseRule ? html` <span class="muted">(base: ${job.baseRule})</span>` : ''}` : ''}
        · suites ${job.suites.join(', ')}${job.accel ? ` · ${job.accel.toUpperCase()}` : ''}${job.buildMode ? ` · ${job.buildMode} build` : ''}</p>
      <p>${job.summary}</p>
      ${whereItRan(job)}
      ${prerequisites === null ? '' : html`<p id="prerequisites">Prerequisites: ${prerequisites}</p>`}
      ${job.prerequisitesId === null ? '' : html`<p id="prerequisite-series">Applied on the base first: <a href="/series/${job.prerequisitesId}">its prerequisite patches</a></p>`}
      <h2>Stages</h2>${timeline}
      <h2>Results</h2>${baseInfo}${results}
      ${splatTable}
      ${(r?.ktapProblems ?? []).length > 0 ? html`<h2>KTAP problems</h2><p class="muted">line numbers refer to ktap.txt</p><pre id="ktap-problems">${(r?.ktapProblems ?? []).join('\n')}</pre>` : ''}
      ${crashes.length > 0 ? html`<h2>Crashes</h2>${crashes}` : ''}
      <h2>Mail reports</h2>${mail}
      <h2>Log</h2><p class="muted"><a href="${logUrl}">whole log as text</a></p><pre class="log" id="log" data-src="${logUrl}" data-live="${live ? '1' : '0'}"></pre>
      ${artifacts.length > 0 ? html`<h2>Artifacts</h2><ul>${artifacts}</ul>` : ''}
      <script>${new Html(LIVE_LOG_SCRIPT)}</script>`));
  });
  done();
}

/** A runner's row on /runners: its jobs link to their pages; names and labels are validated on registration, and escaped anyway. */
function runnerRow(r: RunnerWithLeases, now: Date): Html {
  const l = r.labels;
  const extra = Object.entries(l.extra).sort(([a], [b]) => a.localeCompare(b));
  return html`<tr data-runner="${r.name}"><td><b>${r.name}</b>${r.version ? html`<br><span class="muted">${r.version}</span>` : ''}</td>
    <td><span class="s r-${r.state}" data-state="${r.state}">${r.state}</span></td>
    <td data-field="last-seen" title="${when(r.lastSeenAt)}">${ago(r.lastSeenAt, now)}</td>
    <td data-field="jobs">${r.leases.length === 0 ? html`<span class="muted">idle</span>` : r.leases.map((x, i) => html`${i > 0 ? html`<br>` : ''}<a href="/jobs/${x.jobId}">${x.jobId}</a>${x.attempt > 1 ? html` <span class="muted">(attempt ${x.attempt})</span>` : ''}`)}</td>
    <td data-field="capacity">${r.leases.length} / ${r.capacity}</td>
    <td data-field="labels">${l.arch} · ${l.kvm ? 'KVM' : 'TCG'} · ${l.cores} cores · ${memory(l.memoryMb)}<br>trees: ${l.trees.length === 0 ? html`<span class="muted">none</span>` : l.trees.join(', ')}${
      extra.length > 0 ? html`<br>${extra.map(([k, v]) => html`<code>${k}=${v}</code> `)}` : ''}</td>
    <td data-field="warm-bases">${r.warmBases.length === 0 ? html`<span class="muted">none</span>` : r.warmBases.map((w, i) => html`${i > 0 ? html`<br>` : ''}${w.tree}@<code>${w.commit.slice(0, 12)}</code>`)}</td>
    <td data-field="jobs-done">${r.jobsDone}</td>
    <td data-field="failures">${r.failures}</td></tr>`;
}

function memory(mb: number): string {
  return mb >= 1024 ? `${Math.round((mb / 1024) * 10) / 10} GB` : `${mb} MB`;
}

/** The job page's line on where the latest attempt ran (a lab runner or an in-cluster worker), its pool, and what it asks of a runner. */
function whereItRan(job: Job): Html {
  const m = job.worker === null ? null : /^runner (.+)$/.exec(job.worker);
  const ran = job.worker === null
    ? html`<span class="muted">${job.status === 'queued' ? 'not started yet' : 'where it ran is not recorded'}</span>`
    : m ? html`ran on runner <a href="/runners">${m[1]}</a>` : html`ran on worker ${job.worker}`;
  const q = job.requires;
  const needs = [
    q.arch === undefined ? null : `arch ${q.arch}`,
    q.kvm === true ? 'KVM' : null,
    q.minCores === undefined ? null : `≥ ${q.minCores} cores`,
    q.minMemoryMb === undefined ? null : `≥ ${memory(q.minMemoryMb)} memory`,
    ...Object.entries(q.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  ].filter((x): x is string => x !== null);
  return html`<p id="where-it-ran">${job.attempts > 1 ? `attempt ${job.attempts}: ` : ''}${ran} · pool ${job.pool}${needs.length > 0 ? html` · requires ${needs.join(', ')}` : ''}</p>`;
}

/** A report's To and Cc, and whom an opt-out left out: names and addresses as text (they come from mail anyone can send). */
function recipients(e: OutboxEntry): Html {
  const list = (boxes: ReadonlyArray<{ name: string; email: string }>): string => boxes.map((b) => (b.name ? `${b.name} <${b.email}>` : b.email)).join(', ');
  return html`${e.recipients.to.length > 0 ? html`To: ${list(e.recipients.to)}` : html`<span class="muted">no one</span>`}${e.recipients.cc.length > 0 ? html`<br>Cc: ${list(e.recipients.cc)}` : ''}${
    e.recipients.optedOut.length > 0 ? html`<br><span class="muted">opted out: ${e.recipients.optedOut.join(', ')}</span>` : ''}`;
}

/** What the last try came to: the relay's answer (or who marked it sent) once sent, else the last error. */
function outcome(e: OutboxEntry): string {
  return (e.status === 'sent' ? e.smtpResponse : e.lastError) ?? '';
}

function rawLink(e: OutboxEntry): Html {
  return e.composed ? html`<a href="/api/v1/outbox/${e.id}/raw">raw</a>` : html`<span class="muted">not composed</span>`;
}
