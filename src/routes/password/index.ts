import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError } from '../../errors.js'
import { AcceptedSchema, ErrorSchema, ref } from '../../schemas/shared.js'
import { normaliseIdentity } from '../auth/index.js'
import { eventContext } from '../events/context.js'
import { ForgotPasswordBody, ResetPasswordBody } from './schemas.js'

const invalidResetToken = () => new AppError(400, 'invalid_reset_token', 'This reset link is invalid, expired or already used; ask for a new one')

/** Account recovery (API.md §10): a mailed single-use link sets a new password. */
const passwordRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos, passwords, outbox, config } = app

  app.post('/password/forgot', {
    // The per-IP limit of /login: this route also answers for any email anyone types.
    config: { rateLimitGroup: 'auth' },
    preValidation: normaliseIdentity,
    schema: {
      tags: ['account'],
      operationId: 'forgotPassword',
      summary: 'Mail a password-reset link',
      description: 'Always 202 with the same body, known email or not, in about the same time: both write one row to ' +
        'the outbox before answering (so the request survives a crash or an SMTP outage), and the mail, with the token in ' +
        'it, is made and sent after the answer. A known address gets a link to `APP_URL/reset-password#token=…`, valid once for ' +
        '`PASSWORD_RESET_TTL`; a newer link voids the older ones. At most 3 mails per address per hour (later requests ' +
        'are still 202).',
      body: ForgotPasswordBody,
      response: { 202: ref(AcceptedSchema, 'Taken in; a known address gets a mail') },
    },
  }, async (request, reply) => {
    // The same two steps for both answers (a read by users_email_unique, one commit); the token
    // and the mail are made by the outbox after the reply.
    const user = await repos.users.findByEmail(request.body.email)
    await repos.oneTimeTokens.requestMail('password_reset', user?.id ?? null, eventContext(request))
    outbox.kick()
    return reply.code(202).send({ status: 'accepted' })
  })

  app.post('/password/reset', {
    config: { rateLimitGroup: 'auth' },
    schema: {
      tags: ['account'],
      operationId: 'resetPassword',
      summary: 'Set a new password with a mailed token',
      description: 'Spends the token, sets the password and ends every session of the user (their tokens are dead on the ' +
        'next request); log in with the new password. The link came through the mailbox, so the email counts as verified. ' +
        'An unknown, spent or expired token, or one sent to an address the account no longer has, is 400 `invalid_reset_token`.',
      body: ResetPasswordBody,
      response: {
        204: { type: 'null', description: 'The password is set and every session ended' },
        400: ref(ErrorSchema, 'Invalid input: `invalid_reset_token`, `validation_error` (with `details`) or `malformed_json`'),
      },
    },
  }, async (request, reply) => {
    const { token, new_password: newPassword } = request.body
    const live = await repos.oneTimeTokens.find('password_reset', token)
    if (!live) throw invalidResetToken()
    // Hashed before the transaction: argon2 takes tens of milliseconds, locks should not.
    if (!await repos.oneTimeTokens.resetPassword(live, await passwords.hash(newPassword), eventContext(request))) throw invalidResetToken()
    // The owner is back in: failed logins from whoever was guessing no longer lock them out.
    if (config.LOGIN_MAX_FAILURES > 0) await repos.loginFailures.clear(live.email)
    request.log.info({ userId: live.userId }, 'password reset: every session ended')
    return reply.code(204).send()
  })
}

export default passwordRoutes
