//! The batching task: merges envelopes per metadata partition, sends on size or timeout, and
//! holds a batch downstream refused for now, which is what pushes back on the receivers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep, sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use ferrotel_pipeline::component::{Ack, ClientInfo, ConsumeError, Envelope};
use ferrotel_pipeline::pdata::Payload;

use super::{PartitionKey, Shared};

/// First wait before sending a refused batch again; doubles up to `RETRY_MAX_WAIT`.
const RETRY_INITIAL_WAIT: Duration = Duration::from_millis(10);
const RETRY_MAX_WAIT: Duration = Duration::from_secs(1);
/// How long one batch is retried before it is dropped. While a batch is retried the task
/// reads no input, so receivers are told to retry meanwhile; this only bounds how long a
/// stuck downstream can hold the batch.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);
/// Once shutdown has begun, refused batches are retried at most this much longer in total,
/// so exporters (stopped after processors) still get time to drain.
pub const SHUTDOWN_RETRY_BUDGET: Duration = Duration::from_secs(5);

/// One envelope on its way from `consume` to the task.
pub(crate) struct Item {
    pub key: PartitionKey,
    /// The client info batches of this partition carry downstream.
    pub client: Option<Arc<ClientInfo>>,
    pub items: usize,
    pub envelope: Envelope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Size,
    Timeout,
}

/// The batch being built for one partition.
struct Pending {
    payload: Option<Payload>,
    items: usize,
    /// The acknowledgements of each input, in arrival order, with how many of its items are
    /// still pending: a split hands each piece exactly the inputs it holds items of.
    acks: VecDeque<(Vec<Ack>, usize)>,
    /// When the pending items must be sent at the latest.
    deadline: Option<Instant>,
    client: Option<Arc<ClientInfo>>,
}

impl Pending {
    fn new(client: Option<Arc<ClientInfo>>) -> Self {
        Pending {
            payload: None,
            items: 0,
            acks: VecDeque::new(),
            deadline: None,
            client,
        }
    }

    /// Appends an envelope; gives it back if its signal differs from the pending one.
    fn add(&mut self, envelope: Envelope, items: usize) -> Result<(), Envelope> {
        let Envelope { payload, acks, .. } = envelope;
        // The receiver's batch is not shared, so this takes it without a copy.
        let payload = Arc::unwrap_or_clone(payload);
        match &mut self.payload {
            None => self.payload = Some(payload),
            Some(pending) => {
                if let Err(payload) = pending.merge(payload) {
                    let mut back = Envelope::new(payload);
                    back.acks = acks;
                    return Err(back);
                }
            }
        }
        self.items += items;
        self.acks.push_back((acks, items));
        Ok(())
    }

    /// Removes up to `max` items (all when `max` is 0) as an envelope of their own.
    fn take(&mut self, max: usize) -> Option<Envelope> {
        if self.items == 0 {
            self.payload = None;
            return None;
        }
        let mut payload = self.payload.take()?;
        let batch = if max == 0 || self.items <= max {
            self.items = 0;
            let acks = self.acks.drain(..).flat_map(|(acks, _)| acks).collect();
            (payload, acks)
        } else {
            let front = payload.split_front(max);
            let taken = front.item_count();
            self.payload = Some(payload);
            self.items = self.items.saturating_sub(taken);
            (front, self.take_acks(taken))
        };
        let mut envelope = Envelope::new(batch.0).with_client(self.client.clone());
        envelope.acks = batch.1;
        Some(envelope)
    }

    /// The acknowledgements of the inputs the first `n` pending items came from; an input cut
    /// in two is acknowledged by both pieces (clones), so it resolves when both are done.
    fn take_acks(&mut self, mut n: usize) -> Vec<Ack> {
        let mut out = Vec::new();
        while n > 0 {
            let Some(front) = self.acks.front_mut() else {
                break;
            };
            if front.1 <= n {
                n -= front.1;
                if let Some((acks, _)) = self.acks.pop_front() {
                    out.extend(acks);
                }
            } else {
                front.1 -= n;
                out.extend(front.0.iter().cloned());
                n = 0;
            }
        }
        out
    }
}

/// Sends batches downstream, holding and retrying those refused for now.
struct Sender {
    shared: Arc<Shared>,
    stop: CancellationToken,
    /// Set once shutdown has begun: retries end for good at this instant.
    shutdown_deadline: Option<Instant>,
}

