// Connect to herd's Playwright gateway from Node: the same X-Session-ID
// always reaches the same browser, so cookies, storage and tabs survive
// reconnects.
//
//   (cd examples/playwright && npm install)
//   node examples/playwright/client.mjs alice         # opens a tab: 1 tab open
//   node examples/playwright/client.mjs alice         # same browser: 2 tabs open
//   node examples/playwright/client.mjs bob           # another browser: 1 tab open
//   node examples/playwright/client.mjs alice https://example.org/
//
// HERD_GATEWAY overrides the gateway's address (default ws://127.0.0.1:8080/).
import { chromium } from 'playwright-core';

const GATEWAY = process.env.HERD_GATEWAY ?? 'ws://127.0.0.1:8080/';
const HELLO = 'data:text/html,<title>hello from a herd browser</title>';

const [session = 'my-session', url = HELLO] = process.argv.slice(2);
const browser = await chromium.connect(GATEWAY, { headers: { 'X-Session-ID': session } });
const context = browser.contexts()[0] ?? (await browser.newContext());
const page = await context.newPage();
await page.goto(url);
const tabs = context.pages().length;
console.log(`${session} → '${await page.title()}': ${tabs} tab${tabs === 1 ? '' : 's'} open in this session's browser`);
await browser.close(); // disconnects; the browser and its tabs stay with the session
