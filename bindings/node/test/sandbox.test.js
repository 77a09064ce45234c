// The sandbox options reach the core: limits are enforced on the worker.
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { Pool } = require('herd')
const { WORKER, waitUntil } = require('./helpers')

test('sandbox options are checked and named in JavaScript terms', () => {
  const cases = [
    [{ sandbox: 'maybe' }, /sandbox mode "maybe" is not one of off, best_effort, required/],
    [{ memoryLimit: 1000 }, /memoryLimit \(1000 bytes\) must be at least 1 MiB/],
    [{ memoryLimit: -1 }, /memoryLimit must be a whole number of bytes/],
    [{ cpuLimit: 0 }, /cpuLimit \(0\) must be between 0 and 1024 cores/],
    [{ pidsLimit: 0 }, /pidsLimit must be at least 1/],
    [{ pidsLimit: 2.5 }, /pidsLimit must be a whole number/],
    [{ cgroupRoot: 'relative/path' }, /cgroupRoot relative\/path must be an absolute cgroup path/],
  ]
  for (const [options, message] of cases) {
    assert.throws(
      () => new Pool({ command: WORKER, ...options }),
      (err) => err.code === 'HERD_INVALID_CONFIG' && message.test(err.message),
      JSON.stringify(options),
    )
  }
})

test('memoryLimit: a worker that allocates past it is killed, and onSessionEnd says so', async (t) => {
  const ends = []
  const options = {
    command: WORKER,
    min: 1,
    max: 1,
    sandbox: 'required',
    memoryLimit: 128 * 1024 * 1024,
    pidsLimit: Infinity,
    onSessionEnd: (end) => ends.push(end),
  }
  let pool
  try {
    pool = await Pool.create(options)
  } catch (err) {
    // A host that cannot give this process cgroups says so clearly.
    assert.equal(err.code, 'HERD_SANDBOX', err.message)
    t.skip(`no cgroups for this process: ${err.message}`)
    return
  }
  t.after(() => pool.close({ graceMs: 1000 }))
  const lease = await pool.acquire('hungry')
  await fetch(`${lease.url}/alloc?mb=512`).catch(() => {}) // the worker dies mid-request
  const end = await waitUntil(() => ends.find((e) => e.sessionId === 'hungry'), { what: 'the OOM kill' })
  assert.equal(end.reason, 'crashed')
  assert.equal(end.signal, 'SIGKILL')
  lease.release()
})

test('HERD_SANDBOX: sandbox "required" where the host cannot provide it (an unprivileged user)', async (t) => {
  if (process.getuid() !== 0) {
    t.skip('needs root, to run the check as the unprivileged user nobody')
    return
  }
  const script = `
    const { Pool, demoWorkerCommand } = require('herd')
    Pool.create({ command: demoWorkerCommand(), min: 1, sandbox: 'required' }).then(
      (pool) => pool.close().then(() => console.log('created')),
      (err) => console.log(JSON.stringify({ code: err.code, message: err.message, origin: err.origin })),
    )`
  const { stdout, stderr, status } = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script],
    { cwd: __dirname, encoding: 'utf8', timeout: 60000 },
  )
  assert.equal(status, 0, stderr)
  const err = JSON.parse(stdout)
  assert.equal(err.code, 'HERD_SANDBOX')
  assert.match(err.message, /sandbox is required but this host cannot provide it/)
})
