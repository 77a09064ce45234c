// Connect to herd's Playwright gateway from Node: the same X-Session-ID
// always reaches the same browser.
//
//   (cd examples/playwright && npm install)
//   node examples/playwright/client.mjs my-session https://example.org/
import { chromium } from 'playwright-core';

const [session = 'my-session', url = 'http://127.0.0.1:8080/'] = process.argv.slice(2);
const browser = await chromium.connect('ws://127.0.0.1:8080/', { headers: { 'X-Session-ID': session } });
const context = browser.contexts()[0] ?? (await browser.newContext());
const page = await context.newPage();
await page.goto(url);
console.log(session, '→', await page.title());
await browser.close(); // disconnects; the browser stays with the session
