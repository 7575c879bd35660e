//! Delivering events: listeners called in place, and broadcast subscriptions as a `Stream`.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use futures_core::Stream;
use sched_core::event::{Event, EventKind, EventMask};
use tokio::sync::broadcast;
use tokio_util::sync::ReusableBoxFuture;

type ListenerFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// Identifies a listener, to remove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

struct Listener {
    id: ListenerId,
    mask: EventMask,
    f: ListenerFn,
}

pub(crate) struct EventBus {
    // Copy-on-write: emitting clones the `Arc`, so listeners run without a lock held and
    // may add or remove listeners themselves.
    listeners: RwLock<Arc<Vec<Listener>>>,
    /// The union of the listeners' masks (bits), kept with the list under its write lock,
    /// so that a hot path can skip building an event nobody listens to.
    listened: AtomicU32,
    next_id: AtomicU64,
    tx: broadcast::Sender<Event>,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

impl EventBus {
    pub(crate) fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity.max(1));
        EventBus {
            listeners: RwLock::new(Arc::new(Vec::new())),
            listened: AtomicU32::new(0),
            next_id: AtomicU64::new(1),
            tx,
        }
    }

    pub(crate) fn add_listener(&self, mask: EventMask, f: ListenerFn) -> ListenerId {
        let id = ListenerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let mut guard = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<Listener> = guard
            .iter()
            .map(|l| Listener {
                id: l.id,
                mask: l.mask,
                f: l.f.clone(),
            })
            .collect();
        list.push(Listener { id, mask, f });
        self.set_listened(&list);
        *guard = Arc::new(list);
        id
    }

    fn set_listened(&self, list: &[Listener]) {
        let bits = list.iter().fold(0, |bits, l| bits | l.mask.bits());
        self.listened.store(bits, Ordering::SeqCst);
    }

    /// Whether an event of `kind` emitted now could reach anyone: a listener whose mask
    /// has it, or any subscription (they filter by their own mask). When false, emitting
    /// it does nothing, so a hot path may skip building it.
    pub(crate) fn wants(&self, kind: EventKind) -> bool {
        EventMask::from_bits(self.listened.load(Ordering::SeqCst)).contains(kind)
            || self.tx.receiver_count() > 0
    }

    pub(crate) fn remove_listener(&self, id: ListenerId) -> bool {
        let mut guard = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !guard.iter().any(|l| l.id == id) {
            return false;
        }
        let list: Vec<Listener> = guard
            .iter()
            .filter(|l| l.id != id)
            .map(|l| Listener {
                id: l.id,
                mask: l.mask,
                f: l.f.clone(),
            })
            .collect();
        self.set_listened(&list);
        *guard = Arc::new(list);
        true
    }

    pub(crate) fn subscribe(&self, mask: EventMask) -> EventStream {
        EventStream::new(self.tx.subscribe(), mask)
    }

    pub(crate) fn emit(&self, event: Event) {
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let kind = event.kind();
        for l in listeners.iter().filter(|l| l.mask.contains(kind)) {
            if catch_unwind(AssertUnwindSafe(|| (l.f)(&event))).is_err() {
                tracing::error!(event = %kind, "an event listener panicked");
            }
        }
        if self.tx.receiver_count() > 0 {
            // An error only means every subscriber went away meanwhile.
            let _ = self.tx.send(event);
        }
    }
}

/// A subscriber fell behind and `0` events were dropped for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event subscriber lagged behind, {0} events skipped")]
pub struct Lagged(pub u64);

/// The events of a scheduler as an async [`Stream`], from
/// [`Scheduler::subscribe`](crate::Scheduler::subscribe).
///
/// Subscriptions share one bounded broadcast buffer (the builder's `event_capacity`,
/// 1024 events by default). A subscriber that falls more than that behind loses the oldest
/// events: the stream then yields `Err(Lagged(n))` once, with the number skipped, and goes on
/// with the oldest event still buffered. The scheduler never waits for subscribers. The
/// stream ends after the scheduler is dropped. Listeners added with
/// [`Scheduler::add_listener`](crate::Scheduler::add_listener) never lag: they are called in
/// place.
pub struct EventStream {
    mask: EventMask,
    fut: ReusableBoxFuture<'static, Recv>,
}

type Recv = (
    Result<Event, broadcast::error::RecvError>,
    broadcast::Receiver<Event>,
);

async fn recv(mut rx: broadcast::Receiver<Event>) -> Recv {
    let r = rx.recv().await;
    (r, rx)
}

impl EventStream {
    fn new(rx: broadcast::Receiver<Event>, mask: EventMask) -> EventStream {
        EventStream {
            mask,
            fut: ReusableBoxFuture::new(recv(rx)),
        }
    }

    /// The next event, `None` when the scheduler is gone (a convenience over
    /// [`Stream::poll_next`]).
    ///
    /// # Cancel safety
    /// Cancel safe: an event is never lost by dropping this future.
    pub async fn next(&mut self) -> Option<Result<Event, Lagged>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("mask", &self.mask)
            .finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = Result<Event, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let (result, rx) = std::task::ready!(self.fut.poll(cx));
            self.fut.set(recv(rx));
            match result {
                Ok(event) if self.mask.contains(event.kind()) => {
                    return Poll::Ready(Some(Ok(event)));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Poll::Ready(Some(Err(Lagged(n))));
                }
                Err(broadcast::error::RecvError::Closed) => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wants_follows_listeners_and_subscriptions() {
        let bus = EventBus::new(4);
        assert!(!bus.wants(EventKind::JobExecuted));
        let a = bus.add_listener(EventKind::JobExecuted.into(), Arc::new(|_| {}));
        let b = bus.add_listener(EventKind::JobError.into(), Arc::new(|_| {}));
        assert!(bus.wants(EventKind::JobExecuted));
        assert!(bus.wants(EventKind::JobError));
        assert!(!bus.wants(EventKind::JobSubmitted));
        assert!(bus.remove_listener(a));
        assert!(!bus.wants(EventKind::JobExecuted));
        assert!(bus.wants(EventKind::JobError));
        assert!(bus.remove_listener(b));
        assert!(!bus.wants(EventKind::JobError));
        let stream = bus.subscribe(EventMask::NONE);
        assert!(bus.wants(EventKind::JobSubmitted));
        drop(stream);
        assert!(!bus.wants(EventKind::JobSubmitted));
    }
}
