/**
 * API tokens. The secret ("pb_" + 32 random bytes, base64url) is shown once,
 * at creation; only its sha256 is stored, and a token is found by that hash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import { PatchbayError } from '../domain/errors.ts';
import { TOKEN_SCOPES, type Database, type TokenScope, type TokensTable } from './schema.ts';
import { guard, jsonb, newId, sqlState } from './util.ts';

export interface Token {
  id: string;
  name: string;
  scopes: TokenScope[];
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** "pb_" and 43 base64url characters (32 bytes). */
const SECRET_RE = /^pb_[A-Za-z0-9_-]{43}$/;
/** last_used_at is written at most this often per token. */
const TOUCH_INTERVAL_MS = 60_000;

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

function toToken(r: Selectable<TokensTable>): Token {
  return {
    id: r.id,
    name: r.name,
    scopes: r.scopes,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

export class TokenRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** A new token; the secret is returned here and never again. TOKEN_NAME_TAKEN if the name is in use. */
  async create(
    name: string,
    scopes: readonly TokenScope[],
  ): Promise<{ token: { id: string; name: string; scopes: TokenScope[] }; secret: string }> {
    if (name.trim() === '' || name.length > 200 || name.includes('\u0000')) {
      throw new PatchbayError('STORE_BAD_ARGUMENT', 'A token name is 1 to 200 characters.');
    }
    const unique = [...new Set(scopes)];
    const unknown = unique.filter((s) => !(TOKEN_SCOPES as readonly string[]).includes(s));
    if (unique.length === 0 || unknown.length > 0) {
      throw new PatchbayError('TOKEN_BAD_SCOPES', `A token needs one or more of the scopes ${TOKEN_SCOPES.join(', ')}.`, {
        details: { scopes: [...scopes] },
      });
    }
    const ordered = TOKEN_SCOPES.filter((s) => unique.includes(s));
    const secret = `pb_${randomBytes(32).toString('base64url')}`;
    const id = newId('t');
    await guard('could not create the token', async () => {
      try {
        await this.#db
          .insertInto('tokens')
          .values({ id, name, hash: hashSecret(secret), scopes: jsonb(ordered) })
          .execute();
      } catch (e) {
        if (sqlState(e) === '23505' && /name/.test(String((e as { constraint?: unknown }).constraint))) {
          throw new PatchbayError('TOKEN_NAME_TAKEN', `A token named "${name}" exists already.`, {
            cause: e,
            details: { name },
          });
        }
        throw e;
      }
    });
    return { token: { id, name, scopes: ordered }, secret };
  }

  /**
   * The live token this secret belongs to, or null (unknown, malformed or
   * revoked). Marks it used, at most once a minute.
   */
  async verify(secret: string): Promise<Token | null> {
    if (!SECRET_RE.test(secret)) return null;
    const row = await guard('could not verify the token', () =>
      this.#db
        .selectFrom('tokens')
        .selectAll()
        .where('hash', '=', hashSecret(secret))
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    if (row === undefined) return null;
    const token = toToken(row);
    if (token.lastUsedAt === null || Date.now() - token.lastUsedAt.getTime() >= TOUCH_INTERVAL_MS) {
      const touched = await guard('could not mark the token used', () =>
        this.#db
          .updateTable('tokens')
          .set({ last_used_at: sql<Date>`now()` })
          .where('id', '=', token.id)
          .where((eb) =>
            eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`)]),
          )
          .returning('last_used_at')
          .executeTakeFirst(),
      );
      if (touched !== undefined) token.lastUsedAt = touched.last_used_at;
    }
    return token;
  }

  /** Revokes the token (idempotent: revoking twice keeps the first time). TOKEN_NOT_FOUND if there is none. */
  async revoke(id: string): Promise<Token> {
    const row = await guard('could not revoke the token', () =>
      this.#db
        .updateTable('tokens')
        .set({ revoked_at: sql<Date>`coalesce(revoked_at, now())` })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst(),
    );
    if (row === undefined) throw new PatchbayError('TOKEN_NOT_FOUND', `There is no token ${id}.`, { details: { id } });
    return toToken(row);
  }

  /** Every token, revoked ones too, oldest first. */
  async list(): Promise<Token[]> {
    const rows = await guard('could not list tokens', () =>
      this.#db.selectFrom('tokens').selectAll().orderBy('created_at', 'asc').orderBy('id', 'asc').execute(),
    );
    return rows.map(toToken);
  }
}
