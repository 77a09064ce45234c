// Acquire, in TypeScript: every session ID is pinned to its own worker
// process. Type-checked by the tests (`tsc --noEmit`).
//
//   npx tsc -p examples/node && node examples/node/dist/acquire.js

import { Pool, demoWorkerCommand, ErrorCode, type HerdError, type SessionEnd } from 'herd'

async function main(): Promise<void> {
  await using pool = await Pool.create({
    command: demoWorkerCommand(),
    min: 1,
    max: 4,
    ttlMs: 60_000,
    onSessionEnd: (end: SessionEnd) => console.log(`session ${end.sessionId} ended: ${end.reason}`),
  })

  {
    using alice = await pool.acquire('alice') // released at the end of this block
    await fetch(`${alice.url}/kv/cart`, { method: 'PUT', body: '3 apples' })
  }
  using again = await pool.acquire('alice')
  const cart = await (await fetch(`${again.url}/kv/cart`)).text()
  console.log(`alice → pid ${again.pid}, cart: ${cart}`)

  try {
    using bob = await pool.acquire('bob', { timeoutMs: 10_000, signal: AbortSignal.timeout(15_000) })
    console.log(`bob   → pid ${bob.pid}`)
  } catch (err) {
    const e = err as HerdError
    if (e.code === ErrorCode.AcquireTimeout || e.code === 'HERD_POOL_EXHAUSTED') {
      console.log(`no worker for bob right now (retryable: ${e.retryable})`)
    } else {
      throw err
    }
  }

  const stats = pool.stats()
  console.log(`${stats.sessions} sessions on ${stats.workers.total} workers`)
} // `await using`: the pool is closed here, every worker process is gone

main().catch((err: HerdError) => {
  console.error(`acquire example failed: [${err.code}] ${err.message}`)
  process.exitCode = 1
})
