// Browser flow: passkeys (API.md §14) on the demo page. The page adds a passkey, signs in with it
// alone (no email typed), gives the second step of a TOTP login with it, and removes it; a
// passkey of another site is never used. The authenticator is Chromium's virtual one (the
// WebAuthn domain of the DevTools protocol): a resident key with user verification, answering by
// itself, with a private key that CDP can read back.
//
// WebAuthn refuses IP addresses: the page is opened at http://localhost:<port>, the RP ID and
// origin the server derives from APP_URL=http://127.0.0.1:<port> (src/config.ts parseWebAuthn).
// Run with `npm run test:e2e` (the fixture, ./fixture.ts, says what it needs).
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import type { Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { awayFromStepEdge, decodeJwt, totpCode } from '../test/helper.js'
import { api, messageShowing, noProblems, openPage, PASSWORD, registerUser, responsesTo, screenshot, startServer, type Problem } from './fixture.js'

const url = await startServer(t, (server) => ({ APP_URL: server }))
const origin = url.replace('//127.0.0.1:', '//localhost:')

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest()
const base64url = (base64: string) => Buffer.from(base64, 'base64').toString('base64url')

/** A virtual authenticator in the page's browser: a platform passkey store that verifies the user. */
async function addAuthenticator (page: Page) {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })
  const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials
  return { cdp, authenticatorId, credentials }
}

/** An access token of a password login through the API (a session of its own, not the page's). */
async function apiToken (email: string): Promise<string> {
  const { status, data } = await api(url, 'POST', '/login', { email, password: PASSWORD })
  if (status !== 200 || typeof data?.access_token !== 'string') throw new Error(`login: ${status} ${JSON.stringify(data)}`)
  return data.access_token
}

async function logInWithPassword (t: Test, page: Page, email: string) {
  await page.fill('#login-form input[name=email]', email)
  await page.fill('#login-form input[name=password]', PASSWORD)
  const [login] = await Promise.all([page.waitForResponse(`${origin}/login?refresh=cookie`), page.click('#login-form button[type=submit]')])
  t.equal(login.status(), 200, 'the password: 200')
  return login.json() as Promise<Record<string, unknown>>
}

async function logOut (t: Test, page: Page) {
  const [logout] = await Promise.all([page.waitForResponse(`${origin}/logout`), page.click('#logout')])
  t.equal(logout.status(), 204, 'log out: 204')
  await page.locator('#login-form').waitFor()
}

/** Adds a passkey from the signed-in page, named `name`; the API's answer. */
async function addPasskey (t: Test, page: Page, name: string) {
  await page.fill('#passkey-add-form input[name=name]', name)
  const [options, registered] = await Promise.all([
    page.waitForResponse(`${origin}/passkeys/register/options`),
    page.waitForResponse(`${origin}/passkeys/register`),
    page.click('#passkey-add'),
  ])
  t.equal(options.status(), 200, 'POST /passkeys/register/options: 200')
  t.equal(registered.status(), 201, 'POST /passkeys/register with the browser\'s answer: 201')
  const sent = registered.request().postDataJSON() as { name?: string, response: { type: string, response: Record<string, unknown> } }
  t.equal(sent.name, name, 'the name typed is sent')
  t.equal(sent.response.type, 'public-key', 'with the authenticator\'s answer as JSON')
  t.type(sent.response.response.attestationObject, 'string', 'attestation object included')
  await page.locator('#passkeys-list li').first().waitFor()
  return registered.json() as Promise<{ id: number, name: string, created_at: string, last_used_at: string | null }>
}

/** Chromium logs a fetch's 4xx as a console error ("Failed to load resource"): expected for `path`. */
const expected401 = (path: string) => (problem: Problem) =>
  problem.kind === 'console' && problem.url === `${origin}${path}` && problem.text.includes('status of 401')

