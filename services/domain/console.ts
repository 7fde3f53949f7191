/**
 * Kernel crash reports in a QEMU serial console log (x86_64 output): Oops,
 * BUG, WARNING, panic, KASAN, UBSAN, lockdep, hung tasks, RCU stalls and
 * soft lockups, each with its call chain, the function to blame and a
 * fingerprint that stays the same when the same crash happens again at other
 * addresses, times, CPUs and PIDs.
 *
 * Lines may carry printk timestamps ("[   12.345678] ", optionally followed
 * by a caller id "[    T1] ") and "\r" from the serial line. The log is
 * read line by line as a small state machine: a headline opens a report,
 * which collects its first Call Trace and closes at its end marker, at the
 * next unrelated headline, or after a bounded number of lines.
 *
 * The log is printed by a kernel anyone may have written: reading it never
 * throws and takes time linear in its length (the regexes here are anchored
 * or scan a line once; the two that rescanned long runs are written out in
 * symbolOf() and isLockdep()), and what is read is capped
 * (CONSOLE_MAX_CHARS, CONSOLE_MAX_LINE).
 */
import { createHash } from 'node:crypto';

export type CrashKind =
  | 'panic'
  | 'oops'
  | 'bug'
  | 'warning'
  | 'kasan'
  | 'ubsan'
  | 'lockdep'
  | 'hung_task'
  | 'rcu_stall'
  | 'soft_lockup';

export interface CrashReport {
  kind: CrashKind;
  /** The headline, timestamps stripped. */
  title: string;
  /**
   * Function names from the first Call Trace, top first: symbol only (no
   * offset, no module, no compiler suffix such as ".constprop.0"), "? "
   * frames skipped. For a report with a "RIP: 0010:func+..." line before its
   * trace, func comes first.
   */
  frames: string[];
  /** The first frame that is not crash machinery, else the function named in the title, else null. */
  culprit: string | null;
  /** 16 hex characters; see fingerprintOf(). */
  fingerprint: string;
  /** 1-based line of the headline in the log. */
  line: number;
  /**
   * The report as printed (timestamps kept), from its headline (or the "cut
   * here" line before it) to its end marker, at most 60 lines, each cut at
   * CONSOLE_MAX_LINE characters.
   */
  excerpt: string;
}

/**
 * How much of a console log is read (UTF-16 code units; bytes for the ASCII
 * a console mostly is): twice the executor's default cap of 32 MiB on a
 * job's console, so a log it kept is read whole. Past it the log is cut at a
 * line end and the rest is not searched.
 */
export const CONSOLE_MAX_CHARS = 64 * 1024 * 1024;
/**
 * Lines are cut to this many characters before they are read, and in
 * excerpts: the kernel prints at most 1 KiB a line (what a guest program
 * writes to the console may be longer, and holds no crash report).
 */
export const CONSOLE_MAX_LINE = 4096;

/** How many lines an excerpt holds at most. */
const EXCERPT_LINES = 60;
/** How far a report without an end marker is followed (its trace may come late, e.g. lockdep's). */
const SCAN_LINES = 300;
/** How far after a report a panic may come and still be that report's consequence. */
const PANIC_FOLLOWS_WITHIN = 80;
/** How many non-generic frames make a fingerprint. */
const FINGERPRINT_FRAMES = 5;

const TIMESTAMP_RE = /^\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?/;
const CUT_HERE_RE = /^-+\[ cut here \]-+$/;
const END_TRACE_RE = /^-+\[ end trace(?: [0-9a-f]+)? \]-+$/;
const END_PANIC_RE = /^-+\[ end Kernel panic/;
const SEPARATOR_RE = /^={20,}$/;
const PANIC_RE = /^Kernel panic - not syncing: /;
/** Lines that open no report of their own inside an oops or BUG (the "Oops: ... [#1]" after "BUG: kernel NULL pointer dereference"). */
const OOPS_LINE_RE =
  /^(?:Oops: |Internal error: Oops|general protection fault|invalid opcode: |stack segment: |double fault: |kernel stack overflow)/;
const CALL_TRACE_RE = /^Call Trace:/;
/** A stack frame: " func+0x1f/0x90 [module]", older " [<ffffffff81234567>] func+0x1f/0x90", "? " for unreliable ones. */
const FRAME_RE =
  /^\s*(\?\s+)?(?:\[<[0-9a-f]+>\]\s+)?([A-Za-z_$][\w$.]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[[^\]]+\])?\s*$/;
