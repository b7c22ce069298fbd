// The boardkit demo client, in browser mode (API.md §8): log in, call protected routes with the
// Bearer header, refresh on 401 token_expired, list and create boards, see and end sessions,
// log out; ask for a password-reset mail, set a new password and verify the email from the
// mailed links (API.md §10); turn on a second factor and log in with it (API.md §13); add
// passkeys, sign in with one, or give the second step of a login with one (API.md §14).
//
// The access token lives in this script's memory only, never in localStorage or sessionStorage:
// any script on the page can read storage. The refresh token is not ours to hold at all: the API
// keeps it in an HttpOnly cookie (POST /login?refresh=cookie) that no script can read, and
// POST /refresh reads it. So a reload costs one refresh, not a new login.
//
// The mailed links are APP_URL/reset-password#token=… and APP_URL/verify-email#token=…; with
// APP_URL at this page (…/demo) they open it. The token is in the fragment, which the browser
// never sends; the script reads it once, keeps it in memory and takes it out of the address bar
// (history, bookmarks, a screen share) at once.
//
// Passkeys go through @simplewebauthn/browser (SimpleWebAuthnBrowser, served by the API from
// /demo/vendor/ and run before this script): the API speaks WebAuthn's JSON forms, and the library
// turns them into what navigator.credentials wants and its answers back. The browser binds a
// passkey to a domain (the API's RP ID) and refuses the ceremonies on an IP address: open the
// page at http://localhost:port/demo, not http://127.0.0.1:port/demo.
'use strict'

let tokens = null // { access_token, user }; the refresh token is in the HttpOnly cookie
let nextCursor = null
let resetToken = null // the token of a reset link, until it is spent
let mfaToken = null // the challenge of a login that waits for its second factor

// Not a secret, only a hint: whether this browser had a session when the page was last left, so
// a signed-out visitor's page load does not try a refresh that can only fail.
const HINT = 'boardkit-demo-signed-in'

const $ = (selector) => document.querySelector(selector)

// null when the library did not load or the browser has no WebAuthn: the passkey buttons stay hidden.
const webauthn = globalThis.SimpleWebAuthnBrowser?.browserSupportsWebAuthn() ? globalThis.SimpleWebAuthnBrowser : null

function say (text, isError = false) {
  $('#message').textContent = text
  $('#message').className = isError ? 'error' : ''
}

async function request (method, path, body, token, extraHeaders = {}) {
  const headers = { ...extraHeaders }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  // Same origin: the browser sends the refresh cookie by itself (credentials 'same-origin').
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const data = response.status === 204 ? null : await response.json()
  return { status: response.status, data }
}

// One refresh at a time: concurrent 401s share it, so the single-use refresh token is spent once.
// No token and no body: the API reads the cookie, and wants X-Requested-With as proof that a
// page allowed to call it asked (a cross-site form cannot set that header).
let refreshing = null
function refreshTokens () {
  refreshing ??= request('POST', '/refresh', undefined, undefined, { 'x-requested-with': 'boardkit-demo' }).then(({ status, data }) => {
    if (status !== 200) throw new Error(data.message)
    tokens = data
  }).finally(() => { refreshing = null })
  return refreshing
}

// 401s that do not mean the session is over: a step that needs a login rather than a refresh,
// and a wrong password typed to confirm one.
const NOT_SIGNED_OUT = ['fresh_token_required', 'invalid_credentials']

/**
 * A call with the access token; on 401 token_expired, refresh once and try again. When the
 * session is over (revoked elsewhere, refresh refused) it signs out and resolves to null.
 */
async function api (method, path, body) {
  let result = await request(method, path, body, tokens.access_token)
  if (result.status === 401 && result.data.code === 'token_expired') {
    try {
      await refreshTokens()
    } catch (error) {
      signedOut(`Session ended: ${error.message}`)
      return null
    }
    result = await request(method, path, body, tokens.access_token)
  }
  if (result.status === 401 && !NOT_SIGNED_OUT.includes(result.data.code)) {
    signedOut(result.data.message)
    return null
  }
  return result
}

