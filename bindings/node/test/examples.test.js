// The examples in examples/node run (JavaScript) and type-check (TypeScript).
// They need `npm install` in examples/node (scripts/test.d/50-node.sh does it).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { createRequire } = require('node:module')
const { once } = require('node:events')
const { waitUntil, alive, spawnTied } = require('./helpers')

const EXAMPLES = path.resolve(__dirname, '../../../examples/node')
const OLLAMA = path.resolve(__dirname, '../../../examples/ollama')
const examplesRequire = createRequire(path.join(EXAMPLES, 'package.json'))

/** Runs a program to completion (killed if it outlives `timeoutMs`). */
function run(command, args, { timeoutMs = 120000, cwd = EXAMPLES } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += c))
    child.stderr.on('data', (c) => (stderr += c))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

test('examples/node/acquire.js runs: one session, one process, state kept', async () => {
  const { code, stdout, stderr } = await run(process.execPath, ['acquire.js'])
  assert.equal(code, 0, stderr)
  assert.match(stdout, /alice → pid \d+ \(same process: true\), cart: 3 apples/)
  assert.match(stdout, /bob {3}→ pid \d+, cart: \(empty\)/)
  assert.match(stdout, /2 sessions on 2 workers/)
})

test('the TypeScript examples type-check (tsc --noEmit)', async () => {
  const tsc = examplesRequire.resolve('typescript/bin/tsc')
  const { code, stdout, stderr } = await run(process.execPath, [tsc, '-p', '.', '--noEmit'])
  assert.equal(code, 0, stdout + stderr)
})

test('examples/node/gateway.js routes HTTP and WebSocket traffic by X-Session-ID', async (t) => {
  const WebSocket = examplesRequire('ws')
  const gateway = spawnTied(t, process.execPath, ['gateway.js', '--demo', '--listen', '127.0.0.1:0'], {
    cwd: EXAMPLES,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const base = await waitUntil(() => gateway.output.match(/listening on (http:\/\/[\d.:]+)/)?.[1], {
    timeoutMs: 30000,
    what: 'the gateway to listen',
  })

  const who = async (session) => {
    const response = await fetch(base + '/', { headers: session ? { 'X-Session-ID': session } : {} })
    return { status: response.status, body: response.status === 200 ? await response.json() : await response.text() }
  }
  const a1 = await who('tenant-a')
  const a2 = await who('tenant-a')
  const b = await who('tenant-b')
  assert.equal(a1.status, 200)
  assert.equal(a1.body.pid, a2.body.pid, 'one session, one worker')
  assert.notEqual(a1.body.pid, b.body.pid, 'another session, another worker')
  assert.equal(a1.body.session, 'tenant-a', 'the worker sees the session header')
  assert.equal((await who(undefined)).status, 400)

  // A WebSocket of tenant-a reaches tenant-a's worker (the demo worker echoes).
  const socket = new WebSocket(base.replace('http', 'ws') + '/', { headers: { 'X-Session-ID': 'tenant-a' } })
  await once(socket, 'open')
  socket.send('hello through the gateway')
  const [message] = await once(socket, 'message')
  assert.equal(message.toString(), 'hello through the gateway')
  socket.close()
  await once(socket, 'close')

  gateway.kill('SIGTERM')
  const { code } = await gateway.exited
  assert.equal(code, 0, gateway.output)
  for (const pid of [a1.body.pid, b.body.pid]) {
    await waitUntil(() => !alive(pid), { what: `worker ${pid} to stop with the gateway` })
  }
})

test('npx herd runs the package\'s herd command (what `npx herd serve --demo` starts)', async () => {
  const { code, stdout, stderr } = await run('npx', ['--no-install', 'herd', 'serve', '--help'])
  assert.equal(code, 0, stdout + stderr)
  assert.match(stdout, /Usage: herd serve/)
  assert.match(stdout, /--demo/)
})

test('examples/ollama/gateway.mjs (the Ollama gateway, on the demo worker) keeps each agent on its own worker', async () => {
  // --self-test: serves on a free port, sends requests for three agents
  // through the gateway, checks affinity, the echo and the 400, and exits.
  const { code, stdout, stderr } = await run(process.execPath, ['gateway.mjs', '--self-test'], { cwd: OLLAMA })
  assert.equal(code, 0, stdout + stderr)
  assert.match(stdout, /one herd demo worker per X-Agent-ID/)
  assert.match(stdout, /self-test passed: 3 agents, 3 workers/)
  const pids = [...stdout.matchAll(/-> worker pid (\d+)/g)].map((m) => Number(m[1]))
  assert.equal(new Set(pids).size, 3, stdout)
  for (const pid of pids) {
    await waitUntil(() => !alive(pid), { what: `worker ${pid} to stop with the gateway` })
  }
})
