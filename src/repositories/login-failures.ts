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

  async function find (email: string): Promise<LoginThrottleState | null> {
    // The database's clock decides, as it does when the lock is set.
    const [row] = await db.select({
      failures: loginFailures.failures,
      lockedForSeconds: sql<number | null>`IF(${loginFailures.locked_until} > ${now}, CEIL(TIMESTAMPDIFF(MICROSECOND, ${now}, ${loginFailures.locked_until}) / 1000000), NULL)`.mapWith(Number),
    }).from(loginFailures).where(eq(loginFailures.email, email))
    return row ?? null
  }

  return {
    find,

    /**
     * Counts one password check for this email BEFORE it runs (API.md §12), and says whether it
     * may run: of any burst, however concurrent and through however many instances, at most
     * `maxFailures` checks run in a window; the others are refused without any argon2 work. One
     * upsert: the row lock orders concurrent attempts, and LAST_INSERT_ID(expr) hands this
     * statement's own count back in the OK packet (no second read that another attempt could
     * slip in front of). A new window starts once the old one is over; reaching the limit locks
     * the email for `windowMs`, during which further attempts are refused and extend nothing.
     * MariaDB evaluates the assignments left to right: `window_started_at` and `locked_until`
     * see the new `failures`, and the old `locked_until`. A successful check clears the row.
     */
    async countAttempt (email: string, maxFailures: number, windowMs: number): Promise<{ allowed: true } | { allowed: false, retryAfterSeconds: number }> {
      const windowOver = sql`${loginFailures.window_started_at} < ${now} - INTERVAL ${windowMs * 1000} MICROSECOND`
      const locked = sql`${loginFailures.locked_until} IS NOT NULL AND ${loginFailures.locked_until} > ${now}`
      const lockUntil = sql`${now} + INTERVAL ${windowMs * 1000} MICROSECOND`
      const [result] = await db.insert(loginFailures)
        .values({ email, failures: sql`LAST_INSERT_ID(1)`, window_started_at: now, locked_until: maxFailures <= 1 ? lockUntil : null })
        .onDuplicateKeyUpdate({
          set: {
            failures: sql`LAST_INSERT_ID(IF(${locked}, ${loginFailures.failures} + 1, IF(${windowOver}, 1, ${loginFailures.failures} + 1)))`,
            window_started_at: sql`IF(${locked} OR NOT (${windowOver}), ${loginFailures.window_started_at}, ${now})`,
            locked_until: sql`IF(${locked}, ${loginFailures.locked_until}, IF(${loginFailures.failures} >= ${maxFailures}, ${lockUntil}, NULL))`,
          },
        })
      if (result.insertId <= maxFailures) return { allowed: true }
      const state = await find(email)
      return { allowed: false, retryAfterSeconds: Math.max(1, state?.lockedForSeconds ?? Math.ceil(windowMs / 1000)) }
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
