// A software WebAuthn authenticator (and the browser's part of the ceremony) for API tests, so a
// test registers and uses passkeys without a browser. It makes what a platform authenticator
// would send the server: `none` attestation, an ES256 (P-256) key per credential, discoverable
// credentials, a signature counter. The overrides of register() and authenticate() spoil one thing
// at a time (origin, RP ID, challenge, type, counter, signature), for the tests of the refusals.
// test/passkeys/authenticator.test.ts checks its output against @simplewebauthn/server itself.
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { encodeCBOR, type CBORType } from '@levischuck/tiny-cbor'
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server'

// Authenticator data flags, WebAuthn L3 §6.1. UP: the user was present (every ceremony here).
// UV: the user was verified (a PIN or biometric), when the authenticator is set to. AT: attested
// credential data follows (registration only). BE/BS (0x08, 0x10, backup eligible / backed up)
// stay off: a device-bound credential, as a security key or a non-synced platform key is.
const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_AT = 0x40

// COSE (RFC 9052 §7, RFC 9053 §2.1 and §7.1): kty 2 = EC2, alg -7 = ES256, crv 1 = P-256.
const COSE_KTY = 1
const COSE_ALG = 3
const COSE_EC2_CRV = -1
const COSE_EC2_X = -2
const COSE_EC2_Y = -3
const COSE_KTY_EC2 = 2
const COSE_ALG_ES256 = -7
const COSE_CRV_P256 = 1

export interface SoftwareAuthenticatorOptions {
  /** The page's origin the browser puts in clientDataJSON. */
  origin?: string
  /** The RP ID used when the options name none (a browser then takes the origin's domain). */
  rpId?: string
  /** The AAGUID in attested credential data, as a UUID; all zeros (no model disclosed) by default. */
  aaguid?: string
  /** 'increment': +1 per assertion; 'zero': an authenticator that keeps no counter (always 0). */
  signCount?: 'increment' | 'zero'
  /** Whether the UV flag is set (the user verified), true by default. */
  userVerification?: boolean
}

export interface RegisterOverrides {
  origin?: string
  rpId?: string
  challenge?: string
  type?: string
  userVerified?: boolean
  crossOrigin?: boolean
}

export interface AuthenticateOverrides {
  origin?: string
  rpId?: string
  challenge?: string
  type?: string
  /** The counter to sign with, instead of the next one; the stored counter is left as it is. */
  counter?: number
  /** Answer with this held credential whatever the options allow. */
  credentialId?: string
  userVerified?: boolean
  /** Flip a bit of the signature: well-formed DER that does not verify. */
  tamperSignature?: boolean
}

/** A held credential as `credentials` shows it: no private key. */
export interface HeldCredential {
  /** The credential id, base64url. */
  id: string
  rpId: string
  /** The `user.id` of the creation options it was made for, base64url. */
  userHandle: string
  /** The last signature counter used. */
  counter: number
  /** The COSE_Key of its public key, as the server stores it. */
  publicKey: Uint8Array
}

interface StoredCredential extends HeldCredential {
  privateKey: KeyObject
}

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest()

/** What a browser throws from navigator.credentials: a DOMException with the spec's name. */
const domError = (name: 'InvalidStateError' | 'NotAllowedError' | 'NotSupportedError', message: string) =>
  new DOMException(message, name)

/** CollectedClientData, serialised with its members in the order of WebAuthn L3 §5.8.1.1. */
function clientDataJSON (type: string, challenge: string, origin: string, crossOrigin: boolean): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin }))
}

function counterBytes (value: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

/** The credential's public key as a COSE_Key (WebAuthn L3 §6.5.1.1, RFC 9053 §7.1.1). */
function coseKey (publicKey: KeyObject): Uint8Array {
  const jwk = publicKey.export({ format: 'jwk' })
  // JWK coordinates are full length (RFC 7518 §6.2.1.2), 32 bytes for P-256, as COSE wants them.
  const x = Buffer.from(jwk.x!, 'base64url')
  const y = Buffer.from(jwk.y!, 'base64url')
  // A Map, not an object: COSE labels are integers. Insertion order is CTAP2's canonical order.
  return encodeCBOR(new Map<string | number, CBORType>([
    [COSE_KTY, COSE_KTY_EC2],
    [COSE_ALG, COSE_ALG_ES256],
    [COSE_EC2_CRV, COSE_CRV_P256],
    [COSE_EC2_X, new Uint8Array(x)],
    [COSE_EC2_Y, new Uint8Array(y)],
  ]))
}

/** The challenge the response's clientDataJSON carries (base64url, as the options gave it). */
export function challengeOf (response: RegistrationResponseJSON | AuthenticationResponseJSON): string {
  const clientData = JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString('utf8')) as { challenge: string }
  return clientData.challenge
}

export class SoftwareAuthenticator {
  readonly origin: string
  readonly rpId: string
  readonly signCount: 'increment' | 'zero'
  readonly userVerification: boolean
  readonly #aaguid: Buffer
  /** Oldest first: the last one for an RP ID is the one a discoverable sign-in picks. */
  readonly #credentials: StoredCredential[] = []

  constructor (options: SoftwareAuthenticatorOptions = {}) {
    this.origin = options.origin ?? 'http://localhost:3000'
    this.rpId = options.rpId ?? 'localhost'
    this.signCount = options.signCount ?? 'increment'
    this.userVerification = options.userVerification ?? true
    const aaguid = (options.aaguid ?? '00000000-0000-0000-0000-000000000000').replaceAll('-', '')
    if (!/^[0-9a-f]{32}$/i.test(aaguid)) throw new TypeError(`not an AAGUID: ${options.aaguid}`)
    this.#aaguid = Buffer.from(aaguid, 'hex')
  }

