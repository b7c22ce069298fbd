import t from 'tap'
import { requiresStartTls } from '../../src/mail/transport.js'

// API.md §12: over smtp:// the mail transport requires STARTTLS (nodemailer's requireTLS), so a
// path attacker who strips the server's STARTTLS offer gets a failed delivery, not the reset
// links in clear text. Only a loopback relay may be spoken to without it; smtps:// is TLS anyway.

t.test('which SMTP URLs must upgrade with STARTTLS', async (t) => {
  for (const url of ['smtp://mail.example.com:587', 'smtp://user:pass@10.0.0.5:25', 'smtp://[2001:db8::25]:587', 'smtp://localhost.example.com']) {
    t.equal(requiresStartTls(url), true, `${url}: STARTTLS required`)
  }
  for (const url of ['smtp://127.0.0.1:2525', 'smtp://127.8.9.10', 'smtp://localhost:25', 'smtp://[::1]:2525']) {
    t.equal(requiresStartTls(url), false, `${url}: loopback, may stay in the clear`)
  }
  t.equal(requiresStartTls('smtps://mail.example.com:465'), false, 'smtps:// is TLS from the start')
})
