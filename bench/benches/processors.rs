//! Micro-benchmarks of the editing processors on the load generator's realistic batches
//! (8192 spans or log records: 16 requests of 512, Kubernetes-like resources, 10 attributes
//! per span): `filter`, `attributes` and `transform` alone, and the three in a row, each
//! built by its factory from the YAML below, as the agent builds them. Throughput is in
//! items per second on one core; copying the input batch and freeing the output are outside
//! the timed part.
//!
//! `cargo bench -p ferrotel-bench --bench processors` runs them all; append `-- GROUP` (for
//! example `-- processors/traces`) to run some.

// A fixture or a config that fails is a broken benchmark: panicking is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use ferrotel_bench::payload::{Shape, Signal, Templates};
use ferrotel_pipeline::component::{Accepted, ConsumeResult, Consumer, CreateSettings};
use ferrotel_pipeline::config::id::ComponentId;
use ferrotel_pipeline::config::value::Value;
use ferrotel_pipeline::factory::ProcessorFactory;
use ferrotel_pipeline::pdata::{
    ExportLogsServiceRequest, ExportTraceServiceRequest, Signal as PipelineSignal,
};
use ferrotel_pipeline::telemetry::Telemetry;
use ferrotel_pipeline::{Envelope, Payload};
use ferrotel_processors::attributes::AttributesProcessorFactory;
use ferrotel_processors::filter::FilterProcessorFactory;
use ferrotel_processors::transform::TransformProcessorFactory;
use prost::Message;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const ITEMS: usize = 512;
const REQUESTS: usize = 16;
const SENT: u64 = 1_700_000_000_000_000_000;

/// Drops noise: health checks and chatty logs (none of the generated items match, so every
/// condition is evaluated on every item and nothing is dropped; the work stays the same from
/// one iteration to the next).
const FILTER: &str = r#"
error_mode: ignore
traces:
  span:
    - 'attributes["http.route"] == "/healthz"'
    - 'IsMatch(name, "^health")'
logs:
  log_record:
    - 'severity_number < SEVERITY_NUMBER_TRACE2 and severity_number != SEVERITY_NUMBER_UNSPECIFIED'
    - 'IsMatch(body, "^GET /healthz")'
"#;

/// Adds, deletes and hashes attributes.
const ATTRIBUTES: &str = r#"
actions:
  - {key: deployment.environment.name, value: production, action: insert}
  - {key: db.query.text, action: delete}
  - {key: client.address, action: hash}
"#;

/// Route templates, error status, truncation; log severity text from the number.
const TRANSFORM: &str = r#"
error_mode: ignore
trace_statements:
  - context: span
    statements:
      - set(attributes["http.route.template"], attributes["http.route"]) where kind == SPAN_KIND_SERVER
      - set(status.code, STATUS_CODE_ERROR) where attributes["http.response.status_code"] >= 500
      - replace_pattern(name, "[0-9]+", "{id}")
      - truncate_all(attributes, 256)
log_statements:
  - context: log
    statements:
      - set(severity_text, "ERROR") where severity_number >= SEVERITY_NUMBER_ERROR
      - set(attributes["logger"], resource.attributes["service.name"]) where attributes["log.logger"] == nil
      - truncate_all(attributes, 256)
"#;

/// Keeps the last batch, so that the benchmark hands it back and it is freed outside the
/// timed part (freeing 8192 spans costs about as much as a processor's work).
#[derive(Default)]
struct Keep(Mutex<Option<Envelope>>);

#[async_trait]
impl Consumer for Keep {
    async fn consume(&self, envelope: Envelope) -> ConsumeResult {
        *self.0.lock().unwrap() = Some(envelope);
        Ok(Accepted::default())
    }
}

fn build<F: ProcessorFactory>(
    factory: F,
    yaml: &str,
    signal: PipelineSignal,
    next: Arc<dyn Consumer>,
) -> Arc<dyn Consumer> {
    let config = factory
        .decode(&Value::from_yaml_str(yaml).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", factory.type_name()));
    let settings = CreateSettings {
        id: ComponentId::new(factory.type_name(), None),
        telemetry: Telemetry::for_tests(),
    };
    factory
        .create(settings, config.as_ref(), signal, next)
        .unwrap()
}

fn batch(signal: Signal) -> Payload {
    let templates = Templates::build(&Shape::new(signal, ITEMS), false);
    let mut parts = (0..REQUESTS as u64).map(|n| {
        let bytes = templates.render(n, n * ITEMS as u64, SENT);
        match signal {
            Signal::Traces => Payload::from(ExportTraceServiceRequest::decode(&bytes[..]).unwrap()),
            _ => Payload::from(ExportLogsServiceRequest::decode(&bytes[..]).unwrap()),
        }
    });
    let mut merged = parts.next().unwrap();
    for p in parts {
        merged.merge(p).unwrap();
    }
    merged
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .nresamples(20_000)
        .without_plots()
}

fn run_signal(c: &mut Criterion, signal: Signal, name: &str) {
    let pipeline_signal = match signal {
        Signal::Traces => PipelineSignal::Traces,
        _ => PipelineSignal::Logs,
    };
    let input = batch(signal);
    let items = input.item_count();
    assert_eq!(items, ITEMS * REQUESTS);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keep = Arc::new(Keep::default());
    let discard: Arc<dyn Consumer> = keep.clone();
    let stages: Vec<(&str, Arc<dyn Consumer>)> = vec![
        // No processor: what handing the batch on costs, in every row.
        ("none", discard.clone()),
        (
            "filter",
            build(
                FilterProcessorFactory,
                FILTER,
                pipeline_signal,
                discard.clone(),
            ),
        ),
        (
            "attributes",
            build(
                AttributesProcessorFactory,
                ATTRIBUTES,
                pipeline_signal,
                discard.clone(),
            ),
        ),
        (
            "transform",
            build(
                TransformProcessorFactory,
                TRANSFORM,
                pipeline_signal,
                discard.clone(),
            ),
        ),
        ("filter+attributes+transform", {
            let t = build(
                TransformProcessorFactory,
                TRANSFORM,
                pipeline_signal,
                discard.clone(),
            );
            let a = build(AttributesProcessorFactory, ATTRIBUTES, pipeline_signal, t);
            build(FilterProcessorFactory, FILTER, pipeline_signal, a)
        }),
    ];
    let mut g = c.benchmark_group(format!("processors/{name}"));
    g.throughput(Throughput::Elements(items as u64));
    g.sampling_mode(SamplingMode::Flat);
    for (stage, consumer) in stages {
        g.bench_function(format!("{stage}/{items}"), |b| {
            b.iter_batched(
                || Envelope::new(input.clone()),
                |env| {
                    rt.block_on(consumer.consume(env)).unwrap();
                    black_box(keep.0.lock().unwrap().take())
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn processors(c: &mut Criterion) {
    run_signal(c, Signal::Traces, "traces");
    run_signal(c, Signal::Logs, "logs");
}

criterion_group! {
    name = benches;
    config = config();
    targets = processors
}
criterion_main!(benches);