function signedIn (data) {
  tokens = data
  localStorage.setItem(HINT, '1')
  $('#whoami').textContent = `${data.user.name} (${data.user.email}, ${data.user.role})`
  $('#whoami').hidden = false
  $('#logout').hidden = false
  $('#login-section').hidden = true
  $('#mfa-login-section').hidden = true
  $('#forgot-section').hidden = true
  $('#reset-section').hidden = true
  $('#boards-section').hidden = false
  $('#sessions-section').hidden = false
  $('#security-section').hidden = false
  $('#passkeys-section').hidden = false
  $('#activity-section').hidden = false
  $('#verify-banner').hidden = Boolean(data.user.email_verified_at)
  $('#boards').replaceChildren()
  nextCursor = null
  return Promise.all([loadBoards(), loadSessions(), loadActivity(), loadMfaStatus(), loadPasskeys()])
}

function signedOut (text) {
  tokens = null
  localStorage.removeItem(HINT)
  $('#whoami').hidden = true
  $('#logout').hidden = true
  $('#login-section').hidden = false
  $('#mfa-login-section').hidden = true
  $('#forgot-section').hidden = true
  $('#reset-section').hidden = true
  $('#boards-section').hidden = true
  $('#sessions-section').hidden = true
  $('#security-section').hidden = true
  $('#passkeys-section').hidden = true
  $('#activity-section').hidden = true
  $('#verify-banner').hidden = true
  $('#passkeys-list').replaceChildren()
  hideEnrolment()
  hideRecoveryCodes()
  say(text)
}

/** Only one of the signed-out views (log in, second factor, forgot password, new password) at a time. */
function showView (id) {
  for (const view of ['#login-section', '#mfa-login-section', '#forgot-section', '#reset-section']) $(view).hidden = view !== id
}

function sessionItem (session) {
  const item = document.createElement('li')
  item.dataset.id = session.id
  if (session.current) item.className = 'current'
  const what = document.createElement('strong')
  what.textContent = session.device ?? 'Unknown client'
  what.title = session.user_agent ?? ''
  const meta = document.createElement('div')
  meta.className = 'meta'
  meta.textContent = `${session.ip ?? 'unknown address'}; signed in ${new Date(session.created_at).toLocaleString()}, ` +
    `last used ${new Date(session.last_used_at).toLocaleString()}${session.current ? ' (this session)' : ''}`
  const end = document.createElement('button')
  end.type = 'button'
  end.className = 'end'
  end.textContent = session.current ? 'End (log out)' : 'End'
  end.addEventListener('click', () => endSession(session))
  item.append(what, meta, end)
  return item
}

async function loadSessions () {
  const result = await api('GET', '/sessions?limit=100')
  if (!result) return
  const { status, data } = result
  if (status !== 200) return say(data.message, true)
  $('#sessions').replaceChildren(...data.items.map(sessionItem))
}

/** An event as a line people read: what, with which device, from where, when. */
function activityItem (event) {
  const item = document.createElement('li')
  item.dataset.type = event.type
  const what = document.createElement('strong')
  what.textContent = event.count > 1 ? `${event.type} ×${event.count}` : event.type
  const meta = document.createElement('div')
  meta.className = 'meta'
  meta.textContent = [event.device, event.ip, new Date(event.occurred_at).toLocaleString()].filter(Boolean).join(' · ')
  item.append(what, meta)
  return item
}

async function loadActivity () {
  const result = await api('GET', `/users/${tokens.user.id}/events?limit=20`)
  if (!result) return
  const { status, data } = result
  if (status !== 200) return say(data.message, true)
  $('#activity').replaceChildren(...data.items.map(activityItem))
}

