//! The shared delivery path with a scripted destination.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::component::{Ack, ErrorKind, ServiceStatus};
use crate::config::types::GoDuration;
use crate::pdata::{trace, ExportTraceServiceRequest, Traces};

/// Answers from a script, then succeeds; records when each attempt happened.
struct Scripted {
    script: Mutex<VecDeque<Result<Sent, ExportError>>>,
    attempts: Mutex<Vec<tokio::time::Instant>>,
    delivered: AtomicUsize,
    /// Held closed to make sends hang (a stuck destination).
    gate: tokio::sync::Semaphore,
}

impl Scripted {
    fn new(script: Vec<Result<Sent, ExportError>>, open: bool) -> Self {
        Scripted {
            script: Mutex::new(script.into()),
            attempts: Mutex::new(Vec::new()),
            delivered: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(if open {
                tokio::sync::Semaphore::MAX_PERMITS
            } else {
                0
            }),
        }
    }
}

#[async_trait]
impl Sender for Arc<Scripted> {
    type Request = usize;

    fn prepare(&self, payload: &Payload) -> Result<usize, ExportError> {
        Ok(payload.item_count())
    }

    async fn send(&self, items: &usize) -> Result<Sent, ExportError> {
        self.attempts
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| ExportError::retryable("closed"))?;
        let next = self.script.lock().unwrap().pop_front();
        match next {
            Some(Err(e)) => Err(e),
            Some(Ok(sent)) => {
                self.delivered.fetch_add(*items, Ordering::SeqCst);
                Ok(sent)
            }
            None => {
                self.delivered.fetch_add(*items, Ordering::SeqCst);
                Ok(Sent::default())
            }
        }
    }
}