/** The register dump's instruction pointer; CS 0010 is kernel mode. */
const RIP_RE = /^RIP: ([0-9a-f]{4}):(.*)$/;
/** Register dump lines inside a trace (printed for an interrupted context). */
const REGS_RE = /^(?:Code: |R[A-Z0-9]{2}: |FS: |CS: |CR\d: |DR\d: |PKRU: )/;
const TRACE_MARKER_RE = /^\s*<\/?(?:TASK|IRQ|NMI|SOFTIRQ|EOE)>\s*$/;
const TASK_END_RE = /^\s*<\/TASK>\s*$/;
/** A run of the characters a symbol is made of (see symbolOf()). */
const SYMBOL_RUN_RE = /[\w$.]+/g;
/** What follows a symbol in a frame: "+0x1f/0x90". */
const OFFSET_RE = /\+0x[0-9a-f]+\/0x[0-9a-f]+/y;

/** lockdep's headlines with fixed text; those with free text are in isLockdep(). */
const LOCKDEP_RE =
  /^(?:WARNING: (?:possible circular locking dependency detected|possible recursive locking detected|possible irq lock inversion dependency detected|inconsistent lock state|suspicious RCU usage|bad unlock balance detected!|bad contention detected!|held lock freed!|lock held when returning to user space!|Nested lock was not taken)|BUG: MAX_LOCK\w*|BUG: looking up invalid subclass|BUG: key \S+ has not been registered|INFO: trying to register non-static key)/;

/**
 * Generic crash machinery: the functions that print, dispatch or wait in a
 * report, never the code at fault. Matched against the bare symbol.
 */
