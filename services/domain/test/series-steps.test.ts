/**
 * Golden tests of the series steps, one expected output per step and case:
 * golden/series/NAME.mbox in, golden/series/<step>/NAME.json out, for
 * classifyMessages, groupRevisions, pickRevision, checkCompleteness,
 * gatherTrailers, assembleSeries and listRevisions. UPDATE_GOLDEN=1
 * (outside CI) rewrites them; then read every diff.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatchbayError } from '../errors.ts';
import { parseMbox, type MailMessage } from '../mbox.ts';
import {
  assembleSeries,
  checkCompleteness,
  classifyMessages,
  gatherTrailers,
  groupRevisions,
  listRevisions,
  pickRevision,
  type Completeness,
  type MessageNode,
  type Revision,
  type Series,
} from '../series.ts';
import { parseTrailers } from '../patch.ts';
import { assertGolden, goldenInputs } from './golden-cases.ts';

const DIR = join(import.meta.dirname, 'golden', 'series');

/** The cases, by name (NAME.mbox in this folder); a new one is added here and there. */
const SERIES_CASES = [
  'arriving', 'b4-am-output', 'coverless', 'discussion', 'kmbuf-v3-25', 'partial-reroll', 'partial-reroll-chain',
  'partial-reroll-not-threaded', 'partial-reroll-via-review', 'resend', 'resend-unversioned', 'revisions-v1-v2-v3',
  'seed-review-quotes-diff', 'two-series', 'versionless-under-v2-cover',
] as const;

const STEPS = ['classify', 'group', 'pick', 'complete', 'trailers', 'assemble', 'revisions'] as const;
type Step = (typeof STEPS)[number];

function loadCase(name: string): MailMessage[] {
  return parseMbox(readFileSync(join(DIR, `${name}.mbox`), 'latin1'));
}

function errorSummary(e: unknown): Record<string, unknown> {
  if (!(e instanceof PatchbayError)) throw e;
  return { code: e.code, message: e.message, details: e.details };
}

const id = (n: MessageNode | null | undefined): string | null => n?.msg.messageId ?? null;

function revisionSummary(r: Revision): Record<string, unknown> {
  return {
    version: r.version,
    key: r.key,
    head: id(r.head),
    isThreadRoot: r.isThreadRoot,
    covers: r.covers.map(id),
    nakedCovers: r.nakedCovers.map(id),
    patches: r.patches.map((p) => `${p.counter}/${p.total} ${p.msg.messageId}`),
    repliesTo: r.repliesTo?.key ?? null,
    anchors: r.anchors.map(id),
  };
}

function completenessSummary(c: Completeness): Record<string, unknown> {
  return {
    revision: c.revision.key,
    version: c.version,
    total: c.total,
    complete: c.complete,
    present: c.present,
    missing: c.missing,
    patches: c.patches.map((p) => `${p.counter} v${p.fromVersion} ${p.node.msg.messageId}`),
    cover: id(c.cover),
    head: id(c.head),
    rerollFrom: c.rerollFrom?.key ?? null,
    evidence: c.evidence.map(id),
    aliases: [...c.aliases].map(([m, counter]) => `${counter} ${m}`),
    problems: c.problems,
    mails: c.mails,
    largest: c.largest,
  };
}

function seriesSummary(s: Series): Record<string, unknown> {
  return {
    title: s.title,
    version: s.version,
    total: s.total,
    isRfc: s.isRfc,
    isResend: s.isResend,
    identity: s.identity,
    cover: s.cover === null ? null : { messageId: s.cover.messageId, subject: s.cover.subject },
    baseCommit: s.baseCommit,
    changeId: s.changeId,
    prerequisitePatchIds: s.prerequisitePatchIds,
    treeTags: s.treeTags,
    rootMessageId: s.rootMessageId,
    patches: s.patches.map((p) => ({
      counter: p.counter,
      messageId: p.message.messageId,
      subject: p.message.subject,
      files: p.files.map((f) => `${f.oldPath ?? '/dev/null'} -> ${f.newPath ?? '/dev/null'} +${f.added} -${f.removed}`),
      trailers: p.trailers.map((t) => `${t.name}: ${t.value}`),
    })),
    problems: s.problems,
  };
}

function attempt(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    return { error: errorSummary(e) };
  }
}

/** What each step makes of a case, as plain JSON. */
function stepOutput(step: Step, messages: MailMessage[]): unknown {
  const nodes = classifyMessages(messages);
  switch (step) {
    case 'classify':
      return nodes.map((n) => ({
        messageId: n.msg.messageId,
        subject: n.msg.subject,
        kind: n.kind,
        version: n.version,
        versionInferred: n.versionInferred,
        counter: n.counter,
        counterInferred: n.counterInferred,
        total: n.total,
        hasDiffstat: n.hasDiffstat,
        files: n.files.length,
        parent: id(n.parent),
      }));
    case 'group':
      return groupRevisions(nodes).map(revisionSummary);
    case 'pick':
      return attempt(() => {
        const picked = pickRevision(groupRevisions(nodes));
        return { revision: picked.revision.key, problems: picked.problems };
      });
    case 'complete':
      return groupRevisions(nodes).map((r) => completenessSummary(checkCompleteness(r)));
    case 'trailers':
      return attempt(() => {
        const view = checkCompleteness(pickRevision(groupRevisions(nodes)).revision);
        if (!view.complete) return { incomplete: view.missing };
        const patches = view.patches.map(({ counter, node }) => ({
          counter,
          message: node.msg,
          subject: node.subj,
          files: node.files,
          trailers: parseTrailers(node.msg.body),
        }));
        const got = gatherTrailers(nodes, patches, { coverId: id(view.cover), total: view.total, aliases: view.aliases });
        return {
          trailers: got.trailers.map((list, i) => ({ counter: patches[i]?.counter, trailers: list.map((t) => `${t.name}: ${t.value}`) })),
          problems: got.problems,
        };
      });
    case 'assemble':
      return attempt(() => seriesSummary(assembleSeries(messages)));
    case 'revisions':
      return listRevisions(messages);
  }
}

const inputs = goldenInputs(DIR, '.mbox', SERIES_CASES);

test('golden/series: each step folder holds exactly the cases', () => {
  const folders = readdirSync(DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  assert.deepEqual(folders, [...STEPS].sort());
  for (const step of STEPS) {
    const names = readdirSync(join(DIR, step)).sort();
    assert.deepEqual(names, [...SERIES_CASES].map((c) => `${c}.json`).sort(), step);
  }
});

for (const file of inputs) {
  const name = file.replace(/\.mbox$/, '');
  const messages = loadCase(name);
  for (const step of STEPS) {
    test(`golden series/${step}: ${name}`, () => {
      // Compared as it reads back from JSON (dates as ISO strings, undefined gone).
      const actual: unknown = JSON.parse(JSON.stringify(stepOutput(step, messages)));
      assertGolden(join(DIR, step, `${name}.json`), actual);
    });
  }
}
