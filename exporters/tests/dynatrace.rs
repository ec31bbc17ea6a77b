//! The `dynatrace` exporter against a local server that implements the Metrics API v2 ingest
//! contract as documented: the `Api-Token` header, `text/plain`, at most 1 MB, every line
//! checked against the line protocol's grammar and limits, 202 or 400 with the documented
//! JSON. And its OTLP side against an OTLP/HTTP backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use common::{http_server, start};
use ferrotel_exporters::dynatrace::DynatraceExporterFactory;
use ferrotel_pipeline::pdata::common::{any_value, AnyValue, KeyValue};
use ferrotel_pipeline::pdata::metrics::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use ferrotel_pipeline::pdata::resource::Resource;
use ferrotel_pipeline::pdata::{ExportMetricsServiceRequest, Metrics, Payload};

const TOKEN: &str = "dt0c01.SECRET-TOKEN";
const T0: u64 = 1_700_000_000_000_000_000;

// ------------------------------------------------------------- the ingest contract

/// Why a line breaks the documented grammar or limits, if it does.
fn check_line(line: &str) -> Result<(), String> {
    if line.len() > 50_000 {
        return Err("line too long".into());
    }
    // Key and dimensions end at the first space that is not escaped.
    let mut split = None;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b' ' => {
                split = Some(i);
                break;
            }
            _ => i += 1,
        }
    }
    let split = split.ok_or("no payload")?;
    let (head, rest) = (&line[..split], &line[split + 1..]);
    let mut fields = split_unescaped(head, b',');
    let key = fields.remove(0);
    check_key(&key)?;
    if fields.len() > 50 {
        return Err("more than 50 dimensions".into());
    }
    for dim in fields {
        let (k, v) = dim.split_once('=').ok_or("dimension without =")?;
        let ok_key = !k.is_empty()
            && k.len() <= 100
            && k.chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._:-".contains(c));
        if !ok_key {
            return Err(format!("bad dimension key {k:?}"));
        }
        check_value(v)?;
    }
    let mut parts = rest.split(' ');
    let payload = parts.next().ok_or("no payload")?;
    if let Some(ts) = parts.next() {
        ts.parse::<u64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing fields".into());
    }
    check_payload(payload)
}

fn split_unescaped(s: &str, sep: u8) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.last_mut().unwrap().push(c);
            escaped = false;
        } else if c == '\\' {
            out.last_mut().unwrap().push(c);
            escaped = true;
        } else if c as u32 == u32::from(sep) {
            out.push(String::new());
        } else {
            out.last_mut().unwrap().push(c);
        }
    }
    out
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 250 {
        return Err(format!("bad key length {key:?}"));
    }
    for (i, section) in key.split('.').enumerate() {
        let first = section
            .chars()
            .next()
            .ok_or(format!("empty section in {key:?}"))?;
        let start_ok = if i == 0 {
            first.is_ascii_alphabetic() || first == '_'
        } else {
            first.is_ascii_alphanumeric() || first == '_'
        };
        if !start_ok
            || !section
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("bad key {key:?}"));
        }
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), String> {
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next().ok_or("dangling escape")?;
            }
            '=' | ' ' | ',' | '"' => return Err(format!("unescaped {c:?} in {v:?}")),
            c if c.is_control() => return Err("control character".into()),
            _ => {}
        }
    }
    Ok(())
}

fn number(s: &str) -> Result<f64, String> {
    let ok = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_digit() || "+-.e".contains(c))
        && !s.contains("inf")
        && !s.contains("NaN");
    let v: f64 = s.parse().map_err(|_| format!("bad number {s:?}"))?;
    if ok && v.is_finite() {
        Ok(v)
    } else {
        Err(format!("bad number {s:?}"))
    }
}

fn check_payload(p: &str) -> Result<(), String> {
    if let Some(v) = p.strip_prefix("count,delta=") {
        return number(v).map(|_| ());
    }
    let Some(g) = p.strip_prefix("gauge,") else {
        return Err(format!("unknown payload {p:?}"));
    };
    if !g.contains('=') {
        return number(g).map(|_| ());
    }
    let fields: BTreeMap<&str, &str> = g.split(',').filter_map(|f| f.split_once('=')).collect();
    let get = |k: &str| fields.get(k).copied().ok_or(format!("summary without {k}"));
    let (min, max, _sum) = (
        number(get("min")?)?,
        number(get("max")?)?,
        number(get("sum")?)?,
    );
    get("count")?
        .parse::<u64>()
        .map_err(|_| "bad count".to_string())?;
    if min > max {
        return Err("min > max".into());
    }
    if fields.len() != 4 {
        return Err("unknown summary field".into());
    }
    Ok(())
}

