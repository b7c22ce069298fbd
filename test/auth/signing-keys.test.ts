import { createHmac, createPublicKey, generateKeyPairSync, sign as signBytes, type KeyObject } from 'node:crypto'
import { spawn, spawnSync } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { buildApp } from '../../src/app.js'
import { createAsymmetricKeyRing, decryptPrivateKey, KEY_REFRESH_INTERVAL_MS, revokeSigningKey } from '../../src/plugins/auth/keys.js'
import { AppError } from '../../src/errors.js'
import { createTokenService } from '../../src/plugins/auth/tokens.js'
import { assertUnauthorized, bearer, build, CLI_ARGS, createTestDatabase, decodeJwt, registerAndLogin, testConfig } from '../helper.js'
import { startTcpProxy } from '../ops/tcp-proxy.js'

// API.md §9: asymmetric signing keys, the JWKS, rotation and revocation across instances, and
// the confusion attacks an asymmetric setup invites.

type Claims = Record<string, unknown>
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const headerOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as Claims
const me = (app: App, token: string) => app.inject({ method: 'GET', url: '/me', headers: bearer(token) })
const jwks = async (app: App) => (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as { keys: Array<Record<string, string>> }

/** The bound docs/authentication.md promises: a key change reaches every instance within this. */
const BOUND_MS = 5000

/** A JWS signed with `key` (Ed25519, or P-256 in the JOSE r||s form), header as given. */
function signWith (key: KeyObject, header: Claims, payload: Claims): string {
  const input = `${b64(header)}.${b64(payload)}`
  const signature = key.asymmetricKeyType === 'ed25519'
    ? signBytes(null, Buffer.from(input), key)
    : signBytes('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
  return `${input}.${signature.toString('base64url')}`
}

/** `npm run cli -- keys …` in a process of its own, as an operator would run it. */
/**
 * Runs the CLI, as an operator would, beside the apps under test. Not spawnSync: that froze this
 * process's event loop, and with it the apps' key-refresh timers, for as long as the CLI took to
 * start; on a loaded machine that was past KEY_STALE_AFTER_MS, and the apps then (rightly)
 * refused every token, which no instance running apart from the CLI would see.
 */
function cli (databaseUrl: string, args: string[]): Promise<{ status: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [...CLI_ARGS, 'keys', ...args], {
    cwd: new URL('../..', import.meta.url),
    env: { PATH: process.env.PATH, NODE_ENV: 'test', DATABASE_URL: databaseUrl, JWT_ALGORITHM: 'EdDSA', JWT_KEY_ACTIVATION_DELAY: '1s' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  return new Promise((resolve, reject) => child.once('error', reject).once('close', (status) => resolve({ status, stdout, stderr })))
}

/** Polls `check` until it holds; returns how long that took, or fails after `limit` ms. */
async function within (t: Test, limit: number, what: string, check: () => Promise<boolean>) {
  const started = Date.now()
  for (;;) {
    if (await check()) {
      const took = Date.now() - started
      t.pass(`${what} (after ${took} ms, bound ${limit} ms)`)
      return took
    }
    if (Date.now() - started > limit) {
      t.fail(`${what}: not within ${limit} ms`)
      return null
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

// Several cases start processes of their own (the CLI, second instances through tsx): on a machine
// other suites keep busy the file ran past .taprc's 120 s in a full `npm test` (142 s, 66 s alone).
t.setTimeout(300_000)

for (const algorithm of ['EdDSA', 'ES256'] as const) {
  t.test(`${algorithm}: tokens carry a kid and an outside verifier needs only the JWKS`, async (t) => {
    const app = await build(t, { JWT_ALGORITHM: algorithm })
    const alice = await registerAndLogin(app)
    const header = headerOf(alice.access_token)
    t.equal(header.alg, algorithm, 'the header names the algorithm')
    t.match(header.kid, /^[A-Za-z0-9_-]{22}$/, 'and a kid')
    t.equal(headerOf(alice.refresh_token).kid, header.kid, 'the refresh token carries the kid too')
    t.equal((await me(app, alice.access_token)).statusCode, 200, 'the API accepts its own token')
    const refreshed = await app.inject({ method: 'POST', url: '/refresh', headers: bearer(alice.refresh_token) })
    t.equal(refreshed.statusCode, 200, 'and its own refresh token')

    const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
    t.equal(response.statusCode, 200)
    t.match(response.headers['cache-control'], /^public, max-age=\d+$/, 'Cache-Control: public, max-age')
    const set = response.json() as { keys: Array<Record<string, string>> }
    t.equal(set.keys.length, 1, 'one key')
    t.match(set.keys[0], { kid: header.kid, alg: algorithm, use: 'sig', kty: algorithm === 'EdDSA' ? 'OKP' : 'EC', crv: algorithm === 'EdDSA' ? 'Ed25519' : 'P-256' })
    t.notOk('d' in set.keys[0]!, 'no private part in the JWKS')

    const row = (await app.repos.signingKeys.list())[0]!
    t.notMatch(row.private_key, /PRIVATE KEY|^MC/, 'the private key is not stored in clear')
    t.throws(() => decryptPrivateKey(row.private_key, row.kid, 'another-secret-of-at-least-32-bytes!!'), /JWT_KEY_ENCRYPTION_SECRET: cannot decrypt/, 'another secret cannot decrypt it')
    t.throws(() => decryptPrivateKey(row.private_key, 'another-kid', app.config.JWT_KEY_ENCRYPTION_SECRET), /cannot decrypt/, 'nor can it be moved to another kid')

    // An outside service: only the JWKS URL, over a real socket.
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const keySet = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`))
    const verified = await jwtVerify(alice.access_token, keySet, { issuer: app.config.JWT_ISSUER, audience: app.config.JWT_AUDIENCE, algorithms: [algorithm] })
    t.equal(verified.payload.sub, String(alice.user.id), 'jose verifies our access token with the JWKS alone')
    const [h, p, s] = alice.access_token.split('.') as [string, string, string]
    const tampered = `${h}.${b64({ ...decodeJwt(alice.access_token), role: 'admin' })}.${s}`
    await t.rejects(jwtVerify(tampered, keySet), joseErrors.JWSSignatureVerificationFailed, 'jose rejects a tampered payload')
    const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`
    await t.rejects(jwtVerify(flipped, keySet), 'jose rejects a changed signature')
    assertUnauthorized(t, await me(app, tampered), 'token_invalid', 'the API rejects the tampered token too')

    // The confusion attacks of API.md §9, each signed so that only the key check can stop it.
    const claims = decodeJwt(alice.access_token)
    const publicJwk = set.keys[0]!
    const publicPem = createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
    const hmacWith = (secret: string | Buffer, hdr: Claims) => {
      const input = `${b64(hdr)}.${b64(claims)}`
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
    }
    const attacker = algorithm === 'EdDSA' ? generateKeyPairSync('ed25519').privateKey : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    const attacks: Array<[string, string]> = [
      ['HS256 signed with the public key PEM as the secret', hmacWith(publicPem, { alg: 'HS256', typ: 'JWT', kid: header.kid })],
      ['HS256 signed with the public JWK JSON as the secret', hmacWith(JSON.stringify(publicJwk), { alg: 'HS256', typ: 'JWT', kid: header.kid })],
      ['HS256 signed with JWT_SECRET (the HS256 family is off)', hmacWith(app.config.JWT_SECRET, { alg: 'HS256', typ: 'JWT' })],
      ['alg none with our kid', `${b64({ alg: 'none', kid: header.kid })}.${b64(claims)}.`],
      ['our kid, signed by another key', signWith(attacker, { alg: algorithm, typ: 'JWT', kid: header.kid }, claims)],
      ['an unknown kid, signed by another key', signWith(attacker, { alg: algorithm, typ: 'JWT', kid: 'AAAAAAAAAAAAAAAAAAAAAA' }, claims)],
      ['no kid, signed by another key', signWith(attacker, { alg: algorithm, typ: 'JWT' }, claims)],
      ['a jwk header with the attacker\'s public key', signWith(attacker, { alg: algorithm, typ: 'JWT', kid: header.kid, jwk: createPublicKey(attacker).export({ format: 'jwk' }) }, claims)],
      ['a jku header pointing elsewhere', signWith(attacker, { alg: algorithm, typ: 'JWT', kid: header.kid, jku: 'http://127.0.0.1:1/keys.json' }, claims)],
      ['a kid with SQL in it', signWith(attacker, { alg: algorithm, typ: 'JWT', kid: '\' OR 1=1 --' }, claims)],
      ['a kid that is a path', signWith(attacker, { alg: algorithm, typ: 'JWT', kid: '../../../dev/null' }, claims)],
      ['our token with the header\'s alg switched', `${b64({ ...header, alg: algorithm === 'EdDSA' ? 'ES256' : 'EdDSA' })}.${p}.${s}`],
    ]
    for (const [what, token] of attacks) assertUnauthorized(t, await me(app, token), 'token_invalid', what)
  })
}

t.test('HS256 (the default): an empty JWKS and no kid', async (t) => {
  const app = await build(t)
  const alice = await registerAndLogin(app)
  t.equal(headerOf(alice.access_token).alg, 'HS256')
  t.notOk('kid' in headerOf(alice.access_token), 'HS256 tokens carry no kid')
  t.same(await jwks(app), { keys: [] }, 'nothing to publish')
})

t.test('instances started together on a new database make exactly one first key', async (t) => {
  const url = await createTestDatabase(t)
  const apps = await Promise.all([1, 2, 3].map(() => buildApp(testConfig({ DATABASE_URL: url, JWT_ALGORITHM: 'EdDSA' }))))
  t.teardown(() => Promise.all(apps.map((app) => app.close())))
  const rows = await apps[0]!.repos.signingKeys.list()
  t.equal(rows.length, 1, 'one key row')
  const kids = new Set(await Promise.all(apps.map(async (app) => (await jwks(app)).keys.map((key) => key.kid).join())))
  t.same([...kids], [rows[0]!.kid], 'and every instance publishes it')
})

t.test('a wrong JWT_KEY_ENCRYPTION_SECRET stops a start with one clear line', async (t) => {
  const url = await createTestDatabase(t)
  const first = await buildApp(testConfig({ DATABASE_URL: url, JWT_ALGORITHM: 'ES256' }))
  await first.close()
  // A process of its own: a start that fails half-way leaves its pool open, and the CLI exits.
  const result = spawnSync(process.execPath, [...CLI_ARGS, 'keys', 'list'], {
    cwd: new URL('../..', import.meta.url),
    env: { PATH: process.env.PATH, NODE_ENV: 'test', DATABASE_URL: url, JWT_ALGORITHM: 'ES256', JWT_KEY_ENCRYPTION_SECRET: 'a-different-secret-of-at-least-32-bytes' },
    encoding: 'utf8',
    timeout: 60_000,
  })
  t.equal(result.status, 1, 'exit code 1')
  t.match(result.stderr, /^boardkit: JWT_KEY_ENCRYPTION_SECRET: cannot decrypt signing key [\w-]+; is it the secret the key was stored with\?\n$/, 'one line naming the variable')
})

t.test('production refuses a missing, short or placeholder JWT_KEY_ENCRYPTION_SECRET, whatever the algorithm', async (t) => {
  const production = { NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(48) }
  // It encrypts the TOTP secrets too (API.md §13), which every algorithm stores.
  for (const algorithm of ['HS256', 'EdDSA', 'ES256']) {
    t.throws(() => loadConfig({ ...production, JWT_ALGORITHM: algorithm }), /^JWT_KEY_ENCRYPTION_SECRET: required in production/, `${algorithm}: missing`)
    t.throws(() => loadConfig({ ...production, JWT_ALGORITHM: algorithm, JWT_KEY_ENCRYPTION_SECRET: 'short' }), /at least 32 bytes/, `${algorithm}: short`)
    t.throws(() => loadConfig({ ...production, JWT_ALGORITHM: algorithm, JWT_KEY_ENCRYPTION_SECRET: 'change-me-to-another-random-string-of-32-bytes-or-more' }), /placeholder/, `${algorithm}: placeholder`)
    t.equal(loadConfig({ ...production, JWT_ALGORITHM: algorithm, JWT_KEY_ENCRYPTION_SECRET: 'k'.repeat(32) }).JWT_ALGORITHM, algorithm, `${algorithm}: a 32-byte secret is fine`)
  }
  t.throws(() => loadConfig({ JWT_ALGORITHM: 'RS256' }), /JWT_ALGORITHM: must be one of HS256, EdDSA, ES256/)
})

t.test('two instances: a rotation and a revocation through the CLI reach both within the bound', async (t) => {
  t.ok(KEY_REFRESH_INTERVAL_MS < BOUND_MS, 'the refresh interval is inside the bound')
  const a = await build(t, { JWT_ALGORITHM: 'EdDSA', JWT_KEY_ACTIVATION_DELAY: '1s' })
  const b = await build(t, { JWT_ALGORITHM: 'EdDSA', JWT_KEY_ACTIVATION_DELAY: '1s', DATABASE_URL: String(a.config.DATABASE_URL) })
  const alice = await registerAndLogin(a)
  const oldKid = String(headerOf(alice.access_token).kid)
  t.equal((await me(b, alice.access_token)).statusCode, 200, 'B accepts A\'s token')

  const rotated = await cli(String(a.config.DATABASE_URL), ['rotate'])
  t.equal(rotated.status, 0, 'keys rotate exits 0', { stderr: rotated.stderr })
  const newKid = /new EdDSA key ([\w-]+): published now/.exec(rotated.stdout)?.[1] ?? ''
  t.match(newKid, /^[\w-]{22}$/, 'and names the new kid')
  for (const [name, app] of [['A', a], ['B', b]] as const) {
    await within(t, BOUND_MS, `${name} publishes the new key`, async () => (await jwks(app)).keys.some((key) => key.kid === newKid))
  }
  t.same((await jwks(b)).keys.map((key) => key.kid).sort(), [oldKid, newKid].sort(), 'the old key stays published')
  t.equal((await me(a, alice.access_token)).statusCode, 200, 'a token of the old key still works on A')
  t.equal((await me(b, alice.access_token)).statusCode, 200, 'and on B')

  // After the activation delay (1 s here) new tokens carry the new kid, on both instances.
  let bob = await registerAndLogin(b)
  await within(t, 1000 + BOUND_MS, 'B signs with the new key after the activation delay', async () => {
    bob = await registerAndLogin(b)
    return headerOf(bob.access_token).kid === newKid
  })
  t.equal((await me(a, bob.access_token)).statusCode, 200, 'A accepts B\'s new-key token')

  // Revoking the new key (a compromise): its tokens die on both; the old key's live on.
  const listed = await cli(String(a.config.DATABASE_URL), ['list'])
  t.match(listed.stdout, new RegExp(`${newKid}  EdDSA  #2 .* signing\n`), 'keys list shows the new key signing')
  t.match(listed.stdout, new RegExp(`${oldKid}  EdDSA  #1 .* verifying only\n`), 'and the old one verifying only')
  const revoked = await cli(String(a.config.DATABASE_URL), ['revoke', newKid])
  t.equal(revoked.status, 0, 'keys revoke exits 0', { stderr: revoked.stderr })
  for (const [name, app] of [['A', a], ['B', b]] as const) {
    await within(t, BOUND_MS, `${name} refuses the revoked key's token`, async () => (await me(app, bob.access_token)).statusCode === 401)
    assertUnauthorized(t, await me(app, bob.access_token), 'token_invalid', `${name}: a token of the revoked key`)
    t.notOk((await jwks(app)).keys.some((key) => key.kid === newKid), `${name} no longer publishes it`)
    t.equal((await me(app, alice.access_token)).statusCode, 200, `${name} still accepts the old key's token`)
  }
  const carol = await registerAndLogin(b)
  t.not(headerOf(carol.access_token).kid, newKid, 'new tokens are not signed with the revoked key')
  t.equal((await me(a, carol.access_token)).statusCode, 200, 'and work everywhere')
  t.notOk(await revokeSigningKey(a.repos.signingKeys, a.config, newKid), 'revoking twice is refused')
  const again = await cli(String(a.config.DATABASE_URL), ['revoke', newKid])
  t.equal(again.status, 1, 'and the CLI exits 1 on it')
  t.match(again.stderr, /no signing key .* that is not already revoked/)
  t.notOk(await revokeSigningKey(a.repos.signingKeys, a.config, '\' OR 1=1 --'), 'a malformed kid is refused')
})

t.test('EdDSA through a database outage: the keys last read stay in use, and changes resume after', async (t) => {
  const proxy = await startTcpProxy({ host: '127.0.0.1', port: 3306 })
  t.teardown(() => proxy.close())
  const direct = await createTestDatabase(t)
  const app = await build(t, { JWT_ALGORITHM: 'EdDSA', JWT_KEY_ACTIVATION_DELAY: '1s', DATABASE_URL: `mysql://root@127.0.0.1:${proxy.port}${new URL(direct).pathname}` })
  const alice = await registerAndLogin(app)
  const kid = String(headerOf(alice.access_token).kid)

  await proxy.refuse()
  // Long enough for at least one key refresh to fail.
  await new Promise((resolve) => setTimeout(resolve, KEY_REFRESH_INTERVAL_MS + 500))
  t.same((await jwks(app)).keys.map((key) => key.kid), [kid], 'the JWKS still answers with the keys last read')
  const during = await me(app, alice.access_token)
  t.equal(during.statusCode, 503, 'a valid token meets 503 (the revocation check needs the database), not 401')

  await proxy.restore()
  await within(t, 10_000, 'the token works again once the database is back', async () => (await me(app, alice.access_token)).statusCode === 200)
  const rotated = await cli(direct, ['rotate'])
  t.equal(rotated.status, 0, 'a rotation after the outage', { stderr: rotated.stderr })
  await within(t, BOUND_MS, 'reaches the instance within the bound', async () => (await jwks(app)).keys.length === 2)
})

t.test('a key table that cannot be read for longer than the bound: verification fails closed, then recovers', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const app = await build(t, { JWT_ALGORITHM: 'EdDSA', DATABASE_URL })
  const alice = await registerAndLogin(app)
  const staleAfterMs = KEY_REFRESH_INTERVAL_MS + 1000
  const ring = await createAsymmetricKeyRing(app.repos.signingKeys, app.config, () => {}, { staleAfterMs })
  t.teardown(() => ring.close())
  t.ok(ring.verify(alice.access_token), 'the ring verifies a token while it can read the keys')

  // The probe's table gone: every refresh fails, as with a lost grant or a broken node.
  await app.pool.query('RENAME TABLE change_counters TO change_counters_away')
  await new Promise((resolve) => setTimeout(resolve, staleAfterMs + 500))
  t.throws(() => ring.verify(alice.access_token), new AppError(503, 'service_unavailable', 'The signing keys could not be read for too long; try again shortly'),
    'past the bound a revocation could have gone unseen: 503, not the token accepted')
  t.ok(ring.jwks().keys.length > 0, 'the JWKS still answers from memory')
  const service = createTokenService(ring, app.config)
  t.throws(() => service.verify(alice.access_token, 'access'), new AppError(503, 'service_unavailable', 'The signing keys could not be read for too long; try again shortly'),
    'and a request meets that 503, not a 401 token_invalid that would sign its user out')

  await app.pool.query('RENAME TABLE change_counters_away TO change_counters')
  await new Promise((resolve) => setTimeout(resolve, KEY_REFRESH_INTERVAL_MS + 500))
  t.ok(ring.verify(alice.access_token), 'it verifies again once the table can be read')
})

t.test('a revocation is seen through the change counter whatever the row timestamps say', async (t) => {
  const DATABASE_URL = await createTestDatabase(t)
  const app = await build(t, { JWT_ALGORITHM: 'EdDSA', DATABASE_URL })
  const alice = await registerAndLogin(app)
  const kid = String(headerOf(alice.access_token).kid)
  // A node whose clock lags wrote the revocation: updated_at far in the past, the count of rows
  // unchanged once the replacement key is counted too. Only the counter tells.
  t.ok(await revokeSigningKey(app.repos.signingKeys, app.config, kid), 'revoked')
  await app.pool.query("UPDATE signing_keys SET updated_at = '2000-01-01' ")
  await app.keyRing.refresh()
  const after = await app.inject({ method: 'GET', url: '/me', headers: bearer(alice.access_token) })
  t.equal(after.statusCode, 401, 'the revoked key\'s token is refused on the next request after a refresh')
})