const GENERIC_FRAMES: readonly RegExp[] = [
  // printing a report, panicking
  /^(?:__)?dump_stack(?:_lvl)?$/,
  /^show_(?:stack|regs|trace_log_lvl|stack_log_lvl)$/,
  /^(?:v?panic|nmi_panic|check_panic_on_warn)$/,
  /^(?:__warn|__warn_printk|warn_slowpath\w*|report_bug|handle_bug)$/,
  // exceptions and faults
  /^(?:exc_\w+|asm_exc_\w+|do_error_trap|do_trap|do_int3\w*|die|die_addr|__die\w*|oops_begin|oops_end)$/,
  /^(?:page_fault_oops|kernelmode_fixup_or_oops|do_user_addr_fault|handle_page_fault|no_context|__bad_area_nosemaphore|bad_area_nosemaphore|spurious_kernel_fault|fixup_exception)$/,
  // sanitizers
  /^(?:kasan_\w+|__kasan_\w+|__asan_\w+|asan_\w+|check_region_inline|print_report|print_address_description\w*|kfence_\w+|kmsan_\w+|__msan_\w+)$/,
  /^(?:__ubsan_handle_\w+|ubsan_\w+)$/,
  // lockdep and lock slow paths
  /^(?:lockdep_\w+|__lockdep_\w+|print_circular_bug\w*|check_noncircular|check_prev_add|check_prevs_add|validate_chain|__lock_acquire|lock_acquire|lock_release|print_usage_bug|mark_lock\w*|mark_usage|debug_check_no_locks_\w+|print_deadlock_bug|check_deadlock)$/,
  /^(?:__might_resched|__might_sleep|__might_fault|might_fault)$/,
  /^(?:_raw_\w+|do_raw_\w+|native_queued_spin_lock_slowpath|queued_\w+_lock_slowpath|__pv_queued_spin_lock_slowpath)$/,
  /^(?:__mutex_lock\w*|mutex_lock\w*|__mutex_unlock_slowpath|rwsem_down_\w+|__down_\w+|down_read\w*|down_write\w*|__rt_mutex_\w+)$/,
  // sleeping and waiting (hung tasks)
  /^(?:__schedule|schedule|schedule_timeout\w*|schedule_preempt_disabled|schedule_hrtimeout\w*|io_schedule\w*|preempt_schedule\w*)$/,
  /^(?:__wait_for_common|wait_for_common\w*|wait_for_completion\w*|do_wait_for_common|__wait_rcu_gp|synchronize_rcu\w*|bit_wait\w*|out_of_line_wait_on_bit\w*|__wait_on_bit\w*|wait_on_page_bit\w*|folio_wait_bit\w*)$/,
  // timer interrupts, watchdogs, stall detectors, NMI backtraces
  /^(?:watchdog_timer_fn|watchdog_\w+|__hrtimer_run_queues|hrtimer_interrupt|__sysvec_\w+|sysvec_\w+|asm_sysvec_\w+|asm_common_interrupt|common_interrupt|irq_exit_rcu|__irq_exit_rcu|handle_softirqs|__do_softirq|do_softirq\w*)$/,
  /^(?:rcu_dump_cpu_stacks|print_cpu_stall\w*|print_other_cpu_stall|check_cpu_stall|rcu_pending|rcu_sched_clock_irq|rcu_check_gp_kthread_starvation|update_process_times|tick_sched_handle|tick_nohz_handler|tick_sched_timer|tick_handle_periodic)$/,
  /^(?:nmi_cpu_backtrace\w*|nmi_trigger_cpumask_backtrace|arch_trigger_cpumask_backtrace|trigger_\w+_backtrace|nmi_handle|default_do_nmi|exc_nmi|asm_exc_nmi)$/,
  /^(?:check_hung_task\w*|check_hung_uninterruptible_tasks|sched_show_task|show_state_filter)$/,
  // entry and thread plumbing
  /^(?:entry_SYSCALL_64\w*|do_syscall_64|x64_sys_call|syscall_exit_\w+|ret_from_fork\w*|kthread|worker_thread|process_one_work|process_scheduled_works|smpboot_thread_fn)$/,
  // function entry padding (CONFIG_FUNCTION_PADDING): "__pfx_foo" is not foo
  /^__pfx_\w+$/,
];

interface Open {
  kind: CrashKind;
  title: string;
  line: number;
  /** Index of the first excerpt line (the headline or a "cut here" line before it). */
  first: number;
  /** Index of the last line that belongs to the report so far. */
  last: number;
  frames: string[];
  rip: string | null;
  /**
   * Where the reading of the first Call Trace is: not yet, in it, in the
   * user-mode registers that end it (before its </TASK>), done.
   */
  trace: 'before' | 'in' | 'user' | 'after';
  /** Whether the report closes with the </TASK> of its trace (it has no end marker). */
  endsWithTrace: boolean;
  /** Set while a panic that belongs to this report is being read. */
  swallowingPanic: boolean;
}

