// Acquire: every session ID is pinned to its own worker process.
//
//   node examples/node/acquire.js
//
// (after `npm install` in bindings/node and then here; see README.md)
'use strict'

const { Pool, demoWorkerCommand } = require('herd')

async function main() {
  // Demo workers: small HTTP servers with per-process state. Any program
  // that listens on {{.Port}} (or $PORT) works the same way.
  const pool = await Pool.create({
    command: demoWorkerCommand(),
    min: 1,
    max: 4,
    ttlMs: 60_000,
    onSessionEnd: (end) => console.log(`session ${end.sessionId} ended: ${end.reason}`),
  })
  try {
    const alice = await pool.acquire('alice')
    // The worker keeps state for its session: store something in it...
    await fetch(`${alice.url}/kv/cart`, { method: 'PUT', body: '3 apples' })
    alice.release() // the session stays bound to its worker

    // ...and the same session ID reaches the same process later.
    const again = await pool.acquire('alice')
    const cart = await (await fetch(`${again.url}/kv/cart`)).text()
    console.log(`alice → pid ${again.pid} (same process: ${again.pid === alice.pid}), cart: ${cart}`)
    again.release()

    // Another session gets another process, with none of alice's state.
    const bob = await pool.acquire('bob', { timeoutMs: 10_000 })
    const bobCart = await fetch(`${bob.url}/kv/cart`)
    console.log(`bob   → pid ${bob.pid}, cart: ${bobCart.status === 404 ? '(empty)' : await bobCart.text()}`)
    bob.release()

    const stats = pool.stats()
    console.log(`${stats.sessions} sessions on ${stats.workers.total} workers`)
  } finally {
    await pool.close() // every worker process is gone
  }
}

main().catch((err) => {
  console.error(`acquire example failed: [${err.code}] ${err.message}`)
  process.exitCode = 1
})
