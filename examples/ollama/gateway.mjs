// A multi-agent LLM gateway: every agent (X-Agent-ID header) gets its own
// `ollama serve` process, so context windows and KV caches never mix.
//
// The reference system's Ollama example, in Node, on herd's gateway
// (`pool.serve`). Without `ollama` installed (or with --demo) it runs herd's
// demo worker instead, so the gateway can be tried anywhere.
//
//   cd examples/ollama && npm install      # herd from ../../bindings/node
//   node gateway.mjs [--listen 127.0.0.1:8080] [--demo]
//   curl -X POST http://127.0.0.1:8080/api/chat -H "X-Agent-ID: agent-42" \
//        -d '{"model": "llama3", "messages": [{"role": "user", "content": "Hello!"}]}'
//
//   node gateway.mjs --self-test           # serves on a free port, checks
//                                          # affinity through the gateway, exits
import assert from 'node:assert/strict'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { parseArgs } from 'node:util'

import { Pool, demoWorkerCommand } from 'herd'

const AGENT_HEADER = 'X-Agent-ID'

/** Whether `program` is an executable file in one of PATH's directories. */
function inPath(program) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir || '.', program), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

function makePool(demo) {
  if (demo) return new Pool({ command: demoWorkerCommand(), min: 1, max: 10, ttlMs: 10 * 60_000 })
  // One `ollama serve` per agent, on a port herd picks.
  return new Pool({
    command: ['ollama', 'serve'],
    env: { OLLAMA_HOST: '127.0.0.1:{{.Port}}' },
    healthPath: '/',
    startTimeoutMs: 120_000,
    min: 1,
    max: 10,
    ttlMs: 10 * 60_000,
    reuse: true,
  })
}

/** Affinity through the gateway (the demo worker's GET / answers its PID). */
async function selfTest(base) {
  const get = (path, agent, body) =>
    fetch(base + path, {
      method: body ? 'POST' : 'GET',
      headers: agent ? { [AGENT_HEADER]: agent } : {},
      body,
    })
  const pids = new Map()
  for (const agent of ['agent-1', 'agent-2', 'agent-1', 'agent-3', 'agent-2']) {
    const response = await get('/', agent)
    assert.equal(response.status, 200, await response.clone().text())
    const { pid } = await response.json()
    if (!pids.has(agent)) pids.set(agent, pid)
    assert.equal(pids.get(agent), pid, `${agent} moved from ${pids.get(agent)} to ${pid}`)
    console.log(`${agent} -> worker pid ${pid}`)
  }
  assert.equal(new Set(pids.values()).size, 3, 'each agent has its own worker')
  const echo = await get('/echo', 'agent-1', 'streamed back')
  assert.equal(echo.status, 200)
  assert.equal(await echo.text(), 'streamed back')
  assert.equal((await get('/', '')).status, 400, 'a request without X-Agent-ID is refused')
  console.log('self-test passed: 3 agents, 3 workers, same agent -> same worker')
}

const { values } = parseArgs({
  options: {
    listen: { type: 'string', default: '127.0.0.1:8080' },
    demo: { type: 'boolean', default: false },
    'self-test': { type: 'boolean', default: false },
  },
})
const selfTesting = values['self-test']
const demo = values.demo || selfTesting || !inPath('ollama')

const pool = makePool(demo)
try {
  // Each agent's requests go to its own worker; a new agent waits up to 30 s
  // for a free one (then 503 with Retry-After); no X-Agent-ID: 400.
  const proxy = await pool.serve({
    listen: selfTesting ? '127.0.0.1:0' : values.listen,
    sessionHeader: AGENT_HEADER,
    acquireTimeoutMs: 30_000,
  })
  console.log(`gateway on ${proxy.url}, one ${demo ? 'herd demo worker' : 'ollama serve'} per ${AGENT_HEADER}`)
  if (selfTesting) {
    await selfTest(proxy.url)
  } else {
    // Ctrl-C or SIGTERM: requests in flight finish, then every worker stops.
    await new Promise((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    console.log('stopping: requests in flight get 10 s to finish')
  }
  await proxy.close()
} catch (err) {
  console.error(`gateway failed: ${err.code ? `[${err.code}] ` : ''}${err.message}`)
  process.exitCode = 1
} finally {
  await pool.close()
}
