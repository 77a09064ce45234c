// herd never keeps Node alive by itself, never leaves a worker behind, and
// never swallows an exception thrown by onSessionEnd. Each case runs in a
// child `node` process.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { runNode, waitUntil, alive } = require('./helpers')

const PRELUDE = `
const { Pool, demoWorkerCommand } = require('herd')
const command = demoWorkerCommand()
`

test('a script that creates and closes a pool exits by itself', async () => {
  const { code, stdout, stderr } = await runNode(`${PRELUDE}
    ;(async () => {
      const pool = await Pool.create({ command, min: 2, max: 4, onSessionEnd: () => {} })
      const lease = await pool.acquire('a')
      lease.release()
      await pool.close()
      console.log('closed')
    })()
  `)
  assert.equal(code, 0, stderr)
  assert.equal(stdout.trim(), 'closed')
})

test('a script that never closes its pool exits too, and its workers die with it', async () => {
  const { code, stdout, stderr } = await runNode(`${PRELUDE}
    ;(async () => {
      const pool = await Pool.create({ command, min: 2, max: 2, onSessionEnd: () => {} })
      const lease = await pool.acquire('a')
      console.log(JSON.stringify(pool.stats().workerRows.map((r) => r.pid)))
    })()
  `)
  assert.equal(code, 0, stderr)
  const pids = JSON.parse(stdout)
  assert.equal(pids.length, 2)
  for (const pid of pids) {
    await waitUntil(() => !alive(pid), { what: `worker ${pid} to die with its host` })
  }
})

test('an exception thrown in onSessionEnd reaches process.on("uncaughtException")', async () => {
  const { code, stdout, stderr } = await runNode(`${PRELUDE}
    // The callback never keeps Node alive by itself: this timer does, until
    // the exception arrives.
    const keepAlive = setTimeout(() => {}, 30000)
    let pool
    process.on('uncaughtException', (err) => {
      console.log('caught: ' + err.message)
      clearTimeout(keepAlive)
      pool.close()
    })
    ;(async () => {
      pool = await Pool.create({
        command, min: 1, max: 1,
        onSessionEnd: (end) => { throw new Error('callback failed for ' + end.sessionId) },
      })
      ;(await pool.acquire('doomed')).release()
      pool.endSession('doomed')
    })()
  `)
  assert.equal(code, 0, stderr)
  assert.match(stdout, /caught: callback failed for doomed/)
})

test('without a handler, an exception in onSessionEnd ends the process like any uncaught exception', async () => {
  const { code, stderr } = await runNode(`${PRELUDE}
    ;(async () => {
      const pool = await Pool.create({
        command, min: 1, max: 1,
        onSessionEnd: () => { throw new Error('unhandled callback failure') },
      })
      ;(await pool.acquire('doomed')).release()
      pool.endSession('doomed')
      await new Promise((resolve) => setTimeout(resolve, 30000)) // the exception ends us first
    })()
  `)
  assert.equal(code, 1)
  assert.match(stderr, /unhandled callback failure/)
})

test("HERD_LOG=info shows the workers' output on stderr; unset, herd prints nothing", async () => {
  const script = `${PRELUDE}
    ;(async () => {
      const pool = await Pool.create({ command, min: 1, max: 1 })
      await pool.close()
    })()
  `
  const quiet = await runNode(script)
  assert.equal(quiet.code, 0, quiet.stderr)
  assert.equal(quiet.stderr, '')
  process.env.HERD_LOG = 'herd::worker=info'
  try {
    const logged = await runNode(script)
    assert.equal(logged.code, 0, logged.stderr)
    assert.match(logged.stderr, /herd::worker: demo worker w1 \(pid \d+\) listening on 127\.0\.0\.1:\d+/)
  } finally {
    delete process.env.HERD_LOG
  }
})
