// Affinity and isolation with real demo workers: one session → one worker
// process, one worker → at most one session.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { openPool, getJson } = require('./helpers')

test('the same session ID always reaches the same worker process', async (t) => {
  const pool = await openPool(t, { min: 1, max: 3 })
  const first = await pool.acquire('alice')
  const seen = await getJson(first.url + '/')
  assert.equal(seen.pid, first.pid, 'the worker reports the PID the lease names')
  first.release()
  for (let i = 0; i < 20; i++) {
    const lease = await pool.acquire('alice')
    assert.equal(lease.pid, first.pid)
    assert.equal(lease.workerId, first.workerId)
    assert.equal(lease.address, first.address)
    assert.equal((await getJson(lease.url + '/')).pid, first.pid)
    lease.release()
  }
})

test('different sessions get different workers, and their state stays apart', async (t) => {
  const pool = await openPool(t, { min: 2, max: 2 })
  const alice = await pool.acquire('alice')
  const bob = await pool.acquire('bob')
  assert.notEqual(alice.pid, bob.pid)
  assert.notEqual(alice.address, bob.address)

  const put = await fetch(alice.url + '/kv/secret', { method: 'PUT', body: 'alice-data' })
  assert.equal(put.status, 200)
  assert.equal(await (await fetch(alice.url + '/kv/secret')).text(), 'alice-data')
  assert.equal((await fetch(bob.url + '/kv/secret')).status, 404, "bob's worker has none of alice's state")

  // Both workers are bound: the rows name one session each.
  const rows = pool.stats().workerRows
  assert.deepEqual(rows.map((r) => r.sessionId).sort(), ['alice', 'bob'])
  alice.release()
  bob.release()
})

test('1,000 concurrent acquires of one new session make one binding, on one process', async (t) => {
  const pool = await openPool(t, { min: 0, max: 4 })
  const leases = await Promise.all(Array.from({ length: 1000 }, () => pool.acquire('crowd')))
  const pids = new Set(leases.map((l) => l.pid))
  assert.equal(pids.size, 1, `expected one PID, got ${[...pids].join(', ')}`)
  const stats = pool.stats()
  assert.equal(stats.sessions, 1)
  assert.equal(stats.counters.sessionsBound, 1)
  assert.equal(stats.openLeases, 1000)
  for (const lease of leases) lease.release()
  assert.equal(pool.stats().openLeases, 0)
})

test('a lease declared with `using` is released at the end of its block', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  const lease = await pool.acquire('scoped')
  assert.equal(pool.stats().openLeases, 1)
  lease[Symbol.dispose]()
  assert.equal(lease.released, true)
  assert.equal(pool.stats().openLeases, 0)
  lease.release() // releasing twice is harmless
  assert.equal(pool.stats().openLeases, 0)
})
