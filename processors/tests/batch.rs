//! The `batch` processor against a recording downstream, in paused time: triggers, splitting,
//! partitions, shutdown, backpressure, drops, acknowledgements and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use ferrotel_pipeline::component::{
    Accepted, Ack, ClientInfo, ConsumeError, ConsumeResult, Consumer, ConsumerComponent,
    CreateSettings, Envelope, ErrorKind, Host, ServiceStatus,
};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::{Factory, ProcessorFactory, Registry};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, InstrumentationScope, KeyValue};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{
    trace, Encoded, ExportTraceServiceRequest, Payload, Signal, Traces,
};
use ferrotel_pipeline::telemetry::{Naming, ServiceIdentity, Telemetry};
use ferrotel_processors::batch::{
    BatchProcessorFactory, QUEUE_CAPACITY, RETRY_BUDGET, SHUTDOWN_RETRY_BUDGET, TOO_MANY_BATCHERS,
};

/// How the fake downstream answers.
#[derive(Clone)]
enum Answer {
    Accept,
    Refuse(ConsumeError),
}

/// A downstream that records what it accepted and keeps it (as an exporter queue would), so
/// acknowledgements resolve only when the test releases it.
#[derive(Default)]
struct Sink {
    accepted: Mutex<Vec<Envelope>>,
    attempts: Mutex<usize>,
    /// Answers for the next attempts, in order; `default` once they run out.
    script: Mutex<VecDeque<Answer>>,
    default: Mutex<Option<Answer>>,
}

impl Sink {
    fn new() -> Arc<Sink> {
        Arc::new(Sink::default())
    }

    fn refusing(error: ConsumeError) -> Arc<Sink> {
        let sink = Sink::new();
        *sink.default.lock().unwrap() = Some(Answer::Refuse(error));
        sink
    }

    fn set_default(&self, answer: Answer) {
        *self.default.lock().unwrap() = Some(answer);
    }

    fn batches(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    fn sizes(&self) -> Vec<usize> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.payload.item_count())
            .collect()
    }

    fn attempts(&self) -> usize {
        *self.attempts.lock().unwrap()
    }

    fn release(&self) {
        self.accepted.lock().unwrap().clear();
    }
}

#[async_trait]
impl Consumer for Sink {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        *self.attempts.lock().unwrap() += 1;
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .or_else(|| self.default.lock().unwrap().clone())
            .unwrap_or(Answer::Accept);
        match answer {
            Answer::Accept => {
                self.accepted.lock().unwrap().push(envelope);
                Ok(Accepted::default())
            }
            Answer::Refuse(err) => Err(err),
        }
    }
}

fn text(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    })
}

/// Spans named `{tag}:r{resource}s{scope}i{index}`, under resources and scopes that carry
/// the same tag, so a test can check every span kept its resource and scope.
fn traces(tag: &str, shape: &[&[usize]]) -> Traces {
    Traces(ExportTraceServiceRequest {
        resource_spans: shape
            .iter()
            .enumerate()
            .map(|(r, scopes)| trace::ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "res".into(),
                        value: text(&format!("{tag}:r{r}")),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: scopes
                    .iter()
                    .enumerate()
                    .map(|(s, n)| trace::ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: format!("{tag}:r{r}s{s}"),
                            ..Default::default()
                        }),
                        spans: (0..*n)
                            .map(|i| trace::Span {
                                name: format!("{tag}:r{r}s{s}i{i}"),
                                ..Default::default()
                            })
                            .collect(),
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    })
}

fn spans(n: usize) -> Envelope {
    Envelope::new(Payload::Traces(traces("x", &[&[n]])))
}

fn with_ack(mut envelope: Envelope) -> (Envelope, oneshot::Receiver<Result<(), ConsumeError>>) {
    let (ack, rx) = Ack::new();
    envelope.acks.push(ack);
    (envelope, rx)
}

