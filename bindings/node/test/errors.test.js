// Every error is an Error with a stable `code`; bad input never crashes.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { Pool, ErrorCode } = require('herd')
const { WORKER, openPool, rejection, waitUntil } = require('./helpers')

function assertHerdError(err, code, messagePart) {
  assert.ok(err instanceof Error, `expected an Error, got ${err}`)
  assert.equal(err.code, code, `code of: ${err.message}`)
  if (messagePart) assert.match(err.message, messagePart)
  assert.equal(typeof err.retryable, 'boolean')
  assert.ok(['caller', 'worker', 'herd'].includes(err.origin))
}

test('ErrorCode lists one stable code per kind of failure', () => {
  assert.deepEqual(Object.values(ErrorCode).sort(), [
    'HERD_ACQUIRE_TIMEOUT',
    'HERD_FORKED',
    'HERD_INTERNAL',
    'HERD_INVALID_CONFIG',
    'HERD_INVALID_SESSION_ID',
    'HERD_IO',
    'HERD_POOL_CLOSED',
    'HERD_POOL_EXHAUSTED',
    'HERD_SANDBOX',
    'HERD_SPAWN_FAILED',
    'HERD_WORKER_UNAVAILABLE',
  ])
})

test('HERD_INVALID_SESSION_ID: empty, too long, control characters, not a string', async (t) => {
  const pool = await openPool(t, { min: 0, max: 1 })
  const cases = [
    ['', /empty/],
    ['x'.repeat(257), /257 bytes/],
    ['line\nbreak', /control character/],
    [42, /must be a string, got a number/],
    [undefined, /got undefined/],
    [{ id: 'a' }, /got an object/],
  ]
  for (const [id, message] of cases) {
    const err = await rejection(pool.acquire(id))
    assertHerdError(err, ErrorCode.InvalidSessionId, message)
    assert.equal(err.origin, 'caller')
    assert.equal(err.retryable, false)
    assert.throws(() => pool.endSession(id), (e) => e.code === 'HERD_INVALID_SESSION_ID')
  }
  assert.equal(pool.stats().sessions, 0, 'no bad ID made a binding')
})

test('HERD_INVALID_CONFIG names the option the caller wrote', () => {
  const cases = [
    [{ command: [] }, /command must name a program/],
    [{ command: WORKER, min: 5, max: 2 }, /min \(5\) must not exceed max \(2\)/],
    [{ command: WORKER, minIdle: -1 }, /minIdle must be a whole number/],
    [{ command: WORKER, max: 1.5 }, /max must be a whole number/],
    [{ command: WORKER, ttlMs: 0 }, /ttlMs must be greater than zero/],
    [{ command: WORKER, acquireTimeoutMs: Infinity }, /acquireTimeoutMs must be a number of milliseconds/],
    [{ command: WORKER, readiness: 'udp' }, /readiness must be 'http' or 'tcp'/],
    [{ command: WORKER, healthPath: 'no-slash' }, /health path "no-slash" must start with '\/'/],
    [{ command: WORKER, min: 'three' }, /bad pool options/],
    [{ command: 'not-an-array' }, /bad pool options/],
    [{ command: WORKER, cwd: '/does/not/exist' }, /working directory \/does\/not\/exist does not exist/],
  ]
  for (const [options, message] of cases) {
    assert.throws(
      () => new Pool(options),
      (err) => {
        assertHerdError(err, ErrorCode.InvalidConfig, message)
        return true
      },
      JSON.stringify(options),
    )
  }
})

test('Pool.create rejects (never throws) on bad options', async () => {
  const pending = Pool.create({ command: WORKER, min: 3, max: 1 })
  assert.ok(pending instanceof Promise)
  assertHerdError(await rejection(pending), ErrorCode.InvalidConfig, /min \(3\)/)
})

test('HERD_SPAWN_FAILED: a missing program, and a worker that exits during start', async () => {
  assert.throws(
    () => new Pool({ command: ['/nonexistent/herd-worker'] }),
    (err) => {
      assertHerdError(err, ErrorCode.SpawnFailed, /\/nonexistent\/herd-worker/)
      return true
    },
  )
  const err = await rejection(
    Pool.create({ command: [process.execPath, '-e', 'console.error("no database here"); process.exit(3)'], min: 1 }),
  )
  assertHerdError(err, ErrorCode.SpawnFailed, /exited during start with exit code 3.*no database here/)
  assert.equal(err.origin, 'worker')
  assert.equal(err.retryable, true)
})

test('HERD_ACQUIRE_TIMEOUT when every worker stays bound', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  const held = await pool.acquire('holder')
  const err = await rejection(pool.acquire('waiter', { timeoutMs: 100 }))
  assertHerdError(err, ErrorCode.AcquireTimeout, /waiter/)
  assert.equal(err.retryable, true)
  assert.equal(pool.stats().counters.acquireTimeouts, 1)
  held.release()
})

test('HERD_POOL_EXHAUSTED when the wait queue is full', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1, maxQueue: 0 })
  const held = await pool.acquire('holder')
  const err = await rejection(pool.acquire('one-too-many'))
  assertHerdError(err, ErrorCode.PoolExhausted)
  assert.equal(pool.stats().counters.acquiresRejected, 1)
  held.release()
})

test('HERD_POOL_CLOSED: waiting and later calls fail clearly; close() twice is fine', async () => {
  const pool = await Pool.create({ command: WORKER, min: 1, max: 1 })
  const held = await pool.acquire('holder')
  const waiting = rejection(pool.acquire('late', { timeoutMs: 60000 }))
  await waitUntil(() => pool.stats().waitingAcquires === 1, { what: 'the second acquire to queue' })
  await Promise.all([pool.close({ graceMs: 1000 }), pool.close()])
  assert.equal(pool.closed, true)
  assertHerdError(await waiting, ErrorCode.PoolClosed)
  assertHerdError(await rejection(pool.acquire('alice')), ErrorCode.PoolClosed, /closed/)
  assert.throws(() => pool.endSession('alice'), (e) => e.code === 'HERD_POOL_CLOSED')
  await pool.close() // a third time: still fine
  held.release() // releasing a lease of a closed pool is harmless
  const stats = pool.stats()
  assert.equal(stats.closed, true)
  assert.equal(stats.workers.total, 0)
})

test('bad per-call options are reported, not thrown past the promise', async (t) => {
  const pool = await openPool(t, { min: 0, max: 1 })
  assertHerdError(await rejection(pool.acquire('a', { timeoutMs: -5 })), ErrorCode.InvalidConfig, /timeoutMs/)
  assertHerdError(await rejection(pool.close({ graceMs: NaN })), ErrorCode.InvalidConfig, /graceMs/)
  assert.equal(pool.closed, false)
})
