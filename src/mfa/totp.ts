import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { generateSecret, generateSync, generateURI } from 'otplib'

// TOTP (RFC 6238) as API.md §13 fixes it: SHA-1, 6 digits, 30 s steps, a 160-bit secret, issuer
// `boardkit`, one step of clock skew either way. The codes are otplib's; this file decides only
// which steps are tried and how the answer is compared.

export const TOTP_ISSUER = 'boardkit'
const PERIOD_SECONDS = 30
const DIGITS = 6
const SECRET_BYTES = 20
/** ±1 step: a code shown just before a step ended, or on a clock a little ahead, still works. */
const SKEW_STEPS = 1

export const TOTP_CODE = /^\d{6}$/

/** A new secret, base32 (what authenticator apps read and people type). */
export function newTotpSecret (): string {
  return generateSecret({ length: SECRET_BYTES })
}

/** The `otpauth://totp/boardkit:<email>?secret=…&issuer=boardkit` URL an authenticator app scans. */
export function otpauthUrl (secret: string, email: string): string {
  return generateURI({ issuer: TOTP_ISSUER, label: email, secret, algorithm: 'sha1', digits: DIGITS, period: PERIOD_SECONDS })
}

export const stepAt = (unixMs: number) => Math.floor(unixMs / 1000 / PERIOD_SECONDS)

/**
 * The time step whose code `code` is, among the current one and its neighbours, or null. Every
 * candidate is made and compared in constant time, whatever the code, and the loop has no early
 * exit: a wrong code costs what a right one does, and the answer's timing says nothing about how
 * close a guess came. (otplib's verify() returns at the first match, and throws on a malformed
 * code before any work.)
 */
export function matchTotpStep (secret: string, code: string, now = Date.now()): number | null {
  const current = stepAt(now)
  // A malformed code is compared too, as six zeros' worth of bytes that no candidate equals.
  const given = Buffer.from(TOTP_CODE.test(code) ? code : '\0'.repeat(DIGITS))
  let matched: number | null = null
  for (let step = current - SKEW_STEPS; step <= current + SKEW_STEPS; step++) {
    const candidate = Buffer.from(generateSync({ secret, algorithm: 'sha1', digits: DIGITS, period: PERIOD_SECONDS, epoch: step * PERIOD_SECONDS }))
    // The latest matching step wins: replay protection then refuses every step up to it.
    if (timingSafeEqual(candidate, given)) matched = step
  }
  return matched
}

// ---- the secret at rest: AES-256-GCM under a key derived from JWT_KEY_ENCRYPTION_SECRET, as the
// signing keys' private halves are (src/plugins/auth/keys.ts), with a key of its own

const CIPHERTEXT_VERSION = 'v1'

function encryptionKey (secret: string): Buffer {
  // HKDF with its own info: a key used only for TOTP secrets, never the signing keys' one.
  return Buffer.from(hkdfSync('sha256', secret, 'boardkit', 'totp-secrets aes-256-gcm', 32))
}

/** The user id is the additional data: a ciphertext copied onto another user's row does not open. */
export function sealTotpSecret (totpSecret: string, userId: number, keySecret: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', encryptionKey(keySecret), iv)
  cipher.setAAD(Buffer.from(`totp:${userId}`))
  const ciphertext = Buffer.concat([cipher.update(totpSecret, 'utf8'), cipher.final()])
  return [CIPHERTEXT_VERSION, ...[iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString('base64url'))].join('.')
}

/**
 * The secret in clear. Throws when it does not open (JWT_KEY_ENCRYPTION_SECRET changed since it was
 * stored): the request fails with a 500 and the log says why, rather than every code being "wrong".
 */
export function openTotpSecret (stored: string, userId: number, keySecret: string): string {
  const [version, iv, tag, ciphertext] = stored.split('.')
  if (version !== CIPHERTEXT_VERSION || !iv || !tag || !ciphertext) throw new Error(`TOTP secret of user ${userId}: unknown ciphertext format`)
  const decipher = createDecipheriv('aes-256-gcm', encryptionKey(keySecret), Buffer.from(iv, 'base64url'))
  decipher.setAAD(Buffer.from(`totp:${userId}`))
  decipher.setAuthTag(Buffer.from(tag, 'base64url'))
  try {
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
  } catch {
    throw new Error(`TOTP secret of user ${userId} does not decrypt: is JWT_KEY_ENCRYPTION_SECRET the one it was stored with?`)
  }
}
