//! The counting sink: an OTLP/gRPC and OTLP/HTTP (protobuf) server on one port that accepts
//! everything, counts items per signal, checks the `bench.seq` numbers (duplicates, gaps)
//! and measures the end-to-end latency from `bench.sent`. Its state is written as JSON to a
//! report file every 100 ms and when it stops (SIGTERM / SIGINT).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use serde_json::json;

use crate::compress::decompress;
use crate::payload::Signal;
use crate::ranges::SeqSet;
use crate::wire::{self, Visitor};

/// Largest request accepted, compressed or not.
const MAX_BODY: usize = 256 << 20;

#[derive(clap::Args, Clone, Debug)]
pub struct SinkArgs {
    /// Address for OTLP/gRPC and OTLP/HTTP (both on this port).
    #[arg(long, default_value = "127.0.0.1:4319")]
    pub listen: SocketAddr,
    /// JSON report, rewritten every 100 ms while something changes, and at exit.
    #[arg(long)]
    pub report_file: Option<PathBuf>,
    /// Plain counts, rewritten every 100 ms: `<items> <requests>` over all signals.
    #[arg(long)]
    pub count_file: Option<PathBuf>,
    /// Also decode every metrics request and report, per request, the values of the
    /// Prometheus scrape series it carries (`up`, `scrape_duration_seconds`,
    /// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`,
    /// `scrape_series_added`) under `scrapes` in the report.
    #[arg(long)]
    pub scrape_series: bool,
}

#[derive(Default)]
struct PerSignal {
    items: u64,
    requests: u64,
    wire_bytes: u64,
    body_bytes: u64,
    without_seq: u64,
    seqs: SeqSet,
    /// (latency ns, items) per resource that carried `bench.sent`.
    latency: Vec<(u64, u64)>,
    first_unix_ns: u64,
    last_unix_ns: u64,
}

#[derive(Default)]
struct State {
    signals: [PerSignal; 3],
    bad_requests: u64,
    dirty: bool,
    /// With `--scrape-series`: one entry per metrics request.
    scrape_series: bool,
    scrapes: Vec<serde_json::Value>,
}

/// The series every Prometheus scrape adds, as the report names them.
const SCRAPE_SERIES: [(&str, &str); 5] = [
    ("up", "up"),
    ("scrape_duration_seconds", "duration_s"),
    ("scrape_samples_scraped", "samples_scraped"),
    (
        "scrape_samples_post_metric_relabeling",
        "samples_post_relabeling",
    ),
    ("scrape_series_added", "series_added"),
];

/// The scrape series' values in one metrics request, with its data points and when it
/// arrived.
fn scrape_entry(messages: &[Vec<u8>], points: u64, now: u64) -> serde_json::Value {
    let mut entry = serde_json::Map::new();
    entry.insert("received_unix_ns".into(), json!(now));
    entry.insert("points".into(), json!(points));
    for m in messages {
        let Ok(req) = ExportMetricsServiceRequest::decode(&m[..]) else {
            continue;
        };
        let metrics = req
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics);
        for metric in metrics {
            let Some((_, key)) = SCRAPE_SERIES.iter().find(|(n, _)| *n == metric.name) else {
                continue;
            };
            let Some(metric::Data::Gauge(g)) = &metric.data else {
                continue;
            };
            for p in &g.data_points {
                let value = match p.value {
                    Some(number_data_point::Value::AsDouble(v)) => v,
                    Some(number_data_point::Value::AsInt(v)) => v as f64,
                    None => f64::NAN,
                };
                entry.insert((*key).into(), json!(value));
                entry.insert("time_unix_nano".into(), json!(p.time_unix_nano));
            }
        }
    }
    serde_json::Value::Object(entry)
}

