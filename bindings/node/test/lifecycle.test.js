// Session ends (with their reasons), crashes, stats, and close().
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { openPool, waitUntil, alive, getJson } = require('./helpers')

/** Pool options that record every onSessionEnd call in `ends`. */
function recording() {
  const ends = []
  return { ends, onSessionEnd: (end) => ends.push(end) }
}

test('onSessionEnd reports a crash after kill -9, and the session then gets a new, live worker', async (t) => {
  const { ends, onSessionEnd } = recording()
  const pool = await openPool(t, { min: 1, max: 2, onSessionEnd })
  const lease = await pool.acquire('victim')
  const victimPid = lease.pid
  process.kill(victimPid, 'SIGKILL')
  const end = await waitUntil(() => ends.find((e) => e.sessionId === 'victim'), { what: 'onSessionEnd' })
  assert.equal(end.reason, 'crashed')
  assert.equal(end.signal, 'SIGKILL')
  assert.equal(end.exitCode, null)
  assert.equal(end.pid, victimPid)
  assert.equal(end.workerId, lease.workerId)
  assert.ok(end.durationMs >= 0)
  assert.equal(lease.sessionEnded, true)
  lease.release()

  // The binding died with the worker: the next acquire gets a new worker
  // that answers (the Go reference kept routing to the dead one).
  const again = await pool.acquire('victim')
  assert.notEqual(again.pid, victimPid)
  assert.equal((await getJson(again.url + '/')).pid, again.pid)
  again.release()
  assert.equal(pool.stats().counters.crashed, 1)
  assert.equal(pool.stats().counters.sessionsEnded.crashed, 1)
})

test('endSession ends a session (reason "ended") and frees its worker for the next session', async (t) => {
  const { ends, onSessionEnd } = recording()
  const pool = await openPool(t, { min: 1, max: 1, onSessionEnd })
  const lease = await pool.acquire('first')
  lease.release()
  assert.equal(pool.endSession('first'), true)
  assert.equal(pool.endSession('first'), false, 'ending an unbound session says so')
  await waitUntil(() => ends.length === 1, { what: 'onSessionEnd' })
  assert.equal(ends[0].reason, 'ended')
  // max is 1: the next session can only be served by the reused worker.
  const next = await pool.acquire('second', { timeoutMs: 10000 })
  assert.equal(next.pid, lease.pid)
  next.release()
})

test('an idle session ends after ttlMs (reason "idle_timeout"), never while a lease is open', async (t) => {
  const { ends, onSessionEnd } = recording()
  const pool = await openPool(t, { min: 1, max: 2, ttlMs: 150, onSessionEnd })
  const held = await pool.acquire('held')
  const idle = await pool.acquire('idle')
  idle.release()
  await waitUntil(() => ends.some((e) => e.sessionId === 'idle'), { what: 'the idle session to end' })
  assert.equal(ends.find((e) => e.sessionId === 'idle').reason, 'idle_timeout')
  assert.ok(!ends.some((e) => e.sessionId === 'held'), 'a session with an open lease is never evicted')
  assert.equal(pool.stats().sessions, 1)
  held.release()
})

test('stats() counts workers, sessions and leases, and never waits', async (t) => {
  const pool = await openPool(t, { min: 2, max: 4, minIdle: 1 })
  const a = await pool.acquire('a')
  const a2 = await pool.acquire('a')
  const b = await pool.acquire('b')
  const s = pool.stats()
  assert.equal(s.sessions, 2)
  assert.equal(s.openLeases, 3)
  assert.equal(s.workers.bound, 2)
  assert.equal(s.min, 2)
  assert.equal(s.max, 4)
  assert.equal(s.minIdle, 1)
  assert.equal(s.closed, false)
  assert.equal(s.workers.total, s.workerRows.length)
  const rowA = s.workerRows.find((r) => r.sessionId === 'a')
  assert.equal(rowA.pid, a.pid)
  assert.equal(rowA.state, 'bound')
  assert.equal(rowA.address, a.address)
  assert.equal(rowA.id, a.workerId)
  assert.ok(rowA.ageMs >= 0)
  assert.ok(s.host.memoryTotalBytes >= 0)
  // minIdle keeps a ready spare beside the two bound workers.
  await waitUntil(() => pool.stats().workers.idle >= 1, { what: 'a warm spare' })
  for (const l of [a, a2, b]) l.release()
  assert.equal(pool.stats().openLeases, 0)
})

test('close() ends every session ("shutdown") and leaves no worker process behind', async (t) => {
  const { ends, onSessionEnd } = recording()
  const pool = await openPool(t, { min: 3, max: 3, onSessionEnd })
  const pids = pool.stats().workerRows.map((r) => r.pid)
  assert.equal(pids.length, 3)
  const lease = await pool.acquire('busy')
  await pool.close({ graceMs: 2000 })
  for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} is gone`)
  await waitUntil(() => ends.length === 1, { what: 'the shutdown onSessionEnd' })
  assert.equal(ends[0].reason, 'shutdown')
  const last = pool.stats()
  assert.equal(last.closed, true)
  assert.equal(last.counters.sessionsEnded.shutdown, 1)
  lease.release()
})

test("Node's event loop keeps running while an acquire waits for a worker to start", async (t) => {
  // Workers take at least 300 ms to become ready, so the acquire must wait.
  const pool = await openPool(t, { min: 0, max: 1, startDelayMs: 300 })
  let ticks = 0
  const ticking = setInterval(() => ticks++, 1)
  try {
    const pending = pool.acquire('cold')
    // A call that blocked the thread until the worker was ready would have
    // returned a settled promise with no timer tick in between.
    const lease = await pending
    assert.ok(ticks > 0, 'timers ran while the acquire waited')
    lease.release()
  } finally {
    clearInterval(ticking)
  }
})

test('a pool garbage-collected without close() stops its workers (off the event loop)', async () => {
  const { code, stdout, stderr } = await require('./helpers').runNode(
    `
    const { Pool, demoWorkerCommand } = require('herd')
    const { alive } = require('./helpers')
    ;(async () => {
      let pool = await Pool.create({ command: demoWorkerCommand(), min: 2, max: 2, stopGraceMs: 500 })
      const pids = pool.stats().workerRows.map((r) => r.pid)
      pool = null
      const deadline = Date.now() + 20000
      while (pids.some(alive) && Date.now() < deadline) {
        global.gc()
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      console.log(JSON.stringify({ pids, alive: pids.filter(alive) }))
    })()
  `,
    { nodeArgs: ['--expose-gc'] },
  )
  assert.equal(code, 0, stderr)
  const { pids, alive: left } = JSON.parse(stdout)
  assert.equal(pids.length, 2)
  assert.deepEqual(left, [], 'every worker of the collected pool stopped')
})
