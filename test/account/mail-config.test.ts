import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

// The mail settings of API.md §10, as loadConfig() reads them (one clear error per bad value).

t.test('mail settings have working defaults', async (t) => {
  const config = loadConfig({})
  t.equal(config.SMTP_URL, undefined, 'no SMTP server: mails go to the log outside production')
  t.equal(config.APP_URL, 'http://127.0.0.1:3000')
  t.equal(config.PASSWORD_RESET_TTL, 30 * 60_000, 'reset links work 30 minutes')
  t.equal(config.EMAIL_VERIFICATION_TTL, 24 * 3_600_000)
  t.equal(config.REQUIRE_EMAIL_VERIFICATION, false)
  t.equal(config.MAIL_RETRY_FOR, 24 * 3_600_000, 'a mail is retried for a day')
  t.equal(config.OUTBOX_RETRY_BASE, 2000)
})

t.test('mail settings are parsed and checked', async (t) => {
  const config = loadConfig({ SMTP_URL: 'smtps://user:pass@mail.example.com:465', APP_URL: 'https://app.example.com/base/', MAIL_RETRY_FOR: '2h', REQUIRE_EMAIL_VERIFICATION: 'true' })
  t.equal(config.SMTP_URL, 'smtps://user:pass@mail.example.com:465')
  t.equal(config.APP_URL, 'https://app.example.com/base', 'a trailing slash is dropped, so links never have //')
  t.equal(config.MAIL_RETRY_FOR, 2 * 3_600_000)
  t.equal(config.REQUIRE_EMAIL_VERIFICATION, true)
  for (const [key, value] of [['SMTP_URL', 'http://mail.example.com'], ['SMTP_URL', 'mail.example.com:25'], ['APP_URL', 'app.example.com'],
    ['APP_URL', 'https://app.example.com/#x'], ['MAIL_RETRY_FOR', '1s,2s'], ['PASSWORD_RESET_TTL', 'soon'], ['REQUIRE_EMAIL_VERIFICATION', 'yes']] as const) {
    t.throws(() => loadConfig({ [key]: value }), ConfigError, `${key}=${value} is refused`)
    try { loadConfig({ [key]: value }) } catch (error) { t.match((error as Error).message, new RegExp(`^${key}:`), `the message names ${key}`) }
  }
})
