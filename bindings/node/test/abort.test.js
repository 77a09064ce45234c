// Timeouts and AbortSignal: a caller that gives up leaves the others waiting.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { getEventListeners } = require('node:events')
const { openPool, waitUntil, rejection } = require('./helpers')

test('an already-aborted signal rejects at once with an AbortError', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  const controller = new AbortController()
  controller.abort(new Error('user went away'))
  const err = await rejection(pool.acquire('x', { signal: controller.signal }))
  assert.equal(err.name, 'AbortError')
  assert.equal(err.code, 'ABORT_ERR')
  assert.equal(err.cause.message, 'user went away')
  assert.equal(pool.stats().sessions, 0, 'nothing was bound')
})

test('aborting a waiting acquire rejects it; other waiters for the session still get the worker', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  const held = await pool.acquire('holder')
  const controller = new AbortController()
  const aborted = rejection(pool.acquire('next', { signal: controller.signal }))
  const patient = pool.acquire('next', { timeoutMs: 20000 })
  await waitUntil(() => pool.stats().waitingAcquires === 2, { what: 'both acquires to wait' })
  controller.abort()
  const err = await aborted
  assert.equal(err.name, 'AbortError')
  assert.equal(err.code, 'ABORT_ERR')
  assert.match(err.message, /"next" was aborted/)
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'the abort listener was removed')
  // The cancelled wait gives its place up on the pool's runtime, right after.
  await waitUntil(() => pool.stats().waitingAcquires === 1, { what: 'the aborted acquire to leave the queue' })

  held.release()
  pool.endSession('holder') // frees the only worker
  const lease = await patient
  assert.equal(lease.sessionId, 'next')
  lease.release()
})

test('a signal used for many acquires does not collect listeners', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  const held = await pool.acquire('holder')
  const controller = new AbortController()
  for (let i = 0; i < 20; i++) {
    const err = await rejection(pool.acquire('queued', { signal: controller.signal, timeoutMs: 5 }))
    assert.equal(err.code, 'HERD_ACQUIRE_TIMEOUT')
  }
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
  held.release()
})

test('AbortSignal.timeout() bounds a wait like timeoutMs does', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  const held = await pool.acquire('holder')
  const err = await rejection(pool.acquire('late', { signal: AbortSignal.timeout(50) }))
  assert.equal(err.name, 'AbortError')
  assert.equal(err.cause.name, 'TimeoutError')
  await waitUntil(() => pool.stats().waitingAcquires === 0, { what: 'the aborted acquire to leave the queue' })
  held.release()
})

test('a bound session is served at once even with a tiny timeout', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  ;(await pool.acquire('bound')).release()
  const lease = await pool.acquire('bound', { timeoutMs: 0 })
  assert.equal(lease.sessionId, 'bound')
  lease.release()
})

test('bad acquire options reject (never throw) with HERD_INVALID_CONFIG', async (t) => {
  const pool = await openPool(t, { min: 0, max: 1 })
  const cases = [
    [5, /acquire options must be an object, got a number/],
    [{ signal: {} }, /signal must be an AbortSignal/],
    [{ timeoutMs: 'soon' }, /bad acquire options/],
  ]
  for (const [options, message] of cases) {
    const pending = pool.acquire('x', options)
    assert.ok(pending instanceof Promise)
    const err = await rejection(pending)
    assert.equal(err.code, 'HERD_INVALID_CONFIG')
    assert.match(err.message, message)
  }
  const err = await rejection(pool.close('now'))
  assert.match(err.message, /close options must be an object, got a string/)
  assert.equal(pool.closed, false)
})
