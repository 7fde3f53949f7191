/**
 * Every error patchbay raises carries a stable code, a message written for
 * the person who reads it, and whether retrying could help.
 */
export class PatchbayError extends Error {
  readonly code: string;
  /** Infrastructure trouble (MISS) that a retry may fix. */
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    opts: { cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PatchbayError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details ?? {};
  }
}

export function isPatchbayError(e: unknown): e is PatchbayError {
  return e instanceof PatchbayError;
}

/** A message for any thrown value, never a stack trace. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * Codes of a MISS that retrying cannot fix: the worker records them at once
 * instead of handing the job back to the queue (services/worker/processor.ts).
 * An unknown base, no KVM where it was asked for, a job over its limits, and
 * prerequisite patches that do not apply on the base or with which the base
 * does not build, a test filter naming suites the job does not run: the same
 * inputs give the same answer, and none of it is the series' author's fault
 * (never FAIL).
 */
export const NOT_RETRIED_CODES: ReadonlySet<string> = new Set([
  'BASE_UNKNOWN',
  'ACCEL_UNAVAILABLE',
  'JOB_LIMIT',
  'PREREQUISITES_APPLY',
  'PREREQUISITES_BUILD',
  'TEST_FILTER_INVALID',
]);
