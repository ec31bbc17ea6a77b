//! The consuming side over librdkafka: one consumer in the group for every signal the
//! receiver feeds; records decoded and handed to the pipelines in offset order; offsets
//! committed only once the pipelines have finished with a record.
//!
//! Backpressure: while the pipelines hold a record back, every assigned partition is paused
//! and the client is still polled once a second, so the group keeps this member and
//! rebalances are served; nothing more is fetched until the record is taken.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use regex::Regex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use ferrotel_pipeline::component::{Ack, ClientInfo, Envelope, SignalConsumers};
use ferrotel_pipeline::exporter::config::RetrySettings;
use ferrotel_pipeline::ratelimit::LogLimiter;
use ferrotel_pipeline::telemetry::{KafkaReceiverMetrics, ReceiverMetrics};
use ferrotel_pipeline::Signal;

use super::config::KafkaReceiverConfig;
use super::decode::Decoder;
use super::offsets::{Marking, Outcome, Tracker};

/// Records in flight (handed on, outcome not yet known) over all partitions, beyond which
/// reading waits. The pipelines' own queues bound the data; this bounds the bookkeeping.
const MAX_IN_FLIGHT: usize = 10_000;
/// How long the pipelines may hold a record before the partitions are paused.
const PAUSE_AFTER: Duration = Duration::from_secs(1);
/// How often the client is polled while paused (well inside `max.poll.interval.ms`).
const POLL_WHILE_PAUSED: Duration = Duration::from_millis(500);
/// How long shutdown waits for records in flight to be delivered before the last commit.
const DRAIN: Duration = Duration::from_secs(10);

/// What the consumer's callbacks and the consuming task share.
pub(super) struct Shared {
    id: String,
    tracker: Mutex<Tracker>,
    marking: Marking,
    metrics: KafkaReceiverMetrics,
    /// The consumer is paused because the pipelines push back.
    paused: AtomicBool,
    client_errors: LogLimiter,
    failures: LogLimiter,
}

impl Shared {
    pub(super) fn new(id: String, marking: Marking, metrics: KafkaReceiverMetrics) -> Shared {
        Shared {
            id,
            tracker: Mutex::new(Tracker::default()),
            marking,
            metrics,
            paused: AtomicBool::new(false),
            client_errors: LogLimiter::new(Duration::from_secs(5)),
            failures: LogLimiter::new(Duration::from_secs(1)),
        }
    }

    pub(super) fn tracker(&self) -> MutexGuard<'_, Tracker> {
        // A panic while holding the lock cannot leave the offsets half-updated in a way
        // that matters more than stopping would; carry on with what is there.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the commit points over finished records, logs failures, and returns the
    /// partitions that must now hold.
    fn advance(&self, tracker: &mut Tracker) -> Vec<(String, i32)> {
        let mut hold = Vec::new();
        for failed in tracker.advance(self.marking) {
            if failed.skipped {
                if let Some(folded) = self.failures.check() {
                    warn!(receiver = %self.id, topic = %failed.topic, partition = failed.partition,
                        offset = failed.offset, error = %failed.error, also_failed = folded,
                        "failed to consume message, skipping due to message_marking config");
                }
            } else {
                error!(receiver = %self.id, topic = %failed.topic, partition = failed.partition,
                    offset = failed.offset, error = %failed.error,
                    "failed to consume message; pausing the partition until it is assigned again (message_marking)");
                hold.push((failed.topic, failed.partition));
            }
        }
        hold
    }
}

