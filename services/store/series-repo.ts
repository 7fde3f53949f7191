/**
 * Series and their patches: written once, in one transaction, at intake.
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import { PatchbayError } from '../domain/errors.ts';
import type { FileChange, Trailer } from '../domain/patch.ts';
import { seriesMbox, type Series } from '../domain/series.ts';
import { SERIES_SOURCES, type Database, type SeriesSource, type SeriesTable } from './schema.ts';
import {
  afterCursor,
  checkLimit,
  cleanText,
  decodeCursor,
  guard,
  jsonb,
  newId,
  toBuffer,
  toPage,
  type Page,
} from './util.ts';

export interface SeriesRecord {
  id: string;
  title: string;
  version: number;
  total: number;
  isRfc: boolean;
  rootMessageId: string;
  changeId: string | null;
  baseCommit: string | null;
  treeTags: string[];
  source: SeriesSource;
  inboxUrl: string | null;
  contentHash: string;
  /** The id of the token that submitted it; null for the lore watcher and the CLI. */
  submittedBy: string | null;
  createdAt: Date;
}

export interface StoredPatch {
  seriesId: string;
  /** 1..total; 0 is the cover letter. */
  counter: number;
  subject: string;
  messageId: string;
  authorName: string;
  authorEmail: string;
  files: FileChange[];
  trailers: Trailer[];
  /** The message as received, byte for byte: raw.toString('latin1') is MailMessage.raw. */
  raw: Buffer;
}

export interface CreateSeriesInput {
  series: Series;
  source: SeriesSource;
  inboxUrl: string | null;
  submittedBy: string | null;
  /** seriesContentHash(series): sha256 hex of the patches' mboxrd. */
  contentHash: string;
}

export interface ListSeriesOptions {
  limit: number;
  cursor?: string;
  /** Series whose subject carries this tree tag ("[PATCH net-next ...]"). */
  tree?: string;
  /** A substring of the title, case-insensitive. */
  q?: string;
}

/** sha256 hex of the patches' mboxrd (what git am gets, no cover letter): the key of an idempotent submission. */
export function seriesContentHash(series: Series): string {
  return createHash('sha256').update(seriesMbox(series), 'latin1').digest('hex');
}

function toRecord(r: Selectable<SeriesTable>): SeriesRecord {
  return {
    id: r.id,
    title: r.title,
    version: r.version,
    total: r.total,
    isRfc: r.is_rfc,
    rootMessageId: r.root_message_id,
    changeId: r.change_id,
    baseCommit: r.base_commit,
    treeTags: r.tree_tags,
    source: r.source,
    inboxUrl: r.inbox_url,
    contentHash: r.content_hash,
    submittedBy: r.submitted_by,
    createdAt: r.created_at,
  };
}

/** created_at exactly as PostgreSQL holds it (microseconds), for cursors; a JS Date keeps only milliseconds. */
const CURSOR_TS = sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, '\\$&');
}

export class SeriesRepo {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Inserts the series and its patches (and cover letter, as counter 0) in one transaction. */
  async create(input: CreateSeriesInput): Promise<SeriesRecord> {
    const { series } = input;
    if (!/^[0-9a-f]{64}$/.test(input.contentHash)) {
      throw new PatchbayError('STORE_BAD_ARGUMENT', 'contentHash must be a sha256 in lowercase hex.', {
        details: { contentHash: input.contentHash },
      });
    }
    if (!(SERIES_SOURCES as readonly string[]).includes(input.source)) {
      throw new PatchbayError('STORE_BAD_ARGUMENT', `Unknown series source "${input.source}".`);
    }
    const id = newId('s');
    const patches = series.patches.map((p) => ({
      series_id: id,
      counter: p.counter,
      subject: cleanText(p.message.subject),
      message_id: cleanText(p.message.messageId),
      author_name: cleanText(p.message.from.name),
      author_email: cleanText(p.message.from.email),
      files: jsonb(p.files),
      trailers: jsonb(p.trailers),
      raw: Buffer.from(p.message.raw, 'latin1'),
    }));
    if (series.cover !== null) {
      const c = series.cover;
      patches.unshift({
        series_id: id,
        counter: 0,
        subject: cleanText(c.subject),
        message_id: cleanText(c.messageId),
        author_name: cleanText(c.from.name),
        author_email: cleanText(c.from.email),
        files: '[]',
        trailers: '[]',
        raw: Buffer.from(c.raw, 'latin1'),
      });
    }
    return guard('could not store the series', () =>
      this.#db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto('series')
          .values({
            id,
            title: cleanText(series.title),
            version: series.version,
            total: series.total,
            is_rfc: series.isRfc,
            root_message_id: cleanText(series.rootMessageId),
            change_id: series.changeId === null ? null : cleanText(series.changeId),
            base_commit: series.baseCommit,
            tree_tags: jsonb(series.treeTags),
            source: input.source,
            inbox_url: input.inboxUrl,
            content_hash: input.contentHash,
            submitted_by: input.submittedBy,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        // A 25-patch series is one statement; the chunks keep a huge one under the parameter limit.
        for (let i = 0; i < patches.length; i += 500) {
          await trx.insertInto('patches').values(patches.slice(i, i + 500)).execute();
        }
        return toRecord(row);
      }),
    );
  }