/// A scripted answer instead of the contract's own.
#[derive(Clone)]
struct Scripted {
    status: u16,
    body: String,
}

#[derive(Default)]
struct Ingest {
    /// Accepted lines, in order.
    lines: Mutex<Vec<String>>,
    /// Lines per request, for every request that reached the contract check.
    requests: Mutex<Vec<usize>>,
    /// Every request: (authorization header, content type).
    seen: Mutex<Vec<(Option<String>, Option<String>)>>,
    script: Mutex<VecDeque<Scripted>>,
    /// Lines containing this are refused as invalid (a server-side rule).
    refuse_containing: Mutex<Option<String>>,
}

struct IngestServer {
    addr: SocketAddr,
    state: Arc<Ingest>,
}

impl IngestServer {
    fn url(&self) -> String {
        format!("http://{}/api/v2/metrics/ingest", self.addr)
    }

    fn lines(&self) -> Vec<String> {
        self.state.lines.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<usize> {
        self.state.requests.lock().unwrap().clone()
    }

    fn seen(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }
}

fn json(status: u16, body: String) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json;charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn ingest(state: Arc<Ingest>, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let auth = header("authorization");
    state
        .seen
        .lock()
        .unwrap()
        .push((auth.clone(), header("content-type")));
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Some(s) = state.script.lock().unwrap().pop_front() {
        return json(s.status, s.body);
    }
    if parts.uri.path() != "/api/v2/metrics/ingest" {
        return json(
            404,
            r#"{"error":{"code":404,"message":"not found"}}"#.into(),
        );
    }
    if auth.as_deref() != Some(&format!("Api-Token {TOKEN}")) {
        return json(
            401,
            r#"{"error":{"code":401,"message":"Missing authorization parameter."}}"#.into(),
        );
    }
    if !header("content-type").is_some_and(|c| c.starts_with("text/plain")) {
        return json(
            415,
            r#"{"error":{"code":415,"message":"Unsupported Media Type"}}"#.into(),
        );
    }
    if body.len() > 1_000_000 {
        return json(
            413,
            r#"{"error":{"code":413,"message":"Payload too large"}}"#.into(),
        );
    }
    let text = String::from_utf8(body.to_vec()).unwrap();
    let all: Vec<&str> = text.split('\n').collect();
    state.requests.lock().unwrap().push(all.len());
    let refuse = state.refuse_containing.lock().unwrap().clone();
    let mut ok = Vec::new();
    let mut invalid = Vec::new();
    for (i, line) in all.iter().enumerate() {
        let verdict = check_line(line).and_then(|()| match &refuse {
            Some(r) if line.contains(r.as_str()) => Err("refused by rule".to_string()),
            _ => Ok(()),
        });
        match verdict {
            Ok(()) => ok.push(line.to_string()),
            Err(e) => invalid.push(serde_json::json!({"line": i, "error": e})),
        }
    }
    let lines_ok = ok.len();
    state.lines.lock().unwrap().extend(ok);
    if invalid.is_empty() {
        json(
            202,
            serde_json::json!({"linesOk": lines_ok, "linesInvalid": 0, "error": null}).to_string(),
        )
    } else {
        json(
            400,
            serde_json::json!({
                "linesOk": lines_ok,
                "linesInvalid": invalid.len(),
                "error": {"code": 400, "message": format!("{} invalid lines", invalid.len()), "invalidLines": invalid},
            })
            .to_string(),
        )
    }
}

async fn ingest_server() -> IngestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Ingest::default());
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(ingest(state, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    IngestServer { addr, state }
}

// ------------------------------------------------------------- data

fn s(v: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(v.to_string())),
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(s(v)),
        ..Default::default()
    }
}

fn int_point(v: i64, t: u64, attrs: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs.iter().map(|(k, v)| kv(k, v)).collect(),
        start_time_unix_nano: T0 - 60_000_000_000,
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsInt(v)),
        ..Default::default()
    }
}

