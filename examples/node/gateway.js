// Gateway: a multi-tenant browser gateway in the shape of the Go reference's
// Playwright example. Each X-Session-ID gets its own `playwright run-server`
// process; HTTP requests and WebSocket connections (Playwright's protocol)
// of a session always reach that process. Workers are never reused, so no
// browser state leaks between tenants.
//
//   node examples/node/gateway.js                 # workers: npx playwright run-server
//   node examples/node/gateway.js --demo          # workers: herd's demo worker
//   node examples/node/gateway.js --demo --listen 127.0.0.1:0
//
// Clients connect with the header, e.g. Playwright:
//   chromium.connect('ws://127.0.0.1:8080/', { headers: { 'X-Session-ID': 'my-session' } })
//
// Every request and every WebSocket connection is a lease, released when the
// response has been sent or the connection closes; while a session has an
// open lease it is never evicted for idleness.
'use strict'

const http = require('node:http')
const net = require('node:net')
const { parseArgs } = require('node:util')
const { Pool, demoWorkerCommand } = require('herd')

const SESSION_HEADER = 'x-session-id'
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']

function workerCommand(demo) {
  if (demo) return demoWorkerCommand()
  return ['npx', 'playwright', 'run-server', '--port', '{{.Port}}', '--host', '127.0.0.1']
}

/** A lease for the request's session, or an HTTP error status and message. */
async function leaseFor(pool, headers) {
  const session = headers[SESSION_HEADER]
  if (typeof session !== 'string' || session === '') {
    return { status: 400, message: 'missing X-Session-ID header' }
  }
  try {
    return { lease: await pool.acquire(session, { timeoutMs: 10_000 }) }
  } catch (err) {
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

function forwardedHeaders(req) {
  const headers = { ...req.headers }
  for (const name of HOP_BY_HOP) delete headers[name]
  headers['x-forwarded-for'] = req.socket.remoteAddress ?? ''
  headers['x-forwarded-host'] = req.headers.host ?? ''
  headers['x-forwarded-proto'] = 'http'
  return headers
}

async function proxyRequest(pool, req, res) {
  const { lease, status, message, retryAfter } = await leaseFor(pool, req.headers)
  if (!lease) {
    res.writeHead(status, { 'content-type': 'text/plain', ...(retryAfter && { 'retry-after': retryAfter }) })
    return res.end(message + '\n')
  }
  // The lease ends when the response has been sent (or the client left).
  res.once('close', () => lease.release())
  const [host, port] = lease.address.split(':')
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

async function proxyUpgrade(pool, req, client, head) {
  const { lease, status, message } = await leaseFor(pool, req.headers)
  if (!lease) {
    client.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${message}\n`)
    return
  }
  // The lease stays open for as long as the WebSocket connection lives.
  let released = false
  const release = () => {
    if (!released) (released = true), lease.release()
  }
  const [host, port] = lease.address.split(':')
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

async function main() {
  const { values } = parseArgs({
    options: { demo: { type: 'boolean', default: false }, listen: { type: 'string', default: '127.0.0.1:8080' } },
  })
  const [listenHost, listenPort] = values.listen.split(':')
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

  const server = http.createServer((req, res) => proxyRequest(pool, req, res))
  server.on('upgrade', (req, socket, head) => proxyUpgrade(pool, req, socket, head))
  server.listen(Number(listenPort), listenHost, () => {
    const { address, port } = server.address()
    console.log(`gateway listening on http://${address}:${port}`)
  })

  const stop = async () => {
    server.close()
    server.closeAllConnections()
    await pool.close()
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

main().catch((err) => {
  console.error(`gateway failed: [${err.code}] ${err.message}`)
  process.exitCode = 1
})