fn index(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Items of one request, gathered before taking the lock.
struct Tally {
    now: u64,
    items: u64,
    without_seq: u64,
    seqs: Vec<u64>,
    latency: Vec<(u64, u64)>,
    group: Option<(u64, u64)>,
}

impl Tally {
    fn close_group(&mut self) {
        if let Some((sent, n)) = self.group.take() {
            if n > 0 {
                self.latency.push((self.now.saturating_sub(sent), n));
            }
        }
    }
}

impl Visitor for Tally {
    fn resource(&mut self, sent: Option<u64>) {
        self.close_group();
        self.group = sent.map(|s| (s, 0));
    }

    fn item(&mut self, seq: Option<u64>) {
        self.items += 1;
        if let Some((_, n)) = self.group.as_mut() {
            *n += 1;
        }
        match seq {
            Some(s) => self.seqs.push(s),
            None => self.without_seq += 1,
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn grpc_response(code: u32, message: &str) -> Response<Body> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(m) = HeaderValue::from_str(message) {
        if !message.is_empty() {
            trailers.insert("grpc-message", m);
        }
    }
    // An empty Export*ServiceResponse, uncompressed, then the status in trailers.
    let body: &'static [u8] = if code == 0 { &[0, 0, 0, 0, 0] } else { &[] };
    let body = Full::new(Bytes::from_static(body))
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    resp.headers_mut().insert(
        "grpc-accept-encoding",
        HeaderValue::from_static("gzip,zstd,deflate,identity"),
    );
    resp
}

fn http_response(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *resp.status_mut() = status;
    if status.is_success() {
        resp.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/x-protobuf"),
        );
    }
    resp
}

fn route(path: &str) -> Option<(Signal, bool)> {
    match path {
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => {
            Some((Signal::Traces, true))
        }
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => {
            Some((Signal::Metrics, true))
        }
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export" => Some((Signal::Logs, true)),
        "/v1/traces" => Some((Signal::Traces, false)),
        "/v1/metrics" => Some((Signal::Metrics, false)),
        "/v1/logs" => Some((Signal::Logs, false)),
        _ => None,
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The protobuf message(s) of a gRPC body (5-byte prefix per message), decompressed.
fn grpc_messages(body: &[u8], encoding: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err("truncated gRPC frame".into());
        }
        let compressed = rest[0] & 1 == 1;
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if rest.len() < 5 + len {
            return Err("truncated gRPC message".into());
        }
        let msg = &rest[5..5 + len];
        out.push(if compressed {
            decompress(encoding, msg, MAX_BODY).map_err(|e| e.to_string())?
        } else {
            msg.to_vec()
        });
        rest = &rest[5 + len..];
    }
    Ok(out)
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Body>, Infallible> {
    let Some((signal, grpc)) = route(req.uri().path()) else {
        return Ok(http_response(StatusCode::NOT_FOUND, "unknown path"));
    };
    let headers = req.headers().clone();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            bad(&state);
            let msg = format!("reading the body: {e}");
            return Ok(if grpc {
                grpc_response(13, &msg)
            } else {
                http_response(StatusCode::BAD_REQUEST, "cannot read the body")
            });
        }
    };
    let messages = if grpc {
        grpc_messages(&body, header(&headers, "grpc-encoding"))
    } else {
        if header(&headers, "content-type").starts_with("application/json") {
            bad(&state);
            return Ok(http_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the sink takes protobuf only",
            ));
        }
        decompress(header(&headers, "content-encoding"), &body, MAX_BODY)
            .map(|b| vec![b])
            .map_err(|e| e.to_string())
    };
    let messages = match messages {
        Ok(m) => m,
        Err(e) => {
            bad(&state);
            return Ok(if grpc {
                grpc_response(3, &e)
            } else {
                http_response(StatusCode::BAD_REQUEST, "cannot decompress the body")
            });
        }
    };
    let mut tally = Tally {
        now: unix_ns(),
        items: 0,
        without_seq: 0,
        seqs: Vec::new(),
        latency: Vec::new(),
        group: None,
    };
    let mut body_bytes = 0;
    for m in &messages {
        body_bytes += m.len() as u64;
        if let Err(e) = wire::scan(signal, m, &mut tally) {
            bad(&state);
            return Ok(if grpc {
                grpc_response(3, &e.to_string())
            } else {
                http_response(StatusCode::BAD_REQUEST, "malformed protobuf")
            });
        }
    }
    tally.close_group();
    let scrape_series =
        signal == Signal::Metrics && state.lock().map(|st| st.scrape_series).unwrap_or(false);
    let scrape = scrape_series.then(|| scrape_entry(&messages, tally.items, tally.now));
    if let Ok(mut st) = state.lock() {
        st.dirty = true;
        if let Some(entry) = scrape {
            st.scrapes.push(entry);
        }
        let s = &mut st.signals[index(signal)];
        s.items += tally.items;
        s.requests += 1;
        s.wire_bytes += body.len() as u64;
        s.body_bytes += body_bytes;
        s.without_seq += tally.without_seq;
        for seq in tally.seqs {
            s.seqs.insert(seq);
        }
        s.latency.extend(tally.latency);
        if s.first_unix_ns == 0 {
            s.first_unix_ns = tally.now;
        }
        s.last_unix_ns = tally.now;
    }
    Ok(if grpc {
        grpc_response(0, "")
    } else {
        http_response(StatusCode::OK, "")
    })
}