fn from_tenant(envelope: Envelope, key: &str, tenant: Option<&str>) -> Envelope {
    let metadata = tenant
        .map(|t| vec![(key.to_string(), t.to_string())])
        .unwrap_or_default();
    envelope.with_client(Some(Arc::new(ClientInfo {
        addr: None,
        metadata,
    })))
}

/// (span name, resource tag, scope name) of every span, in order.
fn span_rows(payload: &Payload) -> Vec<(String, String, String)> {
    let Payload::Traces(t) = payload else {
        panic!("traces expected");
    };
    let mut rows = Vec::new();
    for rs in &t.0.resource_spans {
        let res = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.first())
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            let scope = ss
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default();
            for span in &ss.spans {
                rows.push((span.name.clone(), res.clone(), scope.clone()));
            }
        }
    }
    rows
}

struct Running {
    processor: Arc<dyn ConsumerComponent>,
    telemetry: Arc<Telemetry>,
    _status: watch::Sender<ServiceStatus>,
}

impl Running {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        self.processor.consume(envelope).await
    }

    fn metrics(&self) -> ferrotel_pipeline::telemetry::BatchProcessorMetrics {
        self.telemetry.batch_processor("batch", Signal::Traces)
    }

    /// The value at the end of the first rendered line starting with `prefix`.
    fn rendered(&self, prefix: &str) -> Option<String> {
        let text = self.telemetry.render();
        text.lines()
            .find(|l| l.starts_with(prefix) && l.contains("processor=\"batch\""))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    }
}

async fn start_with(yaml: &str, next: Arc<dyn Consumer>, telemetry: Arc<Telemetry>) -> Running {
    let factory = BatchProcessorFactory;
    let config = factory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .unwrap_or_else(|e| panic!("config {yaml}: {e}"));
    let processor = factory
        .create(
            CreateSettings {
                id: ComponentId::new("batch", None),
                telemetry: telemetry.clone(),
            },
            config.as_ref(),
            Signal::Traces,
            next,
        )
        .unwrap();
    let (status, status_rx) = watch::channel(ServiceStatus::Ready);
    processor
        .start(&Host {
            telemetry: telemetry.clone(),
            status: status_rx,
        })
        .await
        .unwrap();
    Running {
        processor,
        telemetry,
        _status: status,
    }
}

async fn start(yaml: &str, next: Arc<dyn Consumer>) -> Running {
    start_with(yaml, next, Telemetry::for_tests()).await
}

/// Lets the batching task run until `done` holds, in small steps of paused time; panics
/// after `limit` of virtual time.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() <= limit,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Lets the task run for `d` of virtual time.
async fn idle(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(start_paused = true)]
async fn reaching_send_batch_size_sends_at_once() {
    let sink = Sink::new();
    let p = start("send_batch_size: 10\ntimeout: 10s", sink.clone()).await;
    p.consume(spans(4)).await.unwrap();
    p.consume(spans(5)).await.unwrap();
    idle(Duration::from_secs(1)).await;
    assert_eq!(sink.batches(), 0, "9 items wait for more");
    let t0 = Instant::now();
    p.consume(spans(3)).await.unwrap();
    until(Duration::from_millis(50), || sink.batches() == 1).await;
    assert!(t0.elapsed() < Duration::from_millis(50));
    assert_eq!(
        sink.sizes(),
        vec![12],
        "a trigger, not a cap: all pending items go"
    );
    let m = p.metrics();
    assert_eq!(m.size_trigger_send.get(), 1);
    assert_eq!(m.timeout_trigger_send.get(), 0);
    assert_eq!(m.send_size.get_sample_count(), 1);
    assert_eq!(m.send_size.get_sample_sum(), 12.0);
    p.processor.shutdown().await.unwrap();
    assert_eq!(sink.sizes(), vec![12], "nothing left to flush");
}

