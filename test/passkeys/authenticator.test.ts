// The software authenticator of the passkey tests (test/webauthn-authenticator.ts), checked
// against @simplewebauthn/server's own options and verification, with no server or database of
// ours: what it makes verifies, and each thing its overrides spoil is refused. Were it wrong, the
// API's passkey tests would prove nothing.
import t from 'tap'
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  type WebAuthnCredential,
} from '@simplewebauthn/server'
import { challengeOf, SoftwareAuthenticator } from '../webauthn-authenticator.js'

const RP_ID = 'localhost'
const ORIGIN = 'http://localhost:3000'
const OTHER_CHALLENGE = Buffer.from('a challenge nobody issued').toString('base64url')

const creationOptions = (excludeCredentials: Array<{ id: string }> = []) => generateRegistrationOptions({
  rpName: 'boardkit',
  rpID: RP_ID,
  userName: 'ada@example.com',
  attestationType: 'none',
  authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  excludeCredentials,
})

const requestOptions = (allowCredentials?: Array<{ id: string }>) =>
  generateAuthenticationOptions({ rpID: RP_ID, userVerification: 'preferred', ...(allowCredentials ? { allowCredentials } : {}) })

const verifyRegistration = (response: RegistrationResponseJSON, challenge: string, requireUserVerification = true) =>
  verifyRegistrationResponse({ response, expectedChallenge: challenge, expectedOrigin: ORIGIN, expectedRPID: RP_ID, requireUserVerification })

const verifyAssertion = (response: AuthenticationResponseJSON, options: PublicKeyCredentialRequestOptionsJSON, credential: WebAuthnCredential, requireUserVerification = true) =>
  verifyAuthenticationResponse({ response, expectedChallenge: options.challenge, expectedOrigin: ORIGIN, expectedRPID: RP_ID, credential, requireUserVerification })

/** Registers a credential with the authenticator and the server's checks: what the server stores. */
async function enrol (authenticator: SoftwareAuthenticator) {
  const options = await creationOptions()
  const verification = await verifyRegistration(authenticator.register(options), options.challenge)
  if (!verification.verified) throw new Error('registration not verified')
  return { options, credential: verification.registrationInfo.credential }
}

t.test('a registration verifies, and the server gets the key and the id', async (t) => {
  const authenticator = new SoftwareAuthenticator()
  const options = await creationOptions()
  const response = authenticator.register(options)
  t.equal(response.rawId, response.id)
  t.equal(challengeOf(response), options.challenge, 'challengeOf reads the clientDataJSON')
  t.same(response.response.transports, ['internal'])
  t.equal(response.response.publicKeyAlgorithm, -7, 'ES256')

  const verification = await verifyRegistration(response, options.challenge)
  t.equal(verification.verified, true)
  const info = verification.registrationInfo!
  t.equal(info.fmt, 'none')
  t.equal(info.userVerified, true, 'the UV flag')
  t.equal(info.aaguid, '00000000-0000-0000-0000-000000000000')
  t.equal(info.credentialDeviceType, 'singleDevice', 'BE off')
  t.equal(info.credentialBackedUp, false, 'BS off')
  t.equal(info.origin, ORIGIN)
  t.equal(info.rpID, RP_ID)
  t.equal(info.credential.id, response.id)
  t.equal(info.credential.counter, 0)

  const [held, ...more] = authenticator.credentials
  t.equal(more.length, 0, 'one credential held')
  t.equal(held!.id, response.id)
  t.equal(held!.rpId, RP_ID)
  t.equal(held!.userHandle, options.user.id, 'the user handle of the options')
  t.equal(held!.counter, 0)
  t.same(Buffer.from(info.credential.publicKey), Buffer.from(held!.publicKey), 'the COSE key the server decoded')
  t.notOk('privateKey' in held!, 'no private key shown')
  held!.counter = 99
  t.equal(authenticator.credentials[0]!.counter, 0, 'credentials are copies')

  const aaguid = 'adce0002-35bc-c60a-648b-0b25f1f05503'
  const other = new SoftwareAuthenticator({ aaguid })
  const otherOptions = await creationOptions()
  t.equal((await verifyRegistration(other.register(otherOptions), otherOptions.challenge)).registrationInfo?.aaguid, aaguid, 'the AAGUID option')
})

