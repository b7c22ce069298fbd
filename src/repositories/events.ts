import { createHash } from 'node:crypto'
import { and, asc, desc, eq, gt, gte, lt, sql } from 'drizzle-orm'
import { outbox, securityEvents, users } from '../../drizzle/schema.js'
import type { Database } from '../db/database.js'
import { deleteInBatches } from '../db/delete-in-batches.js'

/** API.md §15: the kinds of security event recorded so far. */
export const EVENT_TYPES = [
  'user.registered', 'login.succeeded', 'login.failed', 'login.locked', 'token.refresh_reused', 'session.ended', 'logout',
  'password.changed', 'password.reset_requested', 'password.reset', 'email.verified', 'user.updated', 'user.role_changed',
  'user.deleted', 'signing_key.rotated', 'signing_key.revoked', 'api_key.created', 'api_key.revoked',
  'mfa.enabled', 'mfa.disabled', 'mfa.recovery_codes_regenerated', 'mfa.recovery_code_used', 'mfa.failed',
  'identity.linked', 'identity.unlinked', 'oidc.failed', 'passkey.added', 'passkey.removed',
] as const
export type EventType = typeof EVENT_TYPES[number]

/** Who did it, from where: taken from the request (src/routes/events/context.ts). */
export interface EventContext {
  actor_id: number | null
  session_id: string | null
  ip: string | null
  user_agent: string | null
  request_id: string | null
}

export const NO_CONTEXT: EventContext = { actor_id: null, session_id: null, ip: null, user_agent: null, request_id: null }

export interface NewEvent {
  type: EventType
  subject_user_id: number | null
  context: EventContext
  /** What changed, never a secret (no password, token, code or hash). */
  details?: Record<string, unknown>
}

export interface EventRow extends EventContext {
  id: number
  type: string
  occurred_at: Date
  subject_user_id: number | null
  details: Record<string, unknown>
  count: number
}

export interface EventFilter {
  type?: string
  userId?: number
  since?: Date
  beforeId?: number
}

const eventColumns = {
  id: securityEvents.id,
  type: securityEvents.type,
  occurred_at: securityEvents.occurred_at,
  actor_id: securityEvents.actor_id,
  subject_user_id: securityEvents.subject_user_id,
  session_id: securityEvents.session_id,
  ip: securityEvents.ip,
  user_agent: securityEvents.user_agent,
  request_id: securityEvents.request_id,
  details: securityEvents.details,
  count: securityEvents.count,
}

const parsed = (row: Omit<EventRow, 'details'> & { details: string }): EventRow => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> })

function toRow (event: NewEvent) {
  return { type: event.type, subject_user_id: event.subject_user_id, ...event.context, details: JSON.stringify(event.details ?? {}) }
}

/** The webhook of an event leaves in order with the other events of its user (src/outbox/). */
export const webhookOrderKey = (subjectUserId: number | null) => `user:${subjectUserId ?? 0}`

export interface EventLogOptions {
  /** WEBHOOK_URL is set: every event also gets an outbox row, in the same transaction. */
  webhooks: boolean
}

export type RecordEvent = (tx: Database, event: NewEvent) => Promise<void>

/**
 * The audit log. `record` writes an event inside the caller's transaction (API.md §15: the change
 * and its event are all or nothing), and its webhook too when webhooks are on.
 */
