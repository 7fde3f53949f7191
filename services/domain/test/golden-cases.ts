import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * The golden cases, by name (NAME.ext in, NAME.json out), per folder under
 * test/golden. A golden loop checks that the folder holds exactly these, so
 * it cannot pass by finding nothing, or fewer cases than it should. A new
 * case is added here as well as in its folder.
 */
export const GOLDEN_CASES = {
  console: [
    'bug-fuse', 'clean-boot', 'hung-task', 'kasan-uaf', 'lockdep-circular', 'oops-null-io_uring', 'panic-vfs', 'soft-lockup', 'warning-kbuf',
  ],
  ktap: ['bail-out', 'directives', 'empty', 'interleaved', 'kselftest-fuse', 'kunit-boot', 'kunit-nested', 'truncated'],
  mbox: [
    'binary-patch', 'crlf', 'incomplete-series', 'kmbuf-v3-thread', 'malformed-bare-diff', 'malformed-headerless-mbox', 'malformed-random-text',
    'mboxrd-from-quoting', 'multipart-attachment', 'no-diff', 'path-escape', 'qp-body', 'rfc-resend-duplicate', 'rfc2047-author', 'single-bare-patch',
    // MIME decoding (test/mime.test.ts, and services/intake/test/mailinfo.test.ts through git).
    'attachment-x-diff', 'base64-body', 'flowed', 'flowed-delsp', 'koi8r-body', 'latin1-body', 'multipart-no-close', 'sjis-body',
  ],
} as const satisfies Record<string, readonly string[]>;

/**
 * The inputs of a golden folder (NAME.ext, sorted), checked against the
 * cases expected there: every expected NAME.ext is present and nothing else
 * is, and every NAME.json has its NAME.ext.
 */
export function goldenInputs(dir: string, ext: string, expected: readonly string[]): string[] {
  if (expected.length === 0) throw new Error(`${dir}: no golden cases expected (an empty list proves nothing)`);
  const files = readdirSync(dir);
  const inputs = files.filter((f) => f.endsWith(ext)).sort();
  const names = inputs.map((f) => f.slice(0, -ext.length));
  const missing = expected.filter((n) => !names.includes(n));
  const unlisted = names.filter((n) => !expected.includes(n));
  if (missing.length > 0) throw new Error(`${dir}: ${missing.length} of ${expected.length} expected golden inputs missing: ${missing.map((n) => n + ext).join(', ')}`);
  if (unlisted.length > 0) throw new Error(`${dir}: golden inputs not in the expected cases (add them to GOLDEN_CASES): ${unlisted.map((n) => n + ext).join(', ')}`);
  const orphans = files.filter((f) => f.endsWith('.json') && !files.includes(f.replace(/\.json$/, ext)));
  if (orphans.length > 0) throw new Error(`${dir}: expected outputs without their input: ${orphans.join(', ')}`);
  return inputs;
}

type Env = Readonly<Record<string, string | undefined>>;

/** CI is set unless unset, empty, "0" or "false" (as most CI detectors read it). */
export function underCi(env: Env = process.env): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/**
 * Whether the expected files are to be rewritten: UPDATE_GOLDEN=1. Under CI
 * that is an error, not a no-op: a CI run that rewrote its expected outputs
 * would compare the code with itself and pass whatever it does.
 */
export function goldenUpdateRequested(env: Env = process.env): boolean {
  if (env.UPDATE_GOLDEN !== '1') return false;
  if (underCi(env)) {
    throw new Error(`UPDATE_GOLDEN=1 is refused under CI (CI=${env.CI ?? ''}): golden files are rewritten by hand, outside CI, and every diff read`);
  }
  return true;
}

/**
 * Compares ACTUAL with the expected output at PATH (JSON); with
 * UPDATE_GOLDEN=1 (refused under CI, which fails the calling test) writes
 * ACTUAL there first.
 */
export function assertGolden(path: string, actual: unknown, env: Env = process.env): void {
  if (goldenUpdateRequested(env)) writeFileSync(path, `${JSON.stringify(actual, null, 2)}\n`);
  assert.ok(existsSync(path), `missing ${path} (run with UPDATE_GOLDEN=1 outside CI, then review it)`);
  assert.deepStrictEqual(actual, JSON.parse(readFileSync(path, 'utf8')));
}
