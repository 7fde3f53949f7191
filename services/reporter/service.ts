/**
 * The reporter role, built from Config: the policy file, the templates,
 * the transports (SMTP when configured, the outbox folder always), the
 * archive check, and the sender loop.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Catalogs } from '../catalog/load.ts';
import type { Config } from '../config/config.ts';
import type { ReportPlanning, Store } from '../store/db.ts';
import { loadReportPolicy } from '../catalog/report-policy.ts';
import { archiveCheck } from './archive.ts';
import { makeRenderer } from './compose.ts';
import { Reporter } from './reporter.ts';
import { loadReportTemplates } from './templates.ts';
import { folderTransport, redactedSmtpUrl, smtpTransport } from './transport.ts';

/** What the worker needs to plan reports with each verdict (null when reports are off). */
export function reportPlanning(config: Config): ReportPlanning | null {
  if (!config.report.enabled) return null;
  return { policy: loadReportPolicy(config.report.policyFile), robot: config.report.fromAddress, messageIdDomain: config.report.messageIdDomain };
}

export function startReporter(config: Config, deps: { store: Store; catalogs: Catalogs; logger: Logger }): Reporter {
  const r = config.report;
  const log = deps.logger.child({ role: 'reporter' });
  const reporter = new Reporter({
    outbox: deps.store.outbox,
    render: makeRenderer({
      store: deps.store,
      trees: deps.catalogs.trees,
      templates: loadReportTemplates(join(config.repoRoot, 'services', 'reporter', 'templates')),
      robot: { name: r.fromName, email: r.fromAddress },
      publicUrl: r.publicUrl,
    }),
    robot: { name: r.fromName, address: r.fromAddress },
    smtp: r.smtpUrl === null ? null : smtpTransport({ url: r.smtpUrl, requireTls: r.requireTls, caFile: r.smtpCaFile }),
    folder: folderTransport(r.outboxDir),
    outboxDir: r.outboxDir,
    inArchive: archiveCheck(config),
    settings: r,
    holder: `${hostname()}-${process.pid}`,
    logger: log,
  });
  log.info({ smtp: r.smtpUrl === null ? null : redactedSmtpUrl(r.smtpUrl), outboxDir: r.outboxDir }, r.smtpUrl === null
    ? 'reporter started: no SMTP relay configured, every report is written to the outbox folder'
    : 'reporter started');
  reporter.start();
  return reporter;
}