  /** Removes a series (and its patches) that no job refers to, as its series or its prerequisites: intake's undo. False if a job does. */
  async deleteIfUnused(id: string): Promise<boolean> {
    const rows = await guard('could not remove the series', () =>
      this.#db.deleteFrom('series').where('id', '=', id)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('jobs').select('jobs.id').where((j) => j.or([j('jobs.series_id', '=', j.ref('series.id')), j('jobs.prerequisites_id', '=', j.ref('series.id'))])))))
        .returning('id').execute(),
    );
    return rows.length > 0;
  }

  async get(id: string): Promise<SeriesRecord | null> {
    const row = await guard('could not read the series', () =>
      this.#db.selectFrom('series').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    return row === undefined ? null : toRecord(row);
  }

  /** The first series stored with this content hash (the oldest), if any. */
  async findByContentHash(hash: string): Promise<SeriesRecord | null> {
    const row = await guard('could not look the series up', () =>
      this.#db
        .selectFrom('series')
        .selectAll()
        .where('content_hash', '=', hash)
        .orderBy('created_at', 'asc')
        .orderBy('id', 'asc')
        .limit(1)
        .executeTakeFirst(),
    );
    return row === undefined ? null : toRecord(row);
  }

  /** Newest first; pass nextCursor back to get the next page. */
  async list(opts: ListSeriesOptions): Promise<Page<SeriesRecord>> {
    const limit = checkLimit(opts.limit);
    const after = opts.cursor === undefined ? null : decodeCursor(opts.cursor, 's');
    const rows = await guard('could not list series', () => {
      let q = this.#db.selectFrom('series').selectAll().select(CURSOR_TS.as('cursor_ts'));
      if (after !== null) {
        q = q.where(afterCursor(after));
      }
      if (opts.tree !== undefined) q = q.where(sql<boolean>`tree_tags @> ${jsonb([opts.tree])}::jsonb`);
      if (opts.q !== undefined && opts.q !== '') {
        q = q.where(sql<boolean>`title ilike ${`%${escapeLike(cleanText(opts.q))}%`}`);
      }
      return q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    });
    return toPage(rows, limit, toRecord);
  }

  /** The patches 1..total, in order (the cover letter is cover()). */
  async patches(seriesId: string): Promise<StoredPatch[]> {
    const rows = await guard('could not read the patches', () =>
      this.#db
        .selectFrom('patches')
        .selectAll()
        .where('series_id', '=', seriesId)
        .where('counter', '>', 0)
        .orderBy('counter', 'asc')
        .execute(),
    );
    return rows.map(toPatch);
  }

  /** The cover letter (0/N), when the series had one. */
  async cover(seriesId: string): Promise<StoredPatch | null> {
    const row = await guard('could not read the cover letter', () =>
      this.#db
        .selectFrom('patches')
        .selectAll()
        .where('series_id', '=', seriesId)
        .where('counter', '=', 0)
        .executeTakeFirst(),
    );
    return row === undefined ? null : toPatch(row);
  }
}

function toPatch(r: Selectable<Database['patches']>): StoredPatch {
  return {
    seriesId: r.series_id,
    counter: r.counter,
    subject: r.subject,
    messageId: r.message_id,
    authorName: r.author_name,
    authorEmail: r.author_email,
    files: r.files as FileChange[],
    trailers: r.trailers as Trailer[],
    raw: toBuffer(r.raw),
  };
}
