import type { App } from '../app.js'
import { currentSigningKey, revokeSigningKey, rotateSigningKey } from '../plugins/auth/keys.js'
import type { SigningKeyRow } from '../repositories/signing-keys.js'

// `npm run cli -- keys rotate | list | revoke <kid>` (API.md §9). Each verb writes the table; the
// running instances pick the change up on their next key refresh (docs/authentication.md, "Signing keys, JWKS and rotation").

export class KeysUsageError extends Error {}

function stateOf (row: SigningKeyRow, signing: SigningKeyRow | null, now: number): string {
  if (row.revoked_at) return 'revoked'
  if (row.retires_at && row.retires_at.getTime() <= now) return 'retired'
  if (row.kid === signing?.kid) return 'signing'
  if (row.activates_at.getTime() > now) return 'published, signs later'
  return 'verifying only'
}

const at = (date: Date | null) => date ? date.toISOString() : '-'

export async function keysCommand (app: App, args: string[]): Promise<void> {
  const [verb, kid] = args
  const { config, repos } = app
  if (verb === 'rotate') {
    const { kid: newKid, activatesAt } = await rotateSigningKey(repos.signingKeys, config)
    console.log(`new ${config.JWT_ALGORITHM} key ${newKid}: published now, signs from ${activatesAt.toISOString()}`)
  } else if (verb === 'list') {
    const rows = await repos.signingKeys.list()
    const now = Date.now()
    const signing = currentSigningKey(rows.filter((row) => row.algorithm === config.JWT_ALGORITHM), now)
    if (rows.length === 0) console.log(`no signing keys (JWT_ALGORITHM=${config.JWT_ALGORITHM})`)
    for (const row of rows) {
      console.log([row.kid, row.algorithm, `#${row.generation}`, `created ${at(row.created_at)}`, `activates ${at(row.activates_at)}`,
        `retires ${at(row.retires_at)}`, `revoked ${at(row.revoked_at)}`, stateOf(row, signing, now)].join('  '))
    }
  } else if (verb === 'revoke') {
    if (!kid) throw new KeysUsageError('keys revoke needs a kid (see keys list)')
    if (!await revokeSigningKey(repos.signingKeys, config, kid)) throw new KeysUsageError(`no signing key ${kid} that is not already revoked`)
    console.log(`revoked ${kid}: its tokens are refused by every instance within 5 s`)
  } else {
    throw new KeysUsageError(verb ? `unknown keys command: ${verb}` : 'keys needs rotate, list or revoke <kid>')
  }
}
