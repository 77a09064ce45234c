// The package imports from ES modules as well as CommonJS.
import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import herd, { Pool, Lease, ErrorCode, demoWorkerCommand, VERSION } from 'herd'

test('ES module named and default imports give the CommonJS exports', async (t) => {
  const cjs = createRequire(import.meta.url)('herd')
  assert.equal(Pool, cjs.Pool)
  assert.equal(Lease, cjs.Lease)
  assert.equal(herd.Pool, Pool)
  assert.equal(ErrorCode.PoolClosed, 'HERD_POOL_CLOSED')
  assert.match(VERSION, /^\d+\.\d+\.\d+/)

  const pool = await Pool.create({ command: demoWorkerCommand(), min: 1, max: 1 })
  t.after(() => pool.close())
  const lease = await pool.acquire('esm')
  assert.ok(lease instanceof Lease)
  lease.release()
})
