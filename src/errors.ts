// The error codes are part of the API (API.md §1): never rename one, only add.
export type ErrorCode =
  | 'validation_error'
  | 'malformed_json'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'authorization_required'
  | 'token_invalid'
  | 'token_expired'
  | 'token_revoked'
  | 'wrong_token_type'
  | 'fresh_token_required'
  | 'invalid_credentials'
  | 'forbidden'
  | 'not_found'
  | 'email_taken'
  | 'last_admin'
  | 'rate_limited'
  | 'service_unavailable'
  | 'internal_error'
  | 'invalid_reset_token'
  | 'invalid_verification_token'
  | 'email_not_verified'
  | 'invalid_mfa_code'
  | 'invalid_mfa_token'
  | 'mfa_required'
  | 'mfa_already_enabled'
  | 'mfa_not_enabled'
  | 'mfa_setup_required'
  | 'insufficient_scope'
  | 'account_exists'
  | 'invalid_exchange_code'
  | 'invalid_oidc_state'
  | 'last_sign_in_method'
  | 'invalid_passkey'
  | 'passkey_exists'
  | 'passkey_limit'

export interface ErrorDetail {
  path: string
  message: string
}

/** An error meant for the client: its status, code and message are sent as they are. */
export class AppError extends Error {
  override name = 'AppError'
  constructor (
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    options?: ErrorOptions & { headers?: Record<string, string> },
  ) {
    super(message, options)
    this.headers = options?.headers
  }

  /** Response headers that belong to this error, e.g. Retry-After on a 429. */
  readonly headers?: Record<string, string>
}

export function notFound (what: string): never {
  throw new AppError(404, 'not_found', `${what} not found`)
}

export function forbidden (message = 'You are not allowed to do this'): never {
  throw new AppError(403, 'forbidden', message)
}
