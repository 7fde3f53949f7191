/**
 * Bearer tokens (stored hashed) with scopes. A route says what scope it needs
 * in its config; reading may be allowed anonymously by configuration.
 *
 * Two steps, so that the rate limit sits between them: `onRequest` finds out
 * who calls (a bad token is remembered, not yet refused), the rate limit
 * counts the request against that token or, for anonymous callers and bad
 * tokens alike, against the peer address; then `preParsing` refuses what the
 * caller may not do, before any body is read.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { PatchbayError, isPatchbayError } from '../../domain/errors.ts';
import type { Store, TokenScope } from '../../store/db.ts';

export interface Caller {
  tokenId: string | null;
  /** The token's name (who did what, in records such as the outbox's); null: anonymous. */
  tokenName: string | null;
  scopes: readonly TokenScope[];
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
    /** Why the presented credentials were refused; null if none were or they are good. */
    authError: PatchbayError | null;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; none: public (health, docs). */
    scope?: TokenScope;
  }
}

const ANONYMOUS: Caller = { tokenId: null, tokenName: null, scopes: [] };

export interface AuthOptions {
  store: Store;
  anonymousRead: boolean;
}

async function identify(store: Store, request: FastifyRequest): Promise<Caller> {
  const header = request.headers.authorization;
  if (header === undefined) return ANONYMOUS;
  const m = /^Bearer\s+(\S{1,200})$/i.exec(header);
  if (!m?.[1]) throw new PatchbayError('AUTH_INVALID', 'the Authorization header must be "Bearer <token>"');
  const token = await store.tokens.verify(m[1]);
  if (!token) throw new PatchbayError('AUTH_INVALID', 'the token is unknown or revoked');
  return { tokenId: token.id, tokenName: token.name, scopes: token.scopes };
}

/** The bucket a request is counted in: its token, else the peer (or a trusted proxy's client) address. */
export function rateLimitKey(request: FastifyRequest): string {
  return request.caller.tokenId !== null ? `token:${request.caller.tokenId}` : `ip:${request.ip}`;
}

export function isAdmin(caller: Caller): boolean {
  return caller.scopes.includes('admin');
}

/** Why the caller may not use this route; null if it may. */
function refusal(request: FastifyRequest, anonymousRead: boolean): PatchbayError | null {
  const scope = request.routeOptions.config.scope;
  if (scope === undefined) return null;
  if (request.authError) return request.authError;
  const caller = request.caller;
  if (isAdmin(caller) || caller.scopes.includes(scope)) return null;
  if (scope === 'read' && anonymousRead) return null;
  if (caller.tokenId === null) return new PatchbayError('AUTH_REQUIRED', `this needs a token with the "${scope}" scope`);
  return new PatchbayError('AUTH_FORBIDDEN', `the token lacks the "${scope}" scope`);
}

export default fp(function auth(app: FastifyInstance, opts: AuthOptions, done: (err?: Error) => void) {
  app.decorateRequest('caller', null as unknown as Caller);
  app.decorateRequest('authError', null);
  app.addHook('onRequest', async (request) => {
    request.caller = ANONYMOUS;
    request.authError = null;
    if (request.routeOptions.config.scope === undefined) return;
    try {
      request.caller = await identify(opts.store, request);
    } catch (e) {
      if (!isPatchbayError(e) || e.code !== 'AUTH_INVALID') throw e;
      request.authError = e;
    }
  });
  app.addHook('preParsing', (request, _reply, payload, next) => {
    const refused = refusal(request, opts.anonymousRead);
    if (refused) next(refused);
    else next(null, payload);
  });
  done();
}, { name: 'patchbay-auth', dependencies: ['patchbay-errors'] });
