// The API as benchmarks run it: the real server in its own process, plus the figures only the
// process itself can see (peak RSS, event-loop delay), reported to the parent over IPC.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { prepareDatabase } from '../src/db/prepare.js'

export interface ProcessMetrics {
  rssPeakMb: number
  eventLoopDelayP99Ms: number
}

const config = loadConfig(process.env)
await prepareDatabase(config)
const app = await buildApp(config)
await app.listen({ host: '127.0.0.1', port: 0 })

const delay = monitorEventLoopDelay({ resolution: 10 })
delay.enable()
let rssPeak = process.memoryUsage.rss()
const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage.rss()) }, 100)
sampler.unref()

process.on('message', async (message: string) => {
  if (message === 'metrics') {
    const metrics: ProcessMetrics = { rssPeakMb: rssPeak / 2 ** 20, eventLoopDelayP99Ms: delay.percentile(99) / 1e6 }
    delay.reset()
    process.send!({ metrics })
  } else if (message === 'stop') {
    await app.close()
    process.exit(0)
  }
})
process.send!({ port: (app.server.address() as AddressInfo).port })
