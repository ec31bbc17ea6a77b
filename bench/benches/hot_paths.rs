//! Micro-benchmarks of the agent's hot paths, on the load generator's realistic requests
//! (512 items each, Kubernetes-like resources, 10 attributes and one event per span):
//! OTLP protobuf decode and encode, compression, batch merge and split, fan-out, attribute
//! edits, the floor (decode + encode + gzip of one request: what any pipeline that decodes
//! the data and exports it with gzip pays per span, however lean the rest is) and the
//! pass-through path that stays below it. Throughput is in items (spans, metric data points,
//! log records) per second.
//!
//! `cargo bench -p ferrotel-bench --bench hot_paths` runs them all; append `-- GROUP` (for
//! example `-- floor`) to run some.

// A fixture that fails to build or to decode is a broken benchmark: panicking is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use ferrotel_bench::payload::{Shape, Signal, Templates};
use ferrotel_pipeline::compression::{compress, decompress};
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::{
    Encoded, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    Signal as PipelineSignal,
};
use ferrotel_pipeline::{Envelope, Payload};
use prost::Message;

// The agent runs on jemalloc; decoding and cloning are allocation-heavy, so measure with it.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Items per request, as in the end-to-end benchmark.
const ITEMS: usize = 512;
/// Requests merged into one batch: 16 x 512 = 8192, the batch size of the end-to-end runs.
const BATCH_REQUESTS: usize = 16;
/// Items per piece when a batch is split.
const SPLIT_AT: usize = 1000;
/// Decompression limit: far above any request here.
const BODY_LIMIT: usize = 64 << 20;
/// The send time stamped on every resource.
const SENT: u64 = 1_700_000_000_000_000_000;
/// The attribute the attributes benchmarks upsert (absent from every span, so it is added).
const UPSERT_KEY: &str = "deployment.environment.name";
/// The attribute the attributes benchmarks delete (on most spans).
const DELETE_KEY: &str = "server.address";

/// `count` encoded protobuf requests of `ITEMS` items, cycling through the generator's
/// templates (services, pods), numbered as a load run would number them.
fn requests(signal: Signal, count: usize) -> Vec<Vec<u8>> {
    let templates = Templates::build(&Shape::new(signal, ITEMS), false);
    (0..count as u64)
        .map(|n| templates.render(n, n * ITEMS as u64, SENT))
        .collect()
}

fn request(signal: Signal) -> Vec<u8> {
    requests(signal, 1).remove(0)
}

/// Short runs (the whole file takes under two minutes); 30 samples give a median that rides
/// out a busy neighbour on a shared machine.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .nresamples(20_000)
        .without_plots()
}

fn group<'a>(c: &'a mut Criterion, name: &str, items: usize) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(items as u64));
    g
}

/// Protobuf decode and encode of one request per signal.
fn otlp_codec(c: &mut Criterion) {
    let traces = request(Signal::Traces);
    let metrics = request(Signal::Metrics);
    let logs = request(Signal::Logs);
    let t = ExportTraceServiceRequest::decode(&traces[..]).unwrap();
    let m = ExportMetricsServiceRequest::decode(&metrics[..]).unwrap();
    let l = ExportLogsServiceRequest::decode(&logs[..]).unwrap();
    for (signal, bytes, payload) in [
        ("traces", &traces, Payload::from(t.clone())),
        ("metrics", &metrics, Payload::from(m.clone())),
        ("logs", &logs, Payload::from(l.clone())),
    ] {
        assert_eq!(payload.item_count(), ITEMS, "{signal}");
        eprintln!(
            "{signal} request: {ITEMS} items, {} bytes of protobuf ({} per item)",
            bytes.len(),
            bytes.len() / ITEMS
        );
    }

    let mut g = group(c, "otlp_codec", ITEMS);
    g.bench_function("decode/traces", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(&traces[..])).unwrap())
    });
    g.bench_function("encode/traces", |b| {
        b.iter(|| black_box(&t).encode_to_vec())
    });
    g.bench_function("decode/metrics", |b| {
        b.iter(|| ExportMetricsServiceRequest::decode(black_box(&metrics[..])).unwrap())
    });
    g.bench_function("encode/metrics", |b| {
        b.iter(|| black_box(&m).encode_to_vec())
    });
    g.bench_function("decode/logs", |b| {
        b.iter(|| ExportLogsServiceRequest::decode(black_box(&logs[..])).unwrap())
    });
    g.bench_function("encode/logs", |b| b.iter(|| black_box(&l).encode_to_vec()));
    g.finish();
}