impl Sender {
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_none() {
            self.shutdown_deadline = Some(Instant::now() + SHUTDOWN_RETRY_BUDGET);
        }
    }

    /// One hand-off downstream. It can wait (a blocking queue downstream), so once shutdown
    /// begins it is bounded by the shutdown deadline; `None` when that deadline cut it short.
    async fn attempt(
        &mut self,
        shared: &Shared,
        envelope: &Envelope,
    ) -> Option<Result<ferrotel_pipeline::component::Accepted, ConsumeError>> {
        let attempt = shared.next.consume(envelope.fork());
        tokio::pin!(attempt);
        if self.shutdown_deadline.is_none() {
            tokio::select! {
                outcome = &mut attempt => return Some(outcome),
                _ = self.stop.cancelled() => self.begin_shutdown(),
            }
        }
        let deadline = self.shutdown_deadline.unwrap_or_else(Instant::now);
        tokio::time::timeout_at(deadline, attempt).await.ok()
    }

    async fn send(&mut self, envelope: Envelope, trigger: Trigger) {
        let shared = self.shared.clone();
        let items = envelope.payload.item_count();
        let bytes = shared
            .metrics
            .send_size_bytes
            .as_ref()
            .map(|_| envelope.payload.encoded_len());
        let started = Instant::now();
        let mut backoff = RETRY_INITIAL_WAIT;
        loop {
            // Downstream takes the envelope even when it refuses it, so each attempt gets
            // another reference (not a copy) and the batch stays here for the next attempt.
            let outcome = match self.attempt(&shared, &envelope).await {
                Some(outcome) => outcome,
                None => {
                    let error = ConsumeError::unavailable(
                        "the shutdown deadline passed while downstream was taking the batch",
                    );
                    shared.drop_batch(
                        &envelope,
                        items,
                        &error,
                        "the shutdown deadline passed while downstream was taking it",
                    );
                    return;
                }
            };
            let error = match outcome {
                Ok(_) => {
                    let m = &shared.metrics;
                    m.send_size.observe(items as f64);
                    if let (Some(histogram), Some(bytes)) = (&m.send_size_bytes, bytes) {
                        histogram.observe(bytes as f64);
                    }
                    match trigger {
                        Trigger::Size => m.size_trigger_send.inc(),
                        Trigger::Timeout => m.timeout_trigger_send.inc(),
                    }
                    return;
                }
                Err(error) => error,
            };
            if !error.kind.is_retryable() {
                shared.drop_batch(&envelope, items, &error, "downstream refused it for good");
                return;
            }
            if error.partial {
                // Some exporters took it: sending it again would duplicate it there.
                shared.drop_batch(
                    &envelope,
                    items,
                    &error,
                    "some of the exporters refused it while others took it",
                );
                return;
            }
            let mut give_up_at = started + RETRY_BUDGET;
            if let Some(deadline) = self.shutdown_deadline {
                give_up_at = give_up_at.min(deadline);
            }
            let now = Instant::now();
            if now >= give_up_at {
                shared.drop_batch(
                    &envelope,
                    items,
                    &error,
                    "downstream kept refusing it until the retry time ran out",
                );
                return;
            }
            let wait = backoff
                .max(error.retry_after.unwrap_or_default())
                .min(give_up_at - now);
            debug!(processor = %shared.id, items, error = %error, wait = ?wait, "Downstream refused a batch; holding it to retry");
            if self.shutdown_deadline.is_some() {
                sleep(wait).await;
            } else {
                tokio::select! {
                    _ = sleep(wait) => {}
                    _ = self.stop.cancelled() => self.begin_shutdown(),
                }
            }
            backoff = (backoff * 2).min(RETRY_MAX_WAIT);
        }
    }
}

/// The task's state: every partition's pending batch and the input it reads.
pub(crate) struct Batcher {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Item>,
    pending: HashMap<PartitionKey, Pending>,
    sender: Sender,
}