async function endSession (session) {
  const result = await api('DELETE', `/sessions/${session.id}`)
  if (!result) return
  if (result.status !== 204) return say(result.data.message, true)
  if (session.current) return signedOut('Logged out: this session is ended.')
  say('Session ended: its tokens no longer work.')
  await loadSessions()
}

function boardItem (board) {
  const item = document.createElement('li')
  item.dataset.id = board.id
  const title = document.createElement('strong')
  title.textContent = board.title
  const content = document.createElement('div')
  content.textContent = board.content
  const meta = document.createElement('div')
  meta.className = 'meta'
  meta.textContent = `#${board.id} by ${board.author.name}, ${new Date(board.created_at).toLocaleString()}`
  item.append(title, content, meta)
  return item
}

async function loadBoards () {
  const query = nextCursor ? `?limit=10&cursor=${encodeURIComponent(nextCursor)}` : '?limit=10'
  const result = await api('GET', `/boards${query}`)
  if (!result) return
  const { status, data } = result
  if (status !== 200) return say(data.message, true)
  // A board created while this page was loading may already be listed.
  const listed = (board) => document.querySelector(`#boards li[data-id="${board.id}"]`)
  $('#boards').append(...data.items.filter((board) => !listed(board)).map(boardItem))
  nextCursor = data.next_cursor
  $('#more').hidden = nextCursor === null
}

async function login (email, password) {
  const { status, data } = await request('POST', '/login?refresh=cookie', { email, password })
  if (status !== 200) return say(data.message, true)
  // Do not keep the password in the (hidden) form for the whole session.
  $('#login-form').reset()
  if (data.mfa_required) return askForCode(data)
  say('')
  await signedIn(data)
}

/**
 * The first factor (a password, or a provider) was right; the login waits for a code (API.md §13),
 * in memory only, or for a passkey when the account has one (`passkey` among the methods).
 */
function askForCode (challenge) {
  mfaToken = challenge.mfa_token
  const byPasskey = Boolean(webauthn) && challenge.methods?.includes('passkey') === true
  $('#mfa-passkey').hidden = !byPasskey
  useRecoveryCode(false)
  showView('#mfa-login-section')
  say(byPasskey ? 'Enter the code your authenticator app shows, or use a passkey.' : 'Enter the code your authenticator app shows.')
  $('#mfa-login-form').elements.code.focus()
}

/** The mfa_token is expired, out of tries, or voided: the password must be typed again. */
function mfaTokenSpent (message) {
  mfaToken = null
  $('#mfa-login-form').reset()
  showView('#login-section')
  say(message, true)
}

/** The second step of a login: a TOTP code, or a recovery code in its place. */
function useRecoveryCode (yes) {
  const form = $('#mfa-login-form')
  $('#mfa-code-label').hidden = yes
  $('#mfa-recovery-label').hidden = !yes
  form.elements.code.required = !yes
  form.elements.recovery_code.required = yes
  $('#mfa-use-recovery').textContent = yes ? 'Use the authenticator app instead' : 'Use a recovery code instead'
}

$('#mfa-use-recovery').addEventListener('click', () => useRecoveryCode($('#mfa-code-label').hidden === false))
$('#mfa-cancel').addEventListener('click', () => {
  mfaToken = null
  $('#mfa-login-form').reset()
  showView('#login-section')
  say('')
})

$('#mfa-login-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  const byRecovery = $('#mfa-code-label').hidden
  const body = byRecovery ? { mfa_token: mfaToken, recovery_code: form.get('recovery_code') } : { mfa_token: mfaToken, code: form.get('code') }
  const { status, data } = await request('POST', '/login/mfa?refresh=cookie', body)
  if (status === 401 && data.code === 'invalid_mfa_token') return mfaTokenSpent(data.message)
  if (status !== 200) {
    event.target.elements[byRecovery ? 'recovery_code' : 'code'].value = ''
    return say(data.message, true)
  }
  mfaToken = null
  event.target.reset()
  say(byRecovery ? 'Signed in with a recovery code; it is used up, and your other sessions were ended.' : '')
  await signedIn(data)
})

