// Everything drizzle-kit and the drizzle client need: tables and their relations.
export * from './users.js'
export * from './boards.js'
export * from './token-blocklist.js'
export * from './login-failures.js'
export * from './one-time-tokens.js'
export * from './sessions.js'
export * from './signing-keys.js'
export * from './relations.js'
