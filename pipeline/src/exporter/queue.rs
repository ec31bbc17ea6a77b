//! The bounded sending queue, measured in requests, items or bytes.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::{oneshot, Notify};

use crate::component::{ConsumeResult, Envelope};

/// One queued batch, with the channel to answer on when the sender waits for the result.
pub(crate) struct Queued {
    pub envelope: Envelope,
    pub size: u64,
    pub done: Option<oneshot::Sender<ConsumeResult>>,
}

pub(crate) enum PushError {
    Full,
    Closed,
    TooLarge,
}

struct State {
    items: VecDeque<Queued>,
    used: u64,
    closed: bool,
}

pub(crate) struct Queue {
    state: Mutex<State>,
    capacity: u64,
    /// `otelcol_exporter_queue_size`, set under the lock so it never shows a stale value.
    gauge: prometheus::IntGauge,
    not_empty: Notify,
    not_full: Notify,
}

impl Queue {
    pub fn new(capacity: u64, gauge: prometheus::IntGauge) -> Self {
        Queue {
            gauge,
            state: Mutex::new(State {
                items: VecDeque::new(),
                used: 0,
                closed: false,
            }),
            capacity,
            not_empty: Notify::new(),
            not_full: Notify::new(),
        }
    }

    /// Current size in sizer units.
    pub fn used(&self) -> u64 {
        self.state.lock().map(|s| s.used).unwrap_or(0)
    }

    fn publish(&self, used: u64) {
        self.gauge.set(i64::try_from(used).unwrap_or(i64::MAX));
    }

    /// Adds an item, or hands it back when there is no room (or the queue is closed).
    fn try_push(&self, item: Queued) -> Result<(), (Queued, PushError)> {
        if item.size > self.capacity {
            return Err((item, PushError::TooLarge));
        }
        let Ok(mut state) = self.state.lock() else {
            return Err((item, PushError::Closed));
        };
        if state.closed {
            return Err((item, PushError::Closed));
        }
        if state.used + item.size > self.capacity {
            return Err((item, PushError::Full));
        }
        state.used += item.size;
        state.items.push_back(item);
        self.publish(state.used);
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Adds an item; with `block`, waits for room instead of failing when full.
    pub async fn push(&self, mut item: Queued, block: bool) -> Result<(), (Queued, PushError)> {
        loop {
            let room = self.not_full.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_push(item) {
                Ok(()) => return Ok(()),
                Err((back, PushError::Full)) if block => item = back,
                Err(err) => return Err(err),
            }
            room.await;
        }
    }

    /// The next item; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<Queued> {
        loop {
            let more = self.not_empty.notified();
            tokio::pin!(more);
            more.as_mut().enable();
            {
                let Ok(mut state) = self.state.lock() else {
                    return None;
                };
                if let Some(item) = state.items.pop_front() {
                    state.used -= item.size;
                    self.publish(state.used);
                    drop(state);
                    self.not_full.notify_waiters();
                    return Some(item);
                }
                if state.closed {
                    return None;
                }
            }
            more.await;
        }
    }

    /// Takes everything still queued (at the end of shutdown).
    pub fn drain_all(&self) -> Vec<Queued> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        state.used = 0;
        self.publish(0);
        state.items.drain(..).collect()
    }

    /// No more pushes; consumers drain what is left, then get `None`.
    pub fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.not_empty.notify_waiters();
        self.not_full.notify_waiters();
    }
}
