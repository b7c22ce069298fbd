import { availableParallelism } from 'node:os'

/**
 * The process environment, settled before any other module of the server runs: imported first
 * by src/server.ts (and src/cli), so that it is evaluated before the rest (ES modules run in import order).
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
// its 19 MiB in glibc's per-thread arena for the next one; with the default four threads on a
// two-core machine that was 76 MiB held for hashes of which at most two run at a time
// (src/plugins/auth/passwords.ts), with one thread per core it is what runs at once. The
// alternative, MALLOC_MMAP_THRESHOLD_ (every hash maps and unmaps its memory), cost a third of
// the login throughput in page faults (bench/RESULTS.md).
process.env.UV_THREADPOOL_SIZE ??= String(availableParallelism())