// The second step with a passkey: options for this login's mfa_token (the account's passkeys),
// the browser's answer, then POST /login/mfa with it in place of a code.
$('#mfa-passkey').addEventListener('click', async () => {
  const options = await request('POST', '/login/mfa/options', { mfa_token: mfaToken })
  if (options.status === 401 && options.data.code === 'invalid_mfa_token') return mfaTokenSpent(options.data.message)
  if (options.status !== 200) return say(options.data.message, true)
  const response = await passkeyAnswer(() => webauthn.startAuthentication({ optionsJSON: options.data }), 'sign-in')
  if (!response) return
  const { status, data } = await request('POST', '/login/mfa?refresh=cookie', { mfa_token: mfaToken, passkey_response: response })
  if (status === 401 && data.code === 'invalid_mfa_token') return mfaTokenSpent(data.message)
  if (status !== 200) return say(data.message, true)
  mfaToken = null
  $('#mfa-login-form').reset()
  say('')
  await signedIn(data)
})

// ---- the second factor's settings (API.md §13)

async function loadMfaStatus () {
  const result = await api('GET', '/me')
  if (!result) return
  const { totp, passkeys, recovery_codes_left: left } = result.data.mfa
  const status = totp
    ? `On: logins need a code from your authenticator app${passkeys > 0 ? ' or a passkey' : ''}. ${left} recovery ${left === 1 ? 'code' : 'codes'} left.`
    : 'Off: your password alone logs you in.'
  $('#mfa-status').textContent = passkeys > 0
    ? `${status} ${passkeys} ${passkeys === 1 ? 'passkey signs' : 'passkeys sign'} you in without a password.`
    : status
  $('#totp-on').hidden = !totp
  $('#totp-off').hidden = totp
}

function hideEnrolment () {
  $('#totp-enrol').hidden = true
  $('#totp-qr').removeAttribute('src')
  $('#totp-secret').textContent = ''
  $('#totp-enable-form').reset()
}

/** The recovery codes, shown once: gone from the page when the user says they are saved. */
function showRecoveryCodes (codes) {
  $('#recovery-codes').replaceChildren(...codes.map((code) => {
    const item = document.createElement('li')
    item.textContent = code
    return item
  }))
  $('#recovery-codes-panel').hidden = false
}

function hideRecoveryCodes () {
  $('#recovery-codes').replaceChildren()
  $('#recovery-codes-panel').hidden = true
}

$('#totp-setup').addEventListener('click', async () => {
  const result = await api('POST', '/mfa/totp/setup')
  if (!result) return
  if (result.status !== 200) return say(result.data.message, true)
  // The QR code is an SVG in a data: URL, made by the API: the CSP lets images come from data:.
  $('#totp-qr').src = result.data.qr_code
  $('#totp-secret').textContent = result.data.secret
  $('#totp-off').hidden = true
  $('#totp-enrol').hidden = false
  say('')
  $('#totp-enable-form').elements.code.focus()
})

$('#totp-enrol-cancel').addEventListener('click', () => {
  hideEnrolment()
  $('#totp-off').hidden = false
})

$('#totp-enable-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const result = await api('POST', '/mfa/totp/enable', { code: new FormData(event.target).get('code') })
  if (!result) return
  if (result.status !== 200) {
    event.target.reset()
    return say(result.data.message, true)
  }
  hideEnrolment()
  showRecoveryCodes(result.data.recovery_codes)
  say('Two-factor authentication is on; your other sessions were ended. Your next login will ask for a code.')
  await Promise.all([loadMfaStatus(), loadSessions(), loadActivity()])
})

$('#recovery-codes-done').addEventListener('click', () => hideRecoveryCodes())

