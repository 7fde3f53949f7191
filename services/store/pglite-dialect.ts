/**
 * A Kysely dialect over PGlite (PostgreSQL compiled to WebAssembly, running
 * in this process). It reuses Kysely's PostgreSQL adapter, compiler and
 * introspector; only the driver is ours.
 *
 * PGlite is one database session. Kysely hands out a "connection" per query
 * and holds one for the length of a transaction, so the driver lends the
 * session to one holder at a time (a FIFO lock): a transaction's BEGIN ...
 * COMMIT is never interleaved with another caller's statements.
 */
import type { PGlite, Results } from '@electric-sql/pglite';
import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

/** A FIFO mutex: acquire() resolves with the function that releases it. */
class Lock {
  #tail: Promise<void> = Promise.resolve();

  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const acquired = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => held);
    return acquired;
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

class PGliteConnection implements DatabaseConnection {
  readonly #pg: PGlite;

  constructor(pg: PGlite) {
    this.#pg = pg;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const res: Results<R> = await this.#pg.query<R>(query.sql, [...query.parameters]);
    const command = res.command?.toUpperCase();
    const changes = command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE';
    const affected = res.affectedRows ?? res.rowCount ?? 0;
    return changes ? { rows: res.rows, numAffectedRows: BigInt(affected) } : { rows: res.rows };
  }

  // eslint-disable-next-line require-yield -- the interface wants a generator
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    await Promise.resolve();
    throw new Error('PGlite does not stream query results');
  }
}

class PGliteDriver implements Driver {
  readonly #pg: PGlite;
  readonly #lock = new Lock();
  readonly #releases = new WeakMap<DatabaseConnection, () => void>();
  #destroyed = false;
  #closing: Promise<void> | null = null;

  constructor(pg: PGlite) {
    this.#pg = pg;
  }

  async init(): Promise<void> {
    await this.#pg.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const release = await this.#lock.acquire();
    if (this.#destroyed) {
      release();
      throw new Error('the PGlite database is closed');
    }
    const conn = new PGliteConnection(this.#pg);
    this.#releases.set(conn, release);
    return conn;
  }

  async releaseConnection(conn: DatabaseConnection): Promise<void> {
    await Promise.resolve();
    const release = this.#releases.get(conn);
    this.#releases.delete(conn);
    release?.();
  }

  async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let text = 'start transaction';
    if (settings.isolationLevel !== undefined) text += ` isolation level ${settings.isolationLevel}`;
    if (settings.accessMode !== undefined) text += ` ${settings.accessMode}`;
    await conn.executeQuery(CompiledQuery.raw(text));
  }

  async commitTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw('rollback'));
  }

  async savepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`savepoint ${quoteIdent(name)}`));
  }

  async rollbackToSavepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`rollback to savepoint ${quoteIdent(name)}`));
  }

  async releaseSavepoint(conn: DatabaseConnection, name: string): Promise<void> {
    await conn.executeQuery(CompiledQuery.raw(`release savepoint ${quoteIdent(name)}`));
  }

  /** Waits for the current holder (a transaction in flight) to finish, then closes PGlite. Idempotent. */
  destroy(): Promise<void> {
    this.#closing ??= (async () => {
      const release = await this.#lock.acquire();
      try {
        this.#destroyed = true;
        if (!this.#pg.closed) await this.#pg.close();
      } finally {
        release();
      }
    })();
    return this.#closing;
  }
}

/** The dialect for `new Kysely({ dialect: new PGliteDialect(pg) })`; Kysely's destroy() closes `pg`. */
export class PGliteDialect implements Dialect {
  readonly #pg: PGlite;

  constructor(pg: PGlite) {
    this.#pg = pg;
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createDriver(): Driver {
    return new PGliteDriver(this.#pg);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}
