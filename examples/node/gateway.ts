// Gateway: a multi-tenant browser gateway in the shape of the Go reference's
// Playwright example. Each X-Session-ID gets its own `playwright run-server`
// process, and herd's gateway sends every HTTP request and WebSocket
// connection (Playwright's protocol) of a session to that process. Workers
// are never reused, so no browser state leaks between tenants.
//
//   npx tsc -p examples/node && node examples/node/dist/gateway.js [--demo] [--listen HOST:PORT]
//
// (the same program as gateway.js, typed; the tests type-check it)
//
// Clients connect with the header, e.g. Playwright:
//   chromium.connect('ws://127.0.0.1:8080/', { headers: { 'X-Session-ID': 'my-session' } })
//
// Every request holds a lease on its session until its response has been
// sent, and a WebSocket for its whole life, so a session in use is never
// evicted for idleness; when herd ends a session (its 15 minutes of idle
// TTL, a crash) its WebSockets get a close frame that says why.
import { parseArgs } from 'node:util'
import { Pool, demoWorkerCommand, type HerdError, type Proxy, type ServeOptions, type SessionEnd } from 'herd'

const PLAYWRIGHT = ['npx', 'playwright', 'run-server', '--port', '{{.Port}}', '--host', '127.0.0.1']

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { demo: { type: 'boolean', default: false }, listen: { type: 'string', default: '127.0.0.1:8080' } },
  })

  // 1. One isolated `playwright run-server` per session.
  const pool = new Pool({
    command: values.demo ? demoWorkerCommand() : PLAYWRIGHT,
    healthPath: '/',
    startTimeoutMs: 60_000,
    min: 1,
    max: 5, // between 1 and 5 concurrent tenants
    ttlMs: 15 * 60_000,
    reuse: false, // never share a browser between tenants
    onSessionEnd: (end: SessionEnd) => console.log(`session ${end.sessionId} ended (${end.reason})`),
  })

  // 2. herd's gateway pins each X-Session-ID to its worker, HTTP and
  //    WebSocket alike; a new session that finds no browser within 10 s
  //    gets 503 with Retry-After, a request without the header 400.
  const options: ServeOptions = { listen: values.listen, sessionHeader: 'X-Session-ID', acquireTimeoutMs: 10_000 }
  const proxy: Proxy = await pool.serve(options)
  console.log(`gateway listening on ${proxy.url}`)

  // 3. Ctrl-C or SIGTERM: requests in flight finish, WebSockets get a close
  //    frame, every browser stops; then nothing keeps Node alive. (A second
  //    signal ends Node at once; the browsers die with it.)
  const stop = async (): Promise<void> => {
    await proxy.close({ graceMs: 10_000 })
    await pool.close()
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((err: HerdError) => {
  console.error(`gateway failed: [${err.code}] ${err.message}`)
  process.exitCode = 1
})