$('#recovery-codes-new').addEventListener('click', async () => {
  const result = await api('POST', '/mfa/recovery-codes')
  if (!result) return
  if (result.status !== 200) return say(result.data.message, true)
  showRecoveryCodes(result.data.recovery_codes)
  say('New recovery codes: the old ones no longer work, and your other sessions were ended.')
  await Promise.all([loadMfaStatus(), loadSessions(), loadActivity()])
})

$('#totp-disable-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const result = await api('POST', '/mfa/totp/disable', { current_password: new FormData(event.target).get('current_password') })
  event.target.reset()
  if (!result) return
  if (result.status !== 204) return say(result.data.message, true)
  hideRecoveryCodes()
  say('Two-factor authentication is off; your other sessions were ended.')
  await Promise.all([loadMfaStatus(), loadSessions(), loadActivity()])
})

// ---- passkeys (API.md §14)

/**
 * Runs a ceremony of the browser (make or use a passkey) and resolves to its answer as JSON, or
 * to null once the page says why there is none. Cancelling is the user's choice, so not an error.
 */
async function passkeyAnswer (ceremony, what) {
  try {
    return await ceremony()
  } catch (error) {
    if (error.name === 'NotAllowedError') {
      say(what === 'sign-in'
        ? 'No passkey was used: the request was cancelled or timed out, or this device holds no passkey for this site.'
        : 'No passkey was made: the request was cancelled or timed out.', true)
    } else if (error.name === 'InvalidStateError') {
      // The options list the account's passkeys (excludeCredentials): this authenticator holds one of them.
      say('This device holds a passkey for your account already.', true)
    } else if (error.name === 'SecurityError' && /^(\d+\.){3}\d+$|^\[/.test(location.hostname)) {
      // Browsers refuse passkeys on an IP address, and the API then names localhost as the RP ID
      // (src/config.ts): the default APP_URL, http://127.0.0.1:3000, lands here.
      const here = `${location.protocol}//localhost${location.port ? `:${location.port}` : ''}${location.pathname}`
      say(`Passkeys need a domain name, not an IP address: open this page at ${here}`, true)
    } else {
      say(`The passkey could not be ${what === 'sign-in' ? 'used' : 'made'}: ${error.message}`, true)
    }
    return null
  }
}

function passkeyItem (passkey) {
  const item = document.createElement('li')
  item.dataset.id = passkey.id
  const name = document.createElement('strong')
  name.textContent = passkey.name
  const meta = document.createElement('div')
  meta.className = 'meta'
  meta.textContent = `added ${new Date(passkey.created_at).toLocaleString()}; ` +
    (passkey.last_used_at ? `last used ${new Date(passkey.last_used_at).toLocaleString()}` : 'not used yet')
  const remove = document.createElement('button')
  remove.type = 'button'
  remove.className = 'remove'
  remove.textContent = 'Remove'
  remove.addEventListener('click', () => removePasskey(passkey))
  item.append(name, meta, remove)
  return item
}

async function loadPasskeys () {
  $('#passkey-add-form').hidden = !webauthn
  $('#passkeys-unsupported').hidden = Boolean(webauthn)
  const result = await api('GET', '/passkeys')
  if (!result) return
  const { status, data } = result
  if (status !== 200) return say(data.message, true)
  $('#passkeys-list').replaceChildren(...data.items.map(passkeyItem))
}

// Adding and removing a passkey end the account's other sessions, in the same step: the lists
// and the status on the page change with it.
const afterPasskeyChange = () => Promise.all([loadPasskeys(), loadMfaStatus(), loadSessions(), loadActivity()])

$('#passkey-add-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const name = String(new FormData(event.target).get('name')).trim()
  const options = await api('POST', '/passkeys/register/options')
  if (!options) return
  if (options.status === 401 && options.data.code === 'fresh_token_required') {
    return say('Adding a passkey needs a recent login, not a resumed session: log out, log in again, then add it.', true)
  }
  if (options.status !== 200) return say(options.data.message, true)
  const response = await passkeyAnswer(() => webauthn.startRegistration({ optionsJSON: options.data }), 'registration')
  if (!response) return
  // Without a name the API names it after this browser and system.
  const result = await api('POST', '/passkeys/register', name ? { response, name } : { response })
  if (!result) return
  if (result.status !== 201) return say(result.data.message, true)
  event.target.reset()
  say(`Passkey "${result.data.name}" added: it signs you in without a password. Your other sessions were ended.`)
  await afterPasskeyChange()
})

