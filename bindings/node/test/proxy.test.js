// pool.serve(): herd's gateway in front of a pool, driven with fetch and a
// WebSocket client (ws), with real demo workers.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { once } = require('node:events')
const WebSocket = require('ws')
const { openPool, waitUntil, alive, rejection, runNode } = require('./helpers')

/** A proxy on a free port, closed when the test ends. */
async function serve(t, pool, options = {}) {
  const proxy = await pool.serve({ listen: '127.0.0.1:0', ...options })
  t.after(() => proxy.close({ graceMs: 1000 }))
  return proxy
}

/** GET `path` through the proxy; the answer's status and body (JSON when 200). */
async function get(proxy, path, headers = {}) {
  const response = await fetch(proxy.url + path, { headers })
  const body = await response.text()
  return { status: response.status, headers: response.headers, body: response.ok ? JSON.parse(body) : body }
}

test('the same session reaches the same worker, other sessions other workers; no session ID gets 400', async (t) => {
  const pool = await openPool(t, { min: 1, max: 4 })
  const proxy = await serve(t, pool)
  assert.match(proxy.address, /^127\.0\.0\.1:\d+$/)
  assert.equal(proxy.url, `http://${proxy.address}`)
  assert.equal(proxy.adminAddress, null)

  const a1 = await get(proxy, '/', { 'X-Session-ID': 'alice' })
  const a2 = await get(proxy, '/', { 'X-Session-ID': 'alice' })
  const b = await get(proxy, '/', { 'X-Session-ID': 'bob' })
  assert.equal(a1.status, 200)
  assert.equal(a1.body.pid, a2.body.pid, 'one session, one worker')
  assert.equal(a2.body.requests, 2, "the worker kept the session's state")
  assert.notEqual(a1.body.pid, b.body.pid, 'another session, another worker')
  assert.equal(a1.body.session, 'alice', 'the worker sees the session header')

  // The pool sees the same bindings as the proxy.
  const lease = await pool.acquire('alice')
  assert.equal(lease.pid, a1.body.pid)
  lease.release()

  const anonymous = await get(proxy, '/')
  assert.equal(anonymous.status, 400)
  assert.match(anonymous.body, /X-Session-ID/)
})

test('session options are tried in the order they are written: cookie, query, path prefix', async (t) => {
  const pool = await openPool(t, { min: 1, max: 4 })
  const queryFirst = await serve(t, pool, { sessionQuery: 'sid', sessionCookie: 'herd_session' })
  const cookieFirst = await serve(t, pool, { sessionCookie: 'herd_session', sessionQuery: 'sid' })
  const both = { cookie: 'herd_session=from-cookie' }
  const pidOf = async (session) => {
    const lease = await pool.acquire(session)
    lease.release()
    return lease.pid
  }

  const viaQuery = await get(queryFirst, '/?sid=from-query', both)
  assert.equal(viaQuery.body.pid, await pidOf('from-query'))
  const viaCookie = await get(cookieFirst, '/?sid=from-query', both)
  assert.equal(viaCookie.body.pid, await pidOf('from-cookie'))

  // /s/{id}/rest is session {id}, and reaches the worker as /rest.
  const paths = await serve(t, pool, { sessionPathPrefix: '/s/' })
  const put = await fetch(paths.url + '/s/carol/kv/color', { method: 'PUT', body: 'green' })
  assert.equal(put.status, 200, await put.text())
  const color = await fetch(paths.url + '/s/carol/kv/color')
  assert.equal(await color.text(), 'green')
  const who = await get(paths, '/s/carol/')
  assert.equal(who.body.path, '/')
  assert.equal(who.body.pid, await pidOf('carol'))
})

test('a new session that finds no worker in time gets 503 with Retry-After', async (t) => {
  const pool = await openPool(t, { min: 1, max: 1 })
  const proxy = await serve(t, pool, { acquireTimeoutMs: 200, retryAfterMs: 3000 })
  const holder = await pool.acquire('holder') // the only worker, kept bound
  t.after(() => holder.release())
  const refused = await get(proxy, '/', { 'X-Session-ID': 'latecomer' })
  assert.equal(refused.status, 503)
  assert.equal(refused.headers.get('retry-after'), '3')
})

test('a WebSocket echoes through the proxy and gets a close frame with a reason when its session ends', async (t) => {
  const pool = await openPool(t, { min: 1, max: 2 })
  const proxy = await serve(t, pool)
  const socket = new WebSocket(proxy.url.replace('http', 'ws') + '/', { headers: { 'X-Session-ID': 'ws-user' } })
  t.after(() => socket.terminate())
  await once(socket, 'open')
  socket.send('hello through herd')
  const [message] = await once(socket, 'message')
  assert.equal(message.toString(), 'hello through herd')
  assert.equal(pool.stats().openLeases, 1, 'the open WebSocket holds a lease')

  const closed = once(socket, 'close')
  assert.equal(pool.endSession('ws-user'), true)
  const [code, reason] = await closed
  assert.equal(code, 1001)
  assert.equal(reason.toString(), 'herd session ended: ended')
  await waitUntil(() => pool.stats().openLeases === 0, { what: 'the lease of the WebSocket to be released' })
})

