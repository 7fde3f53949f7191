/**
 * The report policy (deploy/report-policy.json, or PATCHBAY_REPORT_POLICY):
 * per inbox, whether reports are written to the outbox folder (dry run),
 * mailed to the author, or to the author and the lists; on failures only
 * or every verdict; whose reply commands count; who never gets mail.
 * Validated data, read once at start.
 */
import { Type } from 'typebox';
import { type InboxPolicy, REPORT_MODES, REPORT_RESULTS, type ReportPolicy, isPlainAddress } from '../domain/report/policy.ts';
import { PatchbayError } from '../domain/errors.ts';
import { readValidatedJson } from './validated-json.ts';

const Address = Type.String({ minLength: 3, maxLength: 254 });

const policyFields = {
  mode: Type.Union(REPORT_MODES.map((m) => Type.Literal(m))),
  results: Type.Union(REPORT_RESULTS.map((r) => Type.Literal(r))),
  maintainers: Type.Optional(Type.Array(Address, { maxItems: 500 })),
  optOut: Type.Optional(Type.Array(Address, { maxItems: 10_000 })),
};

const PolicyFileSchema = Type.Object({
  default: Type.Object(policyFields, { additionalProperties: false }),
  inboxes: Type.Optional(Type.Array(Type.Object({ inbox: Type.String({ pattern: '^https?://[^/]+/.+' }), ...policyFields }, { additionalProperties: false }), { maxItems: 100 })),
  optOut: Type.Optional(Type.Array(Address, { maxItems: 10_000 })),
}, { additionalProperties: false });

const lower = (list: readonly string[] | undefined, where: string): string[] => (list ?? []).map((a) => {
  if (!isPlainAddress(a)) throw new PatchbayError('CONFIG_INVALID', `${where}: "${a}" is not a plain address (local@domain)`);
  return a.trim().toLowerCase();
});

export function loadReportPolicy(path: string): ReportPolicy {
  const file = readValidatedJson(path, PolicyFileSchema, 'CONFIG_INVALID');
  const one = (p: { mode: InboxPolicy['mode']; results: InboxPolicy['results']; maintainers?: string[]; optOut?: string[] }, where: string): InboxPolicy => ({
    mode: p.mode, results: p.results, maintainers: lower(p.maintainers, `${where} maintainers`), optOut: lower(p.optOut, `${where} optOut`),
  });
  const inboxes: Record<string, InboxPolicy> = {};
  for (const entry of file.inboxes ?? []) {
    const key = entry.inbox.endsWith('/') ? entry.inbox : `${entry.inbox}/`;
    if (key in inboxes) throw new PatchbayError('CONFIG_INVALID', `${path}: inbox ${key} is named twice`);
    inboxes[key] = one(entry, `${path}: ${key}`);
  }
  return { default: one(file.default, `${path}: default`), inboxes, optOut: lower(file.optOut, `${path}: optOut`) };
}