t.test('demo page: add a passkey, then sign in with it alone, without typing an email', async (t) => {
  const email = await registerUser(url, 'Passkey User')
  const watch = await openPage(t, origin)
  const { page } = watch
  const authenticator = await addAuthenticator(page)
  await page.goto(`${origin}/demo`)
  t.equal(await page.evaluate(() => typeof (globalThis as { SimpleWebAuthnBrowser?: { startRegistration?: unknown } }).SimpleWebAuthnBrowser?.startRegistration),
    'function', '@simplewebauthn/browser is served by the API and runs under the CSP')
  t.ok(await page.locator('#passkey-login').isVisible(), 'the log-in view offers "Sign in with a passkey"')

  const [, listed] = await Promise.all([
    logInWithPassword(t, page, email),
    page.waitForResponse(`${origin}/passkeys`),
  ])
  t.same(await listed.json(), { items: [] }, 'no passkey yet')
  await page.locator('#passkeys-section').waitFor()
  t.equal(await page.locator('#passkeys-list li').count(), 0, 'the list is empty')

  const passkey = await addPasskey(t, page, 'Test laptop')
  t.match(passkey, { name: 'Test laptop', last_used_at: null }, 'the API\'s passkey, not used yet')
  t.match(await messageShowing(page, /added/), /Passkey "Test laptop" added/, 'the page says it is added')
  t.equal(await page.locator('#passkeys-list li').count(), 1, 'the page lists one passkey')
  t.equal(await page.locator('#passkeys-list li strong').innerText(), 'Test laptop', 'by its name')
  t.match(await page.locator('#passkeys-list li .meta').innerText(), /^added .*; not used yet$/, 'with when it was added')
  await page.locator('#mfa-status', { hasText: /1 passkey signs you in/ }).waitFor()
  t.match(await page.locator('#mfa-status').innerText(), /^Off: .* 1 passkey signs you in without a password\.$/, 'GET /me\'s count, beside the second factor\'s status')

  const stored = await authenticator.credentials()
  t.equal(stored.length, 1, 'the authenticator holds one credential')
  t.match(stored[0], { isResidentCredential: true, rpId: 'localhost' }, 'a resident (discoverable) one, for RP ID localhost')
  const mine = await api(url, 'GET', '/passkeys', undefined, await apiToken(email))
  t.equal(mine.status, 200, 'GET /passkeys through the API: 200')
  t.match(mine.data, { items: [{ id: passkey.id, name: 'Test laptop' }] }, 'lists the passkey made on the page')
  t.equal((mine.data?.items as unknown[]).length, 1, 'and only it')
  await screenshot(page, '50-demo-passkey-added')

  await logOut(t, page)
  t.equal(await page.locator('#login-form input[name=email]').inputValue(), '', 'no email typed')
  const [options, signIn] = await Promise.all([
    page.waitForResponse(`${origin}/login/passkey/options`),
    page.waitForResponse(`${origin}/login/passkey?refresh=cookie`),
    page.click('#passkey-login'),
  ])
  t.same(options.request().postDataJSON(), {}, 'options asked without an email: a discoverable sign-in')
  t.notOk((await options.json() as { allowCredentials?: unknown[] }).allowCredentials?.length, 'so no credentials are listed')
  t.equal(signIn.status(), 200, 'POST /login/passkey with the browser\'s answer: 200')
  const body = await signIn.json() as { access_token: string, refresh_token?: string, user: { email: string } }
  t.same(decodeJwt(body.access_token).amr, ['hwk', 'user'], 'the token says: a hardware key, and the authenticator verified the user')
  t.notOk(body.refresh_token, 'browser mode: the refresh token is in the cookie, not the body')
  t.equal(body.user.email, email, 'the account the passkey was made for')
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), `Passkey User (${email}, user)`, 'signed in')
  await page.locator('#passkeys-list li .meta', { hasText: /last used/ }).waitFor()
  t.match(await page.locator('#passkeys-list li .meta').innerText(), /; last used /, 'the list shows it was used')
  t.ok((await authenticator.credentials())[0]!.signCount > stored[0]!.signCount, 'the authenticator signed once more (its counter moved)')
  await screenshot(page, '51-demo-signed-in-with-passkey')
  noProblems(t, watch)
})

