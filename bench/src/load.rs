//! The load generator: OTLP/gRPC, OTLP/HTTP protobuf and OTLP/HTTP JSON; a fixed number of
//! requests or a fixed duration; as fast as answers come or at a fixed rate; any number of
//! concurrent senders over one or more connections. Prints one JSON line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::ValueEnum;
use http::{HeaderMap, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

use crate::compress::{compress, Compression};
use crate::payload::{default_attributes, Shape, Signal, Templates, MAX_SEQ};
use crate::ranges::{normalize, Range};
use crate::sink::unix_ns;
use crate::wire;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
pub enum Protocol {
    #[value(name = "grpc")]
    #[serde(rename = "grpc")]
    Grpc,
    #[value(name = "http/protobuf", alias = "http-protobuf", alias = "http")]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[value(name = "http/json", alias = "http-json")]
    #[serde(rename = "http/json")]
    HttpJson,
}

#[derive(clap::Args, Clone, Debug)]
pub struct LoadArgs {
    /// Where to send: `http://host:port` (gRPC, or OTLP/HTTP with `/v1/<signal>` appended),
    /// or a full OTLP/HTTP URL with its path.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    #[arg(long, value_enum, default_value_t = Protocol::Grpc)]
    pub protocol: Protocol,
    #[arg(long, value_enum, default_value_t = Signal::Traces)]
    pub signal: Signal,
    /// Requests to send in all (0: until --duration ends).
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Stop sending after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0.0)]
    pub duration: f64,
    /// Spans, data points or log records per request.
    #[arg(long, default_value_t = 512)]
    pub items_per_request: usize,
    /// Attributes per span / data point / log record (default 10 / 4 / 8).
    #[arg(long)]
    pub attributes: Option<usize>,
    /// Resource attributes per request.
    #[arg(long, default_value_t = 12)]
    pub resource_attributes: usize,
    /// Events per span.
    #[arg(long, default_value_t = 1)]
    pub events: usize,
    /// Data points per metric.
    #[arg(long, default_value_t = 8)]
    pub points_per_metric: usize,
    /// Distinct request templates (services, pods) to cycle through.
    #[arg(long, default_value_t = 8)]
    pub templates: usize,
    /// Requests in flight at once (each sender waits for its answer).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// HTTP/2 connections the gRPC senders share (OTLP/HTTP: one per sender).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Requests per second across all senders (0: as fast as answers come).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Items per second across all senders; overrides --rate.
    #[arg(long)]
    pub item_rate: Option<f64>,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Compression level (default: gzip 6, zstd 3).
    #[arg(long)]
    pub compression_level: Option<i32>,
    /// Seconds to wait for each answer.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Do not stamp `bench.seq` / `bench.sent`.
    #[arg(long)]
    pub no_stamp: bool,
    /// First sequence number of this run.
    #[arg(long, default_value_t = 0)]
    pub seq_start: u64,
    /// Write the sequence ranges sent and not acknowledged here (JSON), for `check`.
    #[arg(long)]
    pub ranges_file: Option<PathBuf>,
}

/// gRPC status codes a client retries (OTLP specification).
fn grpc_retryable(code: u32) -> bool {
    matches!(code, 1 | 4 | 8 | 10 | 11 | 14 | 15)
}

fn grpc_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES
        .get(code as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("grpc {code}"))
}

fn http_retryable(code: u16) -> bool {
    matches!(code, 429 | 502 | 503 | 504)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Ok,
    Refused,
    Permanent,
    Timeout,
    Transport,
}

struct Outcome {
    class: Class,
    status: String,
    rejected: u64,
}

impl Outcome {
    fn new(class: Class, status: impl Into<String>) -> Outcome {
        Outcome {
            class,
            status: status.into(),
            rejected: 0,
        }
    }
}

/// One HTTP/2 connection, replaced when it breaks.
struct H2Slot {
    sender: tokio::sync::Mutex<Option<http2::SendRequest<Full<Bytes>>>>,
}

async fn tcp(authority: &str) -> anyhow::Result<TokioIo<tokio::net::TcpStream>> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connect to {authority}"))?;
    stream.set_nodelay(true)?;
    Ok(TokioIo::new(stream))
}

async fn h2_connect(authority: &str) -> anyhow::Result<http2::SendRequest<Full<Bytes>>> {
    let io = tcp(authority).await?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .max_frame_size(1 << 20)
        .handshake(io)
        .await
        .context("HTTP/2 handshake")?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn h1_connect(authority: &str) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let io = tcp(authority).await?;
    let (sender, conn) = http1::handshake(io).await.context("HTTP/1.1 handshake")?;
    tokio::spawn(conn);
    Ok(sender)
}

fn grpc_status(h: &HeaderMap) -> Option<u32> {
    h.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
}

