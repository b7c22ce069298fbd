import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import QRCode from 'qrcode'
import { AppError } from '../../errors.js'
import { authOf, requireFreshToken } from '../../plugins/auth/index.js'
import { hashRecoveryCode, newRecoveryCodes } from '../../mfa/recovery-codes.js'
import { matchTotpStep, newTotpSecret, openTotpSecret, otpauthUrl, sealTotpSecret } from '../../mfa/totp.js'
import { ErrorSchema, RecoveryCodesSchema, ref, TotpSetupSchema } from '../../schemas/shared.js'
import { clearPasswordAttempts, countPasswordAttempt } from '../auth/index.js'
import { eventContext } from '../events/context.js'
import { DisableTotpBody, EnableTotpBody } from './schemas.js'

const alreadyEnabled = () => new AppError(409, 'mfa_already_enabled', 'TOTP is already on; turn it off first (POST /mfa/totp/disable) to set up another authenticator')
const notEnabled = () => new AppError(409, 'mfa_not_enabled', 'TOTP is not on for this account')
const setupRequired = () => new AppError(409, 'mfa_setup_required', 'No TOTP secret waits to be enabled: start with POST /mfa/totp/setup')

/**
 * An otpauth:// URL as a QR code: an SVG in a data: URL, which the CSP's img-src allows (an
 * <img src> cannot send the Bearer token a route serving the image would need). Rendered here
 * by the qrcode package, because the page may load no script from elsewhere.
 */
