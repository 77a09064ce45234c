//! # herd-cli
//!
//! The `herd` command as a library, so the Python and Node packages can
//! ship the very same command:
//!
//! * `herd serve [options] -- PROGRAM ARGS...` runs the gateway: an HTTP
//!   and WebSocket reverse proxy that sends each session to its own worker
//!   process (see `herd serve --help`).
//! * `herd serve --demo` runs it in front of the embedded demo worker.
//! * `herd demo-worker [flags]` runs the demo worker.
//!
//! ```no_run
//! // The whole `main` of a program that is `herd`:
//! let args: Vec<String> = std::env::args().skip(1).collect();
//! let exe = std::env::current_exe().unwrap().to_string_lossy().into_owned();
//! std::process::exit(herd_cli::run(args, vec![exe]));
//! ```
//!
//! A program that embeds the command in a runtime which owns the
//! process's signals (Node, Python) runs it with [`run_until_stopped`]
//! instead, and turns its own SIGINT/SIGTERM handling into
//! [`Stopper::stop`] calls.

mod cli;
mod logging;
mod serve;
mod settings;
mod stop;

use clap::{CommandFactory, FromArgMatches};
use herd_core::SessionSource;

use crate::cli::{Cli, Command, ServeArgs};
use crate::stop::StopSource;
pub use crate::stop::{StopRequests, Stopper, stop_channel};

/// Exit code for bad flags or a bad config file.
pub const EXIT_BAD_CONFIG: i32 = 2;

/// Runs the `herd` command line with `args` (argv without the program name).
///
/// `self_command` is the argv prefix that starts this same program again
/// (Rust binary: `[current_exe]`; Python: `[sys.executable, "-m", "herd"]`;
/// Node: `[node, bin/herd.js]`); `herd serve --demo` starts workers as
/// `self_command + ["demo-worker", ...]`.
///
/// Returns the process exit code: 0 when done (including after SIGINT or
/// SIGTERM), 2 for bad flags or config (the message names the field), 1
/// when serving failed (an address in use, workers that cannot start).
///
/// `herd serve` installs handlers for SIGINT and SIGTERM; a program that
/// handles those signals itself uses [`run_until_stopped`].
pub fn run(args: Vec<String>, self_command: Vec<String>) -> i32 {
    run_with(args, self_command, StopSource::Signals)
}

/// [`run`] for a program that embeds the `herd` command and owns the
/// process's signals (the Node and Python packages): herd installs no
/// signal handler, and `herd serve` stops when the host calls
/// [`Stopper::stop`] on the other end of `stops` (first call: graceful,
/// second: at once), or when every [`Stopper`] is dropped.
///
/// It blocks the calling thread until the command ends; run it on a
/// thread of its own and keep the [`Stopper`].
///
/// ```no_run
/// let (stopper, stops) = herd_cli::stop_channel();
/// let args = vec!["serve".to_string(), "--demo".to_string()];
/// let command = std::thread::spawn(move || herd_cli::run_until_stopped(args, vec!["herd".into()], stops));
/// // ... when the host's SIGTERM handler runs:
/// stopper.stop("SIGTERM");
/// assert_eq!(command.join().unwrap(), 0);
/// ```
pub fn run_until_stopped(args: Vec<String>, self_command: Vec<String>, stops: StopRequests) -> i32 {
    run_with(args, self_command, StopSource::Host(stops))
}

fn run_with(args: Vec<String>, self_command: Vec<String>, stops: StopSource) -> i32 {
    let argv = std::iter::once("herd".to_string()).chain(args);
    let matches = match Cli::command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        Command::DemoWorker { args } => herd_core::demo::run(args),
        Command::Serve(mut serve) => {
            if let Some((_, sub)) = matches.subcommand() {
                serve.session_order = session_order(sub);
            }
            serve_command(*serve, &self_command, stops)
        }
    }
}

fn serve_command(args: ServeArgs, self_command: &[String], stops: StopSource) -> i32 {
    let file = match &args.config {
        Some(path) => match settings::read_file(path) {
            Ok(file) => file,
            Err(bad) => return bad_config(&bad.0),
        },
        None => Default::default(),
    };
    match settings::resolve(args, file, self_command) {
        Ok(settings) => serve::run(settings, stops),
        Err(bad) => bad_config(&bad.0),
    }
}

fn bad_config(message: &str) -> i32 {
    eprintln!("herd: {message}");
    EXIT_BAD_CONFIG
}

/// The `--session-*` flags as sources, each with its command-line position.
fn session_order(matches: &clap::ArgMatches) -> Vec<(usize, SessionSource)> {
    let mut order = Vec::new();
    type Make = fn(String) -> SessionSource;
    let flags: [(&str, Make); 4] = [
        ("session_header", SessionSource::Header),
        ("session_cookie", SessionSource::Cookie),
        ("session_query", SessionSource::Query),
        ("session_path_prefix", SessionSource::PathPrefix),
    ];
    for (id, make) in flags {
        let (Some(indices), Some(values)) = (matches.indices_of(id), matches.get_many::<String>(id)) else {
            continue;
        };
        for (index, value) in indices.zip(values) {
            order.push((index, make(value.clone())));
        }
    }
    order
}
