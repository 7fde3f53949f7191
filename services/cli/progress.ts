/**
 * Live progress for a job on a terminal: one status line per running stage
 * with elapsed time and the latest log line; on a non-terminal (CI, pipes),
 * a line per stage change and a heartbeat. Test results are printed as they
 * arrive in both modes.
 */
import type { JobEvent } from '../domain/job.ts';
import type { StageName } from '../domain/job.ts';
import type { Status } from '../domain/status.ts';

const MARK: Record<Status, string> = { PASS: 'ok  ', FAIL: 'FAIL', ERROR: 'ERR ', MISS: 'MISS', SKIP: 'skip' };

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** The interesting part of a log line: make's "CC foo.o", a marker, a KTAP result. */
function interesting(line: string): boolean {
  return /^\s+(CC|LD|AR|AS|GEN|HOSTCC|CHK|BUILD)\s/.test(line) || /patchbay:/.test(line) || /^\s*(not )?ok \d+/.test(line) || /error:|warning:/.test(line);
}

/** Lines worth a line of their own on the terminal, not just the status line. */
function shownLive(stage: StageName, line: string): boolean {
  switch (stage) {
    case 'setup':
      return /^(building|probing|KVM|base:|saving|waiting|imported|cloning|fetching|debootstrap|docker import|built|downloading|unpacking|committing)/.test(line);
    case 'apply':
      return /^(Applying:|error:|Patch failed)/.test(line);
    case 'build':
      return /^\S.*\.[chS]:\d+:\d+: error:/.test(line) || /^patchbay: /.test(line);
    case 'boot':
    case 'test':
      return /^\s*(not )?ok \d+/.test(line) || /patchbay: (suite|init)/.test(line);
  }
}

export class Progress {
  private stage: StageName | null = null;
  private stageStart = 0;
  private last = '';
  private partial = '';
  private heartbeat: NodeJS.Timeout | null = null;
  private objects = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly verbose: boolean,
  ) {}

  private get tty(): boolean {
    return this.out.isTTY;
  }

  private status(): string {
    const elapsed = formatDuration(Date.now() - this.stageStart);
    const count = this.objects > 0 ? ` [${this.objects} objects]` : '';
    return `  .. ${this.stage ?? ''} ${elapsed}${count} ${this.last}`;
  }

  private redraw(): void {
    if (!this.tty || this.stage === null) return;
    const cols = this.out.columns;
    this.out.write(`\r\x1b[2K${this.status().slice(0, Math.max(20, cols - 1))}`);
  }

  private println(text: string): void {
    if (this.tty) this.out.write('\r\x1b[2K');
    this.out.write(`${text}\n`);
    this.redraw();
  }

  handle(e: JobEvent): void {
    switch (e.type) {
      case 'stage-start':
        this.stage = e.stage;
        this.stageStart = Date.now();
        this.last = '';
        this.objects = 0;
        if (!this.tty) this.out.write(`  -> ${e.stage}\n`);
        this.startHeartbeat();
        this.redraw();
        break;
      case 'stage-end':
        this.stopHeartbeat();
        this.stage = null;
        this.println(`  ${MARK[e.status]} ${e.stage.padEnd(6)} ${formatDuration(e.durationMs).padStart(7)}  ${e.summary}`);
        break;
      case 'log':
        this.onLog(e.stage, e.text);
        break;
    }
  }

  private onLog(stage: StageName, text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      if (this.verbose) {
        this.println(`     ${stage}| ${line}`);
        continue;
      }
      if (/^\s+CC\s/.test(line)) this.objects++;
      if (shownLive(stage, line)) {
        this.last = line.trim();
        this.println(`       ${this.last}`);
      } else if (interesting(line) || this.last === '') {
        this.last = line.trim();
      }
    }
    this.redraw();
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.tty ? 1000 : 30_000;
    this.heartbeat = setInterval(() => {
      if (this.tty) this.redraw();
      else this.out.write(`${this.status()}\n`);
    }, every);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  close(): void {
    this.stopHeartbeat();
    if (this.tty) this.out.write('\r\x1b[2K');
  }
}
