// The boardkit demo client, in browser mode (API.md §8): log in, call protected routes with the
// Bearer header, refresh on 401 token_expired, list and create boards, see and end sessions,
// log out.
//
// The access token lives in this script's memory only, never in localStorage or sessionStorage:
// any script on the page can read storage. The refresh token is not ours to hold at all: the API
// keeps it in an HttpOnly cookie (POST /login?refresh=cookie) that no script can read, and
// POST /refresh reads it. So a reload costs one refresh, not a new login.
'use strict'

let tokens = null // { access_token, user }; the refresh token is in the HttpOnly cookie
let nextCursor = null

// Not a secret, only a hint: whether this browser had a session when the page was last left, so
// a signed-out visitor's page load does not try a refresh that can only fail.
const HINT = 'boardkit-demo-signed-in'

const $ = (selector) => document.querySelector(selector)

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
  if (result.status === 401) {
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
  $('#boards-section').hidden = false
  $('#sessions-section').hidden = false
  $('#boards').replaceChildren()
  nextCursor = null
  return Promise.all([loadBoards(), loadSessions()])
}

function signedOut (text) {
  tokens = null
  localStorage.removeItem(HINT)
  $('#whoami').hidden = true
  $('#logout').hidden = true
  $('#login-section').hidden = false
  $('#boards-section').hidden = true
  $('#sessions-section').hidden = true
  say(text)
}

function sessionItem (session) {
  const item = document.createElement('li')
  item.dataset.id = session.id
  if (session.current) item.className = 'current'
  const what = document.createElement('strong')
  what.textContent = session.user_agent ?? 'Unknown client'
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
  say('')
  // Do not keep the password in the (hidden) form for the whole session.
  $('#login-form').reset()
  await signedIn(data)
}

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

$('#end-others').addEventListener('click', async () => {
  const result = await api('POST', '/logout?scope=others')
  if (!result) return
  say('Every other session is ended.')
  await loadSessions()
})

$('#logout').addEventListener('click', async () => {
  if (await api('POST', '/logout')) signedOut('Logged out: this session\'s tokens are revoked.')
})

// A reload: the cookie (if any) still holds the session; one refresh gets an access token.
if (localStorage.getItem(HINT)) {
  refreshTokens().then(() => signedIn(tokens), () => signedOut(''))
}