async fn grpc_outcome(resp: http::Response<hyper::body::Incoming>) -> Outcome {
    let status = resp.status().as_u16();
    let head_code = grpc_status(resp.headers());
    if status != 200 {
        let class = if http_retryable(status) {
            Class::Refused
        } else {
            Class::Permanent
        };
        return Outcome::new(class, format!("HTTP {status}"));
    }
    let collected = match resp.into_body().collect().await {
        Ok(c) => c,
        Err(_) => return Outcome::new(Class::Transport, "transport_error"),
    };
    let code = collected.trailers().and_then(grpc_status).or(head_code);
    let body = collected.to_bytes();
    match code {
        Some(0) => {
            let mut o = Outcome::new(Class::Ok, "OK");
            if body.len() >= 5 && body[0] == 0 {
                o.rejected = wire::rejected_items(&body[5..]).unwrap_or(0);
            }
            o
        }
        Some(c) if grpc_retryable(c) => Outcome::new(Class::Refused, grpc_name(c)),
        Some(c) => Outcome::new(Class::Permanent, grpc_name(c)),
        None => Outcome::new(Class::Transport, "no grpc-status"),
    }
}

async fn http_outcome(resp: http::Response<hyper::body::Incoming>, json: bool) -> Outcome {
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map(|c| c.to_bytes());
    if (200..300).contains(&status) {
        let mut o = Outcome::new(Class::Ok, "HTTP 200");
        o.status = format!("HTTP {status}");
        if let Ok(body) = body {
            o.rejected = if json {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        let p = v.get("partialSuccess")?;
                        ["rejectedSpans", "rejectedDataPoints", "rejectedLogRecords"]
                            .iter()
                            .find_map(|k| {
                                let r = p.get(*k)?;
                                r.as_u64().or_else(|| r.as_str()?.parse().ok())
                            })
                    })
                    .unwrap_or(0)
            } else {
                wire::rejected_items(&body).unwrap_or(0)
            };
        }
        return o;
    }
    let class = if http_retryable(status) {
        Class::Refused
    } else {
        Class::Permanent
    };
    Outcome::new(class, format!("HTTP {status}"))
}

fn grpc_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    }
}

#[derive(Default)]
struct Totals {
    sent: u64,
    ok: u64,
    refused: u64,
    permanent: u64,
    timeouts: u64,
    transport: u64,
    rejected_items: u64,
    wire_bytes: u64,
    status: BTreeMap<String, u64>,
    latencies_ms: Vec<f64>,
    /// Request numbers sent but not acknowledged.
    unacked: Vec<u64>,
    /// Request numbers taken when the run ended, never sent.
    unsent: Vec<u64>,
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let report = load(args.clone()).await?;
    println!("{report}");
    Ok(())
}

