// Benchmark: `await pool.acquire(id)` + `lease.release()` on a bound
// session, from Node. Goal: ≤ 10 µs per pair (median). Prints figures; it
// asserts nothing about speed.
//
//   node bindings/node/bench/acquire.js [--batches 300] [--batch-size 1000]
'use strict'

const { parseArgs } = require('node:util')
const { Pool, demoWorkerCommand } = require('herd')

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

async function main() {
  const { values } = parseArgs({
    options: { batches: { type: 'string', default: '300' }, 'batch-size': { type: 'string', default: '1000' } },
  })
  const batches = Number(values.batches)
  const batchSize = Number(values['batch-size'])
  const pool = await Pool.create({ command: demoWorkerCommand(), min: 1, max: 1 })
  try {
    ;(await pool.acquire('bench')).release() // bind the session

    for (let i = 0; i < 20_000; i++) (await pool.acquire('bench')).release() // warm up

    const perPairUs = []
    for (let b = 0; b < batches; b++) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < batchSize; i++) {
        const lease = await pool.acquire('bench')
        lease.release()
      }
      perPairUs.push(Number(process.hrtime.bigint() - start) / 1000 / batchSize)
    }
    perPairUs.sort((x, y) => x - y)
    const fmt = (us) => us.toFixed(2).padStart(6)
    console.log(`acquire + release on a bound session, from Node (${batches} batches of ${batchSize} pairs):`)
    console.log(`  median ${fmt(quantile(perPairUs, 0.5))} µs per pair   (goal ≤ 10 µs)`)
    console.log(`  p10    ${fmt(quantile(perPairUs, 0.1))} µs   p90 ${fmt(quantile(perPairUs, 0.9))} µs   max ${fmt(perPairUs.at(-1))} µs`)
    console.log(`  (batch means; node ${process.version}, ${require('node:os').cpus().length} cores)`)
  } finally {
    await pool.close()
  }
}

main().catch((err) => {
  console.error(`benchmark failed: [${err.code}] ${err.message}`)
  process.exitCode = 1
})