export function createEventLog (db: Database, { webhooks }: EventLogOptions) {
  const record: RecordEvent = async (tx, event) => {
    const [result] = await tx.insert(securityEvents).values(toRow(event))
    if (webhooks) await enqueueWebhook(tx, result.insertId, event.subject_user_id)
  }

  async function enqueueWebhook (tx: Database, eventId: number, subjectUserId: number | null) {
    // The body is made from the event row when it is sent: one source of truth.
    await tx.insert(outbox).values({ kind: 'webhook', order_key: webhookOrderKey(subjectUserId), payload: JSON.stringify({ event_id: eventId }) })
  }

  /**
   * Failed and refused logins are written outside any change, and an attacker can make as many as
   * the limits let through: the first of a minute is a row, the rest of that minute for that email
   * only add to its `count` (one upsert on the aggregate key). The email as typed goes into
   * `details` (an email-shaped string, never the password); the subject is the account that has
   * it, found in the same statement.
   */
  async function recordAggregated (type: 'login.failed' | 'login.locked', email: string, context: EventContext, details: Record<string, unknown>) {
    const minute = Math.floor(Date.now() / 60_000)
    const key = `${type}:${minute}:${createHash('sha256').update(email).digest('base64url')}`
    const upsert = (executor: Database) => executor.insert(securityEvents).values({
      ...toRow({ type, subject_user_id: null, context, details: { email, ...details } }),
      subject_user_id: sql`(SELECT ${users.id} FROM ${users} WHERE ${users.email} = ${email})`,
      aggregate_key: key,
    }).onDuplicateKeyUpdate({ set: { count: sql`${securityEvents.count} + 1` } })
    if (!webhooks) {
      await upsert(db)
      return
    }
    await db.transaction(async (tx) => {
      const [result] = await upsert(tx as unknown as Database)
      // affectedRows is 1 for a new row, 2 for a counted repeat: only a new row is news to a webhook.
      if (result.affectedRows !== 1) return
      const [row] = await tx.select({ subject: securityEvents.subject_user_id }).from(securityEvents).where(eq(securityEvents.id, result.insertId))
      await enqueueWebhook(tx as unknown as Database, result.insertId, row?.subject ?? null)
    })
  }

  return {
    record,

    /** An event that records no change of its own (so it needs no caller's transaction). */
    recordAlone: (event: NewEvent) => record(db, event),

    loginFailed: (email: string, context: EventContext, reason: 'wrong_password' | 'unknown_email' | 'no_password' | 'passkey_refused') =>
      recordAggregated('login.failed', email, context, { reason }),

    loginLocked: (email: string, context: EventContext) => recordAggregated('login.locked', email, context, {}),

    /**
     * A page of events, newest first, `limit + 1` rows. Each filter walks its own index
     * backwards from the cursor: a user's events (subject, id), a type's (type, id), both
     * (subject, type, id), or the primary key. `since` becomes a lower bound on the id: the first
     * event at or after it, found on the occurred_at index, so a page never scans older rows.
     */
    async list ({ type, userId, since, beforeId }: EventFilter, limit: number): Promise<EventRow[]> {
      let fromId: number | undefined
      if (since) {
        const [first] = await db.select({ id: securityEvents.id }).from(securityEvents)
          .where(gte(securityEvents.occurred_at, since)).orderBy(asc(securityEvents.occurred_at)).limit(1)
        if (!first) return []
        fromId = first.id
      }
      const index = userId !== undefined && type !== undefined
        ? 'security_events_subject_type_id_idx'
        : userId !== undefined ? 'security_events_subject_id_idx' : type !== undefined ? 'security_events_type_id_idx' : 'PRIMARY'
      const rows = await db.select(eventColumns).from(securityEvents, { forceIndex: index })
        .where(and(
          userId === undefined ? undefined : eq(securityEvents.subject_user_id, userId),
          type === undefined ? undefined : eq(securityEvents.type, type),
          // Always a range, so even the unfiltered first page is an index range read, never a walk of the whole index.
          lt(securityEvents.id, beforeId ?? Number.MAX_SAFE_INTEGER),
          fromId === undefined ? undefined : gte(securityEvents.id, fromId),
          since === undefined ? undefined : gte(securityEvents.occurred_at, since),
        ))
        .orderBy(desc(securityEvents.id)).limit(limit + 1)
      return rows.map(parsed)
    },

    /** Oldest first from `afterId`, for `events export` (a primary-key range). */
    async exportBatch (afterId: number, limit: number): Promise<EventRow[]> {
      const rows = await db.select(eventColumns).from(securityEvents)
        .where(gt(securityEvents.id, afterId)).orderBy(asc(securityEvents.id)).limit(limit)
      return rows.map(parsed)
    },

    /** The id just before the first event at or after `since` (0: none before), for export. */
    async idBefore (since: Date): Promise<number | null> {
      const [first] = await db.select({ id: securityEvents.id }).from(securityEvents)
        .where(gte(securityEvents.occurred_at, since)).orderBy(asc(securityEvents.occurred_at)).limit(1)
      return first ? first.id - 1 : null
    },

    async findById (id: number): Promise<EventRow | null> {
      const [row] = await db.select(eventColumns).from(securityEvents).where(eq(securityEvents.id, id))
      return row ? parsed(row) : null
    },

    /** AUDIT_RETENTION: events older than `retentionMs`, in batches (security_events_occurred_at_idx). */
    purgeOlderThan (retentionMs: number, batchSize?: number): Promise<number> {
      return deleteInBatches((limit) => db.delete(securityEvents)
        .where(lt(securityEvents.occurred_at, sql`CURRENT_TIMESTAMP(3) - INTERVAL ${retentionMs * 1000} MICROSECOND`)).limit(limit), batchSize)
    },
  }
}

export type EventLog = ReturnType<typeof createEventLog>

/** What a repository that makes a change needs to write its event and mail with it. */
export interface Effects {
  record: RecordEvent
  enqueueMail: (tx: Database, kind: 'password_reset' | 'email_verification', userId: number | null) => Promise<void>
}
