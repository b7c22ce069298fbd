import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AppError } from '../../errors.js'
import { authOf } from '../../plugins/auth/index.js'
import { AcceptedSchema, ErrorSchema, ref } from '../../schemas/shared.js'
import { eventContext } from '../events/context.js'
import { VerifyEmailBody } from './schemas.js'

const invalidVerificationToken = () =>
  new AppError(400, 'invalid_verification_token', 'This verification link is invalid, expired, already used or for another address')

/** Email verification (API.md §10): a mailed single-use link proves the user reads that mailbox. */
const emailRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { repos, outbox } = app

  app.post('/email/verify/send', {
    config: { auth: true },
    schema: {
      tags: ['account'],
      operationId: 'sendVerificationEmail',
      summary: 'Mail a link that verifies the current email',
      description: 'The link (`APP_URL/verify-email#token=…`) is valid once for `EMAIL_VERIFICATION_TTL`; a newer one voids ' +
        'the older ones. Registering and changing the email send one by themselves. No mail when the email is already ' +
        'verified, and at most 3 per address per hour; the answer is 202 either way.',
      response: { 202: ref(AcceptedSchema, 'Taken in; the mail is sent afterwards') },
    },
  }, async (request, reply) => {
    const { user } = authOf(request)
    if (!user.email_verified_at) {
      await repos.oneTimeTokens.requestMail('email_verification', user.id, eventContext(request))
      outbox.kick()
    }
    return reply.code(202).send({ status: 'accepted' })
  })

  app.post('/email/verify', {
    // Needs no token (the link may be opened on another device), so it gets the /login limit.
    config: { rateLimitGroup: 'auth' },
    schema: {
      tags: ['account'],
      operationId: 'verifyEmail',
      summary: 'Confirm the email with a mailed token',
      description: 'Sets `email_verified_at`. An unknown, spent or expired token, or one mailed to an address the account ' +
        'no longer has, is 400 `invalid_verification_token`.',
      body: VerifyEmailBody,
      response: {
        204: { type: 'null', description: 'The email is verified' },
        400: ref(ErrorSchema, 'Invalid input: `invalid_verification_token`, `validation_error` (with `details`) or `malformed_json`'),
      },
    },
  }, async (request, reply) => {
    const live = await repos.oneTimeTokens.find('email_verification', request.body.token)
    if (!live || !await repos.oneTimeTokens.verifyEmail(live, eventContext(request))) throw invalidVerificationToken()
    request.log.info({ userId: live.userId }, 'email verified')
    return reply.code(204).send()
  })
}

export default emailRoutes
