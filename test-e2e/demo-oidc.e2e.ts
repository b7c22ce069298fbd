// Browser flow: the demo page's "Sign in with Test IdP" (API.md §17). A real OpenID provider
// (oidc-provider) on loopback, its own login and consent pages, and back to the demo signed in.
// Run with `npm run test:e2e` (the fixture, ./fixture.ts, says what it needs).
import t from 'tap'
import { noProblems, openPage, registerUser, responsesTo, screenshot, startServer } from './fixture.js'
import { CLIENT_ID, CLIENT_SECRET, startTestProvider } from '../test/oidc-provider.js'

let apiUrl = ''
const idp = await startTestProvider(t, () => [`${apiUrl}/auth/oidc/test/callback`])
apiUrl = await startServer(t, (url) => ({
  OIDC_PROVIDERS: JSON.stringify([{ id: 'test', name: 'Test IdP', issuer: idp.issuer, client_id: CLIENT_ID, client_secret: CLIENT_SECRET }]),
  OIDC_REDIRECT_URIS: `${url}/demo`,
}))
const url = apiUrl

t.test('demo page: sign in with Test IdP, through its login and consent pages, and back signed in', async (t) => {
  idp.accounts.set('grace', { email: 'grace@example.test', email_verified: true, name: 'Grace Hopper' })
  const watch = await openPage(t, url)
  const { page } = watch
  await page.goto(`${url}/demo`)
  const button = page.getByRole('button', { name: 'Sign in with Test IdP' })
  await button.waitFor()
  await screenshot(page, '40-demo-oidc-button')
  await button.click()

  // The provider's own pages (oidc-provider's development login and consent).
  await page.waitForURL(`${idp.issuer}/**`)
  await page.locator('input[name=login]').fill('grace')
  await page.locator('input[name=password]').fill('whatever')
  await screenshot(page, '41-demo-oidc-provider-login')
  await page.locator('button[type=submit]').click()
  await page.locator('button', { hasText: 'Continue' }).waitFor()
  await screenshot(page, '42-demo-oidc-provider-consent')
  const [exchanged] = await Promise.all([
    page.waitForResponse((response) => response.url().startsWith(`${url}/auth/oidc/exchange`)),
    page.locator('button', { hasText: 'Continue' }).click(),
  ])
  t.equal(exchanged.status(), 200, 'the page traded the code for a session')
  t.equal(exchanged.url(), `${url}/auth/oidc/exchange?refresh=cookie`, 'in browser mode')
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), 'Grace Hopper (grace@example.test, user)', 'signed in as the provider\'s account')
  t.equal(new URL(page.url()).hash, '', 'the code is gone from the address bar')
  const [cookie] = (await page.context().cookies(url)).filter((c) => c.name === '__Host-refresh')
  t.ok(cookie?.httpOnly, 'the refresh token is in the HttpOnly cookie')
  await page.locator('#activity li[data-type="login.succeeded"]').first().waitFor()
  await screenshot(page, '43-demo-oidc-signed-in')

  // A reload keeps the session, as after a password login.
  await Promise.all([page.waitForResponse(`${url}/refresh`), page.reload()])
  await page.locator('#boards-section').waitFor()
  t.match(await page.locator('#whoami').innerText(), 'Grace Hopper')
  t.same(responsesTo(watch, url, 'GET', '/auth/oidc/test/callback').map((response) => response.status()), [302], 'one callback, a redirect')
  noProblems(t, watch)
})

t.test('demo page: an unverified email of an existing account is refused with a clear message', async (t) => {
  const email = await registerUser(url, 'Owner')
  idp.accounts.set('impostor', { email, email_verified: false, name: 'Impostor' })
  const watch = await openPage(t, url)
  const { page } = watch
  await page.goto(`${url}/demo`)
  await page.getByRole('button', { name: 'Sign in with Test IdP' }).click()
  await page.waitForURL(`${idp.issuer}/**`)
  await page.locator('input[name=login]').fill('impostor')
  await page.locator('input[name=password]').fill('whatever')
  await page.locator('button[type=submit]').click()
  await page.locator('button', { hasText: 'Continue' }).click()
  await page.waitForURL(`${url}/demo`)
  await page.locator('#message', { hasText: 'An account with this email exists' }).waitFor()
  t.ok(await page.locator('#login-section').isVisible(), 'still signed out')
  await screenshot(page, '44-demo-oidc-account-exists')
  noProblems(t, watch)
})
