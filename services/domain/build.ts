/**
 * Reading what git am and the kernel build say, and deciding how to build.
 * Pure functions over text; the executor runs the commands.
 */

export interface ApplyFailure {
  /**
   * 1-based position of the failing patch in the series (cover letter not
   * counted), only when git named it: `Patch failed at NNNN`, or `Patch is
   * empty.` right after the patches before it were applied. Null otherwise.
   */
  patchIndex: number | null;
  /** The failing patch's title as git printed it (null when git did not print it). */
  title: string | null;
  /** git's own error lines (error:, CONFLICT, fatal:, Patch is empty.), in order. */
  messages: string[];
}

/**
 * Lines that say the machine or the repository failed, not the patch: a
 * full disk, no memory, a corrupt object store, a lock left behind.
 */
const GIT_TROUBLE = /No space left on device|Disk quota exceeded|File too large|Cannot allocate memory|out of memory|Read-only file system|Input\/output error|unable to write|unable to create '[^']*\.lock'|index file corrupt|loose object \S+ \(stored in [^)]*\) is corrupt|inflate: data stream error|object file \S+ is empty|unable to read sha1 file|packfile \S+ cannot be accessed|not a git repository/i;

export function parseGitAmFailure(output: string): ApplyFailure {
  const lines = output.split(/\r?\n/);
  let patchIndex: number | null = null;
  let title: string | null = null;
  const messages: string[] = [];
  let applyingCount = 0;
  for (const line of lines) {
    if (/^Applying: /.test(line)) {
      applyingCount++;
      continue;
    }
    const failed = /^Patch failed at (\d+) (.*)$/.exec(line);
    if (failed?.[1] !== undefined && failed[2] !== undefined) {
      patchIndex = Number(failed[1]);
      title = failed[2];
      continue;
    }
    if (/^Patch is empty\./.test(line)) {
      // git prints "Applying:" only for a patch it goes on to apply: the
      // empty one is the patch after those it applied.
      if (patchIndex === null) patchIndex = applyingCount + 1;
      if (!messages.includes(line)) messages.push(line);
      continue;
    }
    if (/^(error|fatal): /.test(line) || /^CONFLICT /.test(line)) {
      if (!messages.includes(line)) messages.push(line);
    }
  }
  return { patchIndex, title, messages };
}

/**
 * Whether git's output is evidence against a named patch, and if not, why.
 * Evidence: git named the patch (`Patch failed at NNNN` with its error or
 * CONFLICT lines, or `Patch is empty.`) and said nothing that points at the
 * machine or the repository (a full disk, no memory, a corrupt object).
 */
export function applyEvidence(output: string, failure: ApplyFailure = parseGitAmFailure(output)): { blame: true } | { blame: false; reason: string } {
  // Lines that quote the series (subjects, paths in a CONFLICT) are not git's word on the machine.
  const trouble = output.split(/\r?\n/).find((l) => !/^(?:Applying: |Patch failed at |CONFLICT )/.test(l) && GIT_TROUBLE.test(l));
  if (trouble !== undefined) return { blame: false, reason: `git reported trouble with the machine or the repository: ${trouble.trim()}` };
  if (failure.patchIndex === null) return { blame: false, reason: 'git named no failing patch (no "Patch failed at")' };
  const empty = failure.messages.some((m) => /^Patch is empty\./.test(m));
  const gitSaid = failure.messages.some((m) => /^error: |^CONFLICT /.test(m));
  if (!empty && !gitSaid) return { blame: false, reason: `git named patch ${failure.patchIndex} but printed no error or CONFLICT line for it` };
  return { blame: true };
}

export interface CompilerDiagnostic {
  /** Path relative to the top of the source tree. */
  file: string;
  line: number | null;
  column: number | null;
  severity: 'error' | 'warning';
  message: string;
}

