//! Timers for the I/O threads, none of them on the threads' own runtime.
//!
//! The I/O threads build their runtimes without tokio's time driver: a
//! thread with a timer driver pays for it at every park (the wheel is
//! locked, the clock read, expired entries looked for), which at one
//! connection is twice per request. Their timers run elsewhere:
//!
//! * [`CoarseTimer`]: hyper's header-read deadlines. hyper's server arms
//!   one for every request head it waits for and drops it as soon as the
//!   head is in: on a kept-alive connection, one timer per request that
//!   almost never fires. Here a deadline is a slot in a small table under
//!   an uncontended lock (one table per I/O thread), and a ticker task on
//!   the pool's runtime wakes the connections whose deadline has passed.
//!   The clock hyper reads to set a deadline is the ticker's too, so
//!   arming one reads no clock at all.
//! * [`Timers`]: the few precise waits (an upstream connect timeout, the
//!   accept back-off, a tunnel's close deadline). They are rare, so each
//!   is a task on the pool's runtime that the waiting future owns; a
//!   timeout spawns it only for a wait that outlasts one turn of the
//!   event loop (a connect to a worker on loopback does not).
//!
//! A header-read deadline is a limit on slow clients (ProxyConfig's
//! `header_read_timeout`), not a measurement: it passes between the
//! timeout and the timeout plus three ticks (a tick is a quarter of the
//! timeout, at most a second), which changes nothing for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use parking_lot::Mutex;

/// A [`Timer`] for hyper whose sleeps a [`CoarseTimer::tick`] task wakes,
/// and whose clock that task keeps.
#[derive(Clone)]
pub(crate) struct CoarseTimer {
    table: Arc<Mutex<Table>>,
    clock: Arc<CoarseClock>,
    period: Duration,
}

/// The ticker's clock: the last tick plus two periods, so that it is
/// never behind the real time while the next tick is at most a period
/// late. One atomic load to read.
struct CoarseClock {
    epoch: Instant,
    /// Nanoseconds after `epoch`.
    ahead: AtomicU64,
}

impl CoarseClock {
    fn new(lead: Duration) -> CoarseClock {
        let clock = CoarseClock { epoch: Instant::now(), ahead: AtomicU64::new(0) };
        clock.set(clock.epoch + lead);
        clock
    }

    fn now(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.ahead.load(Ordering::Relaxed))
    }

    fn set(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.epoch).as_nanos();
        self.ahead.fetch_max(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    /// Indices of `Slot::Free` entries.
    free: Vec<usize>,
}

enum Slot {
    Free,
    Waiting {
        deadline: Instant,
        waker: Waker,
    },
    /// The deadline passed; the sleep has not seen it yet.
    Fired,
}

impl Table {
    fn insert(&mut self, slot: Slot) -> usize {
        match self.free.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, index: usize) {
        self.slots[index] = Slot::Free;
        self.free.push(index);
    }
}

impl CoarseTimer {
    /// A timer for deadlines `timeout` ahead. Its ticker
    /// ([`tick`](Self::tick)) runs every quarter of `timeout`, at most
    /// every second.
    pub(crate) fn new(timeout: Duration) -> CoarseTimer {
        let period = (timeout / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
        CoarseTimer { table: Arc::default(), clock: Arc::new(CoarseClock::new(2 * period)), period }
    }

    /// Every period, forever: sets the clock two periods ahead of the
    /// real time and wakes every sleep whose deadline has passed (on any
    /// runtime: a waker wakes its task wherever it runs).
    ///
    /// # Bounds
    /// While each tick comes at most a period late, the clock is never
    /// behind the real time and at most two periods ahead. A deadline set
    /// at real time `t` is then between `t + timeout` and two periods
    /// more, and is seen at the first tick after it: it fires between
    /// `timeout` and `timeout + 3 * period` after `t`. A ticker stalled
    /// for longer (the pool's runtime starved) makes deadlines set
    /// meanwhile early by the excess.
    pub(crate) async fn tick(self) {
        let mut due = Vec::new();
        let lead = 2 * self.period;
        self.clock.set(Instant::now() + lead);
        loop {
            tokio::time::sleep(self.period).await;
            let now = Instant::now();
            self.clock.set(now + lead);
            self.fire(now, &mut due);
            due.drain(..).for_each(Waker::wake);
        }
    }

    /// Marks the sleeps due at `now` as fired, and hands out their wakers.
    fn fire(&self, now: Instant, due: &mut Vec<Waker>) {
        let mut table = self.table.lock();
        for slot in &mut table.slots {
            if matches!(slot, Slot::Waiting { deadline, .. } if *deadline <= now)
                && let Slot::Waiting { waker, .. } = std::mem::replace(slot, Slot::Fired)
            {
                due.push(waker);
            }
        }
    }
}

impl Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(CoarseSleep { deadline, table: self.table.clone(), slot: None })
    }

    /// The ticker's clock, not the system's: hyper reads it to set each
    /// request's header-read deadline.
    fn now(&self) -> Instant {
        self.clock.now()
    }
}