/// Runs the load and returns the JSON summary.
pub async fn load(args: LoadArgs) -> anyhow::Result<serde_json::Value> {
    if args.requests == 0 && args.duration <= 0.0 {
        bail!("give --requests or --duration");
    }
    if args.items_per_request == 0 || args.concurrency == 0 {
        bail!("--items-per-request and --concurrency must be above 0");
    }
    let json_body = args.protocol == Protocol::HttpJson;
    let shape = Shape {
        attributes: args.attributes.unwrap_or(default_attributes(args.signal)),
        resource_attributes: args.resource_attributes,
        events: args.events,
        points_per_metric: args.points_per_metric,
        templates: args.templates,
        seed: args.seed,
        stamp: !args.no_stamp,
        ..Shape::new(args.signal, args.items_per_request)
    };
    let templates = Arc::new(Templates::build(&shape, json_body));
    if shape.stamp && !templates.stamps_ok() {
        bail!("internal error: the request templates lack their stamps");
    }
    let k = args.items_per_request as u64;
    let uri: Uri = args
        .endpoint
        .parse()
        .with_context(|| format!("endpoint {:?}", args.endpoint))?;
    let authority = uri
        .authority()
        .map(|a| a.to_string())
        .context("the endpoint needs host:port")?;
    let scheme = uri.scheme_str().unwrap_or("http");
    if scheme != "http" {
        bail!("only plain http:// endpoints are supported");
    }
    let target: Uri = match args.protocol {
        Protocol::Grpc => format!("http://{authority}{}", grpc_path(args.signal)).parse()?,
        _ if uri.path().len() > 1 => uri.clone(),
        _ => format!("http://{authority}/v1/{}", args.signal.name()).parse()?,
    };
    let level = args
        .compression_level
        .unwrap_or(args.compression.default_level());
    let rate = args.item_rate.map(|r| r / k as f64).unwrap_or(args.rate);

    let slots: Vec<Arc<H2Slot>> = if args.protocol == Protocol::Grpc {
        let mut v = Vec::new();
        for _ in 0..args.connections.clamp(1, args.concurrency) {
            v.push(Arc::new(H2Slot {
                sender: tokio::sync::Mutex::new(Some(h2_connect(&authority).await?)),
            }));
        }
        v
    } else {
        // Fail fast when nothing listens.
        drop(h1_connect(&authority).await?);
        Vec::new()
    };

    let next = Arc::new(AtomicU64::new(0));
    let totals = Arc::new(Mutex::new(Totals::default()));
    let start_unix_ns = unix_ns();
    let started = Instant::now();
    let deadline = (args.duration > 0.0).then(|| started + Duration::from_secs_f64(args.duration));
    let timeout = Duration::from_secs_f64(args.timeout.max(0.001));
    if args.requests > 0 && args.seq_start + args.requests * k > MAX_SEQ {
        bail!("sequence numbers would overflow their 12 digits");
    }

    let mut tasks = Vec::new();
    for task in 0..args.concurrency {
        let templates = templates.clone();
        let next = next.clone();
        let totals = totals.clone();
        let args = args.clone();
        let slot = (!slots.is_empty()).then(|| slots[task % slots.len()].clone());
        let authority = authority.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = Totals::default();
            let mut h1: Option<http1::SendRequest<Full<Bytes>>> = None;
            let mut buf = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if args.requests > 0 && n >= args.requests {
                    break;
                }
                if rate > 0.0 {
                    let at = started + Duration::from_secs_f64(n as f64 / rate);
                    if deadline.is_some_and(|d| at >= d) {
                        local.unsent.push(n);
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    local.unsent.push(n);
                    break;
                }
                let first_seq = args.seq_start + n * k;
                if first_seq + k > MAX_SEQ {
                    local.unsent.push(n);
                    break;
                }
                let grpc = args.protocol == Protocol::Grpc;
                let compressed = args.compression != Compression::None;
                // gRPC: a 5-byte prefix (compressed flag, length) before the message.
                let reserve = if grpc { 5 } else { 0 };
                let mut payload = if compressed {
                    templates.render_into(n, first_seq, unix_ns(), &mut buf);
                    match compress(args.compression, level, &buf, reserve) {
                        Ok(p) => p,
                        Err(_) => {
                            local.unsent.push(n);
                            continue;
                        }
                    }
                } else {
                    let mut out = std::mem::take(&mut buf);
                    out.clear();
                    out.resize(reserve, 0);
                    templates.append_to(n, first_seq, unix_ns(), &mut out);
                    out
                };
                let mut req = Request::post(target.clone());
                let body = if grpc {
                    let len = (payload.len() - 5) as u32;
                    payload[0] = u8::from(compressed);
                    payload[1..5].copy_from_slice(&len.to_be_bytes());
                    req = req
                        .header("content-type", "application/grpc")
                        .header("te", "trailers");
                    if compressed {
                        req = req.header("grpc-encoding", args.compression.name());
                    }
                    Bytes::from(payload)
                } else {
                    req = req.header("host", authority.as_str()).header(
                        "content-type",
                        if json_body {
                            "application/json"
                        } else {
                            "application/x-protobuf"
                        },
                    );
                    if compressed {
                        req = req.header("content-encoding", args.compression.name());
                    }
                    Bytes::from(payload)
                };
                let wire_len = body.len() as u64;
                let Ok(req) = req
                    .header("user-agent", "ferrotel-bench")
                    .body(Full::new(body))
                else {
                    local.unsent.push(n);
                    continue;
                };
                let t0 = Instant::now();
                let outcome = match &slot {
                    Some(slot) => send_h2(slot, &authority, req, timeout).await,
                    None => send_h1(&mut h1, &authority, req, timeout, json_body).await,
                };
                local.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                local.sent += 1;
                local.wire_bytes += wire_len;
                *local.status.entry(outcome.status.clone()).or_default() += 1;
                match outcome.class {
                    Class::Ok => local.ok += 1,
                    Class::Refused => local.refused += 1,
                    Class::Permanent => local.permanent += 1,
                    Class::Timeout => local.timeouts += 1,
                    Class::Transport => local.transport += 1,
                }
                local.rejected_items += outcome.rejected;
                if outcome.class != Class::Ok || outcome.rejected > 0 {
                    local.unacked.push(n);
                }
            }
            if let Ok(mut t) = totals.lock() {
                t.sent += local.sent;
                t.ok += local.ok;
                t.refused += local.refused;
                t.permanent += local.permanent;
                t.timeouts += local.timeouts;
                t.transport += local.transport;
                t.rejected_items += local.rejected_items;
                t.wire_bytes += local.wire_bytes;
                for (s, c) in local.status {
                    *t.status.entry(s).or_default() += c;
                }
                t.latencies_ms.extend(local.latencies_ms);
                t.unacked.extend(local.unacked);
                t.unsent.extend(local.unsent);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let end_unix_ns = unix_ns();
    let mut t = std::mem::take(&mut *totals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    t.latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let taken = next.load(Ordering::Relaxed);
    let taken = if args.requests > 0 {
        taken.min(args.requests)
    } else {
        taken
    };
    // Requests are numbered 0..taken; the sequence numbers they cover:
    let seq_end = args.seq_start + taken * k;
    let to_ranges = |ns: &[u64]| -> Vec<Range> {
        normalize(
            ns.iter()
                .filter(|&&n| n < taken)
                .map(|&n| (args.seq_start + n * k, args.seq_start + (n + 1) * k))
                .collect(),
        )
    };
    let unacked = to_ranges(&t.unacked);
    let unsent = to_ranges(&t.unsent);
    let unacked_items = crate::ranges::len(&unacked);
    if let Some(path) = &args.ranges_file {
        let text = json!({
            "signal": args.signal,
            "seq_start": args.seq_start,
            "seq_end": seq_end,
            "unacked": unacked,
            "unsent": unsent,
        });
        std::fs::write(path, text.to_string())
            .with_context(|| format!("write {}", path.display()))?;
    }
    let items = t.ok * k;
    let lat = &t.latencies_ms;
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().sum::<f64>() / lat.len() as f64
    };
    Ok(json!({
        "ok_requests": t.ok,
        "failed_requests": t.sent - t.ok,
        "items": items,
        "bytes_per_request": templates.encoded_len(),
        "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
        "items_per_s": (items as f64 / elapsed).round(),
        "p50_ms": round2(percentile(lat, 0.5)),
        "p99_ms": round2(percentile(lat, 0.99)),
        "p90_ms": round2(percentile(lat, 0.9)),
        "max_ms": round2(percentile(lat, 1.0)),
        "mean_ms": round2(mean),
        "signal": args.signal,
        "protocol": args.protocol,
        "compression": args.compression,
        "compression_level": if args.compression == Compression::None { None } else { Some(level) },
        "items_per_request": k,
        "concurrency": args.concurrency,
        "connections": if args.protocol == Protocol::Grpc { slots.len() } else { args.concurrency },
        "target_requests_per_s": if rate > 0.0 { Some(round2(rate)) } else { None },
        "sent_requests": t.sent,
        "sent_items": t.sent * k,
        "offered_items_per_s": ((t.sent * k) as f64 / elapsed).round(),
        "acked_items": items - t.rejected_items,
        "refused_requests": t.refused,
        "permanent_errors": t.permanent,
        "timeouts": t.timeouts,
        "transport_errors": t.transport,
        "rejected_items": t.rejected_items,
        "unacked_items": unacked_items,
        "status": t.status,
        "wire_bytes": t.wire_bytes,
        "seed": args.seed,
        "seq_start": args.seq_start,
        "seq_end": seq_end,
        "start_unix_ns": start_unix_ns,
        "end_unix_ns": end_unix_ns,
    }))
}

async fn send_h2(
    slot: &H2Slot,
    authority: &str,
    req: Request<Full<Bytes>>,
    timeout: Duration,
) -> Outcome {
    let sender = {
        let mut guard = slot.sender.lock().await;
        let closed = guard.as_ref().is_none_or(|s| s.is_closed());
        if closed {
            *guard = h2_connect(authority).await.ok();
        }
        guard.clone()
    };
    let Some(mut sender) = sender else {
        return Outcome::new(Class::Transport, "connect_error");
    };
    let call = async {
        match sender.send_request(req).await {
            Ok(resp) => grpc_outcome(resp).await,
            Err(_) => Outcome::new(Class::Transport, "transport_error"),
        }
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Outcome::new(Class::Timeout, "timeout"))
}

async fn send_h1(
    conn: &mut Option<http1::SendRequest<Full<Bytes>>>,
    authority: &str,
    req: Request<Full<Bytes>>,
    timeout: Duration,
    json: bool,
) -> Outcome {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = h1_connect(authority).await.ok();
    }
    let Some(sender) = conn.as_mut() else {
        return Outcome::new(Class::Transport, "connect_error");
    };
    let call = async {
        if sender.ready().await.is_err() {
            return Outcome::new(Class::Transport, "transport_error");
        }
        match sender.send_request(req).await {
            Ok(resp) => http_outcome(resp, json).await,
            Err(_) => Outcome::new(Class::Transport, "transport_error"),
        }
    };
    let outcome = tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| Outcome::new(Class::Timeout, "timeout"));
    if matches!(outcome.class, Class::Timeout | Class::Transport) {
        // The connection is in an unknown state: start a new one next time.
        *conn = None;
    }
    outcome
}
