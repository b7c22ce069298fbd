// Loaded with --import into the API process that the benchmarks start (`npm start`'s command
// line: see harness.ts), it reports over IPC what only that process can see: its peak RSS and
// its event-loop delay. Plain JavaScript, so that no TypeScript loader runs in the measured process.
import { monitorEventLoopDelay } from 'node:perf_hooks'

// The histogram records each tick of a timer of this period, so a loop that is never blocked
// reads as the period itself: it is subtracted below.
const DELAY_RESOLUTION_MS = 1
const delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS })
delay.enable()

process.on('message', (message) => {
  if (message !== 'metrics') return
  process.send({
    metrics: {
      // The kernel's high-water mark (getrusage's ru_maxrss, in KiB): the true peak since start.
      rssPeakMb: process.resourceUsage().maxRSS / 1024,
      // Where the memory is now: V8's heap (reserved and used), and the rest of the process.
      rssMb: process.memoryUsage.rss() / 2 ** 20,
      heapTotalMb: process.memoryUsage().heapTotal / 2 ** 20,
      heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
      eventLoopDelayP99Ms: Math.max(0, delay.percentile(99) / 1e6 - DELAY_RESOLUTION_MS),
      // CPU time (user + system) since start: its growth over a run, per request, is a cost
      // that the load of the rest of the machine does not change (bench/telemetry.ts).
      cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    },
  })
  delay.reset()
})
// The channel must not keep the server alive: SIGTERM ends it as it ends `npm start`.
process.channel?.unref()
