// The committed index.d.ts and index.js are what `npm run build` generates
// from the Rust sources (the build rewrites them; git must see no change).
'use strict'

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const PACKAGE = path.resolve(__dirname, '..')

test('index.d.ts and index.js match the last build (commit them when they change)', (t) => {
  const inGit = spawnSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: PACKAGE, encoding: 'utf8' })
  if (inGit.status !== 0) {
    t.skip('not a git checkout: nothing to compare against')
    return
  }
  const diff = spawnSync('git', ['diff', '--stat', '--exit-code', '--', 'index.d.ts', 'index.js'], {
    cwd: PACKAGE,
    encoding: 'utf8',
  })
  assert.equal(diff.status, 0, `the generated bindings differ from the committed ones:\n${diff.stdout}${diff.stderr}`)
})

test('index.d.ts declares every export of the addon', () => {
  const dts = require('node:fs').readFileSync(path.join(PACKAGE, 'index.d.ts'), 'utf8')
  const herd = require('herd')
  for (const name of Object.keys(herd)) {
    assert.match(dts, new RegExp(`export declare (class|function|const|enum) ${name}\\b`), name)
  }
})
