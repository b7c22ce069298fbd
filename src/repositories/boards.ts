import { eq, sql } from 'drizzle-orm'
import { boards } from '../../drizzle/schema.js'
import type { Pool } from 'mysql2/promise'
import { createBatchLoader, MAX_BATCH_SIZE, statementsBySize } from '../db/batch.js'
import type { Database } from '../db/database.js'
import type { Board } from '../schemas/shared.js'

export interface BoardQuery {
  limit: number
  /** Only boards older than this id (the previous page's last). */
  beforeId?: number
  authorId?: number
}

interface BoardRow {
  id: number
  title: string
  content: string
  author_id: number
  author_name: string
  created_at: Date
  updated_at: Date
}

const toBoard = (row: BoardRow): Board => ({
  id: row.id,
  title: row.title,
  content: row.content,
  author: { id: row.author_id, name: row.author_name },
  created_at: row.created_at,
  updated_at: row.updated_at,
})

/**
 * A board with its author. The form forces the plan: MariaDB picks join order and join method
 * from table statistics, and on a deployment with two users and 100 000 boards it joined the
 * small `users` table through a block-nested-loop buffer, which throws the index order away,
 * so every page read and sorted every board (issue 12). STRAIGHT_JOIN fixes the order (boards
 * first, in the order of the index the page walks) and FORCE INDEX fixes each access: boards
 * through the named index, each author by primary key (eq_ref, which MariaDB never buffers when
 * the order must be kept, whatever join_cache_level is). A correlated subquery for the name
 * would force the same, at about 20 % more time per page.
 */
const selectBoards = (boardsIndex: 'PRIMARY' | 'boards_user_id_id_idx', extraColumns = '') =>
  `SELECT STRAIGHT_JOIN ${extraColumns}b.id, b.title, b.content, u.id AS author_id, u.name AS author_name, b.created_at, b.updated_at ` +
  `FROM boards b FORCE INDEX (${boardsIndex}) JOIN users u FORCE INDEX (PRIMARY) ON u.id = b.user_id`

// Boards by id, for each number of ids: a primary-key lookup per id.
const byIdStatements = statementsBySize(MAX_BATCH_SIZE, (count) =>
  `${selectBoards('PRIMARY')} WHERE b.id IN (${Array(count).fill('?').join(', ')})`)

/**
 * Pages, newest first: one parenthesised SELECT per page, joined by UNION ALL, each tagged with
 * its position (q) in the batch. Keyset: a page starts below the last id of the previous one
 * (below every id for page 1), so page 10 000 costs what page 1 does. Each walks an index
 * backwards from the cursor and stops after `limit` rows: the primary key for all boards,
 * (user_id, id) for one author's, even when that author owns every board (where the primary key
 * would look as good to the optimizer) or 1 % of them spread through the table (where walking
 * the primary key would read a hundred rows for each one sent).
 */
const MAX_PAGES = 20
const pageStatement = (withAuthor: boolean, count: number) => Array.from({ length: count }, () =>
  `(${selectBoards(withAuthor ? 'boards_user_id_id_idx' : 'PRIMARY', '? AS q, ')} ` +
  `WHERE ${withAuthor ? 'b.user_id = ? AND ' : ''}b.id < ? ORDER BY b.id DESC LIMIT ?)`).join(' UNION ALL ')
const pageStatements = [false, true].map((withAuthor) => statementsBySize(MAX_PAGES, (count) => pageStatement(withAuthor, count)))
/** Above any id: the "cursor" of page 1. */
const FIRST_PAGE = Number.MAX_SAFE_INTEGER

export function createBoardsRepository (db: Database, pool: Pool) {
  // Reads of single boards that arrive together share one statement.
  const findById = createBatchLoader(async (ids: readonly number[]): Promise<(Board | null)[]> => {
    // Padded with the last id again: the same row, found once.
    const { sql, size } = byIdStatements(ids.length)
    const [rows] = await pool.execute(sql, [...ids, ...Array<number>(size - ids.length).fill(ids.at(-1)!)])
    const byId = new Map((rows as BoardRow[]).map((row) => [row.id, row]))
    return ids.map((id) => {
      const row = byId.get(id)
      return row ? toBoard(row) : null
    })
  })

  // Pages asked for together share one statement; equal pages (the front page, under load) are
  // read once for all who asked. One loader per filter shape, so the statement texts stay few.
  const pageLoaders = [false, true].map((withAuthor) => createBatchLoader(async (queries: readonly Required<BoardQuery>[]) => {
    const { sql, size } = pageStatements[Number(withAuthor)]!(queries.length)
    // Padded with empty pages: no board has an id below 1 (nor an author 0).
    const padded = [...queries, ...Array<Required<BoardQuery>>(size - queries.length).fill({ limit: 1, beforeId: 0, authorId: 0 })]
    const values = padded.flatMap((query, q) => withAuthor
      ? [q, query.authorId, query.beforeId, query.limit]
      : [q, query.beforeId, query.limit])
    const [rows] = await pool.execute(sql, values)
    const pages: Board[][] = queries.map(() => [])
    for (const row of rows as (BoardRow & { q: number })[]) pages[row.q]!.push(toBoard(row))
    return pages.map((page) => page.sort((a, b) => b.id - a.id))
  }, { maxBatchSize: MAX_PAGES, keyOf: (query) => `${query.beforeId}:${query.authorId}:${query.limit}` }))

  // The other statements on the request path are prepared once: building a drizzle query costs
  // more CPU than the round trip it describes (a quarter of a read's time in npm run bench).
  const authorOf = db.select({ userId: boards.user_id }).from(boards).where(eq(boards.id, sql.placeholder('id'))).prepare()
  const insert = db.insert(boards).values({
    title: sql.placeholder('title'),
    content: sql.placeholder('content'),
    user_id: sql.placeholder('user_id'),
  }).prepare()

  return {
    findById,

    /** Newest first; `limit + 1` rows so the caller knows whether a next page exists. */
    list ({ limit, beforeId = FIRST_PAGE, authorId }: BoardQuery): Promise<Board[]> {
      return pageLoaders[authorId === undefined ? 0 : 1]!({ limit: limit + 1, beforeId, authorId: authorId ?? 0 })
    },

    /** The author's id, for the ownership check; null when the board does not exist. */
    async findAuthorId (id: number): Promise<number | null> {
      const [row] = await authorOf.execute({ id })
      return row?.userId ?? null
    },

    async create (board: { title: string, content: string, user_id: number }): Promise<Board> {
      const [result] = await insert.execute(board)
      return (await findById(result.insertId))!
    },

    /** Bulk insert for seeding and benchmarks. */
    async createMany (rows: Array<{ title: string, content: string, user_id: number }>): Promise<void> {
      for (let start = 0; start < rows.length; start += 1000) await db.insert(boards).values(rows.slice(start, start + 1000))
    },

    async update (id: number, changes: { title?: string, content?: string }): Promise<Board | null> {
      await db.update(boards).set({ ...changes, updated_at: sql`CURRENT_TIMESTAMP(3)` }).where(eq(boards.id, id))
      return findById(id)
    },

    async delete (id: number): Promise<boolean> {
      const [result] = await db.delete(boards).where(eq(boards.id, id))
      return result.affectedRows > 0
    },
  }
}