/// One deadline. It takes a slot on its first poll and gives it back when
/// it completes or is dropped.
struct CoarseSleep {
    deadline: Instant,
    table: Arc<Mutex<Table>>,
    slot: Option<usize>,
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut table = this.table.lock();
        let Some(index) = this.slot else {
            // No clock read here: a deadline already past fires at the
            // next tick.
            let waiting = Slot::Waiting { deadline: this.deadline, waker: cx.waker().clone() };
            this.slot = Some(table.insert(waiting));
            return Poll::Pending;
        };
        match &mut table.slots[index] {
            Slot::Waiting { waker, .. } => {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
                Poll::Pending
            }
            Slot::Fired => {
                table.remove(index);
                this.slot = None;
                Poll::Ready(())
            }
            // Only this sleep frees its slot: not reached.
            Slot::Free => {
                this.slot = None;
                Poll::Ready(())
            }
        }
    }
}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        if let Some(index) = self.slot {
            self.table.lock().remove(index);
        }
    }
}

impl Sleep for CoarseSleep {}

/// Precise waits for code on the I/O threads, run on the pool's runtime.
#[derive(Clone)]
pub(crate) struct Timers {
    runtime: tokio::runtime::Handle,
    /// Sleeps spawned so far (what the tests look at).
    spawned: Arc<AtomicU64>,
}

/// A wait that [`Timers::timeout`] gave up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

impl Timers {
    /// Timers on `runtime`, which must have tokio's time driver.
    pub(crate) fn new(runtime: tokio::runtime::Handle) -> Timers {
        Timers { runtime, spawned: Arc::default() }
    }

    /// Resolves once `duration` has passed. Costs a task spawn on the
    /// pool's runtime: for rare waits, not for every request.
    pub(crate) fn sleep(&self, duration: Duration) -> PoolSleep {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        // The sleep is made inside the task: made here, it would look for
        // the calling thread's timer, which an I/O thread does not have.
        PoolSleep(self.runtime.spawn(async move { tokio::time::sleep(duration).await }))
    }

    /// `future`'s output, or [`Elapsed`] if it takes longer than `duration`.
    ///
    /// The sleep is spawned only if `future` is still pending after one
    /// turn of the event loop (`yield_now` wakes this task after the I/O
    /// driver has been polled): a connect to a worker on loopback has its
    /// readiness event by then, so it costs no task on the pool's runtime
    /// — for a worker that closes every connection, that is per request.
    pub(crate) async fn timeout<F: Future>(
        &self,
        duration: Duration,
        future: F,
    ) -> Result<F::Output, Elapsed> {
        let started = Instant::now();
        let mut future = std::pin::pin!(future);
        for turn in 0..2 {
            if turn == 1 {
                tokio::task::yield_now().await;
            }
            let polled = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
            if let Poll::Ready(out) = polled {
                return Ok(out);
            }
        }
        let sleep = self.sleep(duration.saturating_sub(started.elapsed()));
        tokio::select! {
            biased;
            out = future => Ok(out),
            _ = sleep => Err(Elapsed),
        }
    }
}

/// A sleep running on the pool's runtime; dropping it cancels it.
pub(crate) struct PoolSleep(tokio::task::JoinHandle<()>);