t.test('demo page: with TOTP on, a passkey gives the second step in place of a code', async (t) => {
  const email = await registerUser(url, 'Two Step User')
  // TOTP on through the API, as an authenticator app would (the page's own flow is demo-mfa.e2e.ts).
  const token = await apiToken(email)
  const setup = await api(url, 'POST', '/mfa/totp/setup', undefined, token)
  t.equal(setup.status, 200, 'POST /mfa/totp/setup: 200')
  const secret = String(setup.data?.secret)
  await awayFromStepEdge()
  const enabled = await api(url, 'POST', '/mfa/totp/enable', { code: totpCode(secret) }, token)
  t.equal(enabled.status, 200, 'POST /mfa/totp/enable: 200')

  const watch = await openPage(t, origin)
  const { page } = watch
  await addAuthenticator(page)
  await page.goto(`${origin}/demo`)
  const first = await logInWithPassword(t, page, email)
  t.same(first.methods, ['totp', 'recovery_code'], 'no passkey yet: a code or a recovery code')
  await page.locator('#mfa-login-form').waitFor()
  t.ok(await page.locator('#mfa-passkey').isHidden(), 'so no "Use a passkey"')
  // The next step's code: enabling spent this one.
  await page.fill('#mfa-login-form input[name=code]', totpCode(secret, 1))
  const [withCode] = await Promise.all([page.waitForResponse(`${origin}/login/mfa?refresh=cookie`), page.click('#mfa-login-form button[type=submit]')])
  t.equal(withCode.status(), 200, 'signed in with a code')
  await page.locator('#passkeys-section').waitFor()
  await addPasskey(t, page, 'Security key')
  await page.locator('#mfa-status', { hasText: /or a passkey/ }).waitFor()
  t.match(await page.locator('#mfa-status').innerText(), /^On: logins need a code from your authenticator app or a passkey\./, 'the status names the passkey as a second factor')

  await logOut(t, page)
  const second = await logInWithPassword(t, page, email)
  t.match(second, { mfa_required: true }, 'the password alone is not enough')
  t.same(second.methods, ['totp', 'recovery_code', 'passkey'], 'a passkey is now one of the methods')
  t.notOk('access_token' in second, 'no tokens yet')
  await page.locator('#mfa-passkey').waitFor()
  t.match(await messageShowing(page, /passkey/), /or use a passkey/, 'the page offers the passkey')
  t.ok(await page.locator('#mfa-code-label').isVisible(), 'beside the code field')
  t.ok(await page.locator('#mfa-recovery-label').isHidden(), 'and not the recovery code\'s field, which has its own button')
  t.ok(await page.locator('#boards-section').isHidden(), 'not signed in yet')
  await screenshot(page, '52-demo-mfa-use-a-passkey')

  const [options, finished] = await Promise.all([
    page.waitForResponse(`${origin}/login/mfa/options`),
    page.waitForResponse(`${origin}/login/mfa?refresh=cookie`),
    page.click('#mfa-passkey'),
  ])
  t.equal(options.status(), 200, 'POST /login/mfa/options: 200')
  t.same(options.request().postDataJSON(), { mfa_token: second.mfa_token }, 'for this login\'s mfa_token')
  t.equal((await options.json() as { allowCredentials: unknown[] }).allowCredentials.length, 1, 'listing the account\'s passkey')
  t.equal(finished.status(), 200, 'POST /login/mfa with the passkey\'s answer: 200')
  const sent = finished.request().postDataJSON() as Record<string, unknown>
  t.same(Object.keys(sent).sort(), ['mfa_token', 'passkey_response'], 'the passkey\'s answer in place of a code')
  t.equal(sent.mfa_token, second.mfa_token, 'with the same mfa_token')
  t.same(decodeJwt((await finished.json() as { access_token: string }).access_token).amr, ['pwd', 'hwk'], 'the token proves both factors: password and hardware key')
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), `Two Step User (${email}, user)`, 'signed in')
  t.ok(await page.locator('#mfa-login-section').isHidden(), 'the second-factor view is gone')
  await screenshot(page, '53-demo-signed-in-with-passkey-second-factor')
  noProblems(t, watch)
})

