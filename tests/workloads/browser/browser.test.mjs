// Browser isolation through herd's gateway with Node's playwright-core client.
// Run: node --test tests/workloads/browser/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// playwright-core is installed with the example (examples/playwright).
const require = createRequire(path.join(root, 'examples/playwright/package.json'));
const { chromium } = require('playwright-core');
const herd = path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, 'target'), 'debug', 'herd');

function chromiumCount() {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return readFileSync(`/proc/${p}/comm`, 'utf8').startsWith('chromium'); } catch { return false; }
  }).length;
}

function startGateway() {
  const child = spawn(herd, ['serve', '--listen', '127.0.0.1:0', '--no-reuse', '--min', '0', '--max', '3',
    '--health-path', '/', '--start-timeout', '90s', '--pids-limit', 'unlimited',
    '--', 'node', path.join(root, 'examples/playwright/browser_worker.mjs')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    const look = (chunk) => {
      seen += chunk;
      const m = seen.match(/gateway listening on http:\/\/(\S+)/);
      if (m) resolve({ child, url: `ws://${m[1]}/` });
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.on('exit', (code) => reject(new Error(`herd exited with ${code}: ${seen}`)));
  });
}

async function visit(url, session, page, store) {
  const browser = await chromium.connect(url, { headers: { 'X-Session-ID': session } });
  try {
    const context = browser.contexts()[0] ?? (await browser.newContext());
    const tab = context.pages()[0] ?? (await context.newPage());
    await tab.goto(page);
    if (store) await tab.evaluate((v) => { localStorage.setItem('who', v); document.cookie = `who=${v}`; }, store);
    return await tab.evaluate(() => [localStorage.getItem('who'), document.cookie]);
  } finally {
    await browser.close();
  }
}

test('each session keeps its own browser state, and shutdown leaves no Chromium', async () => {
  const server = createServer((_, res) => res.end('<title>herd</title>')).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const page = `http://127.0.0.1:${server.address().port}/`;
  const { child, url } = await startGateway();
  try {
    assert.deepEqual(await visit(url, 'nina', page, 'nina'), ['nina', 'who=nina']);
    assert.deepEqual(await visit(url, 'omar', page, 'omar'), ['omar', 'who=omar']);
    assert.deepEqual(await visit(url, 'nina', page), ['nina', 'who=nina']);
    assert.deepEqual(await visit(url, 'omar', page), ['omar', 'who=omar']);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    server.close();
  }
  assert.equal(chromiumCount(), 0);
});