impl Batcher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Item>,
        stop: CancellationToken,
    ) -> Self {
        Batcher {
            sender: Sender {
                shared: shared.clone(),
                stop,
                shutdown_deadline: None,
            },
            shared,
            rx,
            pending: HashMap::new(),
        }
    }

    /// Runs until shutdown, then sends everything still pending and returns.
    pub(crate) async fn run(mut self) {
        let stop = self.sender.stop.clone();
        loop {
            let deadline = self.pending.values().filter_map(|p| p.deadline).min();
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                item = self.rx.recv() => match item {
                    Some(item) => self.on_item(item).await,
                    None => break,
                },
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.on_deadline().await;
                }
            }
        }
        self.sender.begin_shutdown();
        // What was queued before the input closed is batched and sent like the rest.
        self.rx.close();
        while let Some(item) = self.rx.recv().await {
            self.on_item(item).await;
        }
        let max = self.shared.max_size;
        for pending in self.pending.values_mut() {
            while let Some(batch) = pending.take(max) {
                self.sender.send(batch, Trigger::Timeout).await;
            }
            pending.deadline = None;
        }
    }

    async fn on_item(&mut self, item: Item) {
        let shared = self.shared.clone();
        let Item {
            key,
            client,
            items,
            envelope,
        } = item;
        let pending = self
            .pending
            .entry(key)
            .or_insert_with(|| Pending::new(client));
        if let Err(envelope) = pending.add(envelope, items) {
            let error = ConsumeError::permanent(format!(
                "internal: a {} batch reached the {} batch processor",
                envelope.payload.signal(),
                shared.signal
            ));
            shared.drop_batch(
                &envelope,
                items,
                &error,
                "its signal is not this pipeline's",
            );
            return;
        }
        let mut sent = false;
        while pending.items > 0 && (shared.immediate || pending.items >= shared.send_batch_size) {
            let Some(batch) = pending.take(shared.max_size) else {
                break;
            };
            self.sender.send(batch, Trigger::Size).await;
            sent = true;
        }
        if pending.items == 0 {
            pending.deadline = None;
        } else if sent || pending.deadline.is_none() {
            pending.deadline = Some(Instant::now() + shared.timeout);
        }
    }

    /// Sends every partition whose oldest pending items have waited `timeout`.
    async fn on_deadline(&mut self) {
        let now = Instant::now();
        let max = self.shared.max_size;
        for pending in self.pending.values_mut() {
            if pending.deadline.is_some_and(|d| d <= now) {
                while let Some(batch) = pending.take(max) {
                    self.sender.send(batch, Trigger::Timeout).await;
                }
                pending.deadline = None;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ferrotel_pipeline::pdata::{logs, ExportLogsServiceRequest, Logs};

    use super::*;

    fn logs(
        n: usize,
    ) -> (
        Envelope,
        tokio::sync::oneshot::Receiver<Result<(), ConsumeError>>,
    ) {
        let mut e = Envelope::new(Payload::Logs(Logs(ExportLogsServiceRequest {
            resource_logs: vec![logs::ResourceLogs {
                scope_logs: vec![logs::ScopeLogs {
                    log_records: vec![logs::LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })));
        let (ack, rx) = Ack::new();
        e.acks.push(ack);
        (e, rx)
    }

    #[test]
    fn splits_hand_each_piece_the_acks_of_its_inputs() {
        let mut p = Pending::new(None);
        let (a, mut ra) = logs(3);
        let (b, mut rb) = logs(4);
        p.add(a, 3).unwrap();
        p.add(b, 4).unwrap();
        assert_eq!(p.items, 7);

        let first = p.take(2).unwrap();
        assert_eq!(first.payload.item_count(), 2);
        assert_eq!(first.acks.len(), 1, "only the first input's ack");
        let second = p.take(2).unwrap();
        assert_eq!(second.acks.len(), 2, "the last item of a, the first of b");
        drop(first);
        assert!(ra.try_recv().is_err(), "a still has an item in flight");
        drop(second);
        assert_eq!(ra.try_recv().unwrap(), Ok(()));
        let rest = p.take(0).unwrap();
        assert_eq!(rest.payload.item_count(), 3);
        assert_eq!(rest.acks.len(), 1);
        assert!(p.take(0).is_none());
        assert!(rb.try_recv().is_err());
        drop(rest);
        assert_eq!(rb.try_recv().unwrap(), Ok(()));
    }

    #[test]
    fn a_foreign_signal_is_given_back() {
        let mut p = Pending::new(None);
        let (a, _ra) = logs(1);
        p.add(a, 1).unwrap();
        let spans = Envelope::new(Payload::Traces(Default::default()));
        let back = p.add(spans, 0).unwrap_err();
        assert_eq!(
            back.payload.signal(),
            ferrotel_pipeline::pdata::Signal::Traces
        );
        assert_eq!(p.items, 1);
    }
}
