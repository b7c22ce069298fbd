// temporary experiment: RSS by phase
import autocannon from 'autocannon'
import { login, resetDatabase, seed, startApi } from './harness.js'
const DB = 'boardkit_rss_probe'
const extraEnv = JSON.parse(process.env.PROBE_ENV ?? '{}')
await resetDatabase(DB)
const api = await startApi(DB, extraEnv)
await seed(DB, { users: 100, boards: 10000 })
const mb = async (label: string) => console.log(label.padEnd(12), (await api.metrics()).rssPeakMb.toFixed(0), 'MB peak')
await new Promise((r) => setTimeout(r, 500))
await mb('idle')
const s = await login(api.url, 'user1@bench.test')
const run = (o: object) => new Promise((resolve) => autocannon({ duration: 8, connections: 50, ...o } as never, resolve))
await run({ url: `${api.url}/boards?limit=20`, headers: { authorization: `Bearer ${s.access_token}` } })
await mb('after list')
await run({ url: `${api.url}/login`, method: 'POST', connections: 10, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'user2@bench.test', password: 'bench-password' }) })
await mb('after login')
await api.stop()
