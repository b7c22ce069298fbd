import { parseArgs } from 'node:util'
import type { App } from '../app.js'
import { parseDuration } from '../config.js'

export class EventsUsageError extends Error {}

const BATCH = 1000

/** --since: an ISO 8601 time, or a duration back from now ("7d", "12h"). */
function parseSince (text: string): Date {
  if (/^\d+(ms|s|m|h|d)?$/.test(text)) return new Date(Date.now() - parseDuration(text))
  const date = new Date(text)
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(date.getTime())) throw new EventsUsageError(`--since: not an ISO 8601 time or a duration: ${text}`)
  return date
}

/**
 * `npm run cli -- events export [--since …]`: the audit log as JSON lines on stdout, oldest first,
 * read in primary-key batches (a long export never holds a long transaction), for a SIEM or an
 * archive before AUDIT_RETENTION removes old rows.
 */
export async function eventsCommand (app: App, args: string[]): Promise<void> {
  const [verb, ...rest] = args
  if (verb !== 'export') throw new EventsUsageError(verb ? `unknown events command: ${verb}` : 'events needs a command: export')
  const { values } = parseArgs({ args: rest, options: { since: { type: 'string' } } })
  let afterId = 0
  if (values.since !== undefined) {
    const before = await app.repos.events.idBefore(parseSince(values.since))
    if (before === null) return
    afterId = before
  }
  const since = values.since === undefined ? null : parseSince(values.since)
  for (;;) {
    const rows = await app.repos.events.exportBatch(afterId, BATCH)
    if (rows.length === 0) return
    const lines = rows.filter((row) => since === null || row.occurred_at >= since).map((row) => JSON.stringify(row)).join('\n')
    if (lines) await new Promise<void>((resolve, reject) => process.stdout.write(`${lines}\n`, (error) => error ? reject(error) : resolve()))
    afterId = rows[rows.length - 1]!.id
  }
}