export function findCrashes(consoleLog: string): CrashReport[] {
  let log = consoleLog;
  if (log.length > CONSOLE_MAX_CHARS) {
    const end = log.lastIndexOf('\n', CONSOLE_MAX_CHARS);
    log = log.slice(0, end > 0 ? end : CONSOLE_MAX_CHARS);
  }
  const raw = log.split('\n').map((l) => {
    // Every \r goes (a trailing /\r+$/ first would be quadratic in a long run of them).
    const line = l.replace(/\r/g, '');
    return line.length > CONSOLE_MAX_LINE ? line.slice(0, CONSOLE_MAX_LINE) : line;
  });
  const text = raw.map((l) => l.replace(TIMESTAMP_RE, '').trimEnd());
  const reports: Open[] = [];
  let open: Open | null = null;
  let cutHere = -1;

  const close = (): void => {
    if (open !== null) reports.push(open);
    open = null;
  };

  for (let i = 0; i < text.length; i++) {
    const s = text[i] ?? '';
    const body = s.trimStart();

    // "cut here" always starts the next report.
    if (open !== null && CUT_HERE_RE.test(body)) close();

    if (open !== null) {
      const o: Open = open;
      if (o.swallowingPanic) {
        // A panic caused by the report before it: its lines are that
        // report's tail, not a new report.
        if (END_PANIC_RE.test(body) || i - o.last > EXCERPT_LINES) {
          extendExcerpt(o, i);
          close();
          continue;
        }
        if (classify(body) === null) continue;
        close();
      } else {
        if (isEndMarker(body, o)) {
          o.last = i;
          close();
          continue;
        }
        const kind = classify(body);
        const partOfIt = kind === 'oops' && OOPS_LINE_RE.test(body) && (o.kind === 'oops' || o.kind === 'bug');
        if (kind === 'panic' && panicBelongsTo(o, body)) {
          o.swallowingPanic = true;
          extendExcerpt(o, i);
          continue;
        }
        if (kind !== null && !partOfIt) {
          close();
        } else if (i - o.line + 1 > SCAN_LINES) {
          close();
        } else {
          o.last = i;
          readTraceLine(o, body);
          if (o.endsWithTrace && o.trace === 'after') close();
          continue;
        }
      }
    }

    if (CUT_HERE_RE.test(body)) {
      cutHere = i;
      continue;
    }
    const kind = classify(body);
    if (kind === null) continue;

    if (kind === 'panic') {
      const prev = reports[reports.length - 1];
      if (prev !== undefined && i - prev.last <= PANIC_FOLLOWS_WITHIN && panicBelongsTo(prev, body)) {
        reports.pop();
        prev.swallowingPanic = true;
        extendExcerpt(prev, i);
        open = prev;
        continue;
      }
    }

    let first = i;
    if (cutHere >= 0 && i - cutHere <= 2) first = cutHere;
    else if (i > 0 && SEPARATOR_RE.test(text[i - 1]?.trim() ?? '')) first = i - 1;
    cutHere = -1;
    open = {
      kind,
      title: body,
      line: i + 1,
      first,
      last: i,
      frames: [],
      rip: null,
      trace: 'before',
      endsWithTrace: endsWithTrace(kind, body),
      swallowingPanic: false,
    };
  }
  close();

  return reports.map((o) => finish(o, raw));
}

