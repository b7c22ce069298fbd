// Browser flow: Swagger UI, served by the API. Authorize with a token from POST /login and call
// GET /me from the page.
// Run with `npm run test:e2e` (the fixture, ./fixture.ts, says what it needs).
import t from 'tap'
import { api, bearerOf, noProblems, openPage, OUTPUT, PASSWORD, registerUser, screenshot, startServer } from './fixture.js'

const url = await startServer(t)

t.test('Swagger UI: authorize with a token, try GET /me', async (t) => {
  const email = await registerUser(url, 'Swagger User')
  const login = await api(url, 'POST', '/login', { email, password: PASSWORD })
  t.equal(login.status, 200, 'POST /login (fetch): 200')
  const accessToken = login.data!.access_token as string

  const watch = await openPage(t, url)
  const { page } = watch
  const loaded = await page.goto(`${url}/swagger-ui`)
  t.equal(loaded?.status(), 200, 'GET /swagger-ui: 200')
  await page.locator('.opblock').first().waitFor()
  t.ok(await page.locator('.opblock').count() > 10, 'the operations render')
  t.match(await page.locator('.info .title').innerText(), /boardkit API/, 'the document title shows')
  await screenshot(page, '01-swagger-ui-loaded')

  // Authorize: the bearerAuth scheme takes the access token.
  await page.locator('.auth-wrapper button.authorize').click()
  const dialog = page.locator('.dialog-ux .modal-ux')
  await dialog.waitFor()
  // The dialog has a form per scheme: bearerAuth, and refreshCookie (browser mode's cookie).
  const bearerForm = dialog.locator('form').filter({ hasText: 'bearerAuth' })
  await bearerForm.locator('input#auth-bearer-value').fill(accessToken)
  await bearerForm.locator('button.authorize').click()
  // Authorized: the value is masked and the button turns into "Logout" (aria-label "Remove authorization").
  await bearerForm.locator('button', { hasText: 'Logout' }).waitFor()
  t.equal(await bearerForm.locator('h6').innerText(), 'Authorized', 'the Authorize dialog accepts the token')
  await screenshot(page, '02-swagger-ui-authorized')
  await bearerForm.locator('button.btn-done').click()
  await dialog.waitFor({ state: 'detached' })
  t.ok(await page.locator('.auth-wrapper button.authorize.locked').count() === 1, 'the Authorize button shows as locked')

  // GET /me: expand, Try it out, Execute.
  const me = page.locator('.opblock.opblock-get').filter({ has: page.locator('.opblock-summary-path[data-path="/me"]') }).first()
  await me.locator('.opblock-summary').click()
  await me.locator('button.try-out__btn').click()
  const [sent] = await Promise.all([
    page.waitForResponse((response) => response.url() === `${url}/me` && response.request().method() === 'GET'),
    me.locator('button.execute').click(),
  ])
  t.equal(sent.status(), 200, 'GET /me from Swagger UI: 200')
  t.equal(await bearerOf(sent), accessToken, 'Swagger UI sent the pasted token as the Bearer token')
  // The server's answer: the first tbody row of the live responses table (not the documented ones).
  const live = me.locator('.live-responses-table tbody tr.response').first()
  await live.waitFor()
  t.equal((await live.locator('td.response-col_status').innerText()).trim(), '200', 'the response table shows 200')
  const body = await live.locator('td.response-col_description .highlight-code pre').innerText()
  t.match(body, `"email": "${email}"`, "the Response body shows the user's email")
  await me.scrollIntoViewIfNeeded()
  await live.scrollIntoViewIfNeeded()
  await screenshot(page, '03-swagger-ui-get-me-200')
  await me.screenshot({ path: `${OUTPUT}03b-swagger-ui-get-me-operation.png` })

  const foreign = watch.requests.filter((request) => !request.startsWith(`${url}/`))
  t.same(foreign, [], `every request went to ${url} (no CDN, no other host)`)
  t.ok(watch.requests.some((request) => request.startsWith(`${url}/swagger-ui/static/swagger-ui-bundle.js`)), 'the Swagger UI bundle came from this server')
  noProblems(t, watch)
})