fn spans(n: usize) -> Envelope {
    Envelope::new(Payload::Traces(Traces(ExportTraceServiceRequest {
        resource_spans: vec![trace::ResourceSpans {
            scope_spans: vec![trace::ScopeSpans {
                spans: vec![trace::Span::default(); n],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })))
}

fn settings(queue: bool) -> HelperSettings {
    HelperSettings {
        timeout: Duration::from_secs(5),
        retry: RetrySettings {
            initial_interval: GoDuration::from_secs(1),
            max_interval: GoDuration::from_secs(4),
            max_elapsed_time: GoDuration::from_secs(60),
            ..RetrySettings::default()
        },
        queue: QueueSettings {
            enabled: queue,
            num_consumers: 2,
            queue_size: 4,
            ..QueueSettings::default()
        },
    }
}

async fn started(
    settings: HelperSettings,
    sender: Arc<Scripted>,
) -> (QueuedExporter<Arc<Scripted>>, Arc<Telemetry>) {
    let telemetry = Telemetry::for_tests();
    let exporter = QueuedExporter::new("test", &telemetry, settings, sender);
    let (_tx, rx) = tokio::sync::watch::channel(ServiceStatus::Ready);
    exporter
        .start(&Host {
            telemetry: telemetry.clone(),
            status: rx,
        })
        .await
        .unwrap();
    (exporter, telemetry)
}

fn metric(telemetry: &Telemetry, name: &str) -> u64 {
    telemetry
        .render()
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains("exporter=\"test\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_backoff_until_delivered() {
    let sender = Arc::new(Scripted::new(
        vec![
            Err(ExportError::retryable("503")),
            Err(ExportError::retryable("503")),
            Err(ExportError::retryable("503")),
        ],
        true,
    ));
    let (exporter, telemetry) = started(settings(false), sender.clone()).await;
    exporter.consume(spans(3)).await.unwrap();
    assert_eq!(sender.delivered.load(Ordering::SeqCst), 3);
    let times = sender.attempts.lock().unwrap().clone();
    assert_eq!(times.len(), 4);
    // Waits of 1s, 1.5s, 2.25s, each within the 0.5 randomization factor.
    for (i, (lo, hi)) in [(0.5, 1.5), (0.75, 2.25), (1.125, 3.375)]
        .iter()
        .enumerate()
    {
        let gap = (times[i + 1] - times[i]).as_secs_f64();
        assert!(gap >= *lo && gap <= *hi + 0.01, "gap {i}: {gap}");
    }
    assert_eq!(metric(&telemetry, "otelcol_exporter_sent_spans"), 3);
    assert_eq!(metric(&telemetry, "otelcol_exporter_send_failed_spans"), 0);
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried() {
    let sender = Arc::new(Scripted::new(
        vec![Err(ExportError::permanent("400 bad request"))],
        true,
    ));
    let (exporter, telemetry) = started(settings(false), sender.clone()).await;
    let (ack, rx) = Ack::new();
    let mut env = spans(2);
    env.acks.push(ack);
    let err = exporter.consume(env).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert_eq!(sender.attempts.lock().unwrap().len(), 1);
    assert_eq!(metric(&telemetry, "otelcol_exporter_send_failed_spans"), 2);
    // Answered with an error, the caller owns the outcome: the ack is left alone.
    assert_eq!(rx.await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_queued_batch_lost_later_fails_its_ack() {
    let sender = Arc::new(Scripted::new(
        vec![Err(ExportError::permanent("400 bad request"))],
        true,
    ));
    let (exporter, _t) = started(settings(true), sender.clone()).await;
    let (ack, rx) = Ack::new();
    let mut env = spans(2);
    env.acks.push(ack);
    exporter.consume(env).await.unwrap();
    assert_eq!(rx.await.unwrap().unwrap_err().message, "400 bad request");
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_elapsed_time() {
    let sender = Arc::new(Scripted::new(
        vec![Err(ExportError::retryable("down")); 1000],
        true,
    ));
    let (exporter, telemetry) = started(settings(false), sender.clone()).await;
    let t0 = tokio::time::Instant::now();
    let err = exporter.consume(spans(1)).await.unwrap_err();
    assert!(
        err.message.starts_with("no more retries left"),
        "{}",
        err.message
    );
    assert!(t0.elapsed() <= Duration::from_secs(60));
    assert!(sender.attempts.lock().unwrap().len() > 5);
    assert_eq!(metric(&telemetry, "otelcol_exporter_send_failed_spans"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_throttle_from_the_server_is_honoured() {
    let sender = Arc::new(Scripted::new(
        vec![Err(ExportError::Retryable {
            message: "429".into(),
            throttle: Some(Duration::from_secs(7)),
        })],
        true,
    ));
    let (exporter, _t) = started(settings(false), sender.clone()).await;
    exporter.consume(spans(1)).await.unwrap();
    let times = sender.attempts.lock().unwrap().clone();
    assert!(times[1] - times[0] >= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn partial_success_counts_the_rejected_items() {
    let sender = Arc::new(Scripted::new(
        vec![Ok(Sent {
            rejected_items: 2,
            message: "two were bad".into(),
        })],
        true,
    ));
    let (exporter, telemetry) = started(settings(false), sender.clone()).await;
    let accepted = exporter.consume(spans(5)).await.unwrap();
    assert_eq!(accepted.rejected_items, 2);
    assert_eq!(
        sender.attempts.lock().unwrap().len(),
        1,
        "partial success is not retried"
    );
    assert_eq!(metric(&telemetry, "otelcol_exporter_sent_spans"), 3);
    assert_eq!(metric(&telemetry, "otelcol_exporter_send_failed_spans"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_counts_and_recovers() {
    let sender = Arc::new(Scripted::new(vec![], false));
    let (exporter, telemetry) = started(settings(true), sender.clone()).await;
    // Two consumers take two batches and hang; four more fill the queue.
    for _ in 0..6 {
        exporter.consume(spans(1)).await.unwrap();
        tokio::task::yield_now().await;
    }
    let err = exporter.consume(spans(10)).await.unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Unavailable,
        "the sender is told to retry"
    );
    assert_eq!(err.message, "sending queue is full");
    assert_eq!(
        metric(&telemetry, "otelcol_exporter_enqueue_failed_spans"),
        10
    );
    assert_eq!(metric(&telemetry, "otelcol_exporter_queue_size"), 4);
    assert_eq!(metric(&telemetry, "otelcol_exporter_queue_capacity"), 4);
    sender
        .gate
        .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    exporter.shutdown().await.unwrap();
    assert_eq!(
        sender.delivered.load(Ordering::SeqCst),
        6,
        "everything queued was delivered"
    );
    assert_eq!(metric(&telemetry, "otelcol_exporter_queue_size"), 0);
}

#[tokio::test(start_paused = true)]
async fn block_on_overflow_waits_for_room() {
    let sender = Arc::new(Scripted::new(vec![], false));
    let mut s = settings(true);
    s.queue.block_on_overflow = true;
    let (exporter, telemetry) = started(s, sender.clone()).await;
    for _ in 0..6 {
        exporter.consume(spans(1)).await.unwrap();
        tokio::task::yield_now().await;
    }
    let exporter = Arc::new(exporter);
    let blocked = {
        let e = exporter.clone();
        tokio::spawn(async move { e.consume(spans(1)).await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!blocked.is_finished(), "waits while the queue is full");
    sender
        .gate
        .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    blocked.await.unwrap().unwrap();
    exporter.shutdown().await.unwrap();
    assert_eq!(sender.delivered.load(Ordering::SeqCst), 7);
    assert_eq!(
        metric(&telemetry, "otelcol_exporter_enqueue_failed_spans"),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn wait_for_result_answers_with_the_outcome() {
    let sender = Arc::new(Scripted::new(
        vec![Err(ExportError::permanent("nope"))],
        true,
    ));
    let mut s = settings(true);
    s.queue.wait_for_result = true;
    let (exporter, _t) = started(s, sender.clone()).await;
    assert_eq!(
        exporter.consume(spans(1)).await.unwrap_err().message,
        "nope"
    );
    exporter.consume(spans(1)).await.unwrap();
    assert_eq!(sender.delivered.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_then_drops_and_counts_what_cannot_be_sent() {
    let sender = Arc::new(Scripted::new(
        vec![Err(ExportError::retryable("down")); 100_000],
        true,
    ));
    let mut s = settings(true);
    s.retry.max_elapsed_time = GoDuration::from_secs(0);
    let (exporter, telemetry) = started(s, sender.clone()).await;
    let mut acks = Vec::new();
    for _ in 0..4 {
        let (ack, rx) = Ack::new();
        let mut env = spans(2);
        env.acks.push(ack);
        exporter.consume(env).await.unwrap();
        acks.push(rx);
    }
    let t0 = tokio::time::Instant::now();
    exporter.shutdown().await.unwrap();
    assert!(
        t0.elapsed() >= DRAIN_DEADLINE && t0.elapsed() < DRAIN_DEADLINE + Duration::from_secs(5)
    );
    assert_eq!(
        metric(&telemetry, "otelcol_exporter_send_failed_spans"),
        8,
        "every item is counted"
    );
    for rx in acks {
        assert!(rx.await.unwrap().is_err(), "acks report the loss");
    }
    assert_eq!(
        exporter.consume(spans(1)).await.unwrap_err().message,
        "the exporter is shutting down"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_destination_times_out_and_is_retried() {
    let sender = Arc::new(Scripted::new(vec![], false));
    let mut s = settings(false);
    s.timeout = Duration::from_secs(2);
    s.retry.max_elapsed_time = GoDuration::from_secs(10);
    let (exporter, _t) = started(s, sender.clone()).await;
    let err = exporter.consume(spans(1)).await.unwrap_err();
    assert!(
        err.message.contains("request timed out after 2s"),
        "{}",
        err.message
    );
    assert!(sender.attempts.lock().unwrap().len() >= 2);
}

#[tokio::test(start_paused = true)]
async fn a_send_in_progress_is_cut_short_by_the_shutdown_deadline() {
    // The destination never answers and attempts have no timeout of their own.
    let sender = Arc::new(Scripted::new(vec![], false));
    let mut s = settings(true);
    s.timeout = Duration::ZERO;
    let (exporter, telemetry) = started(s, sender.clone()).await;
    let (ack, rx) = Ack::new();
    let mut env = spans(3);
    env.acks.push(ack);
    exporter.consume(env).await.unwrap();
    exporter.consume(spans(4)).await.unwrap();
    exporter.consume(spans(5)).await.unwrap();
    let t0 = tokio::time::Instant::now();
    exporter.shutdown().await.unwrap();
    assert!(t0.elapsed() < DRAIN_DEADLINE + Duration::from_secs(3));
    assert_eq!(
        metric(&telemetry, "otelcol_exporter_send_failed_spans"),
        12,
        "in flight and queued are all counted"
    );
    assert_eq!(metric(&telemetry, "otelcol_exporter_in_flight_requests"), 0);
    assert_eq!(metric(&telemetry, "otelcol_exporter_queue_size"), 0);
    assert!(rx.await.unwrap().is_err());
}

#[tokio::test(start_paused = true)]
async fn leftovers_are_counted_when_the_service_stops_waiting() {
    let sender = Arc::new(Scripted::new(vec![], false));
    let mut s = settings(true);
    s.timeout = Duration::ZERO;
    let (exporter, telemetry) = started(s, sender.clone()).await;
    let mut acks = Vec::new();
    for _ in 0..6 {
        let (ack, rx) = Ack::new();
        let mut env = spans(1);
        env.acks.push(ack);
        exporter.consume(env).await.unwrap();
        acks.push(rx);
        tokio::task::yield_now().await;
    }
    // The service's own deadline ends the wait long before the exporter's drain deadline.
    let cut = tokio::time::timeout(Duration::from_secs(1), exporter.shutdown()).await;
    assert!(cut.is_err());
    // Queued items are counted at once; the two in flight when their workers see the abort.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(metric(&telemetry, "otelcol_exporter_send_failed_spans"), 6);
    for rx in acks {
        assert!(rx.await.unwrap().is_err(), "every ack reports the loss");
    }
}

#[tokio::test(start_paused = true)]
async fn a_waiting_sender_owns_the_outcome_and_its_acks() {
    let mut s = settings(true);
    s.queue.wait_for_result = true;
    s.retry.enabled = false;
    let sender = Arc::new(Scripted::new(
        vec![Err(ExportError::retryable("503"))],
        true,
    ));
    let (exporter, _t) = started(s, sender.clone()).await;
    let (ack, rx) = Ack::new();
    let mut env = spans(2);
    env.acks.push(ack.clone());
    assert!(exporter.consume(env).await.is_err());
    // The caller retries and succeeds: the ack must report success.
    let mut again = spans(2);
    again.acks.push(ack);
    exporter.consume(again).await.unwrap();
    assert_eq!(rx.await.unwrap(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn in_flight_is_right_when_a_caller_gives_up() {
    let sender = Arc::new(Scripted::new(vec![], false));
    let (exporter, telemetry) = started(settings(false), sender.clone()).await;
    let gave_up = tokio::time::timeout(Duration::from_secs(1), exporter.consume(spans(1))).await;
    assert!(gave_up.is_err());
    assert_eq!(metric(&telemetry, "otelcol_exporter_in_flight_requests"), 0);
}
