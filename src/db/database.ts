import { drizzle, type MySql2Database } from 'drizzle-orm/mysql2'
import type { Pool } from 'mysql2/promise'
import * as schema from '../../drizzle/schema.js'

export type Database = MySql2Database<typeof schema>

export function createDatabase (pool: Pool): Database {
  return drizzle(pool, { schema, mode: 'default' })
}
