/**
 * The mail report's templates (services/reporter/templates/, README.md
 * there): read once, parsed and checked against the names the renderer
 * fills in (services/domain/report/render.ts). The only I/O of rendering.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseReportTemplates, type ReportTemplates } from '../domain/report/render.ts';

export type { ReportTemplates };

/** The templates shipped with patchbay. */
export const DEFAULT_TEMPLATES_DIR = join(import.meta.dirname, 'templates');

/**
 * Reads every *.txt in `dir` (UTF-8) and parses them. Throws PatchbayError
 * REPORT_TEMPLATE naming the file and line of a problem (a typo in a name,
 * a section left open, pass.txt, fail.txt or other.txt missing), so a bad
 * edit fails when the reporter starts, not in a mail.
 */
export function loadReportTemplates(dir: string = DEFAULT_TEMPLATES_DIR): ReportTemplates {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith('.txt')) files[name] = readFileSync(join(dir, name), 'utf8');
  }
  return parseReportTemplates(files);
}
