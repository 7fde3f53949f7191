/**
 * The linear-time guards of the parser tests: a hostile input that once
 * took seconds or minutes (a quadratic loop) must now be handled within a
 * bound. A machine busy with other work (the test lanes run side by side)
 * can push one honest run past it, so a run over the bound is taken again,
 * up to three runs, and the guard fails only when every run is over: a
 * quadratic regression is over every time.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';

export const RUNS = 3;

export function withinTime<T>(what: string, boundMs: number, fn: () => T): T {
  const times: number[] = [];
  for (;;) {
    const t0 = performance.now();
    const out = fn();
    const ms = performance.now() - t0;
    times.push(ms);
    if (ms < boundMs) return out;
    assert.ok(times.length < RUNS, `${what} took ${times.map((t) => t.toFixed(0)).join(', ')} ms in ${RUNS} runs (bound ${boundMs} ms)`);
  }
}
