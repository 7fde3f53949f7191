/** A little HTML: escaping, the page frame, and helpers the pages share. No framework, no client build. */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** A string that is already safe HTML. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Tagged template: interpolations are escaped unless they are Html (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    const parts = Array.isArray(v) ? v : [v];
    for (const p of parts) out += p instanceof Html ? p.value : p === null || p === undefined ? '' : esc(String(p));
    out += strings[i + 1] ?? '';
  });
  return new Html(out);
}

/** The pages' one style sheet, inline; the CSP allows it by its hash (csp.ts). */
export const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#24292f;color:#fff;padding:.6em 1.2em}header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1em 1.2em;max-width:1200px}
table{border-collapse:collapse;width:100%;margin:.5em 0 1.2em}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #e1e4e8;vertical-align:top}
th{background:#f0f2f4}code,pre{font:12.5px/1.4 ui-monospace,monospace}
pre.log{background:#0d1117;color:#d1d5da;padding:.8em;max-height:32em;overflow:auto;white-space:pre-wrap}
.s{font-weight:700;padding:.05em .45em;border-radius:3px;color:#fff;font-size:12px}
.PASS{background:#1a7f37}.FAIL{background:#cf222e}.ERROR{background:#bf8700}.MISS{background:#6e7781}.SKIP{background:#8c959f}
.queued,.running{background:#0969da}.cancelled{background:#57606a}
ol.timeline{list-style:none;padding:0;display:flex;gap:.4em;flex-wrap:wrap}ol.timeline li{border:1px solid #d0d7de;padding:.3em .6em;border-radius:4px;background:#fff}
tr.cmp-new-failure td{background:#ffebe9}tr.cmp-flaky td,tr.cmp-pre-existing td{background:#fff8c5}tr.cmp-fixed td{background:#dafbe1}
.muted{color:#57606a}
.d{font-weight:600;padding:.05em .45em;border-radius:3px;font-size:12px;border:1px solid #d0d7de}
.d-queued{background:#dafbe1}.d-duplicate,.d-no-patches,.d-not-relevant{background:#f0f2f4}.d-incomplete,.d-no-base{background:#fff8c5}.d-invalid{background:#ffebe9}
.r-active{background:#1a7f37}.r-draining{background:#bf8700}.r-revoked{background:#6e7781}
.o-pending,.o-sending{background:#0969da}.o-sent{background:#1a7f37}.o-failed{background:#cf222e}.o-held{background:#bf8700}.o-skipped{background:#8c959f}`;

export function page(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · patchbay</title><style>${new Html(STYLE)}</style></head>
<body><header><a href="/series">patchbay</a> <span class="muted">kernel CI for io_uring and FUSE</span> · <a href="/lore">lore watcher</a> · <a href="/outbox">mail reports</a> · <a href="/runners">runners</a></header>
<main>${body}</main></body></html>`.value;
}

export function badge(status: string): Html {
  return html`<span class="s ${status}" data-status="${status}">${status}</span>`;
}

/** A mail report's status (pending, sending, sent, failed, held, skipped): not a job's. */
export function outboxBadge(status: string): Html {
  return html`<span class="s o-${status}" data-status="${status}">${status}</span>`;
}

/** A time as the pages show it, to the second, in UTC. */
export function when(d: Date | null): string {
  return d === null ? '—' : d.toISOString().replace('T', ' ').slice(0, 19);
}

/** How long ago, as the pages show it: "12 s ago", "5 min ago", "3 h ago", "2 d ago"; "never" for null. */
export function ago(d: Date | null, now: Date = new Date()): string {
  if (d === null) return 'never';
  const s = Math.max(0, Math.round((now.getTime() - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function duration(ms: number | null): string {
  if (ms === null) return '';
  const s = Math.round(ms / 100) / 10;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
