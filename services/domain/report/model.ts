/**
 * What a mail report is made from (services/reporter renders it into a
 * threaded reply): the job's recorded result, the series as it was posted,
 * the previous revision's run when there is one, and how to reproduce the
 * run. Pure data: the renderer (render.ts) does no I/O; its templates are
 * text files read once by the caller and handed in.
 */
import type { JobResult } from '../job.ts';

export type { JobEnvironment } from '../job.ts';

export interface ReportPerson {
  name: string;
  email: string;
}

/** The posted series the report answers. */
export interface ReportSeries {
  /** The subject of the mail the report answers (the cover letter's, else patch 1's), decoded, as posted. */
  subject: string;
  /** That mail's Message-ID (no angle brackets). */
  messageId: string;
  version: number;
  /** Patches in the series (cover letter not counted). */
  patches: number;
  author: ReportPerson;
  /** The inbox the series came from (its public-inbox URL), null for an upload. */
  inbox: string | null;
}

/** How a developer runs the same job again. */
export interface Reproducer {
  /** The tree's name in deploy/trees.json and its git URL. */
  tree: { name: string; url: string };
  /** The suites the job ran, and the test filter a re-run uses (suite names, or suite/test for the failing ones). */
  suites: string[];
  /** Subtests to name in the reproducer's test filter (the blamed ones), "suite/test". */
  tests: string[];
}

/** The previous revision's run of the same series (the watcher's revision links). */
export interface PreviousRun {
  version: number;
  jobId: string;
  /** The job page of that run. */
  url: string;
  result: JobResult;
}

export interface ReportInput {
  /** The report's own Message-ID (no angle brackets): the Closes: tag a fix carries points at it. */
  messageId: string;
  result: JobResult;
  series: ReportSeries;
  /** Where the job ran (the worker or runner id). */
  runner: string | null;
  /** The job page, absolute URL. */
  jobUrl: string;
  previous: PreviousRun | null;
  reproducer: Reproducer;
  /** The robot as it signs: name and address (the From of the report), used in Reported-by:. */
  robot: ReportPerson;
}

/** A rendered report: the subject and the plain-text body (UTF-8, prose wrapped at 72 columns, logs as printed). */
export interface RenderedReport {
  subject: string;
  body: string;
}

/** How the revisions compare, test by test (revision-aware reports). */
export interface RevisionDelta {
  previousVersion: number;
  /** Failing (blamed) in the previous revision's run, not failing now. */
  fixed: string[];
  /** Failing (blamed) now, not in the previous run. */
  introduced: string[];
  /** Failing (blamed) in both. */
  stillFailing: string[];
  /** One line when the stage that decided differs (e.g. "v1 did not apply; v2 applies"). */
  stageChange: string | null;
}