impl Future for PoolSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // An error means the pool's runtime is shutting down: the wait is
        // over either way.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Drop for PoolSleep {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_sleep_fires_once_its_deadline_passed_and_frees_its_slot() {
        let timer = CoarseTimer::new(Duration::from_secs(60));
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let start = Instant::now();
        let mut early = timer.sleep_until(start + Duration::from_secs(1));
        let mut late = timer.sleep_until(start + Duration::from_secs(60));
        assert!(early.as_mut().poll(&mut cx).is_pending());
        assert!(late.as_mut().poll(&mut cx).is_pending());

        let mut due = Vec::new();
        timer.fire(start + Duration::from_millis(500), &mut due);
        assert!(due.is_empty(), "nothing is due before its deadline");
        timer.fire(start + Duration::from_secs(2), &mut due);
        assert_eq!(due.len(), 1, "only the early sleep is due");
        due.drain(..).for_each(Waker::wake);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(early.as_mut().poll(&mut cx).is_ready());
        assert!(late.as_mut().poll(&mut cx).is_pending());

        // The early sleep's slot is reused; dropping the late one frees its own.
        let mut next = timer.sleep_until(start + Duration::from_secs(5));
        assert!(next.as_mut().poll(&mut cx).is_pending());
        assert_eq!(timer.table.lock().slots.len(), 2);
        drop(late);
        drop(next);
        drop(early);
        let table = timer.table.lock();
        assert_eq!(table.free.len(), 2);
        assert!(table.slots.iter().all(|s| matches!(s, Slot::Free)));
    }

    #[test]
    fn the_clock_hyper_reads_is_never_behind_the_real_one() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            // Ticks every 50 ms; the clock leads by two of them.
            let timeout = Duration::from_millis(200);
            let timer = CoarseTimer::new(timeout);
            let check = |when: &str| {
                let now = Instant::now();
                let coarse = timer.now();
                assert!(coarse >= now, "{when}: the ticker's clock is behind by {:?}", now - coarse);
                assert!(coarse <= now + Duration::from_millis(100), "{when}: more than two ticks ahead");
            };
            check("before the first tick");
            tokio::spawn(timer.clone().tick());
            for _ in 0..8 {
                tokio::time::sleep(Duration::from_millis(17)).await;
                check("between ticks");
            }
            // A deadline set from it passes no earlier than the timeout.
            let started = Instant::now();
            timer.sleep_until(timer.now() + timeout).await;
            assert!(started.elapsed() >= timeout);
        });
    }

    /// The I/O threads' runtimes have no timer: `Timers` must not need one.
    fn io_thread_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap()
    }

    fn pool_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
    }

    #[test]
    fn timers_sleep_and_time_out_on_a_runtime_without_a_timer() {
        let pool = pool_runtime();
        let timers = Timers::new(pool.handle().clone());
        io_thread_runtime().block_on(async {
            let started = Instant::now();
            timers.sleep(Duration::from_millis(20)).await;
            assert!(started.elapsed() >= Duration::from_millis(20));

            let late = timers.timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
            assert_eq!(late, Err(Elapsed));
            let quick = timers.timeout(Duration::from_secs(60), async { 7 }).await;
            assert_eq!(quick, Ok(7));
        });
    }

    #[test]
    fn a_connect_on_loopback_is_timed_without_a_task_on_the_pool_runtime() {
        let pool = pool_runtime();
        let timers = Timers::new(pool.handle().clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        io_thread_runtime().block_on(async {
            let connect = tokio::net::TcpStream::connect(address);
            let connected = timers.timeout(Duration::from_secs(5), connect).await;
            assert!(matches!(connected, Ok(Ok(_))), "{connected:?}");
            assert_eq!(timers.spawned.load(Ordering::Relaxed), 0, "a sleep was spawned for it");

            // A wait that outlasts a turn of the event loop gets its sleep.
            let late = timers.timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
            assert_eq!(late, Err(Elapsed));
            assert_eq!(timers.spawned.load(Ordering::Relaxed), 1);
        });
    }

    #[test]
    fn dropping_a_pool_sleep_cancels_its_task() {
        let pool = pool_runtime();
        let timers = Timers::new(pool.handle().clone());
        let sleep = timers.sleep(Duration::from_secs(3600));
        let metrics = pool.handle().metrics();
        assert_eq!(metrics.num_alive_tasks(), 1);
        drop(sleep);
        let deadline = Instant::now() + Duration::from_secs(10);
        while metrics.num_alive_tasks() != 0 {
            assert!(Instant::now() < deadline, "the sleep's task outlived its future");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_ticker_wakes_a_sleeping_task() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let timer = CoarseTimer::new(Duration::from_millis(20));
            tokio::spawn(timer.clone().tick());
            let started = Instant::now();
            timer.sleep(Duration::from_millis(20)).await;
            assert!(started.elapsed() >= Duration::from_millis(20));
        });
    }
}