fn double_point(v: f64, t: u64) -> NumberDataPoint {
    NumberDataPoint {
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn batch(resource: &[(&str, &str)], metrics: Vec<Metric>) -> Payload {
    Payload::Metrics(Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }))
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn sum(name: &str, cumulative: bool, monotonic: bool, points: Vec<NumberDataPoint>) -> Metric {
    let t = if cumulative {
        AggregationTemporality::Cumulative
    } else {
        AggregationTemporality::Delta
    };
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: t as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn histogram(
    name: &str,
    cumulative: bool,
    count: u64,
    buckets: Vec<u64>,
    sum: f64,
    t: u64,
) -> Metric {
    let temporality = if cumulative {
        AggregationTemporality::Cumulative
    } else {
        AggregationTemporality::Delta
    };
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: T0 - 60_000_000_000,
                time_unix_nano: t,
                count,
                sum: Some(sum),
                bucket_counts: buckets,
                explicit_bounds: vec![1.0, 5.0],
                ..Default::default()
            }],
            aggregation_temporality: temporality as i32,
        })),
        ..Default::default()
    }
}

/// A line as a set: key, payload, timestamp and the dimensions in any order.
fn parsed(line: &str) -> (String, BTreeMap<String, String>, String) {
    let (head, rest) = {
        let mut i = 0;
        let b = line.as_bytes();
        loop {
            match b[i] {
                b'\\' => i += 2,
                b' ' => break (&line[..i], &line[i + 1..]),
                _ => i += 1,
            }
        }
    };
    let mut fields = split_unescaped(head, b',');
    let key = fields.remove(0);
    let dims = fields
        .into_iter()
        .map(|d| {
            let (k, v) = d.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    (key, dims, rest.to_string())
}

fn config(server: &IngestServer, extra: &str) -> String {
    format!(
        "endpoint: {}\napi_token: {TOKEN}\nsending_queue: {{enabled: false}}\nretry_on_failure: {{initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 5s}}\n{extra}",
        server.url()
    )
}

// ------------------------------------------------------------- tests

#[tokio::test]
async fn lines_for_every_kind_with_normalised_keys_and_escaped_values() {
    let server = ingest_server().await;
    let exp = start(
        &DynatraceExporterFactory,
        "dynatrace",
        &config(
            &server,
            "prefix: shop\ndefault_dimensions: {env: prod, team: checkout}\ntags: [region=eu-1]",
        ),
    )
    .await;
    let t1 = T0;
    exp.consume(batch(
        &[("service.name", "cart")],
        vec![
            gauge(
                "cpu.usage!pct",
                vec![int_point(42, t1, &[("Host Name", "web 1,a=b")])],
            ),
            gauge("temp", vec![double_point(21.5, t1)]),
            sum(
                "orders.placed",
                false,
                true,
                vec![int_point(7, t1, &[("team", "payments")])],
            ),
            sum("queue.depth", true, false, vec![int_point(3, t1, &[])]),
            sum("bytes.sent", true, true, vec![int_point(100, t1, &[])]),
            histogram("latency", false, 3, vec![0, 2, 1], 9.0, t1),
            histogram("size", true, 10, vec![5, 5, 0], 20.0, t1),
        ],
    ))
    .await
    .unwrap();
    let t2 = T0 + 60_000_000_000;
    exp.consume(batch(
        &[("service.name", "cart")],
        vec![
            sum("bytes.sent", true, true, vec![int_point(250, t2, &[])]),
            histogram("size", true, 14, vec![6, 7, 1], 35.0, t2),
        ],
    ))
    .await
    .unwrap();
    // A reset: the cumulative value went down.
    let t3 = T0 + 120_000_000_000;
    exp.consume(batch(
        &[("service.name", "cart")],
        vec![sum("bytes.sent", true, true, vec![int_point(40, t3, &[])])],
    ))
    .await
    .unwrap();
    let t4 = T0 + 180_000_000_000;
    exp.consume(batch(
        &[("service.name", "cart")],
        vec![sum("bytes.sent", true, true, vec![int_point(90, t4, &[])])],
    ))
    .await
    .unwrap();

    let lines = server.lines();
    let got: Vec<_> = lines.iter().map(|l| parsed(l)).collect();
    let base = |extra: &[(&str, &str)]| {
        let mut d: BTreeMap<String, String> = [
            ("env", "prod"),
            ("team", "checkout"),
            ("region", "eu-1"),
            ("dt.metrics.source", "opentelemetry"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            d.insert(k.to_string(), v.to_string());
        }
        d
    };
    let ms = |t: u64| t / 1_000_000;
    let want = [
        (
            "shop.cpu.usage_pct".to_string(),
            base(&[("host_name", r"web\ 1\,a\=b")]),
            format!("gauge,42 {}", ms(t1)),
        ),
        (
            "shop.temp".to_string(),
            base(&[]),
            format!("gauge,21.5 {}", ms(t1)),
        ),
        (
            "shop.orders.placed".to_string(),
            base(&[("team", "payments")]),
            format!("count,delta=7 {}", ms(t1)),
        ),
        (
            "shop.queue.depth".to_string(),
            base(&[]),
            format!("gauge,3 {}", ms(t1)),
        ),
        (
            "shop.latency".to_string(),
            base(&[]),
            format!("gauge,min=1,max=5,sum=9,count=3 {}", ms(t1)),
        ),
        // The first cumulative points only start their series.
        (
            "shop.bytes.sent".to_string(),
            base(&[]),
            format!("count,delta=150 {}", ms(t2)),
        ),
        (
            "shop.size".to_string(),
            base(&[]),
            format!("gauge,min=1,max=5,sum=15,count=4 {}", ms(t2)),
        ),
        // After the reset the series starts over, then deltas resume.
        (
            "shop.bytes.sent".to_string(),
            base(&[]),
            format!("count,delta=50 {}", ms(t4)),
        ),
    ];
    let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
    assert!(missing.is_empty(), "missing {missing:#?}\ngot {got:#?}");
    assert_eq!(
        got.len(),
        want.len() + usize::from(got.len() > want.len()),
        "{got:#?}"
    );
    assert!(got.iter().all(|(_, d, _)| d.get("service.name").is_none()));
}

#[tokio::test]
async fn large_batches_are_split_by_lines_and_bytes() {
    let server = ingest_server().await;
    let exp = start(&DynatraceExporterFactory, "dynatrace", &config(&server, "")).await;
    let points: Vec<NumberDataPoint> = (0..2500)
        .map(|i| int_point(i, T0, &[("i", &i.to_string())]))
        .collect();
    exp.consume(batch(&[], vec![gauge("many", points)]))
        .await
        .unwrap();
    assert_eq!(server.requests(), vec![1000, 1000, 500]);
    assert_eq!(server.lines().len(), 2500);

    // Long lines: about 4 KB each, so 1 MB holds fewer than 1000 of them.
    let server = ingest_server().await;
    let exp = start(&DynatraceExporterFactory, "dynatrace", &config(&server, "")).await;
    let long = "x".repeat(240);
    let attrs: Vec<(String, String)> = (0..16).map(|k| (format!("k{k}"), long.clone())).collect();
    let points: Vec<NumberDataPoint> = (0..600)
        .map(|i| {
            let mut p = int_point(i, T0, &[("i", &i.to_string())]);
            p.attributes.extend(attrs.iter().map(|(k, v)| kv(k, v)));
            p
        })
        .collect();
    exp.consume(batch(&[], vec![gauge("wide", points)]))
        .await
        .unwrap();
    let requests = server.requests();
    assert!(requests.len() >= 3, "{requests:?}");
    assert_eq!(requests.iter().sum::<usize>(), 600);
}

#[tokio::test]
async fn invalid_lines_are_not_sent_again_and_are_counted() {
    let server = ingest_server().await;
    *server.state.refuse_containing.lock().unwrap() = Some("bad".into());
    let exp = start(&DynatraceExporterFactory, "dynatrace", &config(&server, "")).await;
    let accepted = exp
        .consume(batch(
            &[],
            vec![
                gauge("good", vec![int_point(1, T0, &[])]),
                gauge("bad", vec![int_point(2, T0, &[])]),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(accepted.rejected_items, 1);
    assert_eq!(server.seen(), 1, "a 400 is not retried");
    assert_eq!(server.lines().len(), 1);
    assert_eq!(
        exp.metric("otelcol_exporter_send_failed_metric_points"),
        1.0
    );
    assert_eq!(exp.metric("otelcol_exporter_sent_metric_points"), 1.0);
}

#[tokio::test]
async fn server_errors_are_retried_and_permanent_ones_are_not() {
    let server = ingest_server().await;
    server.state.script.lock().unwrap().extend([
        Scripted {
            status: 503,
            body: "{}".into(),
        },
        Scripted {
            status: 500,
            body: "{}".into(),
        },
    ]);
    let exp = start(&DynatraceExporterFactory, "dynatrace", &config(&server, "")).await;
    exp.consume(batch(&[], vec![gauge("g", vec![int_point(1, T0, &[])])]))
        .await
        .unwrap();
    assert_eq!(server.seen(), 3);
    assert_eq!(server.lines().len(), 1);

    for (status, want) in [
        (401, "API token"),
        (403, "metrics.ingest scope"),
        (404, "check endpoint"),
        (413, "too large"),
    ] {
        let server = ingest_server().await;
        server.state.script.lock().unwrap().push_back(Scripted {
            status,
            body: "{}".into(),
        });
        let exp = start(&DynatraceExporterFactory, "dynatrace", &config(&server, "")).await;
        let err = exp
            .consume(batch(&[], vec![gauge("g", vec![int_point(1, T0, &[])])]))
            .await
            .unwrap_err();
        assert!(err.message.contains(want), "{status}: {}", err.message);
        assert!(
            !err.message.contains(TOKEN),
            "the token leaked: {}",
            err.message
        );
        assert_eq!(server.seen(), 1, "{status} is not retried");
    }

    // The wrong token: the contract answers 401.
    let server = ingest_server().await;
    let yaml = config(&server, "").replace(TOKEN, "wrong");
    let exp = start(&DynatraceExporterFactory, "dynatrace", &yaml).await;
    let err = exp
        .consume(batch(&[], vec![gauge("g", vec![int_point(1, T0, &[])])]))
        .await
        .unwrap_err();
    assert!(err.message.contains("401"), "{}", err.message);
    assert!(!err.message.contains("wrong"), "{}", err.message);
}

#[tokio::test]
async fn types_without_a_line_form_are_dropped_with_a_reason() {
    let server = ingest_server().await;
    let exp = start(&DynatraceExporterFactory, "dynatrace", &config(&server, "")).await;
    let summary = Metric {
        name: "rpc.quantiles".into(),
        data: Some(metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint::default()],
        })),
        ..Default::default()
    };
    let accepted = exp
        .consume(batch(
            &[],
            vec![
                summary,
                sum("delta.updown", false, false, vec![int_point(1, T0, &[])]),
                gauge("g", vec![double_point(f64::NAN, T0), double_point(1.0, T0)]),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(accepted.rejected_items, 3, "{}", accepted.message);
    assert_eq!(server.lines().len(), 1);
}

#[tokio::test]
async fn traces_logs_and_otlp_metrics_go_to_the_otlp_endpoint() {
    let backend = http_server(None).await;
    let yaml = format!(
        "endpoint: http://{}/api/v2/metrics/ingest\napi_token: {TOKEN}\nmetrics_via: otlp\nsending_queue: {{enabled: false}}\n",
        backend.addr
    );
    let exp = start(&DynatraceExporterFactory, "dynatrace", &yaml).await;
    exp.consume(common::traces(2)).await.unwrap();
    exp.consume(common::logs(3)).await.unwrap();
    // Cumulative: the first batch starts the series, the second is sent as a delta.
    exp.consume(batch(
        &[],
        vec![sum("c", true, true, vec![int_point(10, T0, &[])])],
    ))
    .await
    .unwrap();
    exp.consume(batch(
        &[],
        vec![sum(
            "c",
            true,
            true,
            vec![int_point(25, T0 + 1_000_000_000, &[])],
        )],
    ))
    .await
    .unwrap();
    let attempts = backend.backend.attempts();
    let paths: Vec<&str> = attempts.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/v2/otlp/v1/traces",
            "/api/v2/otlp/v1/logs",
            "/api/v2/otlp/v1/metrics"
        ]
    );
    for a in &attempts {
        assert_eq!(a.header("content-type"), Some("application/x-protobuf"));
        assert_eq!(
            a.header("authorization"),
            Some(&*format!("Api-Token {TOKEN}"))
        );
    }
    let received = backend.backend.received();
    let Payload::Metrics(m) = &received[2] else {
        panic!("metrics expected")
    };
    let Some(metric::Data::Sum(s)) = &m.0.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("a sum")
    };
    assert_eq!(
        s.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    assert_eq!(
        s.data_points[0].value,
        Some(number_data_point::Value::AsInt(15))
    );
}

#[tokio::test]
async fn the_upstream_style_otlphttp_config_keeps_working() {
    // What Dynatrace documents for the Collector: otlphttp with the token as a header.
    let backend = http_server(None).await;
    let yaml = format!(
        "endpoint: http://{}/api/v2/otlp\nheaders: {{Authorization: \"Api-Token {TOKEN}\"}}\nsending_queue: {{enabled: false}}\n",
        backend.addr
    );
    let exp = start(
        &ferrotel_exporters::otlp_http::OtlpHttpExporterFactory,
        "otlp_http",
        &yaml,
    )
    .await;
    exp.consume(common::traces(1)).await.unwrap();
    let a = &backend.backend.attempts()[0];
    assert_eq!(a.path, "/api/v2/otlp/v1/traces");
    assert_eq!(
        a.header("authorization"),
        Some(&*format!("Api-Token {TOKEN}"))
    );
}
