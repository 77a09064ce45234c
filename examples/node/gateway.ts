// Gateway: a multi-tenant browser gateway in the shape of the Go reference's
// Playwright example. Each X-Session-ID gets its own `playwright run-server`
// process; HTTP requests and WebSocket connections (Playwright's protocol)
// of a session always reach that process. Workers are never reused, so no
// browser state leaks between tenants.
//
//   npx tsc -p examples/node && node examples/node/dist/gateway.js [--demo] [--listen HOST:PORT]
//
// (the same program as gateway.js, typed; the tests type-check it)
//
// Clients connect with the header, e.g. Playwright:
//   chromium.connect('ws://127.0.0.1:8080/', { headers: { 'X-Session-ID': 'my-session' } })
//
// Every request and every WebSocket connection is a lease, released when the
// response has been sent or the connection closes; while a session has an
// open lease it is never evicted for idleness.
import * as http from 'node:http'
import * as net from 'node:net'
import { parseArgs } from 'node:util'
import { Pool, demoWorkerCommand, type HerdError, type Lease } from 'herd'

type Leased = { lease: Lease } | { lease?: undefined; status: number; message: string; retryAfter?: string }

const SESSION_HEADER = 'x-session-id'
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']

function workerCommand(demo: boolean): string[] {
  if (demo) return demoWorkerCommand()
  return ['npx', 'playwright', 'run-server', '--port', '{{.Port}}', '--host', '127.0.0.1']
}

/** A lease for the request's session, or an HTTP error status and message. */
async function leaseFor(pool: Pool, headers: http.IncomingHttpHeaders): Promise<Leased> {
  const session = headers[SESSION_HEADER]
  if (typeof session !== 'string' || session === '') {
    return { status: 400, message: 'missing X-Session-ID header' }
  }
  try {
    return { lease: await pool.acquire(session, { timeoutMs: 10_000 }) }
  } catch (caught) {
    const err = caught as HerdError
    switch (err.code) {
      case 'HERD_INVALID_SESSION_ID':
        return { status: 400, message: err.message }
      case 'HERD_ACQUIRE_TIMEOUT':
      case 'HERD_POOL_EXHAUSTED':
        return { status: 503, message: 'no worker is free for a new session; try again', retryAfter: '5' }
      default:
        return { status: 502, message: `cannot reach a worker: ${err.message}` }
    }
  }
}

function forwardedHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
  const headers = { ...req.headers }
  for (const name of HOP_BY_HOP) delete headers[name]
  headers['x-forwarded-for'] = req.socket.remoteAddress ?? ''
  headers['x-forwarded-host'] = req.headers.host ?? ''
  headers['x-forwarded-proto'] = 'http'
  return headers
}

async function proxyRequest(pool: Pool, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const leased = await leaseFor(pool, req.headers)
  if (!leased.lease) {
    const { status, message, retryAfter } = leased
    res.writeHead(status, { 'content-type': 'text/plain', ...(retryAfter && { 'retry-after': retryAfter }) })
    res.end(message + '\n')
    return
  }
  const { lease } = leased
  // The lease ends when the response has been sent (or the client left).
  res.once('close', () => lease.release())
  const [host, port] = (lease.address ?? '').split(':')
  const upstream = http.request({ host, port, method: req.method, path: req.url, headers: forwardedHeaders(req) })
  upstream.once('response', (answer) => {
    const headers = { ...answer.headers }
    for (const name of HOP_BY_HOP) delete headers[name]
    res.writeHead(answer.statusCode ?? 502, headers)
    answer.pipe(res)
  })
  upstream.once('error', (err) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
    res.end(`worker unreachable: ${err.message}\n`)
  })
  req.pipe(upstream)
}

async function proxyUpgrade(pool: Pool, req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
  const leased = await leaseFor(pool, req.headers)
  if (!leased.lease) {
    const { status, message } = leased
    client.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${message}\n`)
    return
  }
  const { lease } = leased
  // The lease stays open for as long as the WebSocket connection lives.
  let released = false
  const release = (): void => {
    if (!released) {
      released = true
      lease.release()
    }
  }
  const [host, port] = (lease.address ?? '').split(':')
  const upstream = net.connect({ host, port: Number(port) }, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`]
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
    upstream.write(lines.join('\r\n') + '\r\n\r\n')
    if (head.length) upstream.write(head)
    upstream.pipe(client)
    client.pipe(upstream)
  })
  for (const socket of [client, upstream]) {
    socket.once('close', () => {
      release()
      client.destroy()
      upstream.destroy()
    })
    socket.once('error', () => socket.destroy())
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { demo: { type: 'boolean', default: false }, listen: { type: 'string', default: '127.0.0.1:8080' } },
  })
  const [listenHost, listenPort] = (values.listen ?? '127.0.0.1:8080').split(':')
  const pool = new Pool({
    command: workerCommand(values.demo),
    healthPath: '/',
    startTimeoutMs: 60_000,
    min: 1,
    max: 5, // between 1 and 5 concurrent tenants
    ttlMs: 15 * 60_000,
    reuse: false, // never share a browser between tenants
    onSessionEnd: (end) => console.log(`session ${end.sessionId} ended (${end.reason})`),
  })

  const server = http.createServer((req, res) => void proxyRequest(pool, req, res))
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    void proxyUpgrade(pool, req, socket, head)
  })
  server.listen(Number(listenPort), listenHost, () => {
    const { address, port } = server.address() as net.AddressInfo
    console.log(`gateway listening on http://${address}:${port}`)
  })

  const stop = async (): Promise<void> => {
    server.close()
    server.closeAllConnections()
    await pool.close()
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((err: HerdError) => {
  console.error(`gateway failed: [${err.code}] ${err.message}`)
  process.exitCode = 1
})
