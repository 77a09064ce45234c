#!/usr/bin/env node
// The `herd` command of the npm package: the same command line as the Rust
// `herd` binary (`npx herd serve --help`).
//
//   herd serve [options] -- PROGRAM ARGS...   the gateway in front of PROGRAM's workers
//   herd serve --demo                          the gateway in front of herd's demo worker
//   herd demo-worker [--port N]                the demo worker (what demoWorkerCommand() runs)
'use strict'

const herd = require('..')

const args = process.argv.slice(2)
if (args[0] === 'demo-worker') {
  // A worker process: the demo worker blocks this thread for its whole life.
  process.exitCode = herd.demoWorkerMain(args.slice(1))
} else {
  // herd runs on a thread of its own and installs no signal handler: Node
  // keeps SIGINT and SIGTERM, and each one asks herd to stop (the first
  // gracefully, a second one at once), as they do with the Rust binary.
  const command = herd.runCommand(args)
  const stop = (signal) => command.stop(signal)
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  command.wait().then((code) => {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
    process.exitCode = code
  })
}
