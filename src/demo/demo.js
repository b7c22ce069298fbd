// The boardkit demo client: log in, keep the tokens, call protected routes with the Bearer
// header, refresh on 401 token_expired, list and create boards, log out.
//
// Tokens live in this script's memory only, not in localStorage or sessionStorage: any script
// on the page can read storage, and memory at least ends with the tab (a reload means logging
// in again). A real SPA would do the same, or keep the refresh token in an HttpOnly cookie set
// by a backend-for-frontend; this API deliberately uses Bearer headers, not cookies.
'use strict'

let tokens = null // { access_token, refresh_token, user }
let nextCursor = null

const $ = (selector) => document.querySelector(selector)

function say (text, isError = false) {
  $('#message').textContent = text
  $('#message').className = isError ? 'error' : ''
}

async function request (method, path, body, token) {
  const headers = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const data = response.status === 204 ? null : await response.json()
  return { status: response.status, data }
}

// One refresh at a time: concurrent 401s share it, so the single-use refresh token is spent once.
let refreshing = null
function refreshTokens () {
  refreshing ??= request('POST', '/refresh', undefined, tokens.refresh_token).then(({ status, data }) => {
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
  $('#whoami').textContent = `${data.user.name} (${data.user.email}, ${data.user.role})`
  $('#whoami').hidden = false
  $('#logout').hidden = false
  $('#login-section').hidden = true
  $('#boards-section').hidden = false
  $('#boards').replaceChildren()
  nextCursor = null
  return loadBoards()
}

function signedOut (text) {
  tokens = null
  $('#whoami').hidden = true
  $('#logout').hidden = true
  $('#login-section').hidden = false
  $('#boards-section').hidden = true
  say(text)
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
  $('#boards').append(...data.items.map(boardItem))
  nextCursor = data.next_cursor
  $('#more').hidden = nextCursor === null
}

async function login (email, password) {
  const { status, data } = await request('POST', '/login', { email, password })
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
  $('#boards').prepend(boardItem(data))
})

$('#more').addEventListener('click', () => loadBoards())

$('#logout').addEventListener('click', async () => {
  if (await api('POST', '/logout')) signedOut('Logged out: this session\'s tokens are revoked.')
})
