import { createHash, createHmac, hkdfSync } from 'node:crypto'
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server'
import type { Config } from '../config.js'

// The WebAuthn ceremonies (API.md §14), through @simplewebauthn/server: what it checks is the
// part of the spec that is easy to get subtly wrong (CBOR, COSE keys, flags, rpIdHash, signature
// formats). Storage and the rules around it (single use, lockout, cut-offs) are the repository's.

/** API.md §14: a challenge lives 5 minutes; the browser's own timeout is the same. */
export const PASSKEY_CHALLENGE_TTL_MS = 5 * 60_000

/** COSE algorithms accepted at registration: ES256, EdDSA, RS256 (what authenticators make). */
const SUPPORTED_ALGORITHMS = [-7, -8, -257]

export type WebAuthnSettings = Pick<Config, 'WEBAUTHN_RP_ID' | 'WEBAUTHN_ORIGINS' | 'WEBAUTHN_RP_NAME' | 'JWT_KEY_ENCRYPTION_SECRET'>

/** A stored credential, as the checks need it. */
export interface StoredCredential {
  credentialId: string
  publicKey: string
  counter: number
  transports: string[]
}

/** What a registration proved: the credential to store. */
export interface NewCredential {
  credentialId: string
  publicKey: string
  counter: number
  transports: string[]
  backupEligible: boolean
  backedUp: boolean
  aaguid: string
}

/** The hash a challenge is stored under (drizzle/passkeys.ts). */
export const challengeHash = (challenge: string) => createHash('sha256').update(challenge).digest('hex')

/**
 * The challenge an answer signed, read from its clientDataJSON; null when the answer is not
 * shaped like one. Only finds the row: the library checks the signature over it afterwards.
 */
export function challengeOf (response: { response?: { clientDataJSON?: unknown } }): string | null {
  const encoded = response.response?.clientDataJSON
  if (typeof encoded !== 'string' || encoded.length > 8192) return null
  try {
    const clientData: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'))
    const challenge = (clientData as { challenge?: unknown } | null)?.challenge
    return typeof challenge === 'string' && challenge.length > 0 && challenge.length <= 128 ? challenge : null
  } catch {
    return null
  }
}

export function createWebAuthn (settings: WebAuthnSettings) {
  const rpID = settings.WEBAUTHN_RP_ID
  const expectedOrigin = [...settings.WEBAUTHN_ORIGINS]
  // One key for the user handles and the decoy credential ids, derived from the secret that also
  // seals the TOTP secrets; neither reveals a user id or an email to whoever reads them.
  const handleKey = Buffer.from(hkdfSync('sha256', settings.JWT_KEY_ENCRYPTION_SECRET, 'boardkit', 'webauthn user handles', 32))

  /**
   * The WebAuthn user handle of a user: 32 bytes that identify the account to the authenticator
   * without being its id or email (WebAuthn §14.6.1 asks for no personal data there), and that
   * are the same for every passkey of the account, so an authenticator replaces its own older
   * passkey for it instead of keeping two.
   */
  const userHandleOf = (userId: number) => createHmac('sha256', handleKey).update(`user:${userId}`).digest()

  return {
    userHandleOf: (userId: number) => userHandleOf(userId).toString('base64url'),

    /** Options to make a passkey: resident key and user verification preferred, existing ones excluded. */
    registrationOptions (user: { id: number, email: string, name: string }, existing: StoredCredential[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
      return generateRegistrationOptions({
        rpName: settings.WEBAUTHN_RP_NAME,
        rpID,
        userID: userHandleOf(user.id),
        userName: user.email,
        userDisplayName: user.name,
        timeout: PASSKEY_CHALLENGE_TTL_MS,
        attestationType: 'none',
        excludeCredentials: existing.map((credential) => ({ id: credential.credentialId, transports: credential.transports })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
        supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
      })
    },

    /** The credential a registration answer proves, or null when any check fails (origin, RP ID, challenge, format, signature). */
    async verifyRegistration (response: RegistrationResponseJSON, challenge: string): Promise<NewCredential | null> {
      try {
        const result = await verifyRegistrationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin,
          expectedRPID: rpID,
          requireUserVerification: false,
          supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
        })
        if (!result.verified) return null
        const { credential, aaguid, credentialDeviceType, credentialBackedUp } = result.registrationInfo
        return {
          credentialId: credential.id,
          publicKey: Buffer.from(credential.publicKey).toString('base64url'),
          counter: credential.counter,
          transports: credential.transports ?? response.response.transports ?? [],
          backupEligible: credentialDeviceType === 'multiDevice',
          backedUp: credentialBackedUp,
          aaguid,
        }
      } catch {
        // The library throws for every refusal, with a message naming the check: it is not sent
        // (the answer is the same as for a wrong password), and carries nothing worth a log line.
        return null
      }
    },

    /** Options to sign in: the listed credentials, or none for a discoverable sign-in (no email). */
    authenticationOptions (allow: Array<Pick<StoredCredential, 'credentialId' | 'transports'>> | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
      return generateAuthenticationOptions({
        rpID,
        timeout: PASSKEY_CHALLENGE_TTL_MS,
        userVerification: 'preferred',
        ...(allow ? { allowCredentials: allow.map((credential) => ({ id: credential.credentialId, transports: credential.transports })) } : {}),
      })
    },

    /**
     * Checks a sign-in answer against the stored credential: origin, RP ID, challenge, user
     * presence, signature, and a signature counter that must move forward when the authenticator
     * keeps one. Null when any check fails; else the new counter and whether the user was verified.
     */
    async verifyAuthentication (response: AuthenticationResponseJSON, challenge: string, credential: StoredCredential): Promise<{ newCounter: number, userVerified: boolean } | null> {
      try {
        const result = await verifyAuthenticationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin,
          expectedRPID: rpID,
          credential: {
            id: credential.credentialId,
            publicKey: new Uint8Array(Buffer.from(credential.publicKey, 'base64url')),
            counter: credential.counter,
            transports: credential.transports as never,
          },
          requireUserVerification: false,
        })
        if (!result.verified) return null
        return { newCounter: result.authenticationInfo.newCounter, userVerified: result.authenticationInfo.userVerified }
      } catch {
        return null
      }
    },

    /**
     * A credential for an email with no passkey (unknown, or none registered): an id derived from
     * the email, the same at every ask, so the options for such an email have the shape of those
     * for an account with one passkey and do not tell a prober which emails have accounts.
     */
    decoyCredentials (email: string): Array<Pick<StoredCredential, 'credentialId' | 'transports'>> {
      return [{ credentialId: createHmac('sha256', handleKey).update(`decoy:${email}`).digest().subarray(0, 16).toString('base64url'), transports: ['internal', 'hybrid'] }]
    },
  }
}

export type WebAuthn = ReturnType<typeof createWebAuthn>
