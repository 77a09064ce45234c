#!/usr/bin/env node
// The `herd` command of the npm package.
//
//   herd demo-worker [--port N]   run the demo worker (what tests and examples use as a worker)
'use strict'

const herd = require('..')

function main(args) {
  const [command, ...rest] = args
  if (command === 'demo-worker') {
    // Blocks this process for the worker's whole life.
    return herd.demoWorkerMain(rest)
  }
  process.stderr.write(
    'usage: herd demo-worker [--port N]\n' +
      (command === undefined || command === '-h' || command === '--help' ? '' : `herd: unknown command ${JSON.stringify(command)}\n`),
  )
  return command === '-h' || command === '--help' ? 0 : 2
}

process.exitCode = main(process.argv.slice(2))