test('proxy.close() then pool.close() leave no process, and nothing listens any more', async (t) => {
  const pool = await openPool(t, { min: 1, max: 4 })
  const proxy = await pool.serve({ listen: '127.0.0.1:0', adminListen: '127.0.0.1:0' })
  t.after(() => proxy.close())
  for (const session of ['a', 'b', 'c']) {
    assert.equal((await get(proxy, '/', { 'X-Session-ID': session })).status, 200)
  }
  const stats = await (await fetch(proxy.adminUrl + '/stats')).json()
  const pids = stats.worker_rows.map((w) => w.pid)
  assert.equal(pids.length, 3)

  await proxy.close()
  assert.equal(proxy.closed, true)
  await assert.rejects(fetch(proxy.url + '/', { headers: { 'X-Session-ID': 'a' } }), 'the gateway stopped listening')
  await assert.rejects(fetch(proxy.adminUrl + '/stats'), 'the admin listener stopped too')
  await proxy.close() // again: resolves at once
  assert.equal(pool.closed, false, 'closing the proxy leaves the pool running')

  await pool.close()
  for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} outlived pool.close()`)
})

test('pool.close() closes its proxies first; proxy.close() afterwards still resolves', async (t) => {
  const pool = await openPool(t, { min: 1, max: 2 })
  const proxy = await pool.serve({ listen: '127.0.0.1:0' })
  t.after(() => proxy.close())
  assert.equal((await get(proxy, '/', { 'X-Session-ID': 'a' })).status, 200)
  await pool.close()
  assert.equal(proxy.closed, true)
  await assert.rejects(fetch(proxy.url + '/', { headers: { 'X-Session-ID': 'a' } }))
  await proxy.close()
})

test('pool.serve rejects bad options naming them, a taken port with HERD_IO, a closed pool with HERD_POOL_CLOSED', async (t) => {
  const pool = await openPool(t, { min: 0, max: 1 })
  const cases = [
    [{ listen: 'localhost' }, /listen must be an IP address and a port/],
    [{ listen: 8080 }, /bad serve options/],
    [{ adminListen: 'nowhere:1' }, /adminListen/],
    [{ sessionHeader: 'bad header' }, /sessionHeader: "bad header" is not a valid header name/],
    [{ sessionPathPrefix: 's/' }, /sessionPathPrefix: path prefix "s\/" must start and end with '\/'/],
    [{ sessionCookie: [] }, /sessionCookie must name at least one cookie/],
    [{ maxHeaderBytes: 100 }, /maxHeaderBytes \(100\) must be at least 8192/],
    [{ headerReadTimeoutMs: 0 }, /headerReadTimeoutMs must be greater than zero/],
    [{ acquireTimeoutMs: -1 }, /acquireTimeoutMs must be a number of milliseconds/],
    [{ threads: 1.5 }, /threads must be a whole number/],
    ['127.0.0.1:0', /serve options must be an object, got a string/],
  ]
  for (const [options, message] of cases) {
    const err = await rejection(pool.serve(options))
    assert.equal(err.code, 'HERD_INVALID_CONFIG', `${JSON.stringify(options)}: ${err.message}`)
    assert.match(err.message, message)
  }

  const proxy = await serve(t, pool)
  const taken = await rejection(pool.serve({ listen: proxy.address }))
  assert.equal(taken.code, 'HERD_IO')
  assert.match(taken.message, new RegExp(`cannot listen on ${proxy.address}`))

  await pool.close()
  const closed = await rejection(pool.serve({ listen: '127.0.0.1:0' }))
  assert.equal(closed.code, 'HERD_POOL_CLOSED')
})

test('a script that serves and closes exits by itself, its workers gone', async () => {
  const { code, stdout, stderr } = await runNode(`
    const { Pool, demoWorkerCommand } = require('herd')
    ;(async () => {
      const pool = await Pool.create({ command: demoWorkerCommand(), min: 1, max: 2 })
      const proxy = await pool.serve({ listen: '127.0.0.1:0' })
      const answer = await (await fetch(proxy.url, { headers: { 'X-Session-ID': 's' } })).json()
      await proxy.close()
      await pool.close()
      console.log(answer.pid)
    })()
  `)
  assert.equal(code, 0, stderr)
  assert.equal(alive(Number(stdout)), false)
})

test('a serving proxy keeps Node alive, even once its Proxy object is collected, until its pool closes', async () => {
  // The script drops its Proxy object and waits until it is collected; a
  // session ended through the admin route is its cue to close the pool
  // (onSessionEnd never keeps Node alive, so only the proxy can).
  const child = runNode(
    `
    const { Pool, demoWorkerCommand } = require('herd')
    ;(async () => {
      const pool = await Pool.create({
        command: demoWorkerCommand(), min: 1, max: 2,
        onSessionEnd: (end) => end.sessionId === 'quit' && pool.close().then(() => console.log('closed')),
      })
      let collected = false
      const registry = new FinalizationRegistry(() => (collected = true))
      const addresses = await (async () => {
        const proxy = await pool.serve({ listen: '127.0.0.1:0', adminListen: '127.0.0.1:0' })
        registry.register(proxy, 'proxy')
        return { url: proxy.url, adminUrl: proxy.adminUrl }
      })()
      for (let i = 0; i < 200 && !collected; i++) {
        global.gc()
        await new Promise((resolve) => setImmediate(resolve))
      }
      console.log(JSON.stringify({ ...addresses, collected }))
    })()
  `,
    { nodeArgs: ['--expose-gc'] },
  )
  const { url, adminUrl, collected } = JSON.parse(await child.firstLine)
  assert.equal(collected, true, 'the Proxy object was garbage-collected')
  // The script's code has finished: only the proxy keeps it running.
  const answer = await (await fetch(url, { headers: { 'X-Session-ID': 'quit' } })).json()
  assert.ok(alive(answer.pid))
  const ended = await fetch(`${adminUrl}/sessions/quit`, { method: 'DELETE' })
  assert.equal(ended.status, 204)
  const { code, stdout, stderr } = await child
  assert.equal(code, 0, stderr)
  assert.match(stdout, /closed/)
  assert.equal(alive(answer.pid), false)
})
