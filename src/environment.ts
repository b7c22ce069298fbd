import { availableParallelism } from 'node:os'

/**
 * The process environment, settled before any other module runs: src/server.ts and src/cli
 * import this first, and ES modules are evaluated in the order they are imported.
 */

// .env is optional; real environment variables win over it.
try {
  process.loadEnvFile('.env')
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
}

// libuv's thread pool runs argon2 (and file reads, DNS lookups): one thread per core unless the
// operator says otherwise. Its size is read once, when the pool is first used, which is why it
// is set here and not in the configuration. Each pool thread that has run an argon2id hash keeps
// its 19 MiB in glibc's per-thread arena for the next one: with the default four threads on a
// two-core machine, 76 MiB held for hashes of which at most two run at a time
// (src/plugins/auth/passwords.ts); with one thread per core, no more than run at once. (npm start
// also sets MALLOC_ARENA_MAX=1, one arena for all threads, which hands the memory back after a
// burst.) MALLOC_MMAP_THRESHOLD_, which maps and unmaps each hash's memory, cost a third of the
// login throughput in page faults (bench/RESULTS.md).
process.env.UV_THREADPOOL_SIZE ??= String(availableParallelism())