#[tokio::test(start_paused = true)]
async fn timeout_sends_what_is_pending() {
    let sink = Sink::new();
    let p = start("send_batch_size: 100\ntimeout: 200ms", sink.clone()).await;
    let t0 = Instant::now();
    p.consume(spans(3)).await.unwrap();
    idle(Duration::from_millis(50)).await;
    p.consume(spans(2)).await.unwrap();
    until(Duration::from_secs(1), || sink.batches() == 1).await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited <= Duration::from_millis(202),
        "sent after {waited:?}, timeout counts from the first pending item"
    );
    assert_eq!(sink.sizes(), vec![5]);
    // The next batch gets a fresh timer.
    let t1 = Instant::now();
    p.consume(spans(1)).await.unwrap();
    until(Duration::from_secs(1), || sink.batches() == 2).await;
    assert!(t1.elapsed() >= Duration::from_millis(200));
    let m = p.metrics();
    assert_eq!(m.timeout_trigger_send.get(), 2);
    assert_eq!(m.size_trigger_send.get(), 0);
    p.processor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn zero_timeout_sends_every_envelope_at_once() {
    let sink = Sink::new();
    let p = start("timeout: 0s\nsend_batch_max_size: 8192", sink.clone()).await;
    p.consume(spans(2)).await.unwrap();
    until(Duration::from_millis(10), || sink.batches() == 1).await;
    p.consume(spans(3)).await.unwrap();
    until(Duration::from_millis(10), || sink.batches() == 2).await;
    assert_eq!(sink.sizes(), vec![2, 3]);
    assert_eq!(p.metrics().size_trigger_send.get(), 2);
    p.processor.shutdown().await.unwrap();
}