/// Compression of one encoded trace request, as an exporter does (gzip level 6, zstd
/// level 3), and gzip decompression, as a receiver does.
fn compression(c: &mut Criterion) {
    let body = request(Signal::Traces);
    let gzipped = Bytes::from(compress(Some("gzip"), &body).unwrap());
    let zstded = Bytes::from(compress(Some("zstd"), &body).unwrap());
    assert_eq!(
        decompress("gzip", gzipped.clone(), BODY_LIMIT).unwrap(),
        body
    );
    eprintln!(
        "traces request: {} bytes, gzip 6: {} bytes, zstd 3: {} bytes",
        body.len(),
        gzipped.len(),
        zstded.len()
    );

    let mut g = group(c, "compression", ITEMS);
    g.bench_function("gzip6/traces", |b| {
        b.iter(|| compress(Some("gzip"), black_box(&body)).unwrap())
    });
    g.bench_function("zstd3/traces", |b| {
        b.iter(|| compress(Some("zstd"), black_box(&body)).unwrap())
    });
    g.bench_function("gunzip/traces", |b| {
        b.iter(|| decompress("gzip", black_box(gzipped.clone()), BODY_LIMIT).unwrap())
    });
    g.bench_function("unzstd/traces", |b| {
        b.iter(|| decompress("zstd", black_box(zstded.clone()), BODY_LIMIT).unwrap())
    });
    g.finish();
}

/// 16 decoded requests of 512 spans, as the batch processor receives them.
fn decoded_requests() -> Vec<Payload> {
    requests(Signal::Traces, BATCH_REQUESTS)
        .iter()
        .map(|r| Payload::from(ExportTraceServiceRequest::decode(&r[..]).unwrap()))
        .collect()
}

fn merge_all(parts: Vec<Payload>) -> Payload {
    let mut parts = parts.into_iter();
    let mut batch = parts.next().unwrap();
    for part in parts {
        batch.merge(part).unwrap();
    }
    batch
}

fn split_all(mut batch: Payload) -> Vec<Payload> {
    let mut pieces = Vec::new();
    while !batch.is_empty() {
        pieces.push(batch.split_front(SPLIT_AT));
    }
    pieces
}

/// The batch processor's work: merging requests into one batch, cutting a batch into
/// pieces of a maximum size. The inputs are copied outside the timed part.
fn batch(c: &mut Criterion) {
    let parts = decoded_requests();
    let merged = merge_all(parts.clone());
    let total = BATCH_REQUESTS * ITEMS;
    assert_eq!(merged.item_count(), total);
    let pieces = split_all(merged.clone());
    assert_eq!(pieces.len(), total.div_ceil(SPLIT_AT));
    assert_eq!(pieces.iter().map(Payload::item_count).sum::<usize>(), total);

    let mut g = group(c, "batch", total);
    // Each iteration first copies 8192 spans: a fixed iteration count per sample keeps the
    // run short.
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("merge/16x512_spans", |b| {
        b.iter_batched(|| parts.clone(), merge_all, BatchSize::LargeInput)
    });
    g.bench_function("split_front/8192_spans_by_1000", |b| {
        b.iter_batched(|| merged.clone(), split_all, BatchSize::LargeInput)
    });
    g.finish();
}

/// One more exporter on a pipeline: another reference to the batch (what the agent does)
/// against a deep copy of it (what it would cost to copy), both freed again.
fn fanout(c: &mut Criterion) {
    let envelope = Envelope::new(merge_all(decoded_requests()));
    let total = envelope.payload.item_count();

    let mut g = group(c, "fanout", total);
    // The deep copy takes milliseconds: see `batch`.
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("fork/8192_spans", |b| {
        b.iter(|| black_box(&envelope).fork())
    });
    g.bench_function("deep_clone/8192_spans", |b| {
        b.iter(|| Payload::clone(black_box(&envelope.payload)))
    });
    g.finish();
}

/// Sets `key` to a string on every span, replacing its value if present, else adding it.
fn upsert_span_attribute(req: &mut ExportTraceServiceRequest, key: &str, value: &str) {
    for span in req
        .resource_spans
        .iter_mut()
        .flat_map(|rs| &mut rs.scope_spans)
        .flat_map(|ss| &mut ss.spans)
    {
        let value = Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        });
        match span.attributes.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => span.attributes.push(KeyValue {
                key: key.to_string(),
                value,
                ..Default::default()
            }),
        }
    }
}