/// librdkafka's callbacks: its log, rebalances, commits.
pub(super) struct Context {
    pub(super) shared: Arc<Shared>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let id = &self.shared.id;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(receiver = %id, facility = fac, "{message}"),
            RDKafkaLogLevel::Warning => warn!(receiver = %id, facility = fac, "{message}"),
            _ => debug!(receiver = %id, facility = fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fatal) {
            // The client cannot go on (e.g. another member took its group_instance_id).
            error!(receiver = %self.shared.id, error = %error, "Kafka client failed for good and reads nothing more until the agent restarts: {reason}");
            return;
        }
        if let Some(folded) = self.shared.client_errors.check() {
            warn!(receiver = %self.shared.id, error = %error, also = folded, "Kafka client: {reason}");
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let shared = &self.shared;
        // Lost partitions belong to someone else already: committing would move their
        // offsets under the new owner.
        let lost = consumer.assignment_lost();
        let mut commit = TopicPartitionList::new();
        let mut hold = TopicPartitionList::new();
        {
            let mut tracker = shared.tracker();
            for (topic, partition) in shared.advance(&mut tracker) {
                hold.add_partition(&topic, partition);
            }
            for e in revoked.elements() {
                if let Some(next) = tracker.revoke(e.topic(), e.partition()) {
                    if !lost {
                        let _ = commit.add_partition_offset(
                            e.topic(),
                            e.partition(),
                            Offset::Offset(next),
                        );
                    }
                }
                shared.metrics.partition_close.inc();
            }
        }
        info!(receiver = %shared.id, partitions = revoked.count(), lost, "Partitions revoked");
        if hold.count() > 0 {
            // Partitions that stay assigned (cooperative rebalancing) stop at their failure.
            let _ = consumer.pause(&hold);
        }
        if commit.count() > 0 {
            if let Err(err) = blocking(|| consumer.commit(&commit, CommitMode::Sync)) {
                warn!(receiver = %shared.id, error = %err, "Committing offsets of revoked partitions failed; their records will be read again");
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(assigned) = rebalance else {
            return;
        };
        let shared = &self.shared;
        {
            let mut tracker = shared.tracker();
            for e in assigned.elements() {
                tracker.assign(
                    e.topic(),
                    e.partition(),
                    shared.metrics.partition(e.topic(), e.partition()),
                );
                shared.metrics.partition_start.inc();
            }
        }
        info!(receiver = %shared.id, partitions = assigned.count(), "Partitions assigned");
        // A partition keeps its paused state across reassignment: start each in the
        // state the consumer is in now.
        let result = if shared.paused.load(Ordering::Acquire) {
            consumer.pause(assigned)
        } else {
            consumer.resume(assigned)
        };
        if let Err(err) = result {
            debug!(receiver = %shared.id, error = %err, "Setting the state of assigned partitions");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(err) = result {
            // Sent again with the next commit.
            let mut tracker = self.shared.tracker();
            for e in offsets.elements() {
                if let Offset::Offset(o) = e.offset() {
                    tracker.uncommit(e.topic(), e.partition(), o);
                }
            }
            drop(tracker);
            if let Some(folded) = self.shared.client_errors.check() {
                warn!(receiver = %self.shared.id, error = %err, also = folded, "Committing offsets failed; records after the last commit may be read again");
            }
        }
    }
}

/// Which signal's decoder reads a topic.
enum Matcher {
    Exact(String),
    /// A `^` topic, less the topics any exclusion matches (anywhere in the name).
    Pattern(Regex, Vec<Regex>),
}

impl Matcher {
    fn matches(&self, topic: &str) -> bool {
        match self {
            Matcher::Exact(name) => name == topic,
            Matcher::Pattern(re, exclude) => {
                re.is_match(topic) && !exclude.iter().any(|x| x.is_match(topic))
            }
        }
    }
}

/// How records find their signal: by topic, or by the `otelcol.signal` header.
pub(super) struct Routes {
    routes: Vec<(Matcher, Decoder)>,
    /// Topics in the subscription's form (names, or `^` patterns).
    pub(super) topics: Vec<String>,
    by_header: bool,
    cache: HashMap<String, Option<usize>>,
}

impl Routes {
    pub(super) fn new(
        config: &KafkaReceiverConfig,
        consumers: &SignalConsumers,
    ) -> Result<Routes, String> {
        let by_header = config.consumer.signal_header;
        let headers = if config.consumer.header_extraction.extract_headers {
            config.consumer.header_extraction.headers.clone()
        } else {
            Vec::new()
        };
        let mut routes = Vec::new();
        let mut topics: Vec<String> = Vec::new();
        let mut owner: HashMap<String, Signal> = HashMap::new();
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            let Some(consumer) = consumers.get(signal) else {
                continue;
            };
            let subscription = config.subscription(signal)?;
            let exclude = subscription
                .exclude_topics
                .iter()
                .map(|x| Regex::new(x).map_err(|e| format!("{signal}.exclude_topics: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let decoder = Decoder::new(
                signal,
                &subscription.encoding,
                headers.clone(),
                consumer.accepts_encoded(),
            )?;
            for topic in subscription.topics {
                if let Some(other) = owner.get(&topic) {
                    if !by_header {
                        return Err(format!(
                            "topic {topic:?} is configured for both {other} and {signal}; a topic feeds one signal unless signal_header is set"
                        ));
                    }
                } else {
                    owner.insert(topic.clone(), signal);
                }
                let matcher = if let Some(pattern) = topic.strip_prefix('^') {
                    Matcher::Pattern(
                        Regex::new(&format!("^(?:{pattern})"))
                            .map_err(|e| format!("{signal}.topics: {e}"))?,
                        exclude.clone(),
                    )
                } else {
                    Matcher::Exact(topic.clone())
                };
                routes.push((matcher, decoder.clone()));
                if !topics.contains(&topic) {
                    topics.push(topic);
                }
            }
        }
        Ok(Routes {
            routes,
            topics,
            by_header,
            cache: HashMap::new(),
        })
    }

    fn get(&self, index: usize) -> Option<&Decoder> {
        self.routes.get(index).map(|(_, d)| d)
    }

    /// The decoder for a record of `topic` (with `signal_header`, the header's value).
    fn decoder(&mut self, topic: &str, header_signal: Option<&[u8]>) -> Option<usize> {
        if self.by_header {
            let wanted = match header_signal? {
                b"traces" => Signal::Traces,
                b"metrics" => Signal::Metrics,
                b"logs" => Signal::Logs,
                _ => return None,
            };
            return self
                .routes
                .iter()
                .position(|(m, d)| d.signal == wanted && m.matches(topic));
        }
        let index = match self.cache.get(topic) {
            Some(index) => *index,
            None => {
                if self.cache.len() >= 10_000 {
                    // Topics come and go under a `^` subscription.
                    self.cache.clear();
                }
                let index = self.routes.iter().position(|(m, _)| m.matches(topic));
                self.cache.insert(topic.to_string(), index);
                index
            }
        };
        index
    }
}

/// The consuming task.
pub(super) struct Reader {
    pub(super) shared: Arc<Shared>,
    pub(super) routes: Routes,
    pub(super) consumers: SignalConsumers,
    pub(super) receiver_metrics: ReceiverMetrics,
    pub(super) commit_every: Duration,
    pub(super) backoff: RetrySettings,
    pub(super) shutdown: CancellationToken,
    /// Records read while paused, handed on once the pipelines take data again.
    carried: VecDeque<(u64, OwnedMessage)>,
    last_commit: Instant,
    decode_errors: LogLimiter,
    refusals: LogLimiter,
}

impl Reader {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        routes: Routes,
        consumers: SignalConsumers,
        receiver_metrics: ReceiverMetrics,
        commit_every: Duration,
        backoff: RetrySettings,
        shutdown: CancellationToken,
    ) -> Reader {
        Reader {
            shared,
            routes,
            consumers,
            receiver_metrics,
            commit_every,
            backoff,
            shutdown,
            carried: VecDeque::new(),
            last_commit: Instant::now(),
            decode_errors: LogLimiter::new(Duration::from_secs(1)),
            refusals: LogLimiter::new(Duration::from_secs(5)),
        }
    }

    pub(super) async fn run(mut self, consumer: StreamConsumer<Context>) {
        let mut tick = tokio::time::interval(self.commit_every.min(Duration::from_millis(250)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            if let Some((epoch, message)) = self.carried.pop_front() {
                self.handle(&consumer, &message, Some(epoch)).await;
                continue;
            }
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                _ = tick.tick() => self.commit_if_due(&consumer, false),
                received = consumer.recv() => match received {
                    Ok(message) => self.handle(&consumer, &message, None).await,
                    Err(err) => {
                        if let Some(folded) = self.shared.client_errors.check() {
                            warn!(receiver = %self.shared.id, error = %err, also = folded, "Reading from Kafka failed");
                        }
                    }
                },
            }
        }
        // Records read but never handed on stay before the commit point.
        for (epoch, message) in std::mem::take(&mut self.carried) {
            self.track(&message, epoch, Outcome::Abandoned);
        }
        self.drain(&consumer).await;
        // Closing leaves the group; its revoke finds nothing left to commit.
        let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
        info!(receiver = %self.shared.id, "Kafka consumer closed");
    }

    /// Shutdown: read nothing more, wait a bounded time for what is in flight, commit what
    /// was delivered, and commit nothing after that.
    async fn drain(&mut self, consumer: &StreamConsumer<Context>) {
        self.pause(consumer);
        let deadline = Instant::now() + DRAIN;
        loop {
            self.commit_if_due(consumer, true);
            if self.shared.tracker().is_idle() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.poll_once(consumer).await;
        }
        let left = self.shared.tracker().in_flight();
        if left > 0 {
            warn!(receiver = %self.shared.id, records = left, "Records still in flight at shutdown are not committed and will be read again");
        }
        self.commit(consumer, CommitMode::Sync);
        // Whatever the exporters report after this (data dropped at their shutdown) must
        // not move a commit point.
        self.shared.tracker().close();
    }

    /// Decodes one record and hands it on, waiting while the pipelines push back.
    /// `epoch`: the assignment it was read under, for a record carried over a pause.
    async fn handle<M: Message>(
        &mut self,
        consumer: &StreamConsumer<Context>,
        message: &M,
        epoch: Option<u64>,
    ) {
        let topic = message.topic();
        let partition = message.partition();
        let offset = message.offset();
        let epoch = {
            let mut tracker = self.shared.tracker();
            let current = tracker.epoch(topic, partition);
            match tracker.get_mut(topic, partition) {
                Some(p) if !p.held && (epoch.is_none() || epoch == current) => {
                    p.metrics.current_offset.set(offset);
                }
                // Revoked or reassigned meanwhile, or holding at a failed record: whoever
                // reads the partition next starts at its commit point, before this record.
                _ => return,
            }
            match current {
                Some(e) => e,
                None => return,
            }
        };
        // Keep the bookkeeping bounded: wait, paused, for the oldest records to finish.
        if self.shared.tracker().in_flight() >= MAX_IN_FLIGHT {
            self.pause(consumer);
            while self.shared.tracker().in_flight() >= MAX_IN_FLIGHT {
                if self.shutdown.is_cancelled() {
                    self.track(message, epoch, Outcome::Abandoned);
                    return;
                }
                self.settle(consumer);
                self.commit_if_due(consumer, false);
                self.poll_once(consumer).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.resume(consumer);
        }
        let header = |name: &str| -> Option<&[u8]> {
            message
                .headers()?
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
        };
        let index = self.routes.decoder(topic, header("otelcol.signal"));
        let Some(decoder) = index.and_then(|i| self.routes.get(i)) else {
            if !self.routes.by_header {
                // A topic of a `^` subscription that `exclude_topics` leaves out.
                debug!(receiver = %self.shared.id, topic, partition, offset, "Record of an excluded topic skipped");
            } else if let Some(folded) = self.decode_errors.check() {
                warn!(receiver = %self.shared.id, topic, partition, offset, also = folded,
                    "Record skipped: its otelcol.signal header names no signal this receiver reads");
            }
            self.track(message, epoch, Outcome::Skipped);
            return;
        };
        let signal = decoder.signal;
        let payload = match decoder.decode(message.payload().unwrap_or_default(), header, now()) {
            Ok(payload) => payload,
            Err(err) => {
                if let Some(p) = self.shared.tracker().get_mut(topic, partition) {
                    p.metrics.unmarshal_failed.add(signal, 1);
                }
                if let Some(folded) = self.decode_errors.check() {
                    warn!(receiver = %self.shared.id, topic, partition, offset, error = %err,
                        also = folded, "failed to unmarshal message; skipping it");
                }
                self.track(message, epoch, Outcome::Skipped);
                return;
            }
        };
        let pipeline = match self.consumers.get(signal) {
            Some(pipeline) if !payload.is_empty() => pipeline.clone(),
            _ => {
                self.track(message, epoch, Outcome::Done(Ok(())));
                return;
            }
        };
        let items = payload.item_count();
        let (ack, rx) = Ack::new();
        let mut envelope = Envelope::new(payload).with_client(Some(Arc::new(client_info(message))));
        envelope.acks.push(ack);
        if !self.track(message, epoch, Outcome::Pending(rx)) {
            return;
        }
        let started = Instant::now();
        let mut delay = self.backoff.initial_interval.get();
        loop {
            let Some(result) = self.wait(consumer, pipeline.consume(envelope.fork())).await else {
                // Stopping while the pipeline still holds it back: read again next time.
                self.shared.tracker().abandon(topic, partition, offset);
                break;
            };
            let error = match result {
                Ok(accepted) => {
                    let rejected = usize::try_from(accepted.rejected_items)
                        .unwrap_or(items)
                        .min(items);
                    self.receiver_metrics.accepted.add(signal, items - rejected);
                    self.receiver_metrics.refused.add(signal, rejected);
                    break;
                }
                Err(error) => error,
            };
            let max_elapsed = self.backoff.max_elapsed_time.get();
            let gave_up =
                self.backoff.enabled && !max_elapsed.is_zero() && started.elapsed() >= max_elapsed;
            if !error.kind.is_retryable() || gave_up {
                self.receiver_metrics.refused.add(signal, items);
                envelope.fail(&error);
                break;
            }
            if let Some(folded) = self.refusals.check() {
                info!(receiver = %self.shared.id, topic, partition, offset, error = %error.message,
                    also = folded, "The pipeline refused a record; retrying it with reading paused");
            }
            let pause = error.retry_after.unwrap_or(delay);
            if self
                .wait(consumer, tokio::time::sleep(pause))
                .await
                .is_none()
            {
                self.shared.tracker().abandon(topic, partition, offset);
                break;
            }
            delay = next_delay(delay, &self.backoff);
            if self.shared.tracker().epoch(topic, partition) != Some(epoch) {
                // Revoked meanwhile: the new owner reads it.
                break;
            }
        }
        drop(envelope);
        if self.shared.paused.load(Ordering::Acquire) && !self.shutdown.is_cancelled() {
            self.resume(consumer);
        }
    }

    /// Records a record's outcome under the assignment it was read in; false when that
    /// assignment is over (the record is read again by whoever reads the partition next).
    fn track<M: Message>(&self, message: &M, epoch: u64, outcome: Outcome) -> bool {
        self.shared.tracker().track(
            message.topic(),
            message.partition(),
            epoch,
            message.offset(),
            outcome,
        )
    }

    /// Awaits `work` while keeping the consumer alive: after [`PAUSE_AFTER`] the partitions
    /// are paused, the client is polled, and delivered offsets are committed. `None` when
    /// the receiver is stopping.
    async fn wait<T>(
        &mut self,
        consumer: &StreamConsumer<Context>,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        tokio::pin!(work);
        let shutdown = self.shutdown.clone();
        let first = tokio::time::sleep(PAUSE_AFTER);
        tokio::pin!(first);
        tokio::select! {
            out = &mut work => return Some(out),
            () = shutdown.cancelled() => return None,
            () = &mut first => {}
        }
        self.pause(consumer);
        loop {
            self.poll_once(consumer).await;
            self.commit_if_due(consumer, false);
            tokio::select! {
                out = &mut work => return Some(out),
                () = shutdown.cancelled() => return None,
                () = tokio::time::sleep(POLL_WHILE_PAUSED) => {}
            }
        }
    }

    /// Serves the client's events (rebalances) without taking new records; a record that
    /// still arrives is carried until the pipelines take data again.
    async fn poll_once(&mut self, consumer: &StreamConsumer<Context>) {
        if let Ok(Ok(message)) =
            tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await
        {
            let epoch = self
                .shared
                .tracker()
                .epoch(message.topic(), message.partition());
            if let Some(epoch) = epoch {
                self.carried.push_back((epoch, message.detach()));
            }
        }
    }

    fn pause(&self, consumer: &StreamConsumer<Context>) {
        if self.shared.paused.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Ok(assignment) = consumer.assignment() {
            if let Err(err) = consumer.pause(&assignment) {
                debug!(receiver = %self.shared.id, error = %err, "Pausing partitions");
            }
        }
        debug!(receiver = %self.shared.id, "Reading paused: the pipelines push back");
    }

    fn resume(&self, consumer: &StreamConsumer<Context>) {
        if !self.shared.paused.swap(false, Ordering::AcqRel) {
            return;
        }
        let Ok(assignment) = consumer.assignment() else {
            return;
        };
        let held: Vec<(String, i32)> = {
            let tracker = self.shared.tracker();
            tracker
                .partitions()
                .filter(|p| p.held)
                .map(|p| (p.topic.clone(), p.partition))
                .collect()
        };
        let mut resume = TopicPartitionList::new();
        for e in assignment.elements() {
            if !held
                .iter()
                .any(|(t, p)| t == e.topic() && *p == e.partition())
            {
                resume.add_partition(e.topic(), e.partition());
            }
        }
        if let Err(err) = consumer.resume(&resume) {
            debug!(receiver = %self.shared.id, error = %err, "Resuming partitions");
        }
        debug!(receiver = %self.shared.id, "Reading resumed");
    }

    fn commit_if_due(&mut self, consumer: &StreamConsumer<Context>, now: bool) {
        if now || self.last_commit.elapsed() >= self.commit_every {
            self.commit(consumer, CommitMode::Async);
        }
    }

    /// Moves the commit points over finished records and pauses partitions that must hold.
    fn settle(&self, consumer: &StreamConsumer<Context>) {
        let hold = {
            let mut tracker = self.shared.tracker();
            self.shared.advance(&mut tracker)
        };
        if !hold.is_empty() {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in &hold {
                list.add_partition(topic, *partition);
            }
            let _ = consumer.pause(&list);
        }
    }

    /// Commits every commit point that moved.
    fn commit(&mut self, consumer: &StreamConsumer<Context>, mode: CommitMode) {
        self.last_commit = Instant::now();
        self.settle(consumer);
        let points = self.shared.tracker().to_commit();
        if points.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in &points {
            let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        let result = match mode {
            CommitMode::Sync => blocking(|| consumer.commit(&list, mode)),
            CommitMode::Async => consumer.commit(&list, mode),
        };
        if let Err(err) = result {
            let mut tracker = self.shared.tracker();
            for (topic, partition, next) in &points {
                tracker.uncommit(topic, *partition, *next);
            }
            drop(tracker);
            if let Some(folded) = self.shared.client_errors.check() {
                warn!(receiver = %self.shared.id, error = %err, also = folded, "Committing offsets failed; records after the last commit may be read again");
            }
        }
    }
}

/// Runs a call that may block on the network (a synchronous commit) without stalling the
/// other tasks of the runtime's thread.
fn blocking<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

/// The next pause between retries of a refused record.
fn next_delay(delay: Duration, backoff: &RetrySettings) -> Duration {
    let max = backoff.max_interval.get().max(Duration::from_millis(1));
    delay
        .mul_f64(backoff.multiplier.max(1.0))
        .min(max)
        .max(Duration::from_millis(1))
}

/// The record as client metadata, as upstream attaches it: `kafka.topic`,
/// `kafka.partition`, `kafka.offset`, and every header (a key may repeat).
fn client_info(message: &impl Message) -> ClientInfo {
    let mut metadata = vec![
        ("kafka.topic".to_string(), message.topic().to_string()),
        (
            "kafka.partition".to_string(),
            message.partition().to_string(),
        ),
        ("kafka.offset".to_string(), message.offset().to_string()),
    ];
    if let Some(headers) = message.headers() {
        for h in headers.iter() {
            metadata.push((
                h.key.to_string(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            ));
        }
    }
    ClientInfo {
        addr: None,
        metadata,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use ferrotel_pipeline::component::{ConsumeResult, Consumer};
    use ferrotel_pipeline::config::decode::decode_squashed;
    use ferrotel_pipeline::config::value::Value;

    struct Nothing;

    #[async_trait]
    impl Consumer for Nothing {
        async fn consume(&self, _: Envelope) -> ConsumeResult {
            Ok(Default::default())
        }
    }

    fn routes(yaml: &str) -> Result<Routes, String> {
        let value = Value::from_yaml_str(yaml).unwrap();
        let (client, consumer) = decode_squashed(&value).unwrap();
        let config = KafkaReceiverConfig { client, consumer };
        config.validate()?;
        let mut consumers = SignalConsumers::default();
        consumers.set(Signal::Traces, Arc::new(Nothing));
        consumers.set(Signal::Logs, Arc::new(Nothing));
        Routes::new(&config, &consumers)
    }

    fn signal(r: &mut Routes, topic: &str, header: Option<&[u8]>) -> Option<Signal> {
        let i = r.decoder(topic, header)?;
        r.get(i).map(|d| d.signal)
    }

    #[test]
    fn topics_of_signals_with_pipelines_only() {
        let mut r = routes("{}").unwrap();
        assert_eq!(r.topics, ["otlp_spans", "otlp_logs"]);
        assert_eq!(signal(&mut r, "otlp_spans", None), Some(Signal::Traces));
        assert_eq!(signal(&mut r, "otlp_logs", None), Some(Signal::Logs));
        assert_eq!(signal(&mut r, "otlp_metrics", None), None);
    }

    #[test]
    fn patterns_less_exclusions() {
        let mut r =
            routes("logs: {topics: ['^app-.*'], exclude_topics: ['debug']}\ntraces: {topics: [t]}")
                .unwrap();
        assert_eq!(signal(&mut r, "app-orders", None), Some(Signal::Logs));
        assert_eq!(signal(&mut r, "app-debug-1", None), None);
        assert_eq!(signal(&mut r, "xapp-orders", None), None, "anchored");
    }

    #[test]
    fn one_topic_for_two_signals_needs_the_signal_header() {
        let err = routes("traces: {topics: [all]}\nlogs: {topics: [all]}")
            .err()
            .unwrap();
        assert!(err.contains("configured for both traces and logs"), "{err}");
        let mut r =
            routes("signal_header: true\ntraces: {topics: [all]}\nlogs: {topics: [all]}").unwrap();
        assert_eq!(r.topics, ["all"]);
        assert_eq!(signal(&mut r, "all", Some(b"logs")), Some(Signal::Logs));
        assert_eq!(signal(&mut r, "all", Some(b"traces")), Some(Signal::Traces));
        assert_eq!(signal(&mut r, "all", Some(b"metrics")), None);
        assert_eq!(signal(&mut r, "all", None), None);
    }
}
