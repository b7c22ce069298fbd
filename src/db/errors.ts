// Driver error codes that mean "the database cannot serve this right now" (gone, overloaded,
// or a transient lock conflict), as opposed to a bad query: the client may retry. drizzle wraps driver errors in DrizzleQueryError, with the mysql2 error on `cause`.
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'POOL_CLOSED', 'POOL_ACQUIRE_TIMEOUT',
  'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN', 'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR',
  'ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'ER_QUERY_TIMEOUT', 'ER_CONNECTION_KILLED',
  // 1047: a Galera node outside the primary component, or not synced yet, refuses statements.
  'ER_UNKNOWN_COM_ERROR',
])

interface DriverError { code?: string, errno?: number, fatal?: boolean, cause?: unknown }

export function driverErrorCode (error: unknown): string | undefined {
  for (let current = error as DriverError | undefined, depth = 0; current && depth < 4; current = current.cause as DriverError, depth++) {
    if (typeof current.code === 'string' && (current.code.startsWith('ER_') || current.errno !== undefined || UNAVAILABLE_CODES.has(current.code))) return current.code
  }
  return undefined
}

export function isDatabaseUnavailable (error: unknown): boolean {
  const code = driverErrorCode(error)
  if (code && UNAVAILABLE_CODES.has(code)) return true
  // mysql2 marks errors that broke the connection as fatal.
  for (let current = error as DriverError | undefined, depth = 0; current && depth < 4; current = current.cause as DriverError, depth++) {
    if (current.fatal === true) return true
  }
  return false
}

export function isDuplicateKey (error: unknown): boolean {
  return driverErrorCode(error) === 'ER_DUP_ENTRY'
}
