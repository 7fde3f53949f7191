/**
 * The verdict taxonomy (after KCIDB).
 * - PASS:  it worked.
 * - FAIL:  the code under test is at fault (does not apply, build breaks,
 *          kernel crashes, a test reports failure).
 * - ERROR: a test itself broke (timed out, crashed its harness, printed
 *          garbage), so it says nothing about the code.
 * - MISS:  infrastructure trouble; retried, never blamed on an author.
 * - SKIP:  not run (feature absent, not relevant).
 */
export const STATUSES = ['PASS', 'FAIL', 'ERROR', 'MISS', 'SKIP'] as const;
export type Status = (typeof STATUSES)[number];

/** What a single test can report: infrastructure trouble is never a test's. */
export type TestStatus = Exclude<Status, 'MISS'>;

/** The stages of a job, in order. */
export const STAGES = ['apply', 'build', 'boot', 'test'] as const;
export type Stage = (typeof STAGES)[number];

/** Worst first: when several things are true, the first wins. */
const SEVERITY: Record<Status, number> = { MISS: 0, FAIL: 1, ERROR: 2, PASS: 3, SKIP: 4 };

/** The overall status of a set of results: MISS > FAIL > ERROR > PASS > SKIP. */
export function worstStatus(statuses: Iterable<Status>): Status | undefined {
  let worst: Status | undefined;
  for (const s of statuses) {
    if (worst === undefined || SEVERITY[s] < SEVERITY[worst]) worst = s;
  }
  return worst;
}
