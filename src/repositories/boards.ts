import { and, desc, eq, lt, sql, type SQL } from 'drizzle-orm'
import { boards, users } from '../../drizzle/schema.js'
import type { Pool } from 'mysql2/promise'
import { createBatchLoader } from '../db/batch.js'
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

const MAX_BATCH = 50
// Boards by id, with their authors; one statement text per number of ids (see db/batch.ts).
const byIdStatements = Array.from({ length: MAX_BATCH + 1 }, (_, count) => count === 0
  ? ''
  : 'SELECT b.id, b.title, b.content, u.id AS author_id, u.name AS author_name, b.created_at, b.updated_at ' +
    `FROM boards b JOIN users u ON u.id = b.user_id WHERE b.id IN (${Array(count).fill('?').join(', ')})`)

export function createBoardsRepository (db: Database, pool: Pool) {
  // Reads of single boards that arrive together share one statement.
  const findById = createBatchLoader(async (ids: readonly number[]): Promise<(Board | null)[]> => {
    const [rows] = await pool.execute(byIdStatements[ids.length]!, [...ids])
    const byId = new Map((rows as BoardRow[]).map((row) => [row.id, row]))
    return ids.map((id) => {
      const row = byId.get(id)
      return row
        ? { id: row.id, title: row.title, content: row.content, author: { id: row.author_id, name: row.author_name }, created_at: row.created_at, updated_at: row.updated_at }
        : null
    })
  }, { maxBatchSize: MAX_BATCH })

  // The other statements on the request path are prepared once: building a drizzle query costs
  // more CPU than the round trip it describes (a quarter of a read's time in npm run bench).
  const authorOf = db.select({ userId: boards.user_id }).from(boards).where(eq(boards.id, sql.placeholder('id'))).prepare()
  const insert = db.insert(boards).values({
    title: sql.placeholder('title'),
    content: sql.placeholder('content'),
    user_id: sql.placeholder('user_id'),
  }).prepare()

  /**
   * A page, newest first. The page is cut from `boards` alone in a derived table (primary key,
   * or (user_id, id) for one author) and only then joined to its authors: joined directly,
   * MariaDB drives the join from `users` and sorts every board, which took seconds at 100 000
   * boards. One prepared statement per combination of filters.
   */
  function pageStatement (withCursor: boolean, withAuthor: boolean) {
    const conditions: SQL[] = []
    if (withCursor) conditions.push(lt(boards.id, sql.placeholder('beforeId')))
    if (withAuthor) conditions.push(eq(boards.user_id, sql.placeholder('authorId')))
    const page = db.select().from(boards).where(and(...conditions)).orderBy(desc(boards.id)).limit(sql.placeholder('limit')).as('page')
    return db.select({
      id: page.id,
      title: page.title,
      content: page.content,
      author: { id: users.id, name: users.name },
      created_at: page.created_at,
      updated_at: page.updated_at,
    }).from(page).innerJoin(users, eq(users.id, page.user_id)).orderBy(desc(page.id)).prepare()
  }
  const pages = [[pageStatement(false, false), pageStatement(false, true)], [pageStatement(true, false), pageStatement(true, true)]] as const

  return {
    findById,

    /** Newest first; `limit + 1` rows so the caller knows whether a next page exists. */
    async list ({ limit, beforeId, authorId }: BoardQuery): Promise<Board[]> {
      const statement = pages[beforeId === undefined ? 0 : 1][authorId === undefined ? 0 : 1]
      return statement.execute({ limit: limit + 1, beforeId, authorId })
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