fn bad(state: &Mutex<State>) {
    if let Ok(mut st) = state.lock() {
        st.bad_requests += 1;
        st.dirty = true;
    }
}

/// Item-weighted percentiles of (value, weight) samples, sorted in place.
pub fn weighted_percentiles(samples: &mut [(u64, u64)], ps: &[f64]) -> Vec<u64> {
    samples.sort_unstable();
    let total: u64 = samples.iter().map(|s| s.1).sum();
    ps.iter()
        .map(|&p| {
            let target = ((total as f64) * p).ceil().max(1.0) as u64;
            let mut acc = 0;
            for &(v, w) in samples.iter() {
                acc += w;
                if acc >= target {
                    return v;
                }
            }
            samples.last().map(|s| s.0).unwrap_or(0)
        })
        .collect()
}

fn report(st: &mut State) -> serde_json::Value {
    let mut signals = serde_json::Map::new();
    let mut items = 0;
    let mut requests = 0;
    for signal in Signal::ALL {
        let s = &mut st.signals[index(signal)];
        items += s.items;
        requests += s.requests;
        let present = s.seqs.present();
        let gaps = s.seqs.gaps();
        let lat_items: u64 = s.latency.iter().map(|l| l.1).sum();
        let pct = weighted_percentiles(&mut s.latency, &[0.5, 0.9, 0.99, 1.0]);
        let ms = |ns: u64| (ns as f64 / 1e4).round() / 100.0;
        signals.insert(
            signal.name().to_string(),
            json!({
                "items": s.items,
                "requests": s.requests,
                "wire_bytes": s.wire_bytes,
                "body_bytes": s.body_bytes,
                "items_without_seq": s.without_seq,
                "unique": s.seqs.unique,
                "duplicates": s.seqs.duplicates,
                "seq_out_of_range": s.seqs.out_of_range,
                "seq_min": s.seqs.min,
                "seq_end": s.seqs.end,
                "gaps": crate::ranges::len(&gaps),
                "present": present,
                "first_unix_ns": s.first_unix_ns,
                "last_unix_ns": s.last_unix_ns,
                "latency_items": lat_items,
                "latency_p50_ms": ms(pct[0]),
                "latency_p90_ms": ms(pct[1]),
                "latency_p99_ms": ms(pct[2]),
                "latency_max_ms": ms(pct[3]),
            }),
        );
    }
    let mut out = json!({
        "items": items,
        "requests": requests,
        "bad_requests": st.bad_requests,
        "signals": signals,
    });
    if st.scrape_series {
        out["scrapes"] = json!(st.scrapes);
    }
    out
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

fn flush(state: &Mutex<State>, args: &SinkArgs, force: bool) {
    let Ok(mut st) = state.lock() else { return };
    if !st.dirty && !force {
        return;
    }
    st.dirty = false;
    let r = report(&mut st);
    drop(st);
    if let Some(path) = &args.report_file {
        write_atomic(path, &r.to_string());
    }
    if let Some(path) = &args.count_file {
        write_atomic(path, &format!("{} {}\n", r["items"], r["requests"]));
    }
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    let state = Arc::new(Mutex::new(State {
        scrape_series: args.scrape_series,
        ..Default::default()
    }));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    flush(&state, &args, true);
    let writer_state = state.clone();
    let writer_args = args.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            flush(&writer_state, &writer_args, false);
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .max_frame_size(1 << 20)
        .max_concurrent_streams(1024);
    let builder = Arc::new(builder);
    println!("ready {}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let builder = builder.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, state.clone()));
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    flush(&state, &args, true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_weigh_items() {
        let mut s = vec![(30, 1), (10, 98), (20, 1)];
        assert_eq!(
            weighted_percentiles(&mut s, &[0.5, 0.99, 1.0]),
            vec![10, 20, 30]
        );
        assert_eq!(weighted_percentiles(&mut [], &[0.5]), vec![0]);
    }
}