t.test('assertions verify, with allowCredentials and discoverable; the counter goes 1, 2', async (t) => {
  const authenticator = new SoftwareAuthenticator()
  const { options: creation, credential } = await enrol(authenticator)

  const listed = await requestOptions([{ id: credential.id }])
  const first = authenticator.authenticate(listed)
  t.equal(first.id, credential.id)
  t.equal(first.response.userHandle, creation.user.id, 'the user handle comes back')
  t.equal(challengeOf(first), listed.challenge)
  const one = await verifyAssertion(first, listed, credential)
  t.equal(one.verified, true, 'with allowCredentials')
  t.equal(one.authenticationInfo.newCounter, 1)
  t.equal(one.authenticationInfo.userVerified, true)
  t.equal(one.authenticationInfo.rpID, RP_ID)

  const discoverable = await requestOptions()
  t.notOk(discoverable.allowCredentials?.length, 'no allowCredentials')
  const two = await verifyAssertion(authenticator.authenticate(discoverable), discoverable, { ...credential, counter: one.authenticationInfo.newCounter })
  t.equal(two.verified, true, 'discoverable')
  t.equal(two.authenticationInfo.newCounter, 2)
  t.equal(authenticator.credentials[0]!.counter, 2, 'the stored counter')

  // A second credential: discoverable sign-in takes the newest, allowCredentials the one listed.
  const { credential: newer } = await enrol(authenticator)
  t.equal(authenticator.authenticate(await requestOptions()).id, newer.id, 'discoverable: the newest')
  t.equal(authenticator.authenticate(await requestOptions([{ id: 'bm90LWhlbGQ' }, { id: credential.id }])).id, credential.id,
    'allowCredentials: the first one held')
  t.equal(authenticator.authenticate(await requestOptions(), { credentialId: credential.id }).id, credential.id, 'credentialId override')
})

t.test('without user verification, and with no counter', async (t) => {
  const authenticator = new SoftwareAuthenticator({ userVerification: false, signCount: 'zero' })
  const options = await creationOptions()
  const response = authenticator.register(options)
  await t.rejects(verifyRegistration(response, options.challenge), /User verification/, 'no UV flag: refused where UV is required')
  const registration = await verifyRegistration(response, options.challenge, false)
  t.equal(registration.registrationInfo?.userVerified, false)
  const credential = registration.registrationInfo!.credential
  for (const round of [1, 2]) {
    const request = await requestOptions()
    const verification = await verifyAssertion(authenticator.authenticate(request), request, credential, false)
    t.equal(verification.verified, true, `assertion ${round}`)
    t.equal(verification.authenticationInfo.newCounter, 0, 'the counter stays 0')
    t.equal(verification.authenticationInfo.userVerified, false)
  }
  const request = await requestOptions()
  t.equal((await verifyAssertion(authenticator.authenticate(request, { userVerified: true }), request, credential)).verified, true, 'userVerified override')
})

t.test('registration refusals', async (t) => {
  const authenticator = new SoftwareAuthenticator()
  // Each with the server's reason, so a refusal for some other fault of ours would show.
  for (const [what, overrides, reason] of [
    ['another origin', { origin: 'https://evil.example' }, /Unexpected response origin/],
    ['another RP ID', { rpId: 'evil.example' }, /Unexpected RP ID hash/],
    ['another challenge', { challenge: OTHER_CHALLENGE }, /Unexpected registration response challenge/],
    ['the sign-in ceremony type', { type: 'webauthn.get' }, /Unexpected registration response type/],
    ['no user verification', { userVerified: false }, /User verification was required/],
  ] as const) {
    const options = await creationOptions()
    await t.rejects(verifyRegistration(authenticator.register(options, overrides), options.challenge), reason, what)
  }
})

