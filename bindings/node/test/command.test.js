// The package's `herd` command (`npx herd serve --demo`, bin/herd.js): the
// same gateway command as the Rust binary, stopped by Node's own SIGTERM and
// SIGINT handling. Every gateway is started with spawnTied, so none can
// outlive this test process.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { once } = require('node:events')
const { waitUntil, alive, descendants, spawnTied, getJson } = require('./helpers')

const HERD_JS = path.resolve(__dirname, '../bin/herd.js')

/** `node bin/herd.js serve --demo ARGS` on free ports; resolves once it serves. */
async function startGateway(t, args = []) {
  const child = spawnTied(
    t,
    process.execPath,
    [HERD_JS, 'serve', '--demo', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HERD_LOG: 'info,herd::worker=warn' } },
  )
  const listening = (what) => child.output.match(new RegExp(`${what} listening on (http://[\\d.:]+)`))?.[1]
  await waitUntil(() => (child.exitCode !== null ? assert.fail(child.output) : listening('admin')), {
    timeoutMs: 30000,
    what: 'herd serve to listen',
  })
  return { child, url: listening('gateway'), adminUrl: listening('admin') }
}

async function sessionPid(url, session) {
  return (await getJson(url + '/', { headers: { 'X-Session-ID': session } })).pid
}

test('herd serve --demo routes by session and exits 0 on SIGTERM, leaving no process', async (t) => {
  const { child, url, adminUrl } = await startGateway(t, ['--min', '1', '--max', '4'])
  const a = await sessionPid(url, 'a')
  assert.equal(await sessionPid(url, 'a'), a, 'one session, one worker')
  const b = await sessionPid(url, 'b')
  assert.notEqual(a, b, 'another session, another worker')
  const noSession = await fetch(url + '/')
  assert.equal(noSession.status, 400)
  const workers = (await getJson(adminUrl + '/stats')).worker_rows.map((w) => w.pid)
  assert.ok(workers.includes(a) && workers.includes(b))
  const tree = descendants(child.pid)
  assert.ok(workers.every((pid) => tree.includes(pid)), 'the workers run under the gateway')

  child.kill('SIGTERM')
  const { code, signal } = await child.exited
  assert.equal(signal, null, child.output)
  assert.equal(code, 0, child.output)
  assert.match(child.output, /SIGTERM: stopping/)
  for (const pid of tree) assert.equal(alive(pid), false, `process ${pid} outlived herd serve`)
})

test('SIGINT stops it gracefully, and a second signal skips the wait for requests in flight', async (t) => {
  const { child, url, adminUrl } = await startGateway(t, ['--min', '1', '--shutdown-grace', '10m'])
  const tree = descendants(child.pid)
  const { hostname: host, port } = new URL(url)
  const slow = net.connect({ host, port: Number(port) })
  t.after(() => slow.destroy())
  await once(slow, 'connect')
  slow.write('GET /sleep?ms=600000 HTTP/1.1\r\nHost: x\r\nX-Session-ID: slow\r\n\r\n')
  await waitUntil(async () => (await getJson(adminUrl + '/stats')).open_leases === 1, {
    what: 'the slow request to be in flight',
  })

  child.kill('SIGINT')
  const refused = () =>
    new Promise((resolve) => {
      const probe = net.connect({ host, port: Number(port) })
      probe.once('connect', () => {
        probe.destroy()
        resolve(false)
      })
      probe.once('error', () => resolve(true))
    })
  await waitUntil(refused, { what: 'the gateway to stop accepting' })
  assert.equal(child.exitCode, null, 'it waits for the request in flight (10 minutes of grace)')

  child.kill('SIGTERM')
  const { code, signal } = await child.exited
  assert.equal(signal, null, child.output)
  assert.equal(code, 0, child.output)
  assert.match(child.output, /SIGINT: stopping[\s\S]*SIGTERM: stopping at once/)
  for (const pid of tree) assert.equal(alive(pid), false, `process ${pid} outlived herd serve`)
})

test('bad flags exit 2 naming the flag; a taken port exits 1; --help exits 0', async (t) => {
  const herd = (...args) => spawnSync(process.execPath, [HERD_JS, ...args], { encoding: 'utf8', timeout: 60000 })
  const bad = herd('serve', '--demo', '--min', 'lots')
  assert.equal(bad.status, 2, bad.stderr)
  assert.match(bad.stderr, /--min/)
  assert.equal(herd().status, 2, 'no subcommand')
  const help = herd('serve', '--help')
  assert.equal(help.status, 0, help.stderr)
  assert.match(help.stdout, /Usage: herd serve/)

  const { url } = await startGateway(t, ['--min', '0'])
  const taken = herd('serve', '--demo', '--min', '0', '--listen', new URL(url).host)
  assert.equal(taken.status, 1, taken.stderr)
  assert.match(taken.stderr, /cannot listen on/)
})
