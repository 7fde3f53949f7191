/**
 * The Content-Security-Policy of every response: nothing runs or loads but
 * the pages' own inline style and script, named by their SHA-256, and the
 * live log's EventSource to this origin. A job's text (log lines, test
 * names, crash excerpts) that slipped past escaping still could not run.
 */
import { createHash } from 'node:crypto';
import { STYLE } from './html.ts';
import { LIVE_LOG_SCRIPT } from './routes.ts';

export function cspHash(inline: string): string {
  return `'sha256-${createHash('sha256').update(inline, 'utf8').digest('base64')}'`;
}

export const PAGE_CSP: Readonly<Record<string, string[]>> = {
  defaultSrc: ["'none'"],
  scriptSrc: [cspHash(LIVE_LOG_SCRIPT)],
  styleSrc: [cspHash(STYLE)],
  connectSrc: ["'self'"],
  imgSrc: ["'self'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'none'"],
};

/** /docs (Swagger UI) loads its own scripts and styles from this origin. */
export const DOCS_CSP: Readonly<Record<string, string[]>> = {
  'default-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'style-src': ["'self'", "'unsafe-inline'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
};
