/**
 * Every error leaves as {"error": {"code", "message"}} with a status that
 * matches the code; never a stack trace. Server-side faults are logged with
 * the request id and answered with a generic message.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { errorMessage, isPatchbayError } from '../../domain/errors.ts';

/** HTTP status for each error code patchbay raises at the API. */
const STATUS: Record<string, number> = {
  MBOX_MALFORMED: 400,
  SERIES_NO_PATCHES: 400,
  SERIES_INCOMPLETE: 400,
  SERIES_NO_DIFF: 400,
  SERIES_TOO_LARGE: 400,
  PATCH_BINARY: 400,
  PATCH_PATH_ESCAPES: 400,
  PATCH_NO_DIFF: 400,
  TREE_UNKNOWN: 400,
  SUITE_UNKNOWN: 400,
  SUITES_EMPTY: 400,
  BASE_INVALID: 400,
  RUNS_ON_INVALID: 400,
  RUNNER_AUTH_INVALID: 401,
  RUNNER_TOKEN_INVALID: 401,
  RUNNER_REVOKED: 401,
  RUNNER_UNKNOWN: 404,
  RUNNER_NAME_TAKEN: 409,
  LEASE_STALE: 409,
  ARTIFACT_EXISTS: 409,
  ARTIFACT_CHECKSUM: 400,
  MESSAGE_ID_INVALID: 400,
  INBOX_INVALID: 400,
  INBOX_NOT_ALLOWED: 400,
  VALIDATION: 400,
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  AUTH_FORBIDDEN: 403,
  NOT_FOUND: 404,
  JOB_UNKNOWN: 404,
  SERIES_UNKNOWN: 404,
  ARTIFACT_UNKNOWN: 404,
  OUTBOX_NOT_FOUND: 404,
  OUTBOX_NOT_COMPOSED: 404,
  JOB_FINISHED: 409,
  OUTBOX_STATE_CONFLICT: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  JOB_QUOTA: 429,
  TOO_MANY_STREAMS: 429,
  STREAMS_FULL: 503,
  METRICS_UNAVAILABLE: 503,
  QUEUE_FULL: 503,
  LOG_CURSOR_INVALID: 400,
  STORE_BAD_CURSOR: 400,
  INBOX_FETCH_FAILED: 502,
  INBOX_NOT_FOUND: 404,
};

export function statusFor(code: string, retryable: boolean): number {
  return STATUS[code] ?? (retryable ? 503 : 500);
}

export default fp(function errors(app: FastifyInstance, _opts: unknown, done: (err?: Error) => void) {
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0] ?? ''}` } });
  });
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isPatchbayError(err)) {
      const status = statusFor(err.code, err.retryable);
      // details and cause say what failed behind a generic message (which host, which status): the log's, never the client's.
      if (status >= 500) {
        request.log.error({ code: err.code, err: err.message, details: err.details, ...(err.cause === undefined ? {} : { cause: errorMessage(err.cause) }) }, 'request failed');
      }
      // A code the API does not list (a store or Redis failure deep down) may
      // carry addresses and driver messages: the client gets the code only.
      const message = Object.hasOwn(STATUS, err.code) ? err.message : `the service could not do this now (request ${request.id}); try again later`;
      return reply.code(status).send({ error: { code: err.code, message } });
    }
    if (err.validation) {
      return reply.code(400).send({ error: { code: 'VALIDATION', message: err.message } });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({ error: { code: 'BODY_TOO_LARGE', message: `the body is larger than the limit of ${request.routeOptions.bodyLimit} bytes` } });
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.code(415).send({ error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: `send application/mbox (or text/plain) with the series, or application/json with a messageId` } });
    }
    if (err.statusCode === 429) {
      return reply.code(429).send({ error: { code: 'RATE_LIMITED', message: err.message } });
    }
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: { code: err.code, message: err.message } });
    }
    request.log.error({ err }, 'internal error');
    return reply.code(500).send({ error: { code: 'INTERNAL', message: `internal error (request ${request.id})` } });
  });
  done();
}, { name: 'patchbay-errors' });
