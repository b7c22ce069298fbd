import { createHash, randomBytes } from 'node:crypto'

// Recovery codes (API.md §13): 10 single-use codes, shown once, stored as SHA-256 only.

export const RECOVERY_CODE_COUNT = 10
// 80 random bits a code: out of reach of guessing online (5 tries a login, the lockout) and of
// brute force on a leaked table, so a plain SHA-256 is enough (no salt, no slow hash).
const CODE_BYTES = 10
// Crockford's base32 alphabet: no I, L, O or U, so a code read off paper is not misread.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'

/** 16 characters in four groups: `7k2m-q9xd-4hwe-pt3a`. */
function newCode (): string {
  const bytes = randomBytes(CODE_BYTES)
  let bits = 0n
  for (const byte of bytes) bits = (bits << 8n) | BigInt(byte)
  let text = ''
  for (let i = 0; i < 16; i++) text += ALPHABET[Number((bits >> BigInt(75 - 5 * i)) & 31n)]
  return text.match(/.{4}/g)!.join('-')
}

export function newRecoveryCodes (): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, newCode)
}

/**
 * The stored form of a code as typed: case, spaces and hyphens do not matter, and the letters
 * people confuse with digits (o, i, l) count as those digits, as Crockford's base32 reads them.
 */
export function hashRecoveryCode (typed: string): string {
  const normalised = typed.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1')
  return createHash('sha256').update(normalised).digest('hex')
}
