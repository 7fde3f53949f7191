/**
 * `patchbay runner --config FILE` (a lab runner on this machine) and
 * `patchbay runners ...` (an admin's view of them through the API).
 */
import { parseArgs } from 'node:util';
import { RunnerAgent } from '../../runners/agent/agent.ts';
import { loadRunnerConfig } from '../../runners/agent/config.ts';
import { makeLogger } from '../platform/logger.ts';
import type { ServiceClient } from './client.ts';
import { UsageError } from './usage.ts';

export async function cmdRunner(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined) throw new UsageError('runner --config FILE');
  const config = loadRunnerConfig(values.config, process.env);
  const logger = makeLogger(config.executor);
  const agent = new RunnerAgent({ config, logger });
  await agent.start();
  process.stderr.write(`patchbay: runner ${agent.name} takes jobs from ${config.file.server} (capacity ${config.file.capacity}); logs ${config.executor.logFile ?? 'on standard output'}\n`);
  let signals = 0;
  const onSignal = (sig: string): void => {
    signals++;
    if (signals === 1) {
      const grace = config.file.shutdownGraceSeconds ?? config.executor.job.deadlineSeconds;
      process.stderr.write(`patchbay: ${sig}: draining (running jobs finish, for up to ${grace} s; none is taken); send it again to stop now\n`);
      void agent.drain();
      // Past the grace, what still runs goes back to the queue.
      setTimeout(() => { void agent.stop(); }, grace * 1000).unref();
    } else {
      process.stderr.write(`patchbay: ${sig}: stopping now; running jobs go back to the queue\n`);
      void agent.stop();
    }
  };
  process.on('SIGTERM', () => { onSignal('SIGTERM'); });
  process.on('SIGINT', () => { onSignal('SIGINT'); });
  // Until it has drained or stopped (signals above, or a revoked credential).
  await agent.stopped;
  logger.flush();
  return 0;
}

interface RunnerRow {
  id: string; name: string; state: string; capacity: number; version: string | null;
  labels: { arch?: string; kvm?: boolean; cores?: number; memoryMb?: number; trees?: string[]; extra?: Record<string, string> };
  warmBases: Array<{ tree: string; commit: string }>;
  lastSeenAt: string | null; jobsDone: number; failures: number;
  leases: Array<{ jobId: string; attempt: number; since: string }>;
}

export async function cmdRunners(argv: string[], clientFrom: (server: string | undefined) => ServiceClient): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, options: { json: { type: 'boolean', default: false }, note: { type: 'string' }, server: { type: 'string' } }, allowPositionals: true, strict: true,
  });
  const client = clientFrom(values.server);
  const [action, name] = positionals;
  const out = process.stdout;
  switch (action) {
    case undefined:
    case 'list': {
      const reply = await client.request<{ items: RunnerRow[] }>('GET', '/api/v1/runners');
      if (values.json) { out.write(`${JSON.stringify(reply, null, 2)}\n`); return 0; }
      if (reply.items.length === 0) { out.write('no runners registered (patchbay runners token, then patchbay runner --config FILE on the lab machine)\n'); return 0; }
      for (const r of reply.items) {
        const l = r.labels;
        const seen = r.lastSeenAt === null ? 'never' : `${Math.round((Date.now() - Date.parse(r.lastSeenAt)) / 1000)}s ago`;
        out.write(`${r.name.padEnd(20)} ${r.state.padEnd(9)} ${String(r.leases.length)}/${r.capacity} jobs  seen ${seen}  done ${r.jobsDone}, failures ${r.failures}\n`);
        out.write(`  ${l.arch ?? '?'} ${l.kvm === true ? 'kvm' : 'tcg'} ${l.cores ?? '?'} cores ${l.memoryMb ?? '?'} MB; trees ${(l.trees ?? []).join(', ')}${Object.keys(l.extra ?? {}).length > 0 ? `; ${Object.entries(l.extra ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}\n`);
        for (const w of r.warmBases) out.write(`  warm base ${w.tree}@${w.commit.slice(0, 12)}\n`);
        for (const j of r.leases) out.write(`  running ${j.jobId} (attempt ${j.attempt}, since ${j.since})\n`);
      }
      return 0;
    }
    case 'token': {
      const reply = await client.request<{ id: string; token: string; expiresAt: string }>('POST', '/api/v1/runners/tokens',
        { type: 'application/json', data: JSON.stringify(values.note === undefined ? {} : { note: values.note }) });
      process.stderr.write(`patchbay: registration token ${reply.id}, good once, until ${reply.expiresAt}; put it in the runner's registrationTokenFile:\n`);
      out.write(`${reply.token}\n`);
      return 0;
    }
    case 'drain':
    case 'resume':
    case 'revoke': {
      if (name === undefined) throw new UsageError(`runners ${action} NAME`);
      const r = await client.request<RunnerRow>('POST', `/api/v1/runners/${encodeURIComponent(name)}/${action}`, { type: 'application/json', data: '{}' });
      process.stderr.write(`patchbay: runner ${r.name} is ${r.state}${r.leases.length > 0 ? ` (${r.leases.length} jobs running)` : ''}\n`);
      return 0;
    }
    default:
      throw new UsageError('runners list | token | drain NAME | resume NAME | revoke NAME');
  }
}
