// The mails, as plain functions of what they say. Each has a plain-text body (read as is by
// text-only clients and filters) and an HTML body with the same words and link.

export interface Mail {
  /** The outbox row's own: the same on every attempt, so a resend is recognisable as one. */
  messageId?: string
  to: string
  subject: string
  text: string
  html: string
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** "30 minutes", "24 hours", "1 day": how long a link stays valid, in words. */
export function describeDuration (ms: number): string {
  const units: Array<[number, string]> = [[86_400_000, 'day'], [3_600_000, 'hour'], [60_000, 'minute'], [1000, 'second']]
  for (const [size, unit] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size
      return `${n} ${unit}${n === 1 ? '' : 's'}`
    }
  }
  return `${Math.max(1, Math.round(ms / 1000))} seconds`
}

function layout (paragraphs: string[], link: { href: string, label: string }): string {
  const body = paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')
  return `<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
${body}
<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>
<p style="color: #666; font-size: 0.9em">If the button does not work, copy this address into your browser:<br>${escapeHtml(link.href)}</p>
</body></html>`
}

export function passwordResetMail ({ to, name, link, validFor }: { to: string, name: string, link: string, validFor: number }): Mail {
  const paragraphs = [
    `Hello ${name},`,
    'someone asked to reset the password of your boardkit account. If it was you, choose a new password here:',
  ]
  const after = [
    `The link works once, for ${describeDuration(validFor)}. Resetting logs you out everywhere.`,
    'If you did not ask for this, ignore this mail: your password stays as it is.',
  ]
  return {
    to,
    subject: 'Reset your boardkit password',
    text: [...paragraphs, link, ...after].join('\n\n') + '\n',
    html: layout([...paragraphs, ...after], { href: link, label: 'Choose a new password' }),
  }
}

export function verificationMail ({ to, name, link, validFor }: { to: string, name: string, link: string, validFor: number }): Mail {
  const paragraphs = [
    `Hello ${name},`,
    `please confirm that ${to} is your email address for boardkit:`,
  ]
  const after = [
    `The link works once, for ${describeDuration(validFor)}.`,
    'If you did not create a boardkit account or change its email, ignore this mail.',
  ]
  return {
    to,
    subject: 'Confirm your email address for boardkit',
    text: [...paragraphs, link, ...after].join('\n\n') + '\n',
    html: layout([...paragraphs, ...after], { href: link, label: 'Confirm my email address' }),
  }
}
