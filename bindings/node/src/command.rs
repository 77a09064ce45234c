//! The `herd` command line inside Node: what `npx herd serve ...` runs.
//!
//! The command (herd-cli, the same code as the Rust `herd` binary) runs on
//! a thread of its own, so Node's event loop stays free. Node keeps its
//! signals: `bin/herd.js` turns SIGINT and SIGTERM into [`HerdCommand::stop`]
//! calls (herd-cli installs no signal handler here; a herd handler chained
//! to Node's re-raised the signal forever, see herd-cli's `stop` module).

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;

use crate::keep_alive::KeepAlive;
use crate::settle::Settle;

/// Exit code of a command that panicked (as a Rust program's).
const PANICKED: i32 = 101;

/// The `herd` command line, running (from `runCommand`).
#[napi]
pub struct HerdCommand {
    shared: Arc<Shared>,
}

struct Shared {
    stopper: herd_cli::Stopper,
    outcome: Mutex<Outcome>,
}

enum Outcome {
    /// Keeps Node alive until the command ends; promises of `wait()`.
    Running {
        waiters: Vec<Settle<i32>>,
        _keep_alive: KeepAlive,
    },
    Exited(i32),
}

/// Runs the `herd` command line with `args` (argv without the program
/// name: `['serve', '--demo']`), as `npx herd ...` does, on a thread of its
/// own; `herd serve --demo` starts its workers as
/// `node <package>/bin/herd.js demo-worker`.
///
/// Node stays alive until the command ends. herd handles no signal here:
/// call `stop()` from your own `process.on('SIGTERM')` handler.
#[napi]
pub fn run_command(env: &Env, args: Vec<String>) -> Result<HerdCommand> {
    let self_command = crate::demo::self_command(env)?;
    let (stopper, stops) = herd_cli::stop_channel();
    let outcome = Outcome::Running { waiters: Vec::new(), _keep_alive: KeepAlive::new(env, ())? };
    let shared = Arc::new(Shared { stopper, outcome: Mutex::new(outcome) });
    let finished = shared.clone();
    std::thread::Builder::new()
        .name("herd-command".into())
        .spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| herd_cli::run_until_stopped(args, self_command, stops));
            // A panic was already printed by the panic hook; the command failed.
            let code = std::panic::catch_unwind(run).unwrap_or(PANICKED);
            let before = std::mem::replace(&mut *finished.outcome.lock(), Outcome::Exited(code));
            if let Outcome::Running { waiters, .. } = before {
                for waiter in waiters {
                    waiter.finish(Ok(code));
                }
            }
        })
        .map_err(|e| Error::new(Status::GenericFailure, format!("cannot start a thread for herd: {e}")))?;
    Ok(HerdCommand { shared })
}

#[napi]
impl HerdCommand {
    /// Asks the command to stop, as SIGTERM stops the `herd` binary:
    /// `herd serve` stops accepting, lets requests in flight finish (up to
    /// `--shutdown-grace`), then stops every worker. A second call skips the
    /// wait for requests. `why` is logged (`'SIGTERM'` logs `SIGTERM:
    /// stopping`). Does nothing once the command has ended.
    #[napi]
    pub fn stop(&self, why: Option<String>) {
        self.shared.stopper.stop(why.unwrap_or_else(|| "stop requested".to_string()));
    }

    /// Resolves with the command's exit code when it ends: 0 after a stop,
    /// 2 for bad flags or config, 1 when it cannot serve.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn wait<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let mut outcome = self.shared.outcome.lock();
        match &mut *outcome {
            Outcome::Running { waiters, .. } => {
                let (settle, promise) = Settle::new(env)?;
                waiters.push(settle);
                Ok(promise)
            }
            Outcome::Exited(code) => {
                let promise = PromiseRaw::resolve(env, *code)?;
                Ok(Object::from_raw(env.raw(), promise.raw()))
            }
        }
    }
}