t.test('demo page: removing a passkey needs a login; once removed, the passkey no longer signs in', async (t) => {
  const email = await registerUser(url, 'Removing User')
  const watch = await openPage(t, origin)
  const { page } = watch
  const authenticator = await addAuthenticator(page)
  await page.goto(`${origin}/demo`)
  await logInWithPassword(t, page, email)
  await page.locator('#passkeys-section').waitFor()
  const passkey = await addPasskey(t, page, 'Old phone')

  // A reload resumes the session with a refresh: its token is not fresh, so no removal.
  const [refreshed] = await Promise.all([page.waitForResponse(`${origin}/refresh`), page.reload()])
  t.equal(refreshed.status(), 200, 'the reload refreshes')
  await page.locator('#passkeys-list li').first().waitFor()
  const [refused] = await Promise.all([page.waitForResponse(`${origin}/passkeys/${passkey.id}`), page.click('#passkeys-list li button.remove')])
  t.equal(refused.status(), 401, 'DELETE /passkeys/:id with a refreshed token: 401')
  t.equal((await refused.json() as { code: string }).code, 'fresh_token_required', 'fresh_token_required')
  t.match(await messageShowing(page, /recent login/), /needs a recent login/, 'the page says to log in again')
  t.equal(await page.locator('#message').getAttribute('class'), 'error', 'as an error')
  t.ok(await page.locator('#boards-section').isVisible(), 'and stays signed in')
  t.equal(await page.locator('#passkeys-list li').count(), 1, 'the passkey is still listed')
  await screenshot(page, '54-demo-passkey-removal-needs-login')

  await logOut(t, page)
  await logInWithPassword(t, page, email)
  await page.locator('#passkeys-list li').first().waitFor()
  const [removed] = await Promise.all([page.waitForResponse(`${origin}/passkeys/${passkey.id}`), page.click('#passkeys-list li button.remove')])
  t.equal(removed.status(), 204, 'DELETE /passkeys/:id after a login: 204')
  t.match(await messageShowing(page, /removed/), /Passkey "Old phone" removed/, 'the page says it is removed')
  await page.locator('#passkeys-list li').waitFor({ state: 'detached' })
  t.equal(await page.locator('#passkeys-list li').count(), 0, 'the list is empty')
  await page.locator('#mfa-status', { hasText: /^Off: your password alone logs you in\.$/ }).waitFor()
  t.notMatch(await page.locator('#mfa-status').innerText(), /passkey/, 'the status counts no passkey')
  const mine = await api(url, 'GET', '/passkeys', undefined, await apiToken(email))
  t.same(mine.data, { items: [] }, 'GET /passkeys through the API: none')
  t.equal((await authenticator.credentials()).length, 1, 'the device still holds it (only the account forgot it)')
  await screenshot(page, '55-demo-passkey-removed')

  await logOut(t, page)
  const [signIn] = await Promise.all([page.waitForResponse(`${origin}/login/passkey?refresh=cookie`), page.click('#passkey-login')])
  t.equal(signIn.status(), 401, 'the device offers it, and POST /login/passkey refuses it: 401')
  t.equal((await signIn.json() as { code: string }).code, 'invalid_credentials', 'invalid_credentials')
  t.match(await messageShowing(page, /not accepted/), /This passkey was not accepted: it may have been removed from your account/, 'the page says why, plainly')
  t.equal(await page.locator('#message').getAttribute('class'), 'error', 'as an error')
  t.ok(await page.locator('#login-section').isVisible(), 'the log-in view stays')
  t.ok(await page.locator('#boards-section').isHidden(), 'signed out')
  await screenshot(page, '56-demo-removed-passkey-refused')
  noProblems(t, watch, [expected401(`/passkeys/${passkey.id}`), expected401('/login/passkey?refresh=cookie')])
})

t.test('demo page: a passkey made for another site (RP ID) is never used', async (t) => {
  const email = await registerUser(url, 'Other Site User')
  const watch = await openPage(t, origin)
  const { page } = watch
  const { cdp, authenticatorId, credentials } = await addAuthenticator(page)
  // A resident ES256 passkey for example.com, as if made there.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const credentialId = randomBytes(16)
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId,
    credential: {
      credentialId: credentialId.toString('base64'),
      isResidentCredential: true,
      rpId: 'example.com',
      privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      userHandle: randomBytes(32).toString('base64'),
      signCount: 0,
    },
  })
  t.match(await credentials(), [{ rpId: 'example.com', isResidentCredential: true }], 'the authenticator holds only the other site\'s passkey')

  await page.goto(`${origin}/demo`)
  const [options] = await Promise.all([page.waitForResponse(`${origin}/login/passkey/options`), page.click('#passkey-login')])
  t.equal(options.status(), 200, 'options: 200')
  t.equal((await options.json() as { rpId: string }).rpId, 'localhost', 'for RP ID localhost')
  t.match(await messageShowing(page, /No passkey was used/), /No passkey was used/, 'the browser finds none for this site, and the page says so')
  t.equal(await page.locator('#message').getAttribute('class'), 'error', 'as an error')
  t.equal(responsesTo(watch, origin, 'POST', '/login/passkey').length, 0, 'nothing is sent to POST /login/passkey')
  t.equal((await credentials())[0]?.signCount, 0, 'the other site\'s passkey signed nothing')
  t.ok(await page.locator('#boards-section').isHidden(), 'signed out')
  t.ok(await page.locator('#login-section').isVisible(), 'the log-in view stays')
  await screenshot(page, '57-demo-other-site-passkey-unused')

  // The password still works in this browser, and its passkey list shows nothing of example.com.
  await logInWithPassword(t, page, email)
  await page.locator('#passkeys-section').waitFor()
  t.equal(await page.locator('#passkeys-list li').count(), 0, 'the account has no passkey')
  noProblems(t, watch)
})

