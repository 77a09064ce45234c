//! hyper's header-read deadlines, kept on a coarse clock.
//!
//! hyper's server arms a timer for every request head it waits for, and
//! drops it as soon as the head is in: on a kept-alive connection, one
//! timer per request that almost never fires. With tokio's timer each is
//! a boxed timer-wheel entry, registered and cancelled under the time
//! driver's lock, and it changes the earliest deadline the thread sleeps
//! towards. Here a deadline is a slot in a small table under an
//! uncontended lock (one table per I/O thread), and a ticker task (on the
//! pool's runtime, so the I/O thread's own timer wheel stays empty) wakes
//! the connections whose deadline has passed, at most one tick late.
//!
//! The deadline is a limit on slow clients (ProxyConfig's
//! `header_read_timeout`), not a measurement: being up to a tick late
//! (half the timeout, at most a second) changes nothing for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use parking_lot::Mutex;

/// A [`Timer`] for hyper whose sleeps a [`CoarseTimer::tick`] task wakes.
#[derive(Clone, Default)]
pub(crate) struct CoarseTimer {
    table: Arc<Mutex<Table>>,
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
    /// The period of [`tick`](Self::tick) for deadlines `timeout` ahead:
    /// half of it, at most a second.
    pub(crate) fn period_for(timeout: Duration) -> Duration {
        (timeout / 2).clamp(Duration::from_millis(1), Duration::from_secs(1))
    }

    /// Wakes every sleep whose deadline has passed, every `period`,
    /// forever (on any runtime: a waker wakes its task wherever it runs).
    pub(crate) async fn tick(self, period: Duration) {
        let mut due = Vec::new();
        loop {
            tokio::time::sleep(period).await;
            self.fire(Instant::now(), &mut due);
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
        let timer = CoarseTimer::default();
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
    fn the_ticker_wakes_a_sleeping_task() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let timer = CoarseTimer::default();
            tokio::spawn(timer.clone().tick(Duration::from_millis(5)));
            let started = Instant::now();
            timer.sleep(Duration::from_millis(20)).await;
            assert!(started.elapsed() >= Duration::from_millis(20));
        });
    }
}
