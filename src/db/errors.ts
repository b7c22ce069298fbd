import { TransactionRollbackError } from 'drizzle-orm'

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

interface LoggedError { type: string, message: string, stack?: string, code?: string, errno?: number, sqlState?: string, cause?: LoggedError }

/**
 * The `err` serializer of every log line (API.md §12: no log line carries a statement's bound
 * values). drizzle's DrizzleQueryError puts the statement and its parameters in its message, and
 * mysql2's own message can quote a value ("Duplicate entry 'ada@example.com' for key …"): an
 * error from the database is logged by its driver code, errno and SQL state alone, which say what
 * went wrong without saying with what. Other errors keep their type, message and stack.
 */
export function serializeLoggedError (error: unknown, depth = 0): LoggedError {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error) }
  const code = driverErrorCode(error)
  if (code !== undefined || error.name === 'DrizzleQueryError') {
    let driver = error as DriverError & { sqlState?: string }
    while (driver.cause && typeof driver.code !== 'string') driver = driver.cause as DriverError & { sqlState?: string }
    return {
      type: error.name,
      message: `database error ${code ?? 'without a driver code'} (the statement and its values are not logged)`,
      ...(code !== undefined && { code }),
      ...(typeof driver.errno === 'number' && { errno: driver.errno }),
      ...(typeof driver.sqlState === 'string' && { sqlState: driver.sqlState }),
      // The frames only: the stack's first lines repeat the message.
      ...(error.stack !== undefined && { stack: error.stack.split('\n').filter((line) => /^\s+at /.test(line)).join('\n') }),
    }
  }
  const withCode = error as Error & { code?: unknown }
  return {
    type: error.name,
    message: error.message,
    ...(error.stack !== undefined && { stack: error.stack }),
    ...(typeof withCode.code === 'string' && { code: withCode.code }),
    ...(error.cause !== undefined && depth < 4 && { cause: serializeLoggedError(error.cause, depth + 1) }),
  }
}

/**
 * For `.catch()` on a transaction: tx.rollback() throws TransactionRollbackError to end one, which
 * for these callers means "changed nothing", answered as `value`; any other error goes on.
 */
export function rolledBackAs<T> (value: T) {
  return (error: unknown): T => {
    if (error instanceof TransactionRollbackError) return value
    throw error
  }
}
