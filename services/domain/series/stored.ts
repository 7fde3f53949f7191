/**
 * A series rebuilt from its stored mail (each message's bytes, latin1, as
 * the store keeps them and a lab runner receives them), by the same rules
 * that assembled it at intake: the in-cluster worker and a lab runner run
 * the same series.
 */
import { parseMessage } from '../mbox.ts';
import type { Series } from './model.ts';
import { assembleSeries } from './assemble.ts';
import { prerequisiteSeries } from './prerequisites.ts';

/** The submitted series: cover letter (if any) first, then its patches; the base-commit recorded at intake. */
export function seriesFromStoredMail(raws: readonly string[], version: number, baseCommit: string | null): Series {
  const series = assembleSeries(raws.map((r) => parseMessage(r)), { version });
  return { ...series, baseCommit };
}

/** Prerequisite patches are patches from anywhere, in the order they were named: read as such, not as a series. */
export function prerequisitesFromStoredMail(raws: readonly string[]): Series {
  return prerequisiteSeries(raws.map((r) => parseMessage(r)));
}