/** Strips the build's view of the source location down to a tree-relative path. */
export function treeRelative(path: string): string {
  let p = path.replace(/^\/work\/linux\//, '');
  while (p.startsWith('../')) p = p.slice(3);
  if (p.startsWith('linux/') && !p.startsWith('linux/include')) p = p.slice('linux/'.length);
  return p.replace(/^\.\//, '');
}

const GCC_DIAG = /^((?:\.\.\/|\/)?[\w./+-]+\.[chS]):(\d+):(?:(\d+):)? (error|warning|fatal error): (.*)$/;
const LD_UNDEFINED = /^(?:.*\bld(?:\.\w+)?: )?([\w./+-]+\.o): in function [`'][^`']*[`']:\s*$|(undefined reference to|multiple definition of) [`']([^`']+)[`']/;
/**
 * Kconfig's parser: `FILE:LINE: MESSAGE`, `FILE:LINE: error: MESSAGE` or
 * `FILE:LINE:warning: MESSAGE`, FILE a Kconfig file (Kconfig, Kconfig.debug, ...).
 */
const KCONFIG_DIAG = /^((?:\.\.\/|\/)?(?:[\w.+-]+\/)*Kconfig[\w.+-]*):(\d+):\s?(?:(error|warning|note):\s?)?(.*)$/;
/** modpost: `ERROR: modpost: "sym" [fs/x/y.ko] undefined!`, `ERROR: modpost: vmlinux: ...`. */
const MODPOST_DIAG = /^(ERROR|WARNING): modpost: (.*)$/;

/**
 * A line that says the machine ran out of something (disk, memory,
 * processes) or killed the compiler. Such a build proves nothing about the
 * code, even where a compiler printed it as an error at a source line
 * ("kbuf.c:1:0: fatal error: error writing to /tmp/cc.s: No space left on device").
 */
const BUILD_ENVIRONMENT = /No space left on device|Disk quota exceeded|File too large|Cannot allocate memory|virtual memory exhausted|out of memory allocating|Killed signal terminated program|internal compiler error: Killed|fork: Resource temporarily unavailable|Read-only file system|Input\/output error|\] (?:Killed|Error 137)$/;

/**
 * Compiler, linker, Kconfig and modpost errors (warnings too, marked) from a
 * kernel build log. Lines that say the machine ran out of something are not
 * diagnostics of the code (see buildEnvironmentFailure).
 */
export function parseBuildDiagnostics(log: string): CompilerDiagnostic[] {
  const out: CompilerDiagnostic[] = [];
  let lastObject: string | null = null;
  let recursive: string | null = null;
  for (const raw of log.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (BUILD_ENVIRONMENT.test(line)) continue;
    // Kconfig's recursive dependency: the error, then the chain, one tab-indented line each.
    if (recursive !== null) {
      const chain = /^\t(symbol \S+ .*)$/.exec(raw);
      if (chain?.[1] !== undefined) {
        const last = out[out.length - 1];
        if (last) last.message = `${last.message}${last.message.endsWith('!') ? ' ' : '; '}${chain[1]}`;
        continue;
      }
      recursive = null;
    }
    if (/^error: recursive dependency detected!$/.test(line)) {
      recursive = line;
      out.push({ file: '(Kconfig)', line: null, column: null, severity: 'error', message: 'recursive dependency detected!' });
      continue;
    }
    const m = GCC_DIAG.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && m[4] !== undefined && m[5] !== undefined) {
      out.push({
        file: treeRelative(m[1]),
        line: Number(m[2]),
        column: m[3] === undefined ? null : Number(m[3]),
        severity: m[4] === 'warning' ? 'warning' : 'error',
        message: m[5],
      });
      continue;
    }
    const k = KCONFIG_DIAG.exec(line);
    if (k?.[1] !== undefined && k[2] !== undefined && k[4] !== undefined) {
      // Notes and "location of the ..." lines only point at another diagnostic.
      if (k[3] === 'note' || /^location of /.test(k[4])) continue;
      out.push({ file: treeRelative(k[1]), line: Number(k[2]), column: null, severity: k[3] === 'warning' ? 'warning' : 'error', message: k[4] });
      continue;
    }
    const mp = MODPOST_DIAG.exec(line);
    if (mp?.[1] !== undefined && mp[2] !== undefined) {
      const undef = /^"[^"]+" \[([\w./+-]+\.ko)\] undefined!$/.exec(mp[2]);
      const subject = /^([\w./+-]+): /.exec(mp[2]);
      out.push({
        file: undef?.[1] !== undefined ? treeRelative(undef[1]) : subject?.[1] !== undefined ? treeRelative(subject[1]) : '(modpost)',
        line: null,
        column: null,
        severity: mp[1] === 'ERROR' ? 'error' : 'warning',
        message: `modpost: ${mp[2]}`,
      });
      continue;
    }
    const ld = LD_UNDEFINED.exec(line);
    if (ld?.[1] !== undefined) {
      lastObject = ld[1];
    } else if (ld?.[2] !== undefined && ld[3] !== undefined) {
      out.push({
        file: lastObject === null ? '(link)' : treeRelative(lastObject.replace(/\.o$/, '.c')),
        line: null,
        column: null,
        severity: 'error',
        message: `${ld[2]} \`${ld[3]}'`,
      });
    }
  }
  return out;
}

