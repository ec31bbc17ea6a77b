//! Micro-benchmarks of the prometheus receiver's per-scrape work, without the network: the
//! text format and OpenMetrics parsers, and a scrape's whole CPU path (parse, the series
//! with the target's labels, the staleness bookkeeping, the scrape's own series, the
//! translation to OTLP). The input is the synthetic target's exposition (see
//! `ferrotel_bench::prom`): counters, gauges and untyped series with 3 to 6 labels,
//! histograms with 10 buckets, summaries, escaped label values and help texts. Throughput
//! is in samples (exposition lines) per second.
//!
//! `scrape/*` runs the receiver's own series building (`samples::series_of`), staleness
//! bookkeeping (`staleness::Previous`) and translation, as the loop does for a static target
//! with no `metric_relabel_configs` and no limits.
//!
//! `cargo bench -p ferrotel-bench --bench prometheus` runs them all; append `-- GROUP/NAME`
//! (for example `-- prometheus/parse`) to run some.

// A fixture that fails to parse is a broken benchmark: panicking is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ferrotel_bench::prom::{self, Exposition};
use ferrotel_pipeline::pdata::ExportMetricsServiceRequest;
use ferrotel_pipeline::Payload;
use ferrotel_receivers::prometheus::parse::{self, Format, Metadata, MetricType};
use ferrotel_receivers::prometheus::samples::{series_of, SampleRules};
use ferrotel_receivers::prometheus::staleness::Previous;
use ferrotel_receivers::prometheus::translate::{Series, Translator, REPORT_SERIES};
use prost::Message;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Samples of the main fixture.
const SAMPLES: usize = 10_000;
/// Samples of the large fixture, the size of the end-to-end scrape scenario.
const LARGE: usize = 100_000;
/// The scrape time given to samples without a timestamp.
const SCRAPE_MS: i64 = 1_700_000_000_000;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .nresamples(20_000)
        .without_plots()
}

fn format_of(f: prom::Format) -> Format {
    match f {
        prom::Format::Text => Format::Text,
        prom::Format::OpenMetrics => Format::OpenMetrics,
    }
}

/// A static target's labels, as the loop attaches them to every sample.
fn target_labels() -> Vec<(String, String)> {
    vec![
        ("instance".to_string(), "10.0.7.21:9464".to_string()),
        ("job".to_string(), "checkout".to_string()),
    ]
}

/// Parse, then one `Series` per sample with the target's labels (the receiver's own
/// series building, for a static target without relabeling or limits), and the family
/// metadata.
fn series(
    body: &[u8],
    format: Format,
    target: &[(String, String)],
    metadata: &mut HashMap<String, Metadata>,
) -> (Vec<Series>, usize) {
    let rules = SampleRules {
        target_labels: target,
        honor_labels: false,
        honor_timestamps: true,
        metric_rules: &[],
        label_limit: 0,
        sample_limit: 0,
    };
    series_of(body, format, &rules, SCRAPE_MS, metadata).unwrap()
}

/// The loop's staleness bookkeeping alone (the receiver's own `staleness::Previous`): this
/// scrape compared with the previous one, then its series kept for the next. Returns the
/// series added.
fn staleness(series: Vec<Series>, previous: &mut Previous) -> usize {
    let mut series = series;
    let compared = previous.compare(&mut series, SCRAPE_MS);
    let added = compared.added;
    previous.replace(compared, series);
    added
}

/// A whole scrape's CPU work after the body arrived, as the loop does it: series, the
/// staleness bookkeeping (`previous` holds the previous scrape's series, as in a loop's
/// steady state), the five scrape series, then the translation to one OTLP request.
fn scrape(
    body: &[u8],
    format: Format,
    target: &[(String, String)],
    previous: &mut Previous,
) -> ExportMetricsServiceRequest {
    let mut metadata = HashMap::new();
    let (mut series, scraped) = series(body, format, target, &mut metadata);
    let n = series.len() as f64;
    let compared = previous.compare(&mut series, SCRAPE_MS);
    let added = compared.added;
    let report = [1.0, 0.5, scraped as f64, n, added as f64];
    for ((name, help, unit), value) in REPORT_SERIES.iter().zip(report) {
        metadata.insert(
            (*name).to_string(),
            Metadata {
                kind: Some(MetricType::Gauge),
                help: Some((*help).to_string()),
                unit: unit.map(str::to_string),
            },
        );
        series.push(Series {
            name: (*name).to_string(),
            labels: target.to_vec(),
            value,
            timestamp_ms: SCRAPE_MS,
            exemplar: None,
        });
    }
    let resource_metrics = translator(&metadata).translate(&series);
    previous.replace(compared, series);
    ExportMetricsServiceRequest { resource_metrics }
}

/// The translator of a plain static target (`http`, no discovery labels, names kept).
fn translator(metadata: &HashMap<String, Metadata>) -> Translator<'_> {
    Translator {
        scheme: "http",
        metadata,
        trim_suffixes: false,
        scope_version: "0.1.0",
        discovered: &[],
    }
}

struct Fixture {
    text: Exposition,
    openmetrics: Exposition,
}

