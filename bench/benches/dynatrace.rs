//! Micro-benchmark of the `dynatrace` exporter's serialisation: OTLP metrics to Metrics API
//! v2 lines (key and dimension normalisation, escaping, number formatting, histogram
//! summaries) and the split into requests of at most 1000 lines and 1 MB, on the load
//! generator's metric batches (histograms with 15 buckets, sums and gauges, 4 attributes per
//! data point, Kubernetes-like resources, with and without their 12 attributes converted to
//! dimensions). The batch's cumulative
//! metrics are marked delta first, as the exporter's conversion leaves them. Throughput is in
//! data points per second on one core.
//!
//! `cargo bench -p ferrotel-bench --bench dynatrace`.

// A fixture that fails is a broken benchmark: panicking is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrotel_bench::payload::{Shape, Signal, Templates};
use ferrotel_exporters::dynatrace::chunk;
use ferrotel_exporters::dynatrace::lines::{self, Settings};
use ferrotel_exporters::dynatrace::serialize::Dimensions;
use ferrotel_pipeline::pdata::metrics::metric;
use ferrotel_pipeline::pdata::ExportMetricsServiceRequest;
use prost::Message;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const ITEMS: usize = 512;
const REQUESTS: u64 = 16;
const SENT: u64 = 1_700_000_000_000_000_000;

fn batch() -> ExportMetricsServiceRequest {
    let templates = Templates::build(&Shape::new(Signal::Metrics, ITEMS), false);
    let mut merged = ExportMetricsServiceRequest::default();
    for n in 0..REQUESTS {
        let bytes = templates.render(n, n * ITEMS as u64, SENT);
        let mut req = ExportMetricsServiceRequest::decode(&bytes[..]).unwrap();
        for rm in &mut req.resource_metrics {
            for sm in &mut rm.scope_metrics {
                for m in &mut sm.metrics {
                    match &mut m.data {
                        Some(metric::Data::Sum(s)) if s.is_monotonic => {
                            s.aggregation_temporality = 1
                        }
                        Some(metric::Data::Histogram(h)) => h.aggregation_temporality = 1,
                        _ => {}
                    }
                }
            }
        }
        merged.resource_metrics.extend(req.resource_metrics);
    }
    merged
}

fn dynatrace(c: &mut Criterion) {
    let input = batch();
    let mut default_dimensions = Dimensions::default();
    default_dimensions.push("deployment.environment", "production");
    let settings = Settings {
        prefix: "bench".to_string(),
        default_dimensions,
        resource_to_telemetry: true,
    };
    let converted = lines::convert(&input.resource_metrics, &settings);
    assert_eq!(converted.dropped_points, 0, "{}", converted.drop_message());
    let points = converted.len();
    let mut g = c.benchmark_group("dynatrace");
    g.throughput(Throughput::Elements(points as u64));
    g.bench_function(format!("lines_with_resource/{points}_points"), |b| {
        b.iter(|| {
            let out = lines::convert(black_box(&input.resource_metrics), &settings);
            black_box(chunk(out))
        })
    });
    // Without the resource's 12 attributes as dimensions: shorter lines.
    let settings = Settings {
        resource_to_telemetry: false,
        ..settings
    };
    g.bench_function(format!("lines/{points}_points"), |b| {
        b.iter(|| {
            let out = lines::convert(black_box(&input.resource_metrics), &settings);
            black_box(chunk(out))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .nresamples(20_000)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = dynatrace
}
criterion_main!(benches);