t.test('demo page on an IP address: a passkey sign-in says to open the page at localhost', async (t) => {
  // http://127.0.0.1:<port>/demo, the address the server listens on (and APP_URL's default shape).
  const watch = await openPage(t, url)
  const { page } = watch
  const { credentials } = await addAuthenticator(page)
  await page.goto(`${url}/demo`)
  const [options] = await Promise.all([page.waitForResponse(`${url}/login/passkey/options`), page.click('#passkey-login')])
  t.equal((await options.json() as { rpId: string }).rpId, 'localhost', 'the options name RP ID localhost')
  const port = new URL(url).port
  t.match(await messageShowing(page, /domain name/), `Passkeys need a domain name, not an IP address: open this page at http://localhost:${port}/demo`,
    'the browser refuses the RP ID here, and the page says where passkeys work')
  t.equal(await page.locator('#message').getAttribute('class'), 'error', 'as an error')
  t.equal(responsesTo(watch, url, 'POST', '/login/passkey').length, 0, 'nothing is sent to POST /login/passkey')
  t.same(await credentials(), [], 'nothing is made or used')
  noProblems(t, watch)
})

t.test('POST /login/passkey refuses an answer signed right but for another origin or RP ID', async (t) => {
  // The passkey is made on the page, then its private key read back from the virtual
  // authenticator: answers are then signed here, correctly, with one thing wrong at a time. A
  // tampered browser answer would fail on its signature first and prove nothing about origins.
  const email = await registerUser(url, 'Signing User')
  const watch = await openPage(t, origin)
  const { page } = watch
  const { credentials } = await addAuthenticator(page)
  await page.goto(`${origin}/demo`)
  await logInWithPassword(t, page, email)
  await page.locator('#passkeys-section').waitFor()
  await addPasskey(t, page, 'Exported')
  const [credential] = await credentials()
  if (!credential?.privateKey || !credential.userHandle) throw new Error('the virtual authenticator gave no key')
  const key = createPrivateKey({ key: Buffer.from(credential.privateKey, 'base64'), format: 'der', type: 'pkcs8' })
  const id = base64url(credential.credentialId)
  // Above the authenticator's own counter, so a refusal is never for a counter that went backwards.
  const counter = credential.signCount + 10

  /** A WebAuthn assertion (§6.1, §7.2) for fresh discoverable options, as the browser would send it from `clientOrigin`. */
  const answer = async (clientOrigin: string, rpId: string) => {
    const options = await api(url, 'POST', '/login/passkey/options', {})
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: options.data?.challenge, origin: clientOrigin, crossOrigin: false }))
    const count = Buffer.alloc(4)
    count.writeUInt32BE(counter)
    // rpIdHash, flags UP (0x01) and UV (0x04), signCount
    const authenticatorData = Buffer.concat([sha256(rpId), Buffer.from([0x05]), count])
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), key)
    return {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authenticatorData.toString('base64url'),
        signature: signature.toString('base64url'),
        userHandle: base64url(credential.userHandle!),
      },
      clientExtensionResults: {},
    }
  }

  const port = new URL(url).port
  for (const [what, clientOrigin, rpId] of [
    ['another port', 'http://localhost:1', 'localhost'],
    ['another site', 'https://evil.example', 'localhost'],
    ['the IP address the server listens on', url, 'localhost'],
    ['https on the right host and port', `https://localhost:${port}`, 'localhost'],
    ['another RP ID', origin, 'example.com'],
  ] as const) {
    const refused = await api(url, 'POST', '/login/passkey', { response: await answer(clientOrigin, rpId) })
    t.equal(refused.status, 401, `${what} (origin ${clientOrigin}, RP ID ${rpId}): 401`)
    t.equal(refused.data?.code, 'invalid_credentials', `${what}: invalid_credentials`)
  }
  // The control: the same signing, all right, is accepted; so each refusal above was for its one change.
  const accepted = await api(url, 'POST', '/login/passkey', { response: await answer(origin, 'localhost') })
  t.equal(accepted.status, 200, 'the right origin and RP ID, signed the same way: 200')
  t.same(decodeJwt(String(accepted.data?.access_token)).amr, ['hwk', 'user'], 'a passkey sign-in')
  noProblems(t, watch)
})