/// The same batch kept encoded, as a pass-through pipeline carries it.
fn encoded(t: &Traces) -> Payload {
    use prost::Message;
    Payload::Encoded(Encoded::parse(Signal::Traces, t.0.encode_to_vec().into()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn max_size_splits_keeping_resource_scope_and_every_item() {
    split_at_max_size(|t| Payload::Traces(t.clone())).await;
}

#[tokio::test(start_paused = true)]
async fn encoded_batches_merge_and_split_like_decoded_ones() {
    split_at_max_size(encoded).await;
}

/// Two inputs of 6 and 5 spans in `form`, batched at 3 with a maximum of 4.
async fn split_at_max_size(form: fn(&Traces) -> Payload) {
    let sink = Sink::new();
    let p = start(
        "send_batch_size: 3\nsend_batch_max_size: 4\ntimeout: 1s",
        sink.clone(),
    )
    .await;
    let a = traces("a", &[&[2, 3], &[1]]);
    let b = traces("b", &[&[5]]);
    let mut expected = span_rows(&Payload::Traces(a.clone()));
    expected.extend(span_rows(&Payload::Traces(b.clone())));
    let input_encoded = matches!(form(&a), Payload::Encoded(_));
    let (first, first_ack) = with_ack(Envelope::new(form(&a)));
    p.consume(first).await.unwrap();
    p.consume(Envelope::new(form(&b))).await.unwrap();
    until(Duration::from_secs(2), || {
        sink.sizes().iter().sum::<usize>() == 11
    })
    .await;
    let sizes = sink.sizes();
    assert!(sizes.iter().all(|n| *n <= 4), "{sizes:?}");
    // a (6 items) -> 4 sent, 2 pending (< 3); b arrives -> 7 pending -> 4, then 3.
    assert_eq!(sizes, vec![4, 4, 3]);
    let got: Vec<_> = sink
        .accepted
        .lock()
        .unwrap()
        .iter()
        .flat_map(|e| {
            let still_encoded = matches!(*e.payload, Payload::Encoded(_));
            assert_eq!(still_encoded, input_encoded, "the form is kept");
            span_rows(&e.payload.decoded().unwrap())
        })
        .collect();
    assert_eq!(got, expected, "order kept, nothing lost or duplicated");
    for (name, res, scope) in &got {
        let (tag_r, _) = scope.split_once('s').unwrap();
        assert!(
            name.starts_with(scope.as_str()),
            "{name} under scope {scope}"
        );
        assert_eq!(res, tag_r, "{name} under resource {res}");
    }
    // `a` went out in the first two batches: its acknowledgement waits for both.
    sink.release();
    assert_eq!(first_ack.await.unwrap(), Ok(()));
    p.processor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn metadata_keys_batch_each_value_combination_apart() {
    let sink = Sink::new();
    let p = start(
        "send_batch_size: 4\ntimeout: 1s\nmetadata_keys: [Tenant]",
        sink.clone(),
    )
    .await;
    p.consume(from_tenant(spans(2), "tenant", Some("a")))
        .await
        .unwrap();
    p.consume(from_tenant(spans(2), "tenant", Some("b")))
        .await
        .unwrap();
    p.consume(from_tenant(spans(1), "tenant", None))
        .await
        .unwrap();
    // Key match is case-insensitive.
    p.consume(from_tenant(spans(2), "TENANT", Some("a")))
        .await
        .unwrap();
    until(Duration::from_millis(50), || sink.batches() == 1).await;
    {
        let accepted = sink.accepted.lock().unwrap();
        assert_eq!(accepted[0].payload.item_count(), 4, "a reached 4 alone");
        let client = accepted[0].client.as_ref().unwrap();
        assert_eq!(
            client.metadata,
            vec![("tenant".to_string(), "a".to_string())]
        );
    }
    until(Duration::from_secs(2), || sink.batches() == 3).await;
    let mut rest: Vec<(Vec<(String, String)>, usize)> = sink.accepted.lock().unwrap()[1..]
        .iter()
        .map(|e| {
            (
                e.client.as_ref().unwrap().metadata.clone(),
                e.payload.item_count(),
            )
        })
        .collect();
    rest.sort();
    assert_eq!(
        rest,
        vec![
            (vec![], 1),
            (vec![("tenant".to_string(), "b".to_string())], 2)
        ],
        "a missing key is a partition of its own"
    );
    assert_eq!(p.metrics().metadata_cardinality.get(), 3);
    p.processor.shutdown().await.unwrap();
    assert_eq!(p.metrics().metadata_cardinality.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn past_the_cardinality_limit_new_combinations_are_refused_for_good() {
    let sink = Sink::new();
    let p = start(
        "send_batch_size: 100\ntimeout: 1s\nmetadata_keys: [tenant]\nmetadata_cardinality_limit: 2",
        sink.clone(),
    )
    .await;
    p.consume(from_tenant(spans(1), "tenant", Some("a")))
        .await
        .unwrap();
    p.consume(from_tenant(spans(1), "tenant", Some("b")))
        .await
        .unwrap();
    let err = p
        .consume(from_tenant(spans(1), "tenant", Some("c")))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(!err.kind.is_retryable());
    assert_eq!(err.message, TOO_MANY_BATCHERS);
    // Known combinations still pass.
    p.consume(from_tenant(spans(1), "tenant", Some("a")))
        .await
        .unwrap();
    assert_eq!(p.metrics().metadata_cardinality.get(), 2);
    p.processor.shutdown().await.unwrap();
    let mut sizes = sink.sizes();
    sizes.sort();
    assert_eq!(sizes, vec![1, 2]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_every_partition_and_then_refuses() {
    let sink = Sink::new();
    let p = start(
        "send_batch_size: 1000\ntimeout: 1h\nmetadata_keys: [tenant]",
        sink.clone(),
    )
    .await;
    for (tenant, n) in [("a", 3), ("b", 4), ("c", 5), ("a", 1)] {
        p.consume(from_tenant(spans(n), "tenant", Some(tenant)))
            .await
            .unwrap();
    }
    let t0 = Instant::now();
    p.processor.shutdown().await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(10),
        "no waiting for the timer"
    );
    let mut sizes = sink.sizes();
    sizes.sort();
    assert_eq!(sizes, vec![4, 4, 5]);
    assert_eq!(
        p.metrics().timeout_trigger_send.get(),
        3,
        "as upstream counts it"
    );
    let err = p.consume(spans(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(err.message.contains("shutting down"), "{}", err.message);
}

#[tokio::test(start_paused = true)]
async fn shutdown_without_start_still_sends_what_was_queued() {
    let sink = Sink::new();
    let factory = BatchProcessorFactory;
    let config = factory.decode(&Value::Null).unwrap();
    let processor = factory
        .create(
            CreateSettings {
                id: ComponentId::new("batch", None),
                telemetry: Telemetry::for_tests(),
            },
            config.as_ref(),
            Signal::Traces,
            sink.clone(),
        )
        .unwrap();
    processor.consume(spans(2)).await.unwrap();
    processor.shutdown().await.unwrap();
    assert_eq!(sink.sizes(), vec![2]);
}

#[tokio::test(start_paused = true)]
async fn a_retryable_refusal_holds_the_batch_and_retries_it() {
    let sink = Sink::new();
    for _ in 0..3 {
        sink.script
            .lock()
            .unwrap()
            .push_back(Answer::Refuse(ConsumeError::unavailable("queue full")));
    }
    let p = start("send_batch_size: 5\ntimeout: 1s", sink.clone()).await;
    let (envelope, ack) = with_ack(spans(5));
    p.consume(envelope).await.unwrap();
    until(Duration::from_secs(5), || sink.batches() == 1).await;
    assert_eq!(sink.attempts(), 4, "three refusals, then accepted");
    assert_eq!(sink.sizes(), vec![5]);
    sink.release();
    assert_eq!(ack.await.unwrap(), Ok(()));
    let m = p.metrics();
    assert_eq!(m.dropped_items.get(), 0);
    assert_eq!(m.send_size.get_sample_count(), 1, "one batch sent");
    p.processor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_answers_unavailable_within_a_bounded_time() {
    let sink = Sink::refusing(ConsumeError::unavailable("exporter queue is full"));
    let p = start("send_batch_size: 1\ntimeout: 200ms", sink.clone()).await;
    // The task takes the first batch and holds it, retrying.
    p.consume(spans(1)).await.unwrap();
    until(Duration::from_secs(1), || sink.attempts() >= 1).await;
    // Then the queue fills...
    for _ in 0..QUEUE_CAPACITY {
        let t = Instant::now();
        p.consume(spans(1)).await.unwrap();
        assert_eq!(t.elapsed(), Duration::ZERO, "room in the queue: no wait");
    }
    // ... and the next sender is told to retry, after waiting `timeout` for room.
    let t = Instant::now();
    let err = p.consume(spans(1)).await.unwrap_err();
    assert_eq!(t.elapsed(), Duration::from_millis(200));
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(
        err.message.contains("batch queue is full"),
        "{}",
        err.message
    );
    // Downstream recovers: everything accepted is delivered, nothing lost.
    sink.set_default(Answer::Accept);
    until(Duration::from_secs(5), || {
        sink.sizes().iter().sum::<usize>() == 1 + QUEUE_CAPACITY
    })
    .await;
    assert_eq!(p.metrics().dropped_items.get(), 0);
    p.consume(spans(1)).await.unwrap();
    p.processor.shutdown().await.unwrap();
    assert_eq!(sink.sizes().iter().sum::<usize>(), 2 + QUEUE_CAPACITY);
}

#[tokio::test(start_paused = true)]
async fn retrying_ends_after_the_budget_with_the_batch_dropped_and_acks_failed() {
    let sink = Sink::refusing(ConsumeError::unavailable("exporter queue is full"));
    let p = start("send_batch_size: 3\ntimeout: 1s", sink.clone()).await;
    let (envelope, ack) = with_ack(spans(3));
    let t0 = Instant::now();
    p.consume(envelope).await.unwrap();
    let result = ack.await.unwrap();
    let held = t0.elapsed();
    assert!(
        held >= RETRY_BUDGET && held <= RETRY_BUDGET + Duration::from_millis(10),
        "held for {held:?}"
    );
    let err = result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.message, "exporter queue is full");
    assert_eq!(p.metrics().dropped_items.get(), 3);
    assert_eq!(p.metrics().send_size.get_sample_count(), 0);
    assert!(sink.attempts() > 5, "retried with backoff");
    p.processor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_permanent_refusal_drops_counts_and_fails_acks() {
    let sink = Sink::refusing(ConsumeError::permanent("bad data"));
    let p = start("send_batch_size: 4\ntimeout: 1s", sink.clone()).await;
    let (a, ack_a) = with_ack(spans(2));
    let (b, ack_b) = with_ack(spans(2));
    p.consume(a).await.unwrap();
    p.consume(b).await.unwrap();
    let err = ack_a.await.unwrap().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert_eq!(err.message, "bad data");
    assert_eq!(ack_b.await.unwrap().unwrap_err().message, "bad data");
    assert_eq!(sink.attempts(), 1, "no retry of a permanent error");
    let m = p.metrics();
    assert_eq!(m.dropped_items.get(), 4);
    assert_eq!(m.send_size.get_sample_count(), 0);
    assert_eq!(m.size_trigger_send.get(), 0, "only successful sends count");
    p.processor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn acks_resolve_only_after_downstream_has_the_merged_batch() {
    let sink = Sink::new();
    let p = start("send_batch_size: 100\ntimeout: 500ms", sink.clone()).await;
    let (a, mut ack_a) = with_ack(spans(3));
    let (b, mut ack_b) = with_ack(spans(4));
    p.consume(a).await.unwrap();
    p.consume(b).await.unwrap();
    idle(Duration::from_millis(100)).await;
    assert!(ack_a.try_recv().is_err(), "still pending in the batch");
    until(Duration::from_secs(1), || sink.batches() == 1).await;
    {
        let accepted = sink.accepted.lock().unwrap();
        assert_eq!(accepted[0].payload.item_count(), 7);
        assert_eq!(
            accepted[0].acks.len(),
            2,
            "the merged batch carries both acks"
        );
    }
    assert!(
        ack_a.try_recv().is_err(),
        "downstream still holds the batch"
    );
    assert!(ack_b.try_recv().is_err());
    sink.release();
    assert_eq!(ack_a.await.unwrap(), Ok(()));
    assert_eq!(ack_b.await.unwrap(), Ok(()));
    p.processor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn metrics_have_upstream_names_and_values() {
    let sink = Sink::new();
    let p = start("send_batch_size: 4\ntimeout: 300ms", sink.clone()).await;
    p.consume(spans(6)).await.unwrap();
    until(Duration::from_millis(10), || sink.batches() == 1).await;
    p.consume(spans(2)).await.unwrap();
    until(Duration::from_secs(1), || sink.batches() == 2).await;
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_send_size_count{")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_send_size_sum{")
            .as_deref(),
        Some("8")
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_send_size_bucket{")
            .as_deref(),
        Some("2"),
        "first bucket (le=10) holds both"
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_size_trigger_send{")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_timeout_trigger_send{")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_metadata_cardinality{")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_send_size_bytes"),
        None,
        "bytes only at the detailed level"
    );
    p.processor.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn type_suffixes_and_the_detailed_level_are_respected() {
    let identity = ServiceIdentity {
        name: "ferrotel".into(),
        version: "t".into(),
        instance_id: "i".into(),
    };
    let telemetry = Telemetry::new(
        Naming {
            type_suffix: true,
            units: true,
        },
        &identity,
    )
    .unwrap();
    telemetry.set_detailed(true);
    let sink = Sink::new();
    let p = start_with("send_batch_size: 2\ntimeout: 1s", sink.clone(), telemetry).await;
    let envelope = spans(2);
    let bytes = envelope.payload.encoded_len();
    p.consume(envelope).await.unwrap();
    until(Duration::from_millis(10), || sink.batches() == 1).await;
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_size_trigger_send_total{")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_send_size_count{")
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_batch_send_size_bytes_sum{"),
        Some(bytes.to_string())
    );
    assert_eq!(
        p.rendered("otelcol_processor_batch_metadata_cardinality{")
            .as_deref(),
        Some("1")
    );
    p.processor.shutdown().await.unwrap();
}

#[test]
fn register_adds_both_processors() {
    let mut registry = Registry::default();
    ferrotel_processors::register(&mut registry);
    let names: Vec<&str> = registry.processors.keys().map(String::as_str).collect();
    // Other processors register here too; each one's own tests check its entry.
    for name in ["batch", "memory_limiter", "servicename"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let batch = &registry.processors["batch"].factory;
    for signal in Signal::ALL {
        assert!(batch.stability(signal).is_some());
    }
    let err = batch
        .decode(&Value::from_yaml_str("send_batch_size: 10\nsend_batch_max_size: 5").unwrap())
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "send_batch_max_size must be greater or equal to send_batch_size"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_bounds_retrying_when_downstream_keeps_refusing() {
    let sink = Sink::refusing(ConsumeError::unavailable("exporter queue is full"));
    let p = start(
        "send_batch_size: 2\ntimeout: 1s\nmetadata_keys: [tenant]",
        sink.clone(),
    )
    .await;
    // One batch held in retry, two more pending in other partitions.
    let (held, held_ack) = with_ack(from_tenant(spans(2), "tenant", Some("a")));
    p.consume(held).await.unwrap();
    until(Duration::from_secs(1), || sink.attempts() >= 1).await;
    let (b, b_ack) = with_ack(from_tenant(spans(1), "tenant", Some("b")));
    let (c, c_ack) = with_ack(from_tenant(spans(1), "tenant", Some("c")));
    p.consume(b).await.unwrap();
    p.consume(c).await.unwrap();
    let t0 = Instant::now();
    p.processor.shutdown().await.unwrap();
    let took = t0.elapsed();
    assert!(
        took >= SHUTDOWN_RETRY_BUDGET && took <= SHUTDOWN_RETRY_BUDGET + Duration::from_millis(10),
        "shutdown took {took:?}"
    );
    for ack in [held_ack, b_ack, c_ack] {
        assert_eq!(ack.await.unwrap().unwrap_err().kind, ErrorKind::Unavailable);
    }
    assert_eq!(p.metrics().dropped_items.get(), 4);
    assert_eq!(sink.batches(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_partly_taken_batch_is_not_sent_again() {
    let mut partial = ConsumeError::unavailable("exporter b: sending queue is full");
    partial.partial = true;
    let sink = Sink::refusing(partial);
    let p = start("send_batch_size: 4\ntimeout: 1s", sink.clone()).await;
    let (a, ack) = with_ack(spans(4));
    p.consume(a).await.unwrap();
    assert!(ack.await.unwrap().is_err(), "the loss shows on the ack");
    assert_eq!(
        sink.attempts(),
        1,
        "resending would duplicate it at the exporters that took it"
    );
    assert_eq!(p.metrics().dropped_items.get(), 4);
    p.processor.shutdown().await.unwrap();
}

/// A downstream that never answers (a blocking queue in front of a dead destination).
struct Stuck;

#[async_trait]
impl Consumer for Stuck {
    async fn consume(&self, _envelope: Envelope) -> ConsumeResult {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_bounded_when_downstream_never_answers() {
    let p = start("send_batch_size: 2\ntimeout: 1s", Arc::new(Stuck)).await;
    let (a, ack) = with_ack(spans(2));
    p.consume(a).await.unwrap();
    idle(Duration::from_millis(50)).await;
    let t0 = tokio::time::Instant::now();
    p.processor.shutdown().await.unwrap();
    assert!(
        t0.elapsed() <= SHUTDOWN_RETRY_BUDGET + Duration::from_secs(1),
        "{:?}",
        t0.elapsed()
    );
    assert!(ack.await.unwrap().is_err());
    assert_eq!(p.metrics().dropped_items.get(), 2);
}
