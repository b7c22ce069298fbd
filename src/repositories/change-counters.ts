import { eq, sql } from 'drizzle-orm'
import { changeCounters } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'

/** The counters of drizzle/change-counters.ts: why each exists is written there. */
export type CounterName = 'admins' | 'signing_keys'

/** Adds one to the counter, inside the caller's transaction: one primary-key upsert, a row written. */
export async function bumpCounter (tx: Database, name: CounterName): Promise<void> {
  await tx.insert(changeCounters).values({ name, value: 1 }).onDuplicateKeyUpdate({ set: { value: sql`${changeCounters.value} + 1` } })
}

/** The counter's value; 0 before its first change. One primary-key read. */
export async function readCounter (db: Database, name: CounterName): Promise<number> {
  const [row] = await db.select({ value: changeCounters.value }).from(changeCounters).where(eq(changeCounters.name, name))
  return row?.value ?? 0
}
