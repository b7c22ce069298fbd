import { and, eq, isNull, lt, or, sql } from 'drizzle-orm'
import { loginFailures } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'

export interface LoginThrottleState {
  failures: number
  /** Seconds until the lock ends; null when the address is not locked. */
  lockedForSeconds: number | null
}

export function createLoginFailuresRepository (db: Database) {
  const now = sql`CURRENT_TIMESTAMP(3)`
  return {
    async find (email: string): Promise<LoginThrottleState | null> {
      // The database's clock decides, as it does when the lock is set.
      const [row] = await db.select({
        failures: loginFailures.failures,
        lockedForSeconds: sql<number | null>`IF(${loginFailures.locked_until} > ${now}, CEIL(TIMESTAMPDIFF(MICROSECOND, ${now}, ${loginFailures.locked_until}) / 1000000), NULL)`.mapWith(Number),
      }).from(loginFailures).where(eq(loginFailures.email, email))
      return row ?? null
    },

    /**
     * Counts one failure in the current window (a new window once the old one is over), and
     * locks the address for `windowMs` when the count reaches `maxFailures`. One upsert, so
     * concurrent failures from many addresses are all counted. MariaDB evaluates the
     * assignments left to right: `locked_until` sees the new `failures`.
     */
    async recordFailure (email: string, maxFailures: number, windowMs: number): Promise<void> {
      const windowOver = sql`${loginFailures.window_started_at} < ${now} - INTERVAL ${windowMs * 1000} MICROSECOND`
      const lockUntil = sql`${now} + INTERVAL ${windowMs * 1000} MICROSECOND`
      await db.insert(loginFailures)
        .values({ email, failures: 1, window_started_at: now, locked_until: maxFailures <= 1 ? lockUntil : null })
        .onDuplicateKeyUpdate({
          set: {
            failures: sql`IF(${windowOver}, 1, ${loginFailures.failures} + 1)`,
            window_started_at: sql`IF(${windowOver}, ${now}, ${loginFailures.window_started_at})`,
            locked_until: sql`IF(${loginFailures.failures} >= ${maxFailures}, ${lockUntil}, NULL)`,
          },
        })
    },

    async clear (email: string): Promise<void> {
      await db.delete(loginFailures).where(eq(loginFailures.email, email))
    },

    /** Rows whose window and lock are both over. */
    async purgeExpired (windowMs: number): Promise<number> {
      const [result] = await db.delete(loginFailures).where(and(
        lt(loginFailures.window_started_at, sql`${now} - INTERVAL ${windowMs * 1000} MICROSECOND`),
        or(isNull(loginFailures.locked_until), lt(loginFailures.locked_until, now)),
      ))
      return result.affectedRows
    },
  }
}
