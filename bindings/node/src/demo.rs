//! The demo worker, built into the addon: `node bin/herd.js demo-worker`
//! runs it, so tests and examples need nothing but this package.

use std::ffi::CStr;
use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Runs herd's demo worker (a small HTTP server with per-process state) on
/// this thread until the process is stopped, and returns its exit code.
/// `args` are the worker's flags (`--port N`, default `$PORT`).
///
/// It blocks the JavaScript thread on purpose: it is the whole life of a
/// worker process (`bin/herd.js demo-worker`), never call it in a process
/// that does anything else.
#[napi]
pub fn demo_worker_main(args: Vec<String>) -> i32 {
    herd_core::demo::run(args)
}

/// The command that starts a demo worker from this package:
/// `[process.execPath, '<package>/bin/herd.js', 'demo-worker']`, ready for
/// `new Pool({ command: demoWorkerCommand() })`.
#[napi]
pub fn demo_worker_command(env: &Env) -> Result<Vec<String>> {
    let mut command = self_command(env)?;
    command.push(herd_core::demo::WORKER_ARG.to_string());
    Ok(command)
}

/// The command that runs this package's `herd` command again:
/// `[process.execPath, '<package>/bin/herd.js']`.
pub(crate) fn self_command(env: &Env) -> Result<Vec<String>> {
    let node = exec_path(env)?;
    let script = package_dir()?.join("bin").join("herd.js");
    if !script.is_file() {
        return Err(Error::new(
            Status::GenericFailure,
            format!("the herd command script {} is missing next to the herd addon", script.display()),
        ));
    }
    let script = script.to_str().ok_or_else(|| {
        Error::new(Status::GenericFailure, format!("{} is not valid UTF-8", script.display()))
    })?;
    Ok(vec![node, script.to_string()])
}

fn exec_path(env: &Env) -> Result<String> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    process.get_named_property("execPath")
}

/// The directory of the loaded addon file (the package's root, where
/// `napi build` puts it).
fn package_dir() -> Result<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address, and fills `info` with pointers
    // into the loader's tables that stay valid while the addon is loaded.
    let found = unsafe { libc::dladdr(package_dir as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return Err(Error::new(Status::GenericFailure, "cannot find the path of the herd addon"));
    }
    // SAFETY: checked non-null; a NUL-terminated path owned by the loader.
    let file = unsafe { CStr::from_ptr(info.dli_fname) };
    let file = PathBuf::from(file.to_string_lossy().into_owned());
    let dir = file.parent().map(|d| d.to_path_buf()).unwrap_or_default();
    Ok(dir.canonicalize().unwrap_or(dir))
}
