/**
 * Small helpers the repositories share: ids, keyset cursors, values made
 * safe for PostgreSQL, and database errors as PatchbayError.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { PatchbayError, errorMessage } from '../domain/errors.ts';

/** Crockford's base32, lowercase: its order is the characters' ASCII order, so ids sort by time. */
const BASE32 = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * `${prefix}-` and 20 base32 characters: 10 for the time in milliseconds
 * (sortable until the year 10889), 10 of randomness (50 bits).
 */
export function newId(prefix: 's' | 'j' | 't' | 'd' | 'm' | 'r' | 'l' | 'g'): string {
  let time = Date.now();
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = (BASE32[time % 32] ?? '0') + head;
    time = Math.floor(time / 32);
  }
  let tail = '';
  for (const b of randomBytes(10)) tail += BASE32[b % 32] ?? '0';
  return `${prefix}-${head}${tail}`;
}

export const ID_RE = /^[sjtdmrlg]-[0-9a-z]{20}$/;

/** Where a page ended: the last row's created_at (as PostgreSQL prints it, to the microsecond) and id. */
export interface Cursor {
  createdAt: string;
  id: string;
}

const CURSOR_TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAt, c.id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, prefix: 's' | 'j' | 'd' | 'm'): Cursor {
  const bad = (): PatchbayError =>
    new PatchbayError('STORE_BAD_CURSOR', 'The paging cursor is not one this list handed out.', { details: { cursor } });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) throw bad();
  const [createdAt, id] = parsed as unknown[];
  if (typeof createdAt !== 'string' || !CURSOR_TS_RE.test(createdAt)) throw bad();
  if (typeof id !== 'string' || !ID_RE.test(id) || !id.startsWith(`${prefix}-`)) throw bad();
  return { createdAt, id };
}

/** The page size a list asks for: an integer 1..500. */
export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw new PatchbayError('STORE_BAD_ARGUMENT', `A page holds 1 to 500 rows, not ${limit}.`, { details: { limit } });
  }
  return limit;
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** The keyset condition for rows after a cursor, newest first by (created_at, id). */
export function afterCursor(after: Cursor) {
  return sql<boolean>`(created_at, id) < (${after.createdAt}::timestamptz, ${after.id})`;
}

/**
 * A page from rows fetched with limit + 1 (the extra row says whether there
 * is a next page), each carrying its cursor_ts.
 */
export function toPage<R extends { id: string; cursor_ts: string }, T>(rows: readonly R[], limit: number, map: (row: R) => T): Page<T> {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(map),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor({ createdAt: last.cursor_ts, id: last.id }) : null,
  };
}

/**
 * PostgreSQL text and jsonb cannot hold U+0000, and jsonb refuses unpaired
 * surrogates; both turn up in console output and mail. Each becomes U+FFFD.
 */
export function cleanText(s: string): string {
  // eslint-disable-next-line no-control-regex -- NUL is exactly what is replaced
  return s.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** JSON text for a jsonb column, with every string cleaned. */
export function jsonb(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? cleanText(v) : v));
}

/** PGlite returns bytea as Uint8Array, node-postgres as Buffer: always a Buffer. */
export function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** A SQLSTATE, when the error came from PostgreSQL (node-postgres and PGlite both set .code). */
export function sqlState(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function constraintOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const c = (e as { constraint?: unknown }).constraint;
  return typeof c === 'string' ? c : undefined;
}

/**
 * A database error as a PatchbayError: constraint violations are the
 * caller's (STORE_CONSTRAINT), lost connections, deadlocks and
 * serialization failures may pass on a retry (STORE_UNAVAILABLE), anything
 * else is STORE_QUERY_FAILED.
 */
export function storeError(e: unknown, what: string): PatchbayError {
  if (e instanceof PatchbayError) return e;
  const state = sqlState(e);
  const constraint = constraintOf(e);
  const details: Record<string, unknown> = {};
  if (state !== undefined) details.sqlState = state;
  if (constraint !== undefined) details.constraint = constraint;
  if (state?.startsWith('23') === true) {
    return new PatchbayError('STORE_CONSTRAINT', `${what}: ${errorMessage(e)}`, { cause: e, details });
  }
  const transient =
    state === undefined
      ? /ECONNREFUSED|ECONNRESET|ENOENT|ETIMEDOUT|timeout|terminated|Connection/i.test(errorMessage(e))
      : state.startsWith('08') || state.startsWith('53') || state.startsWith('57P') || state === '40001' || state === '40P01';
  return new PatchbayError(transient ? 'STORE_UNAVAILABLE' : 'STORE_QUERY_FAILED', `${what}: ${errorMessage(e)}`, {
    cause: e,
    retryable: transient,
    details,
  });
}

/** Runs a repository operation, turning whatever the database throws into a PatchbayError. */
export async function guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw storeError(e, what);
  }
}
