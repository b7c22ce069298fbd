import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

// A mail in the outbox carries a live reset or verification link, and the database stores only
// hashes of those tokens: so the mail is stored encrypted (AES-256-GCM under a key derived from
// JWT_SECRET), with the row id as additional data so that a payload copied onto another row does
// not open. A row that cannot be opened (JWT_SECRET changed) is given up, never sent garbled.
const keyOf = (secret: string) => Buffer.from(hkdfSync('sha256', secret, 'boardkit', 'outbox aes-256-gcm', 32))

export function seal (plain: string, rowId: number, secret: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyOf(secret), iv)
  cipher.setAAD(Buffer.from(`outbox:${rowId}`))
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
  return [iv, cipher.getAuthTag(), body].map((part) => part.toString('base64url')).join('.')
}

/** The plain text, or null when it does not open under this secret. */
export function open (sealed: string, rowId: number, secret: string): string | null {
  const [iv, tag, body] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'))
  if (!iv || !tag || !body) return null
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(secret), iv)
    decipher.setAAD(Buffer.from(`outbox:${rowId}`))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')
  } catch {
    return null
  }
}
