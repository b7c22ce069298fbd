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

// The histogram records each tick of a timer of this period, so a loop that is never blocked
// reads as the period itself: it is subtracted below.
const DELAY_RESOLUTION_MS = 1
const delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS })
delay.enable()
let rssPeak = process.memoryUsage.rss()
const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, process.memoryUsage.rss()) }, 100)
sampler.unref()

process.on('message', async (message: string) => {
  if (message === 'metrics') {
    const metrics: ProcessMetrics = { rssPeakMb: rssPeak / 2 ** 20, eventLoopDelayP99Ms: Math.max(0, delay.percentile(99) / 1e6 - DELAY_RESOLUTION_MS) }
    delay.reset()
    process.send!({ metrics })
  } else if (message === 'stop') {
    await app.close()
    process.exit(0)
  }
})
process.send!({ port: (app.server.address() as AddressInfo).port })
