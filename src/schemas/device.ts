import { UAParser } from 'ua-parser-js'

/**
 * A user agent named the way people name their devices ("Chrome 156 on Linux"), for sessions and
 * events (issue 24), with ua-parser-js (v1: MIT; v2 is AGPL). Null when there is no user agent;
 * the raw string when the parser recognises neither browser nor system (curl/8.5.0 stays as it is).
 */
export function describeDevice (userAgent: string | null): string | null {
  if (!userAgent) return null
  const { browser, os } = new UAParser(userAgent).getResult()
  const major = browser.major ?? browser.version?.split('.')[0]
  const name = browser.name ? [browser.name, major].filter(Boolean).join(' ') : null
  const system = os.name ? [os.name, os.name === 'Linux' ? null : os.version?.split('.')[0]].filter(Boolean).join(' ') : null
  if (name && system) return `${name} on ${system}`
  return name ?? system ?? userAgent.slice(0, 80)
}
