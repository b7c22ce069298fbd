import { and, asc, count, eq, inArray, isNull, lt, lte, or, sql } from 'drizzle-orm'
import { outbox } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import { deleteInBatches } from '../db/delete-in-batches.js'

export type MailKind = 'password_reset' | 'email_verification'
export type OutboxKind = MailKind | 'webhook'

/** A row claimed for sending: only the holder of `claim` may finish it. */
export interface ClaimedRow {
  id: number
  kind: OutboxKind
  user_id: number | null
  payload: string | null
  attempts: number
  created_at: Date
  claim: string
}

const now = sql`CURRENT_TIMESTAMP(3)`
const inFuture = (ms: number) => sql`CURRENT_TIMESTAMP(3) + INTERVAL ${Math.round(ms) * 1000} MICROSECOND`

export function createOutboxRepository (db: Database) {
  const held = (id: number, claim: string) => and(eq(outbox.id, id), eq(outbox.claim, claim), eq(outbox.state, 'pending'))

  return {
    /**
     * A mail to the user, inside the caller's transaction (API.md §15: with the change that asks
     * for it). `userId` null is a request for an address no account has: the row is written all the
     * same, so that both answers of POST /password/forgot cost one commit, and skipped when claimed.
     */
    async enqueueMail (tx: Database, kind: MailKind, userId: number | null): Promise<void> {
      await tx.insert(outbox).values({ kind, user_id: userId })
    },

    /**
     * Claims up to `limit` due rows for `leaseMs` under `claim`, and returns them. Due: pending,
     * `available_at` passed (never claimed, lease over, or retry time come), and no earlier row
     * of its order key still pending. The claim is a conditional UPDATE of each row, so of two
     * instances only one gets a row: on one server the row lock orders them and the second finds
     * the condition false; on a Galera cluster both may write it through different nodes, and
     * certification fails the second commit (1213), which claims nothing and tries again later.
     */
    async claimDue (claim: string, limit: number, leaseMs: number): Promise<ClaimedRow[]> {
      // outbox_state_available_at_idx; the order check by outbox_order_key_state_id_idx.
      const due = await db.select({ id: outbox.id }).from(outbox, { forceIndex: 'outbox_state_available_at_idx' })
        .where(and(
          eq(outbox.state, 'pending'),
          lte(outbox.available_at, now),
          or(isNull(outbox.order_key), sql`NOT EXISTS (SELECT 1 FROM \`outbox\` AS \`earlier\` WHERE \`earlier\`.\`order_key\` = ${outbox.order_key} AND \`earlier\`.\`state\` = 'pending' AND \`earlier\`.\`id\` < ${outbox.id})`),
        ))
        .orderBy(asc(outbox.available_at)).limit(limit)
      if (due.length === 0) return []
      const ids = due.map((row) => row.id)
      const [result] = await db.update(outbox)
        .set({ claim, available_at: inFuture(leaseMs), attempts: sql`${outbox.attempts} + 1` })
        .where(and(inArray(outbox.id, ids), eq(outbox.state, 'pending'), lte(outbox.available_at, now)))
      if (result.affectedRows === 0) return []
      const rows = await db.select({
        id: outbox.id, kind: outbox.kind, user_id: outbox.user_id, payload: outbox.payload, attempts: outbox.attempts, created_at: outbox.created_at,
      }).from(outbox).where(and(inArray(outbox.id, ids), eq(outbox.claim, claim)))
      return rows.map((row) => ({ ...row, claim })).sort((a, b) => a.id - b.id)
    },

    /** Stores what a mail says once it is made (see src/outbox/mail.ts); false: the claim was lost. */
    async savePayload (tx: Database, row: ClaimedRow, payload: string): Promise<boolean> {
      const [result] = await tx.update(outbox).set({ payload }).where(held(row.id, row.claim))
      return result.affectedRows === 1
    },

    /** Finished: sent, skipped (nothing to send) or dead (given up, with the reason). The payload goes. */
    async finish (row: ClaimedRow, state: 'sent' | 'skipped' | 'dead', reason: string | null = null, tx: Database = db): Promise<void> {
      await tx.update(outbox).set({ state, payload: null, claim: null, finished_at: now, ...(reason !== null && { last_error: reason.slice(0, 200) }) })
        .where(held(row.id, row.claim))
    },

    /** Failed this time: tried again after `delayMs` by whichever instance claims it then. */
    async retryLater (row: ClaimedRow, delayMs: number, reason: string): Promise<void> {
      await db.update(outbox).set({ claim: null, available_at: inFuture(delayMs), last_error: reason.slice(0, 200) })
        .where(held(row.id, row.claim))
    },

    /**
     * Depth and the age of the oldest pending row, in seconds (the worker's log line and the
     * /metrics gauges). The age is reckoned by the database's clock, which wrote created_at:
     * every instance reports the same age, whatever its own clock says.
     */
    async stats (): Promise<{ pending: number, oldestAgeSeconds: number }> {
      const [row] = await db.select({
        pending: count(),
        ageMicroseconds: sql<string | number | null>`TIMESTAMPDIFF(MICROSECOND, MIN(${outbox.created_at}), ${now})`,
      }).from(outbox).where(eq(outbox.state, 'pending'))
      const age = Number(row?.ageMicroseconds ?? 0)
      return { pending: row?.pending ?? 0, oldestAgeSeconds: Math.max(0, Math.round(age / 1000) / 1000) }
    },

    /** Finished rows older than `keepMs`: what was sent no longer needs its row. */
    purgeFinished (keepMs: number, batchSize?: number): Promise<number> {
      return deleteInBatches((limit) => db.delete(outbox).where(lt(outbox.finished_at, sql`CURRENT_TIMESTAMP(3) - INTERVAL ${keepMs * 1000} MICROSECOND`)).limit(limit), batchSize)
    },
  }
}

export type OutboxRepository = ReturnType<typeof createOutboxRepository>
