/**
 * Reading what git am and the kernel build say, and deciding how to build.
 * Pure functions over text; the executor runs the commands.
 */

export interface ApplyFailure {
  /** 1-based position of the failing patch in the series (cover letter not counted). */
  patchIndex: number | null;
  /** The failing patch's title as git printed it. */
  title: string | null;
  /** git's own error lines (error:, CONFLICT, fatal:), in order. */
  messages: string[];
}

export function parseGitAmFailure(output: string): ApplyFailure {
  const lines = output.split(/\r?\n/);
  let patchIndex: number | null = null;
  let title: string | null = null;
  const messages: string[] = [];
  let lastApplying: string | null = null;
  let applyingCount = 0;
  for (const line of lines) {
    const applying = /^Applying: (.*)$/.exec(line);
    if (applying?.[1] !== undefined) {
      lastApplying = applying[1];
      applyingCount++;
      continue;
    }
    const failed = /^Patch failed at (\d+) (.*)$/.exec(line);
    if (failed?.[1] !== undefined && failed[2] !== undefined) {
      patchIndex = Number(failed[1]);
      title = failed[2];
      continue;
    }
    if (/^(error|fatal): /.test(line) || /^CONFLICT /.test(line) || /^Patch is empty\./.test(line)) {
      if (!messages.includes(line)) messages.push(line);
    }
  }
  if (patchIndex === null && lastApplying !== null) {
    patchIndex = applyingCount;
    title = lastApplying;
  }
  return { patchIndex, title, messages };
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
const LD_UNDEFINED = /^(?:.*\bld(?:\.\w+)?: )?([\w./+-]+\.o): in function [`'][^`']*[`']:\s*$|undefined reference to [`']([^`']+)[`']/;

/** Compiler and linker errors (warnings too, marked) from a kernel build log. */
export function parseBuildDiagnostics(log: string): CompilerDiagnostic[] {
  const out: CompilerDiagnostic[] = [];
  let lastObject: string | null = null;
  for (const raw of log.split(/\r?\n/)) {
    const line = raw.trimEnd();
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
    const ld = LD_UNDEFINED.exec(line);
    if (ld?.[1] !== undefined) {
      lastObject = ld[1];
    } else if (ld?.[2] !== undefined) {
      out.push({
        file: lastObject === null ? '(link)' : treeRelative(lastObject.replace(/\.o$/, '.c')),
        line: null,
        column: null,
        severity: 'error',
        message: `undefined reference to \`${ld[2]}'`,
      });
    }
  }
  return out;
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
 * After an incremental build fails: retry from clean unless the series
 * evidently broke it, i.e. an error is in a file it changed, or it changed a
 * header (whose users then fail). A clean build would only say the same ten
 * minutes later; kbuild's dependency tracking makes a stale warm base rare.
 */
export function shouldRetryClean(errors: readonly CompilerDiagnostic[], changedFiles: readonly string[]): boolean {
  const hard = errors.filter((e) => e.severity === 'error');
  if (hard.length === 0) return true;
  const changed = new Set(changedFiles);
  if (hard.some((e) => changed.has(e.file))) return false;
  return !changedFiles.some((f) => f.endsWith('.h'));
}