async function qrCodeOf (url: string): Promise<string> {
  const svg = await QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`
}

/** The second factor (API.md §13): TOTP and recovery codes. Enrolment needs no admin rights. */
const mfaRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos, passwords, config } = app
  const conflict = { 409: ref(ErrorSchema, '`mfa_already_enabled`, `mfa_not_enabled` or `mfa_setup_required`: the factor is not in the state this step needs') }
  const sessionsEnded = 'Every other session of the account ends (the caller\'s stays), in the same transaction as the change and its event.'

  app.post('/mfa/totp/setup', {
    config: { auth: true },
    schema: {
      tags: ['mfa'],
      operationId: 'setupTotp',
      summary: 'Start TOTP: a new secret to scan (fresh token)',
      description: 'Makes a TOTP secret (RFC 6238: SHA-1, 6 digits, 30 s, 160 bits, issuer `boardkit`) and stores it encrypted. ' +
        'Nothing is active yet: scan `qr_code` (or type `secret`) into an authenticator app, then send its code to ' +
        '`POST /mfa/totp/enable`. Calling this again before enabling replaces the secret. Needs a fresh access token ' +
        '(401 `fresh_token_required`); 409 `mfa_already_enabled` when TOTP is on.',
      response: { 200: ref(TotpSetupSchema, 'The secret, its otpauth:// URL and a QR code of it; shown this once'), ...conflict },
    },
  }, async (request) => {
    const auth = authOf(request)
    requireFreshToken(auth)
    if ((await repos.mfa.findTotp(auth.userId))?.enabled) throw alreadyEnabled()
    const secret = newTotpSecret()
    if (!await repos.mfa.beginTotpSetup(auth.userId, sealTotpSecret(secret, auth.userId, config.JWT_KEY_ENCRYPTION_SECRET))) throw alreadyEnabled()
    const url = otpauthUrl(secret, auth.user.email)
    return { secret, otpauth_url: url, qr_code: await qrCodeOf(url) }
  })

  app.post('/mfa/totp/enable', {
    config: { auth: true },
    schema: {
      tags: ['mfa'],
      operationId: 'enableTotp',
      summary: 'Turn TOTP on with a first code; get 10 recovery codes',
      description: 'The code the authenticator app shows for the secret of `POST /mfa/totp/setup` turns TOTP on: from then on ' +
        '`POST /login` asks for a code (`mfa_required`). Answers 10 single-use recovery codes, shown this once. A wrong code ' +
        `is 400 \`invalid_mfa_code\`. ${sessionsEnded} This session keeps \`amr: ["pwd"]\`: log in again with a code for one ` +
        'that proves the second factor (which `MFA_REQUIRED_FOR_ADMINS` asks of admins).',
      body: EnableTotpBody,
      response: {
        200: ref(RecoveryCodesSchema, 'TOTP is on; the recovery codes, shown this once'),
        400: ref(ErrorSchema, '`invalid_mfa_code`: not a code of the secret for now (±30 s); `validation_error`'),
        ...conflict,
      },
    },
  }, async (request) => {
    const auth = authOf(request)
    const totp = await repos.mfa.findTotp(auth.userId)
    if (!totp) throw setupRequired()
    if (totp.enabled) throw alreadyEnabled()
    const step = matchTotpStep(openTotpSecret(totp.sealedSecret, auth.userId, config.JWT_KEY_ENCRYPTION_SECRET), request.body.code)
    if (step === null) throw new AppError(400, 'invalid_mfa_code', 'The code is wrong: enter the one the authenticator app shows now for this secret')
    const codes = newRecoveryCodes()
    // The step is stored as the last one used: this code cannot also log in.
    if (!await repos.mfa.enableTotp(auth.userId, { sealedSecret: totp.sealedSecret, step }, codes.map(hashRecoveryCode), auth.sid, eventContext(request))) {
      // A setup (a new secret) or an enable from another session won the race.
      throw (await repos.mfa.findTotp(auth.userId))?.enabled ? alreadyEnabled() : setupRequired()
    }
    return { recovery_codes: codes }
  })

  app.post('/mfa/totp/disable', {
    config: { auth: true },
    schema: {
      tags: ['mfa'],
      operationId: 'disableTotp',
      summary: 'Turn TOTP off (fresh token and the password)',
      description: 'Logins need the password alone again; the recovery codes are void. Needs a fresh access token and ' +
        '`current_password` (401 `invalid_credentials` when wrong); each password checked counts toward the account\'s ' +
        `login lockout (see \`POST /login\`): a locked account gets 429. ${sessionsEnded}`,
      body: DisableTotpBody,
      response: { 204: { type: 'null', description: 'TOTP is off' }, ...conflict },
    },
  }, async (request, reply) => {
    const auth = authOf(request)
    requireFreshToken(auth)
    if (!(await repos.mfa.findTotp(auth.userId))?.enabled) throw notEnabled()
    const account = await repos.users.findCredentials({ id: auth.userId })
    // The token's user exists (the token check read it); gone since, the password cannot match.
    // A stolen access token must not become an unlimited password oracle (API.md §12).
    await countPasswordAttempt(app, request, auth.user.email)
    if (!await passwords.verify(account?.password_hash ?? null, request.body.current_password) || !account) {
      throw new AppError(401, 'invalid_credentials', 'The current password is wrong')
    }
    await clearPasswordAttempts(app, auth.user.email)
    if (!await repos.mfa.disableTotp(auth.userId, auth.sid, eventContext(request))) throw notEnabled()
    return reply.code(204).send()
  })

  app.post('/mfa/recovery-codes', {
    config: { auth: true },
    schema: {
      tags: ['mfa'],
      operationId: 'regenerateRecoveryCodes',
      summary: 'New recovery codes; the old ones are void (fresh token)',
      description: `10 new single-use recovery codes, shown this once; every older one stops working. ${sessionsEnded} ` +
        'Needs a fresh access token; 409 `mfa_not_enabled` when TOTP is off.',
      response: { 200: ref(RecoveryCodesSchema, 'The new recovery codes, shown this once'), ...conflict },
    },
  }, async (request) => {
    const auth = authOf(request)
    requireFreshToken(auth)
    const codes = newRecoveryCodes()
    if (!await repos.mfa.replaceRecoveryCodes(auth.userId, codes.map(hashRecoveryCode), auth.sid, eventContext(request))) throw notEnabled()
    return { recovery_codes: codes }
  })
}

export default mfaRoutes