/** The first line of a build log that says the machine ran out of something or killed a tool, or null. */
export function buildEnvironmentFailure(log: string): string | null {
  for (const raw of log.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (BUILD_ENVIRONMENT.test(line)) return line.trim();
  }
  return null;
}

/**
 * make's "No rule to make target X, needed by Y": on a warm base, a
 * dependency recorded by the base's build that the series removed or
 * renamed (a stale .cmd file), which a clean build does not have.
 */
export function staleDependency(log: string): string | null {
  for (const raw of log.split(/\r?\n/)) {
    if (/\*\*\* No rule to make target /.test(raw)) return raw.trim();
  }
  return null;
}

/** What a failed build's log says, for the decisions below. */
export interface BuildFailure {
  /** Compiler, linker, Kconfig and modpost errors (warnings left out). */
  errors: CompilerDiagnostic[];
  /** A line that says the machine ran out of something, or null. */
  environment: string | null;
  /** make's "No rule to make target" line, or null. */
  stale: string | null;
}

export function analyzeBuildFailure(log: string): BuildFailure {
  return {
    errors: parseBuildDiagnostics(log).filter((d) => d.severity === 'error'),
    environment: buildEnvironmentFailure(log),
    stale: staleDependency(log),
  };
}

/** Diagnostics as a compiler prints them, one a line, at most `max` (and how many more). */
export function formatDiagnostics(errors: readonly CompilerDiagnostic[], max = 5): string {
  const lines = errors.slice(0, max).map((d) => `${d.file}${d.line !== null ? `:${d.line}` : ''}${d.column !== null ? `:${d.column}` : ''}: ${d.severity}: ${d.message}`);
  if (errors.length > max) lines.push(`(+${errors.length - max} more)`);
  return lines.join('\n');
}

export type BuildMode = 'incremental' | 'clean';

export interface BuildPlan {
  mode: BuildMode;
  reason: string;
}

/** Trees `make bzImage` never reads: selftests (built by suites from the tree) and documentation. */
const OUTSIDE_KERNEL_BUILD = ['tools/testing/', 'Documentation/'];

/** Files whose change can alter the configuration or the kernel's build rules themselves. */
function changesBuildSystem(path: string): boolean {
  if (OUTSIDE_KERNEL_BUILD.some((p) => path.startsWith(p))) return false;
  const base = path.slice(path.lastIndexOf('/') + 1);
  return (
    base.startsWith('Kconfig') ||
    base.startsWith('Makefile') ||
    base === 'Kbuild' ||
    base.endsWith('.mk') ||
    path.startsWith('scripts/')
  );
}

/** Incremental on the warm base unless the series touches Kconfig, Makefiles or scripts/. */
export function planBuild(changedFiles: readonly string[]): BuildPlan {
  const touched = changedFiles.filter(changesBuildSystem);
  if (touched.length > 0) {
    const list = touched.slice(0, 3).join(', ') + (touched.length > 3 ? `, +${touched.length - 3} more` : '');
    return { mode: 'clean', reason: `series changes the build system (${list})` };
  }
  return { mode: 'incremental', reason: 'warm base: only what the series touches is rebuilt' };
}

/**
 * After an incremental build fails: retry from clean when the warm base may
 * be what broke it, i.e. make found a stale dependency ("No rule to make
 * target"), or the errors are all outside what the series changed and it
 * changed no header (whose users would then fail). Never when the log has
 * no diagnostic at all, or says the machine ran out of something: a clean
 * build (ten minutes) would add no evidence, and the job ends MISS at once.
 */
export function shouldRetryClean(failure: BuildFailure, changedFiles: readonly string[]): boolean {
  if (failure.environment !== null) return false;
  if (failure.stale !== null) return true;
  const hard = failure.errors.filter((e) => e.severity === 'error');
  if (hard.length === 0) return false;
  const changed = new Set(changedFiles);
  if (hard.some((e) => changed.has(e.file))) return false;
  return !changedFiles.some((f) => f.endsWith('.h'));
}
