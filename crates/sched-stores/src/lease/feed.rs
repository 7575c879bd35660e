//! The [`ChangeFeed`] of the stores that have notifications: a task owns the listening
//! connection and wakes the feed through a channel of one slot.
//!
//! # Ground rules
//! - The task is spawned by `changes()` once the first subscription is in place, and ends
//!   when the feed is dropped (it watches the channel closing) or when its source says the
//!   store is closed.
//! - A wake-up is `try_send(())` into one slot: when the slot is full a wake-up is pending
//!   already and the consumer will look at the store anyway, so nothing is lost by dropping
//!   the second one (this is the debouncing on the receiving side).
//! - After a lost connection the task reconnects with a growing delay (100 ms doubling up
//!   to 5 s) and then sends one wake-up, since notifications may have been missed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::mpsc;

use super::ChangeFeed;

/// The first delay before reconnecting.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest delay between reconnection attempts.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The receiving end of the feed.
struct Feed {
    rx: mpsc::Receiver<()>,
}

impl Stream for Feed {
    type Item = ();

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.rx.poll_recv(cx)
    }
}

/// The sending end, handed to the task that listens.
#[derive(Clone, Debug)]
pub(crate) struct Waker {
    tx: mpsc::Sender<()>,
}

impl Waker {
    /// Wakes the feed (a no-op when a wake-up is pending already).
    pub(crate) fn wake(&self) {
        let _ = self.tx.try_send(());
    }

    /// Runs `f` until it completes or the feed is dropped; `None` when dropped.
    pub(crate) async fn or_closed<T>(&self, f: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            _ = self.tx.closed() => None,
            out = f => Some(out),
        }
    }
}

/// The growing delay between reconnection attempts.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { next: FIRST_RETRY }
    }

    /// Sleeps for the current delay and doubles it (up to the longest).
    pub(crate) async fn sleep(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(MAX_RETRY);
    }
}

/// A new feed and the waker of its listening task.
pub(crate) fn channel() -> (ChangeFeed, Waker) {
    let (tx, rx) = mpsc::channel(1);
    (Box::pin(Feed { rx }), Waker { tx })
}