/// Removes `key` from every span.
fn delete_span_attribute(req: &mut ExportTraceServiceRequest, key: &str) {
    for span in req
        .resource_spans
        .iter_mut()
        .flat_map(|rs| &mut rs.scope_spans)
        .flat_map(|ss| &mut ss.spans)
    {
        span.attributes.retain(|kv| kv.key != key);
    }
}

/// What an attributes processor does per item, on the decoded request.
fn attributes(c: &mut Criterion) {
    let req = ExportTraceServiceRequest::decode(&request(Signal::Traces)[..]).unwrap();
    let spans = req.resource_spans[0].scope_spans[0].spans.len();
    let with_key = req.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .filter(|s| s.attributes.iter().any(|kv| kv.key == DELETE_KEY))
        .count();
    eprintln!("attributes: {DELETE_KEY} is on {with_key} of {spans} spans");

    let mut g = group(c, "attributes", ITEMS);
    g.bench_function("upsert/traces", |b| {
        b.iter_batched(
            || req.clone(),
            |mut r| {
                upsert_span_attribute(&mut r, UPSERT_KEY, "production");
                r
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("delete/traces", |b| {
        b.iter_batched(
            || req.clone(),
            |mut r| {
                delete_span_attribute(&mut r, DELETE_KEY);
                r
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The floor: decode, encode and gzip one request, the CPU any pipeline that decodes the
/// data and exports it with gzip spends per span however lean the rest is; and decode +
/// encode alone, the floor without compression.
fn floor(c: &mut Criterion) {
    let body = request(Signal::Traces);

    let mut g = group(c, "floor", ITEMS);
    g.bench_function("decode_encode/traces", |b| {
        b.iter(|| {
            ExportTraceServiceRequest::decode(black_box(&body[..]))
                .unwrap()
                .encode_to_vec()
        })
    });
    g.bench_function("decode_encode_gzip/traces", |b| {
        b.iter(|| {
            let encoded = ExportTraceServiceRequest::decode(black_box(&body[..]))
                .unwrap()
                .encode_to_vec();
            compress(Some("gzip"), &encoded).unwrap()
        })
    });
    g.finish();
}

/// The pass-through path, for pipelines that never look inside the data: the receiver checks
/// the request in full without decoding it, batching appends and cuts encoded requests, and
/// the exporter sends those bytes; with gzip export that is the check plus gzip, below the
/// floor of a pipeline that decodes.
fn passthrough(c: &mut Criterion) {
    let body = Bytes::from(request(Signal::Traces));
    let encoded = Encoded::parse(PipelineSignal::Traces, body.clone()).unwrap();
    assert_eq!(encoded.item_count(), ITEMS);
    assert_eq!(encoded.to_vec(), body);

    let mut g = group(c, "passthrough", ITEMS);
    g.bench_function("check/traces", |b| {
        b.iter(|| Encoded::parse(PipelineSignal::Traces, black_box(body.clone())).unwrap())
    });
    // The batch processor's work on encoded requests: 16 appended, then cut into pieces of
    // 1000 spans (a piece boundary inside a request decodes and re-encodes that resource).
    let parts: Vec<Payload> = requests(Signal::Traces, BATCH_REQUESTS)
        .into_iter()
        .map(|r| Payload::Encoded(Encoded::parse(PipelineSignal::Traces, r.into()).unwrap()))
        .collect();
    let merged = merge_all(parts.clone());
    assert_eq!(merged.item_count(), BATCH_REQUESTS * ITEMS);
    assert_eq!(
        split_all(merged.clone())
            .iter()
            .map(Payload::item_count)
            .sum::<usize>(),
        BATCH_REQUESTS * ITEMS
    );
    g.throughput(Throughput::Elements((BATCH_REQUESTS * ITEMS) as u64));
    g.bench_function("merge/16x512_spans", |b| {
        b.iter_batched(|| parts.clone(), merge_all, BatchSize::SmallInput)
    });
    g.bench_function("split_front/8192_spans_by_1000", |b| {
        b.iter_batched(|| merged.clone(), split_all, BatchSize::SmallInput)
    });
    g.throughput(Throughput::Elements(ITEMS as u64));
    g.bench_function("check_gzip/traces", |b| {
        b.iter(|| {
            let encoded = Encoded::parse(PipelineSignal::Traces, black_box(body.clone())).unwrap();
            compress(Some("gzip"), &encoded.to_vec()).unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = otlp_codec, compression, batch, fanout, attributes, floor, passthrough
}
criterion_main!(hot_paths);
