//! Keeping Node running while herd serves, the way a listening
//! `http.Server` does.
//!
//! Node exits when its event loop has nothing left to wait for. A serving
//! proxy or a running `herd` command waits on herd's own threads, which
//! Node does not see; a [`KeepAlive`] is a referenced threadsafe function
//! that is never called, which Node counts as pending work until it is
//! dropped (from any thread).

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;

/// Keeps Node's event loop alive until dropped.
pub(crate) struct KeepAlive {
    _pending: ThreadsafeFunction<(), (), (), Status, false>,
}

impl KeepAlive {
    /// Keeps Node alive, and `owned` with it: `owned` belongs to the
    /// JavaScript function behind the keep-alive, and is dropped (on the
    /// JavaScript thread) when that function is garbage-collected, some
    /// time after the keep-alive is dropped. A serving proxy owns itself
    /// this way, so it keeps serving after its `Proxy` object is collected.
    pub(crate) fn new<T: 'static>(env: &Env, owned: T) -> Result<Self> {
        let function = env.create_function_from_closure::<(), (), _>("herdServing", move |_| {
            let _ = &owned;
            Ok(())
        })?;
        Ok(KeepAlive { _pending: function.build_threadsafe_function::<()>().build()? })
    }
}
