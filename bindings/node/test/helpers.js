// Shared helpers for the herd Node tests: real demo worker processes,
// condition waits instead of sleeps, and cleanup of every process started.
'use strict'

const { spawn } = require('node:child_process')
const { Pool, demoWorkerCommand } = require('herd')

/** The demo worker, started from this package (`node bin/herd.js demo-worker`). */
const WORKER = demoWorkerCommand()

/**
 * A pool of demo workers that is closed when the test ends, pass or fail.
 * Resolves once `min` workers are ready.
 */
async function openPool(t, options = {}) {
  const pool = await Pool.create({ command: WORKER, ...options })
  t.after(() => pool.close({ graceMs: 1000 }))
  return pool
}

/** Waits until `condition()` is truthy (it may be async); fails after `timeoutMs`. */
async function waitUntil(condition, { timeoutMs = 10000, what = 'the condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let delay = 2
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, delay))
    delay = Math.min(delay * 2, 50)
  }
}

/** Whether a process with this PID exists (and is not a zombie). */
function alive(pid) {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Every PID whose parent chain leads to `root` (from /proc). */
function descendants(root) {
  const fs = require('node:fs')
  const parents = new Map()
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // exited meanwhile
    }
  }
  const found = []
  const frontier = [root]
  while (frontier.length) {
    const parent = frontier.pop()
    for (const [pid, ppid] of parents) {
      if (ppid === parent && !found.includes(pid)) {
        found.push(pid)
        frontier.push(pid)
      }
    }
  }
  return found
}

const SETPRIV = '/usr/bin/setpriv'
const HAS_SETPRIV = require('node:fs').existsSync(SETPRIV)

/** `spawn`, with SIGKILL sent to the child when this process dies (PR_SET_PDEATHSIG). */
function spawnDyingWithUs(command, args, options) {
  if (!HAS_SETPRIV) return spawn(command, args, options)
  return spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args], options)
}

/**
 * Spawns a long-running child (a gateway) that cannot outlive this test:
 * it is killed when the test ends, and — through `setpriv --pdeathsig`,
 * which util-linux (essential on Debian) provides — when this process dies
 * in any way, even by SIGKILL. Its stdout and stderr are collected in
 * `child.output`.
 */
function spawnTied(t, command, args, options = {}) {
  const child = spawnDyingWithUs(command, args, options)
  child.output = ''
  child.stdout?.on('data', (chunk) => (child.output += chunk))
  child.stderr?.on('data', (chunk) => (child.output += chunk))
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

/** GET `url` and parse the JSON answer. */
async function getJson(url, init) {
  const response = await fetch(url, init)
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`)
  return response.json()
}

/**
 * Runs `node -e script` (with this package resolvable as `herd`) and
 * resolves with its exit code, signal, stdout and stderr. A child still
 * running after `timeoutMs` is killed and the promise rejects: the test
 * failed, and no process is left behind (nor if this process dies).
 * `.firstLine` of the returned promise resolves with the first line the
 * child prints (or all it printed, if it exits first).
 */
function runNode(script, { timeoutMs = 30000, args = [], nodeArgs = [] } = {}) {
  let lineSeen
  const firstLine = new Promise((resolve) => (lineSeen = resolve))
  const done = new Promise((resolve, reject) => {
    const child = spawnDyingWithUs(process.execPath, [...nodeArgs, '-e', script, ...args], {
      cwd: __dirname,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      if (stdout.includes('\n')) lineSeen(stdout.slice(0, stdout.indexOf('\n')))
    })
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the child node process did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      lineSeen(stdout)
      resolve({ code, signal, stdout, stderr })
    })
  })
  done.firstLine = firstLine
  return done
}

/** Settles `promise` and returns the error it rejected with (fails if it resolved). */
async function rejection(promise) {
  try {
    const value = await promise
    if (value && typeof value.release === 'function') value.release()
  } catch (err) {
    return err
  }
  throw new Error('expected the promise to reject, but it resolved')
}

module.exports = { WORKER, openPool, waitUntil, alive, descendants, spawnTied, getJson, runNode, rejection }
