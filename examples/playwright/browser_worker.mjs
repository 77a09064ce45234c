// One headless Chromium per herd worker, served over Playwright's protocol
// (a WebSocket on ws://127.0.0.1:$PORT/). herd starts one per session.
//
// Uses Debian's chromium (/usr/bin/chromium) — no browser download.
// Set CHROMIUM to use another binary.
import { chromium } from 'playwright-core';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('browser_worker: PORT is not set (herd sets it)');
  process.exit(2);
}

const server = await chromium.launchServer({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  host: '127.0.0.1',
  port,
  wsPath: '/',
  // One browser per session, shared by that session's connections: contexts
  // (cookies, storage, open pages) outlive a client's disconnect, so a
  // reconnect with the same session ID finds them. (Playwright's own
  // launchServer option for this; without it every connection gets fresh,
  // isolated contexts that close when it disconnects.)
  _sharedBrowser: true,
  headless: true,
  // As root (herd's sandbox usually runs as root) Chromium needs
  // --no-sandbox; herd's namespaces and cgroups confine it instead. The
  // rest keeps Chromium off the network unless a page asks for it.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
console.error(`browser worker ${process.env.HERD_WORKER_ID} ready at ${server.wsEndpoint()}`);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
