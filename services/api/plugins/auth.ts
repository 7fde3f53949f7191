/**
 * Bearer tokens (stored hashed) with scopes. A route says what scope it needs
 * in its config; reading may be allowed anonymously by configuration.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { PatchbayError } from '../../domain/errors.ts';
import type { Store, TokenScope } from '../../store/db.ts';

export interface Caller {
  tokenId: string | null;
  scopes: readonly TokenScope[];
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; none: public (health, docs). */
    scope?: TokenScope;
  }
}

const ANONYMOUS: Caller = { tokenId: null, scopes: [] };

export interface AuthOptions {
  store: Store;
  anonymousRead: boolean;
}

async function identify(store: Store, request: FastifyRequest): Promise<Caller> {
  const header = request.headers.authorization;
  if (header === undefined) return ANONYMOUS;
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m?.[1]) throw new PatchbayError('AUTH_INVALID', 'the Authorization header must be "Bearer <token>"');
  const token = await store.tokens.verify(m[1]);
  if (!token) throw new PatchbayError('AUTH_INVALID', 'the token is unknown or revoked');
  return { tokenId: token.id, scopes: token.scopes };
}

export default fp(function auth(app: FastifyInstance, opts: AuthOptions, done: (err?: Error) => void) {
  app.decorateRequest('caller', null as unknown as Caller);
  app.addHook('onRequest', async (request) => {
    request.caller = ANONYMOUS;
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const caller = await identify(opts.store, request);
    request.caller = caller;
    if (caller.scopes.includes('admin') || caller.scopes.includes(scope)) return;
    if (scope === 'read' && opts.anonymousRead) return;
    if (caller.tokenId === null) throw new PatchbayError('AUTH_REQUIRED', `this needs a token with the "${scope}" scope`);
    throw new PatchbayError('AUTH_FORBIDDEN', `the token lacks the "${scope}" scope`);
  });
  done();
}, { name: 'patchbay-auth', dependencies: ['patchbay-errors'] });
