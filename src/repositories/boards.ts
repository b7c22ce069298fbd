import { and, desc, eq, lt, sql, type SQL } from 'drizzle-orm'
import { boards, users } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import type { Board } from '../schemas/shared.js'

// The author is joined in the same query: a page of boards is one statement, whatever its size.
const boardColumns = {
  id: boards.id,
  title: boards.title,
  content: boards.content,
  author: { id: users.id, name: users.name },
  created_at: boards.created_at,
  updated_at: boards.updated_at,
}

export interface BoardQuery {
  limit: number
  /** Only boards older than this id (the previous page's last). */
  beforeId?: number
  authorId?: number
}

export function createBoardsRepository (db: Database) {
  const selectBoards = () => db.select(boardColumns).from(boards).innerJoin(users, eq(users.id, boards.user_id))

  async function findById (id: number): Promise<Board | null> {
    const [row] = await selectBoards().where(eq(boards.id, id))
    return row ?? null
  }

  return {
    findById,

    /**
     * Newest first; `limit + 1` rows so the caller knows whether a next page exists. The page is
     * cut from `boards` alone in a derived table (primary key, or (user_id, id) for one author)
     * and only then joined to its authors: joined directly, MariaDB drives the join from
     * `users` and sorts every board, which took seconds at 100 000 boards.
     */
    async list ({ limit, beforeId, authorId }: BoardQuery): Promise<Board[]> {
      const conditions: SQL[] = []
      if (beforeId !== undefined) conditions.push(lt(boards.id, beforeId))
      if (authorId !== undefined) conditions.push(eq(boards.user_id, authorId))
      const page = db.select().from(boards).where(and(...conditions)).orderBy(desc(boards.id)).limit(limit + 1).as('page')
      return db.select({
        id: page.id,
        title: page.title,
        content: page.content,
        author: { id: users.id, name: users.name },
        created_at: page.created_at,
        updated_at: page.updated_at,
      }).from(page).innerJoin(users, eq(users.id, page.user_id)).orderBy(desc(page.id))
    },

    /** The author's id, for the ownership check; null when the board does not exist. */
    async findAuthorId (id: number): Promise<number | null> {
      const [row] = await db.select({ userId: boards.user_id }).from(boards).where(eq(boards.id, id))
      return row?.userId ?? null
    },

    async create (board: { title: string, content: string, user_id: number }): Promise<Board> {
      const [result] = await db.insert(boards).values(board)
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