/** The kind of report a line opens, or null. */
export function classify(line: string): CrashKind | null {
  if (PANIC_RE.test(line)) return 'panic';
  if (/^(?:(?:NMI )?watchdog: )?BUG: soft lockup\b/.test(line)) return 'soft_lockup';
  if (/^(?:NMI )?watchdog: Watchdog detected hard LOCKUP/.test(line)) return 'soft_lockup';
  if (/^(?:rcu: )?INFO: rcu\w* (?:self-)?detected (?:expedited )?stalls?\b/.test(line)) return 'rcu_stall';
  if (/^INFO: task \S+ blocked for more than \d+ seconds/.test(line)) return 'hung_task';
  if (/^BUG: (?:KASAN|KFENCE|KMSAN): /.test(line)) return 'kasan';
  if (/^UBSAN: /.test(line)) return 'ubsan';
  if (isLockdep(line)) return 'lockdep';
  if (/^BUG: (?:kernel NULL pointer dereference|unable to handle )/.test(line)) return 'oops';
  if (/^Unable to handle kernel (?:NULL pointer dereference|paging request)/.test(line)) return 'oops';
  if (OOPS_LINE_RE.test(line) && /\[#\d+\]/.test(line)) return 'oops';
  if (/^kernel BUG at \S+!?/.test(line)) return 'bug';
  if (/^BUG: /.test(line)) return 'bug';
  if (/^WARNING: (?:CPU: \d+ PID: \d+ at |at |\S+:\d+ at )/.test(line)) return 'warning';
  return null;
}

/**
 * lockdep's headlines. Those with free text ("<ctx>-safe -> <ctx>-unsafe lock
 * order detected", any "... lock ... detected|held") are read with indexOf:
 * as /.*-safe -> .*-unsafe/ and /.*\block\b.*(?:detected|held)/ they took
 * time quadratic in the line.
 */
function isLockdep(line: string): boolean {
  if (LOCKDEP_RE.test(line)) return true;
  if (!line.startsWith('WARNING: ')) return false;
  // Only up to a line break char, as "." would.
  const brk = line.search(/[\n\r\u2028\u2029]/);
  const rest = line.slice('WARNING: '.length, brk < 0 ? line.length : brk);
  const safe = rest.indexOf('-safe -> ');
  if (safe >= 0 && rest.includes('-unsafe lock order detected', safe + '-safe -> '.length)) return true;
  if (rest.startsWith('CPU: ') || rest.startsWith('at ')) return false;
  const lock = /\block\b/.exec(rest);
  return lock !== null && /detected|held/.test(rest.slice(lock.index + 'lock'.length));
}

function endsWithTrace(kind: CrashKind, title: string): boolean {
  switch (kind) {
    case 'lockdep':
    case 'hung_task':
    case 'rcu_stall':
    case 'soft_lockup':
      return true;
    case 'bug':
      // "BUG: sleeping function called from invalid context" and friends
      // print a stack and stop; "kernel BUG at" goes on to an Oops.
      return title.startsWith('BUG: ');
    case 'panic':
    case 'oops':
    case 'warning':
    case 'kasan':
    case 'ubsan':
      return false;
  }
}

function isEndMarker(line: string, o: Open): boolean {
  if (END_TRACE_RE.test(line)) return true;
  if (o.kind === 'panic' && END_PANIC_RE.test(line)) return true;
  // KASAN and UBSAN reports sit between two rows of "="; the first row is
  // before the headline.
  return (o.kind === 'kasan' || o.kind === 'ubsan') && SEPARATOR_RE.test(line);
}

/** Whether a "Kernel panic - not syncing" line is the consequence of report o. */
function panicBelongsTo(o: Open, panicLine: string): boolean {
  switch (o.kind) {
    case 'oops':
    case 'bug':
      // "Fatal exception", "Fatal exception in interrupt", "Attempted to
      // kill init!", "Aiee, killing interrupt handler!", panic_on_oops.
      return true;
    case 'warning':
    case 'kasan':
    case 'ubsan':
    case 'lockdep':
      return /panic_on_warn|KASAN|UBSAN/.test(panicLine);
    case 'soft_lockup':
      return /softlockup|hard LOCKUP|hardlockup/i.test(panicLine);
    case 'hung_task':
      return /hung_task|blocked tasks/.test(panicLine);
    case 'rcu_stall':
      return /RCU Stall|rcu/i.test(panicLine);
    case 'panic':
      return false;
  }
}

/** Lets a report's excerpt run on to line i if that keeps it within EXCERPT_LINES. */
function extendExcerpt(o: Open, i: number): void {
  const limit = o.first + EXCERPT_LINES - 1;
  if (i <= limit) o.last = Math.max(o.last, i);
}

function readTraceLine(o: Open, line: string): void {
  if (o.trace === 'after') return;
  if (o.trace === 'before') {
    if (CALL_TRACE_RE.test(line)) {
      o.trace = 'in';
      return;
    }
    const rip = RIP_RE.exec(line);
    if (rip !== null && o.rip === null && rip[1] === '0010') {
      o.rip = symbolOf(rip[2] ?? '');
    }
    return;
  }
  if (TASK_END_RE.test(line)) {
    o.trace = 'after';
    return;
  }
  if (o.trace === 'user') {
    // The user-mode registers, then </TASK>.
    if (!REGS_RE.test(line) && !RIP_RE.test(line)) o.trace = 'after';
    return;
  }
  // In the trace.
  if (TRACE_MARKER_RE.test(line) || line === '') return;
  const rip = RIP_RE.exec(line);
  if (rip !== null) {
    // The registers of an interrupted context: kernel mode goes on with
    // that context's frames; user mode is the bottom of the stack.
    if (rip[1] !== '0010') {
      o.trace = 'user';
      return;
    }
    const sym = symbolOf(rip[2] ?? '');
    if (sym !== null) pushFrame(o.frames, sym);
    return;
  }
  if (REGS_RE.test(line)) return;
  const f = FRAME_RE.exec(line);
  if (f === null) {
    o.trace = 'after';
    return;
  }
  if (f[1] !== undefined) return; // "? func": not reliable
  pushFrame(o.frames, bareSymbol(f[2] ?? ''));
}

function pushFrame(frames: string[], sym: string): void {
  if (frames[frames.length - 1] !== sym) frames.push(sym);
}

/**
 * The first symbol with offset in a line: "io_kbuf_recycle+0x1f/0x90 [kbuf]"
 * gives "io_kbuf_recycle"; "0x0" gives null. What
 * /([A-Za-z_$][\w$.]*)\+0x[0-9a-f]+\/0x[0-9a-f]+/ finds, one run of symbol
 * characters at a time: that regex, tried at every position of a long run,
 * took time quadratic in it.
 */
function symbolOf(text: string): string | null {
  for (const m of text.matchAll(SYMBOL_RUN_RE)) {
    const start = m[0].search(/[A-Za-z_$]/);
    if (start < 0) continue;
    OFFSET_RE.lastIndex = m.index + m[0].length;
    if (OFFSET_RE.test(text)) return bareSymbol(m[0].slice(start));
  }
  return null;
}

/** Drops compiler suffixes: "__mutex_lock.constprop.0" is __mutex_lock. */
function bareSymbol(sym: string): string {
  const dot = sym.indexOf('.');
  return dot > 0 ? sym.slice(0, dot) : sym;
}

export function isGenericFrame(sym: string): boolean {
  return GENERIC_FRAMES.some((re) => re.test(sym));
}

function finish(o: Open, raw: readonly string[]): CrashReport {
  const frames = o.rip !== null && o.frames[0] !== o.rip ? [o.rip, ...o.frames] : [...o.frames];
  const specific = frames.filter((f) => !isGenericFrame(f));
  const fromTitle = symbolOf(o.title);
  const culprit = specific[0] ?? fromTitle;
  const last = Math.min(o.last, o.first + EXCERPT_LINES - 1);
  return {
    kind: o.kind,
    title: o.title,
    frames,
    culprit,
    fingerprint: fingerprintOf(o.kind, specific, o.title),
    line: o.line,
    excerpt: raw.slice(o.first, last + 1).join('\n'),
  };
}

/**
 * sha256 of kind + "|" + the first five non-generic frames joined by "|", or
 * when there are none, of kind + "|" + the title with hex values and numbers
 * replaced; the first 16 hex characters.
 */
export function fingerprintOf(kind: CrashKind, specificFrames: readonly string[], title: string): string {
  const key =
    specificFrames.length > 0
      ? `${kind}|${specificFrames.slice(0, FINGERPRINT_FRAMES).join('|')}`
      : `${kind}|${normalizeTitle(title)}`;
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Replaces what differs between two occurrences of one crash: addresses, offsets, numbers. */
export function normalizeTitle(title: string): string {
  return title
    .replace(/0x[0-9a-f]+|\b[0-9a-f]{8,}\b|\d+/gi, (m) => (m.startsWith('0x') ? '0x?' : /^\d{1,7}$/.test(m) ? 'N' : '?'))
    .replace(/\s+/g, ' ')
    .trim();
}