t.test('assertion refusals', async (t) => {
  const authenticator = new SoftwareAuthenticator()
  const { credential } = await enrol(authenticator)
  let counter = 0
  const verify = async (response: AuthenticationResponseJSON, options: PublicKeyCredentialRequestOptionsJSON) =>
    await verifyAssertion(response, options, { ...credential, counter })

  for (const [what, overrides, reason] of [
    ['another origin', { origin: 'https://evil.example' }, /Unexpected response origin/],
    ['another RP ID', { rpId: 'evil.example' }, /Unexpected RP ID hash/],
    ['another challenge', { challenge: OTHER_CHALLENGE }, /Unexpected authentication response challenge/],
    ['the registration ceremony type', { type: 'webauthn.create' }, /Unexpected authentication response type/],
    ['no user verification', { userVerified: false }, /User verification required/],
  ] as const) {
    const options = await requestOptions()
    await t.rejects(verify(authenticator.authenticate(options, overrides), options), reason, what)
  }

  // A bad signature is no exception in @simplewebauthn/server: `verified` is false.
  const options = await requestOptions()
  const tampered = await verify(authenticator.authenticate(options, { tamperSignature: true }), options)
  t.equal(tampered.verified, false, 'a tampered signature does not verify')

  const good = await requestOptions()
  const verification = await verify(authenticator.authenticate(good), good)
  t.equal(verification.verified, true, 'the same authenticator, unspoiled, still verifies')
  counter = verification.authenticationInfo.newCounter
  const stored = authenticator.credentials[0]!.counter
  t.equal(counter, stored, 'the server\'s counter is the authenticator\'s')
  t.ok(stored > 1, 'the refusals above used counters too')

  const backwards = await requestOptions()
  await t.rejects(verify(authenticator.authenticate(backwards, { counter: stored - 1 }), backwards), /Response counter value/, 'a counter that went backwards')
  const still = await requestOptions()
  await t.rejects(verify(authenticator.authenticate(still, { counter: stored }), still), /Response counter value/, 'a counter that did not move')
  t.equal(authenticator.credentials[0]!.counter, stored, 'an overridden counter leaves the stored one')
})

t.test('the authenticator refuses as a browser does', async (t) => {
  const authenticator = new SoftwareAuthenticator()
  const { credential } = await enrol(authenticator)

  const excluding = await creationOptions([{ id: credential.id }])
  t.throws(() => authenticator.register(excluding), { name: 'InvalidStateError' }, 'excludeCredentials lists a held credential')
  t.equal(authenticator.credentials.length, 1, 'and nothing was made')
  t.doesNotThrow(() => new SoftwareAuthenticator().register(excluding), 'another authenticator holds none of them')
  const es256less = { ...(await creationOptions()), pubKeyCredParams: [{ alg: -257, type: 'public-key' as const }] }
  t.throws(() => authenticator.register(es256less), { name: 'NotSupportedError' }, 'no ES256 offered')

  const request = await requestOptions()
  const unheld = await requestOptions([{ id: 'bm90LWhlbGQ' }])
  t.throws(() => new SoftwareAuthenticator().authenticate(request), { name: 'NotAllowedError' }, 'no credential at all')
  t.throws(() => authenticator.authenticate(unheld), { name: 'NotAllowedError' }, 'none of allowCredentials held')
  t.throws(() => authenticator.authenticate({ ...request, rpId: 'example.com' }), { name: 'NotAllowedError' }, 'none for another RP ID')
  t.throws(() => authenticator.authenticate(request, { credentialId: 'bm90LWhlbGQ' }), { name: 'NotAllowedError' }, 'an unknown credentialId')
  t.throws(() => new SoftwareAuthenticator({ aaguid: 'nope' }), TypeError, 'a malformed AAGUID')
})