  /** The credentials held, oldest first, without their private keys. */
  get credentials (): HeldCredential[] {
    return this.#credentials.map(({ privateKey: _, ...credential }) => ({ ...credential, publicKey: credential.publicKey.slice() }))
  }

  /** navigator.credentials.create(): makes a credential for the options, `none` attestation. */
  register (options: PublicKeyCredentialCreationOptionsJSON, overrides: RegisterOverrides = {}): RegistrationResponseJSON {
    const rpId = overrides.rpId ?? options.rp.id ?? this.rpId
    // authenticatorMakeCredential (WebAuthn L3 §6.3.2) step 2: only ES256 here; an empty list
    // means the client's defaults, ES256 among them.
    if (options.pubKeyCredParams.length > 0 && !options.pubKeyCredParams.some((param) => param.alg === COSE_ALG_ES256)) {
      throw domError('NotSupportedError', 'no ES256 in pubKeyCredParams')
    }
    // Step 3: a credential of ours in excludeCredentials means this authenticator is registered
    // already; the browser reports InvalidStateError and makes nothing.
    if (options.excludeCredentials?.some((excluded) => this.#credentials.some((held) => held.id === excluded.id && held.rpId === rpId))) {
      throw domError('InvalidStateError', 'the authenticator holds a credential in excludeCredentials')
    }

    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const credentialId = randomBytes(16)
    const cose = coseKey(publicKey)
    const userVerified = overrides.userVerified ?? this.userVerification
    const credentialIdLength = Buffer.alloc(2)
    credentialIdLength.writeUInt16BE(credentialId.length)
    // Authenticator data (§6.1) with attested credential data (§6.5.1): rpIdHash, flags, a sign
    // count of 0, then AAGUID | credentialIdLength | credentialId | credentialPublicKey.
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([FLAG_UP | (userVerified ? FLAG_UV : 0) | FLAG_AT]),
      counterBytes(0),
      this.#aaguid,
      credentialIdLength,
      credentialId,
      cose,
    ])
    // The `none` attestation statement format (§8.7): an empty attStmt. Keys in CTAP2's
    // canonical order (shorter first), as an authenticator encodes them.
    const attestationObject = encodeCBOR(new Map<string | number, CBORType>([
      ['fmt', 'none'],
      ['attStmt', new Map()],
      ['authData', new Uint8Array(authData)],
    ]))
    const clientData = clientDataJSON(
      overrides.type ?? 'webauthn.create',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
      overrides.crossOrigin ?? false,
    )

    const id = credentialId.toString('base64url')
    this.#credentials.push({ id, rpId, userHandle: options.user.id, counter: 0, publicKey: cose, privateKey })
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: clientData.toString('base64url'),
        attestationObject: Buffer.from(attestationObject).toString('base64url'),
        transports: ['internal'],
        publicKeyAlgorithm: COSE_ALG_ES256,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    }
  }

  /** navigator.credentials.get(): an assertion with a held credential (see #pick for which). */
  authenticate (options: PublicKeyCredentialRequestOptionsJSON, overrides: AuthenticateOverrides = {}): AuthenticationResponseJSON {
    const scope = options.rpId ?? this.rpId
    const credential = this.#pick(options, scope, overrides.credentialId)
    const rpId = overrides.rpId ?? scope
    let counter: number
    if (overrides.counter !== undefined) {
      counter = overrides.counter
    } else {
      if (this.signCount === 'increment') credential.counter += 1
      counter = credential.counter
    }
    const userVerified = overrides.userVerified ?? this.userVerification
    // Authenticator data (§6.1) of an assertion: no attested credential data, so no AT flag.
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([FLAG_UP | (userVerified ? FLAG_UV : 0)]),
      counterBytes(counter),
    ])
    const clientData = clientDataJSON(
      overrides.type ?? 'webauthn.get',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
      false,
    )
    // §6.3.3 step 11: the signature is over authenticatorData || SHA-256(clientDataJSON). ES256 in
    // WebAuthn is DER-encoded ECDSA (§6.5.5), node's default for an EC key.
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), credential.privateKey)
    // The last byte lies inside s: the DER still parses, so the server gets a signature that
    // merely does not verify, not a malformed one.
    if (overrides.tamperSignature) signature[signature.length - 1]! ^= 0x01

    return {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientData.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        userHandle: credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    }
  }

  /**
   * The credential an assertion uses: the one asked for by id; else the first held one that
   * allowCredentials lists; else (an empty list: a discoverable sign-in) the newest for the RP ID.
   * Credentials are scoped to their RP ID (§6.3.3 step 1), except when asked for by id. None:
   * NotAllowedError, as a browser reports it.
   */
  #pick (options: PublicKeyCredentialRequestOptionsJSON, rpId: string, credentialId?: string): StoredCredential {
    let found: StoredCredential | undefined
    if (credentialId !== undefined) {
      found = this.#credentials.find((held) => held.id === credentialId)
    } else if (options.allowCredentials?.length) {
      for (const allowed of options.allowCredentials) {
        found = this.#credentials.find((held) => held.id === allowed.id && held.rpId === rpId)
        if (found) break
      }
    } else {
      found = this.#credentials.filter((held) => held.rpId === rpId).at(-1)
    }
    if (!found) throw domError('NotAllowedError', `no credential of this authenticator answers for ${rpId}`)
    return found
  }
}