async function removePasskey (passkey) {
  const result = await api('DELETE', `/passkeys/${passkey.id}`)
  if (!result) return
  if (result.status === 401 && result.data.code === 'fresh_token_required') {
    return say('Removing a passkey needs a recent login, not a resumed session: log out, log in again, then remove it.', true)
  }
  if (result.status !== 204) return say(result.data.message, true)
  // The API forgets the passkey; the device keeps it (and may still offer it) until removed there.
  say(`Passkey "${passkey.name}" removed: it no longer signs you in. Remove it from your device too (its passkey settings). Your other sessions were ended.`)
  await afterPasskeyChange()
}

// A discoverable sign-in: no email asked, the browser offers the passkeys it holds for this site.
$('#passkey-login').addEventListener('click', async () => {
  const options = await request('POST', '/login/passkey/options', {})
  if (options.status !== 200) return say(options.data.message, true)
  const response = await passkeyAnswer(() => webauthn.startAuthentication({ optionsJSON: options.data }), 'sign-in')
  if (!response) return
  const { status, data } = await request('POST', '/login/passkey?refresh=cookie', { response })
  if (status === 401) {
    // The API says no more than for a wrong password; the likely cause is one the user can act on.
    return say('This passkey was not accepted: it may have been removed from your account. Log in with your password instead.', true)
  }
  if (status !== 200) return say(data.message, true)
  say('')
  await signedIn(data)
})
$('#passkey-login').hidden = !webauthn

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  await login(form.get('email'), form.get('password'))
})

$('#register').addEventListener('click', async () => {
  const form = new FormData($('#login-form'))
  const email = String(form.get('email'))
  const { status, data } = await request('POST', '/register', { email, name: email.split('@')[0] || email, password: form.get('password') })
  if (status !== 201) return say(data.message, true)
  await login(email, form.get('password'))
})

$('#board-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = new FormData(event.target)
  const result = await api('POST', '/boards', { title: form.get('title'), content: form.get('content') })
  if (!result) return
  const { status, data } = result
  if (status !== 201) return say(data.message, true)
  event.target.reset()
  say(`Created board #${data.id}`)
  document.querySelector(`#boards li[data-id="${data.id}"]`)?.remove()
  $('#boards').prepend(boardItem(data))
})

$('#more').addEventListener('click', () => loadBoards())
$('#reload-sessions').addEventListener('click', () => loadSessions())
$('#reload-activity').addEventListener('click', () => loadActivity())

$('#end-others').addEventListener('click', async () => {
  const result = await api('POST', '/logout?scope=others')
  if (!result) return
  say('Every other session is ended.')
  await loadSessions()
})

$('#logout').addEventListener('click', async () => {
  if (await api('POST', '/logout')) signedOut('Logged out: this session\'s tokens are revoked.')
})

$('#forgot-open').addEventListener('click', () => {
  $('#forgot-form').elements.email.value = $('#login-form').elements.email.value
  say('')
  showView('#forgot-section')
})
$('#forgot-cancel').addEventListener('click', () => showView('#login-section'))

$('#forgot-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const email = String(new FormData(event.target).get('email'))
  const { status, data } = await request('POST', '/password/forgot', { email })
  if (status !== 202) return say(data.message, true)
  // The same answer for every address (the API does not say whether it has an account).
  event.target.reset()
  showView('#login-section')
  say(`If ${email} has an account, a link to choose a new password is on its way to it. It works once, for a limited time.`)
})