fn fixture(samples: usize) -> Fixture {
    let text = prom::exposition(samples, prom::Format::Text);
    let openmetrics = prom::exposition(samples, prom::Format::OpenMetrics);
    let target = target_labels();
    for (format, e) in [
        (prom::Format::Text, &text),
        (prom::Format::OpenMetrics, &openmetrics),
    ] {
        let parsed = parse::parse(&e.body, format_of(format)).unwrap();
        assert_eq!(parsed.samples.len(), samples, "{format:?}");
        let request = scrape(
            &e.body,
            format_of(format),
            &target,
            &mut Previous::default(),
        );
        let payload = Payload::from(request.clone());
        // Every series becomes a data point, and the five scrape series too.
        assert_eq!(
            payload.item_count(),
            e.points + REPORT_SERIES.len(),
            "{format:?}"
        );
        eprintln!(
            "{format:?} exposition: {samples} samples in {} families, {} bytes ({} per sample); {} OTLP data points, {} bytes of protobuf",
            e.families,
            e.body.len(),
            e.body.len() / samples,
            payload.item_count(),
            request.encoded_len(),
        );
    }
    Fixture { text, openmetrics }
}

fn prometheus(c: &mut Criterion) {
    let f = fixture(SAMPLES);
    let target = target_labels();
    let mut g = c.benchmark_group("prometheus");
    g.throughput(Throughput::Elements(SAMPLES as u64));
    g.bench_function("parse/text", |b| {
        b.iter(|| parse::parse(black_box(&f.text.body), Format::Text).unwrap())
    });
    g.bench_function("parse/openmetrics", |b| {
        b.iter(|| parse::parse(black_box(&f.openmetrics.body), Format::OpenMetrics).unwrap())
    });
    g.bench_function("series/text", |b| {
        b.iter(|| {
            let mut metadata = HashMap::new();
            series(
                black_box(&f.text.body),
                Format::Text,
                &target,
                &mut metadata,
            )
        })
    });
    let mut metadata = HashMap::new();
    let (mut built, _) = series(&f.text.body, Format::Text, &target, &mut metadata);
    // A previous scrape of the same series, and the bookkeeping alone (each run gets its
    // own copy of the series, made outside the measurement, as the loop owns its scrape's).
    let mut previous = Previous::default();
    staleness(built.clone(), &mut previous);
    g.bench_function("staleness/text", |b| {
        b.iter_batched(
            || built.clone(),
            |copy| staleness(black_box(copy), &mut previous),
            criterion::BatchSize::LargeInput,
        )
    });
    for (name, _, _) in REPORT_SERIES {
        metadata.insert(
            name.to_string(),
            Metadata {
                kind: Some(MetricType::Gauge),
                ..Default::default()
            },
        );
        built.push(Series {
            name: name.to_string(),
            labels: target.clone(),
            value: 1.0,
            timestamp_ms: SCRAPE_MS,
            exemplar: None,
        });
    }
    g.bench_function("translate/text", |b| {
        let translator = translator(&metadata);
        b.iter(|| translator.translate(black_box(&built)))
    });
    for (name, e, format) in [
        ("scrape/text", &f.text, Format::Text),
        ("scrape/openmetrics", &f.openmetrics, Format::OpenMetrics),
    ] {
        // The previous scrape's series, as in a loop's steady state.
        let mut previous = Previous::default();
        scrape(&e.body, format, &target, &mut previous);
        g.bench_function(name, |b| {
            b.iter(|| scrape(black_box(&e.body), format, &target, &mut previous))
        });
    }
    // What the OTLP exporter pays next for the scrape's request.
    let request = scrape(
        &f.text.body,
        Format::Text,
        &target,
        &mut Previous::default(),
    );
    g.bench_function("encode/text", |b| {
        b.iter(|| black_box(&request).encode_to_vec())
    });
    g.finish();
}

/// The whole scrape path at the size of the end-to-end scenario.
fn prometheus_large(c: &mut Criterion) {
    let f = fixture(LARGE);
    let target = target_labels();
    let mut g = c.benchmark_group("prometheus_100k");
    g.throughput(Throughput::Elements(LARGE as u64));
    // Each iteration takes a good part of a second: few, flat samples.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.bench_function("parse/text", |b| {
        b.iter(|| parse::parse(black_box(&f.text.body), Format::Text).unwrap())
    });
    let built = series(&f.text.body, Format::Text, &target, &mut HashMap::new()).0;
    let mut previous = Previous::default();
    staleness(built.clone(), &mut previous);
    g.bench_function("staleness/text", |b| {
        b.iter_batched(
            || built.clone(),
            |copy| staleness(black_box(copy), &mut previous),
            criterion::BatchSize::LargeInput,
        )
    });
    for (name, e, format) in [
        ("scrape/text", &f.text, Format::Text),
        ("scrape/openmetrics", &f.openmetrics, Format::OpenMetrics),
    ] {
        let mut previous = Previous::default();
        scrape(&e.body, format, &target, &mut previous);
        g.bench_function(name, |b| {
            b.iter(|| scrape(black_box(&e.body), format, &target, &mut previous))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = prometheus, prometheus_large
}
criterion_main!(benches);
