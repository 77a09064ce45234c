//! Promises settled from the pool's runtime, and `AbortSignal` wiring.
//!
//! A [`Settle`] is the far end of a JavaScript promise: any thread may
//! settle it with a value, a herd error or an abort, and the conversion to
//! JavaScript (the value, or an `Error` with its `code`) happens on the
//! JavaScript thread. A pending promise keeps Node's event loop alive, as a
//! pending timer does, and stops doing so once it is settled.
//!
//! # Concurrency
//!
//! An acquire that waits can end two ways at once: the pool hands over a
//! lease on a runtime thread while the caller's `AbortSignal` fires on the
//! JavaScript thread. Both sides share one `Mutex<Option<Settle>>` and
//! whoever takes the `Settle` out settles the promise; the loser finds
//! `None` and drops what it had (a lease that arrives after the abort is
//! released at once, so the session's binding is kept and no lease leaks).

use std::sync::Arc;

use herd_core::Error as HerdError;
use napi::JsDeferred;
use napi::bindgen_prelude::*;
use parking_lot::Mutex;

use crate::errors;

/// Why a call did not produce its value.
pub(crate) enum Failure {
    /// herd refused or failed.
    Herd(HerdError),
    /// The caller's `AbortSignal` fired; the message says what was aborted.
    Aborted(String),
}

impl From<HerdError> for Failure {
    fn from(error: HerdError) -> Self {
        Failure::Herd(error)
    }
}

type Resolver<T> = Box<dyn FnOnce(Env) -> Result<T>>;

/// `EventTarget.prototype.addEventListener` / `removeEventListener`, called
/// with `("abort", listener)`.
type ListenerMethod<'env> = Function<'env, FnArgs<(&'static str, Function<'env, (), ()>)>, Unknown<'env>>;

/// The settling end of a JavaScript promise.
///
/// Dropped unsettled (the pool's runtime shut down under a waiting call), it
/// rejects the promise with `HERD_POOL_CLOSED`, so no promise stays pending
/// forever and no pending promise keeps Node alive.
pub(crate) struct Settle<T: ToNapiValue + Send + 'static> {
    deferred: Option<JsDeferred<T, Resolver<T>>>,
    abort: Option<AbortWiring>,
}

impl<T: ToNapiValue + Send + 'static> Settle<T> {
    /// A new pending promise and its settling end.
    pub(crate) fn new(env: &Env) -> Result<(Self, Object<'_>)> {
        let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
        Ok((Settle { deferred: Some(deferred), abort: None }, promise))
    }

    /// Removes the abort listener when the promise settles.
    pub(crate) fn set_abort(&mut self, wiring: AbortWiring) {
        self.abort = Some(wiring);
    }

    /// Settles the promise (from any thread).
    pub(crate) fn finish(mut self, outcome: std::result::Result<T, Failure>) {
        self.settle(outcome);
    }

    fn settle(&mut self, outcome: std::result::Result<T, Failure>) {
        let Some(deferred) = self.deferred.take() else { return };
        let abort = self.abort.take();
        deferred.resolve(Box::new(move |env: Env| {
            let reason = abort.and_then(|wiring| wiring.unwire(&env));
            match outcome {
                Ok(value) => Ok(value),
                Err(Failure::Herd(error)) => Err(errors::to_js(&env, &error)),
                Err(Failure::Aborted(message)) => Err(errors::aborted(&env, &message, reason)),
            }
        }));
    }
}

impl<T: ToNapiValue + Send + 'static> Drop for Settle<T> {
    fn drop(&mut self) {
        if self.deferred.is_some() {
            self.settle(Err(Failure::Herd(errors::closed())));
        }
    }
}

/// A settle shared between a task and an abort listener: first to take it
/// settles the promise.
pub(crate) type SharedSettle<T> = Arc<Mutex<Option<Settle<T>>>>;

/// An `abort` listener added to an `AbortSignal`, removed again when the
/// promise settles (a long-lived signal passed to many calls must not
/// collect one listener per call).
pub(crate) struct AbortWiring {
    signal: ObjectRef<false>,
    listener: FunctionRef<(), ()>,
}

impl AbortWiring {
    /// Calls `on_abort` (on the JavaScript thread) when `signal` fires.
    pub(crate) fn listen(env: &Env, signal: &Object<'_>, on_abort: impl Fn() + 'static) -> Result<Self> {
        let listener = env.create_function_from_closure::<(), (), _>("onHerdAbort", move |_| {
            on_abort();
            Ok(())
        })?;
        let add: ListenerMethod<'_> = signal.get_named_property("addEventListener")?;
        add.apply(signal, FnArgs::from(("abort", listener)))?;
        Ok(AbortWiring { signal: signal.create_ref::<false>()?, listener: listener.create_ref()? })
    }

    /// Removes the listener and returns the signal's `reason` (on the
    /// JavaScript thread).
    fn unwire<'env>(self, env: &'env Env) -> Option<Unknown<'env>> {
        let AbortWiring { signal, listener } = self;
        let reason = signal.get_value(env).ok().and_then(|signal| {
            if let (Ok(remove), Ok(listener)) = (
                signal.get_named_property::<ListenerMethod<'_>>("removeEventListener"),
                listener.borrow_back(env),
            ) {
                let _ = remove.apply(signal, FnArgs::from(("abort", listener)));
            }
            signal.get_named_property::<Unknown>("reason").ok()
        });
        let _ = signal.unref(env);
        reason
    }
}

/// Whether `signal.aborted` is already true.
pub(crate) fn is_aborted(signal: &Object<'_>) -> Result<bool> {
    Ok(signal.get_named_property::<Option<bool>>("aborted")?.unwrap_or(false))
}

/// `signal.reason`, for a signal that already fired.
pub(crate) fn reason<'env>(signal: &Object<'env>) -> Option<Unknown<'env>> {
    signal.get_named_property::<Unknown>("reason").ok()
}