$('#reset-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const newPassword = new FormData(event.target).get('new_password')
  const { status, data } = await request('POST', '/password/reset', { token: resetToken, new_password: newPassword })
  if (status === 400 && data.code === 'invalid_reset_token') {
    resetToken = null
    event.target.reset()
    showView('#forgot-section')
    return say(data.message, true)
  }
  if (status !== 204) return say(data.message, true)
  resetToken = null
  event.target.reset()
  // Every session ended, this browser's too: its cookie is dead, so no refresh on the next load.
  localStorage.removeItem(HINT)
  showView('#login-section')
  say('Your password is changed and every session is ended: log in with the new password.')
})

$('#verify-send').addEventListener('click', async () => {
  const result = await api('POST', '/email/verify/send')
  if (!result) return
  if (result.status !== 202) return say(result.data.message, true)
  say(`A new link is on its way to ${tokens.user.email}.`)
})

/** Opens a verification link: spends its token, then goes on as a plain visit of the page. */
async function verifyEmail (token) {
  const { status, data } = await request('POST', '/email/verify', { token })
  if (status !== 204) return say(data.message, true)
  say('Your email address is verified.')
  // Signed in here: the user object (and so the banner) comes fresh with the next refresh.
  if (tokens) await refreshTokens().then(() => signedIn(tokens), () => signedOut('Your email address is verified.'))
}

// The start. A mailed link: read the token from the fragment, then take the fragment (and the
// link's path) out of the address bar, so the token is not left in history or on screen.
const base = location.pathname.replace(/\/(reset-password|verify-email)\/?$/, '')
const linkPage = location.pathname.slice(base.length).replace(/^\/|\/$/g, '')
const fragment = new URLSearchParams(location.hash.slice(1))
const linkToken = fragment.get('token')
if (linkPage || location.hash) history.replaceState(null, '', base + location.search)

// Sign in with a provider (API.md §17): one button per configured provider. The browser goes
// there and comes back to this page with #code=… (a one-time code, traded for the session in
// browser mode) or #error=…; the fragment never reaches a server log.
const OIDC_ERRORS = {
  access_denied: 'You cancelled the sign-in at the provider.',
  account_exists: 'An account with this email exists, and the provider has not verified the email: log in with your password, then link the provider.',
  service_unavailable: 'The provider did not answer; try again shortly.',
}
async function showProviders () {
  const { status, data } = await request('GET', '/auth/oidc/providers')
  if (status !== 200) return
  $('#providers').replaceChildren(...data.items.map((provider) => {
    const button = document.createElement('button')
    button.type = 'button'
    button.textContent = `Sign in with ${provider.name}`
    button.addEventListener('click', () => {
      location.assign(`/auth/oidc/${encodeURIComponent(provider.id)}?redirect_uri=${encodeURIComponent(location.origin + base)}`)
    })
    return button
  }))
}
showProviders()
const oidcCode = linkPage ? null : fragment.get('code')
const oidcError = linkPage ? null : fragment.get('error')
if (oidcError) say(OIDC_ERRORS[oidcError] ?? `Signing in with the provider failed (${oidcError}).`, true)

// A reload: the cookie (if any) still holds the session; one refresh gets an access token.
const resumed = oidcCode
  ? request('POST', '/auth/oidc/exchange?refresh=cookie', { code: oidcCode })
    .then(({ status, data }) => status !== 200 ? signedOut(data.message) : data.mfa_required ? askForCode(data) : signedIn(data))
  : localStorage.getItem(HINT) && linkPage !== 'reset-password'
  ? refreshTokens().then(() => signedIn(tokens), () => signedOut(''))
  : Promise.resolve()

if (linkPage === 'reset-password') {
  resetToken = linkToken
  if (resetToken) showView('#reset-section')
  else say('This reset link has no token: open the link from the mail as it is, or ask for a new one.', true)
} else if (linkPage === 'verify-email') {
  if (linkToken) resumed.then(() => verifyEmail(linkToken))
  else say('This verification link has no token: open the link from the mail as it is.', true)
}
