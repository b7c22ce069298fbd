import { datetime, int, mysqlTable, varchar } from 'drizzle-orm/mysql-core'

// Failed logins per email address, for the per-account lockout (OWASP ASVS 2.2.1): shared by
// every instance, unlike the per-IP rate limits, which each process keeps in memory.
export const loginFailures = mysqlTable('login_failures', {
  // The normalised (trimmed, lower-case) address as typed, whether or not an account has it,
  // so a locked-out answer does not reveal which addresses exist.
  email: varchar('email', { length: 254 }).primaryKey(),
  failures: int('failures', { unsigned: true }).notNull(),
  window_started_at: datetime('window_started_at', { mode: 'date', fsp: 3 }).notNull(),
  locked_until: datetime('locked_until', { mode: 'date', fsp: 3 }),
})
