//! A synthetic Prometheus target for the scrape benchmarks: a deterministic exposition of a
//! chosen number of samples, in the text format 0.0.4 or in OpenMetrics, that looks like a
//! large service's: counters, gauges and untyped series with 3 to 6 labels, classic
//! histograms with 10 buckets, summaries with 3 quantiles, Kubernetes-like label values,
//! and label values and help texts that need escapes (quotes, backslashes, new lines).
//!
//! `ferrotel-bench prom-target` serves it at `/metrics`, built once at start; the
//! micro-benchmarks parse and translate the same bodies.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::compress::{compress, Compression};
use crate::sink::unix_ns;

/// The two text formats a target can answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::OpenMetrics => "openmetrics",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A generated exposition and what it holds.
#[derive(Clone, Debug)]
pub struct Exposition {
    pub body: Vec<u8>,
    /// Sample lines (what Prometheus counts as `scrape_samples_scraped`).
    pub samples: usize,
    /// The OTLP data points they make: one per counter, gauge or untyped series, one per
    /// histogram or summary (its buckets or quantiles, sum and count together).
    pub points: usize,
    pub families: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    /// Sample lines per series.
    fn samples_per_series(self) -> usize {
        match self {
            Kind::Histogram => BUCKETS.len() + 3,
            Kind::Summary => QUANTILES.len() + 2,
            _ => 1,
        }
    }
}

#[derive(Clone, Copy)]
enum Label {
    Method,
    Route,
    Status,
    Pod,
    Namespace,
    Container,
    Error,
    Code,
    Peer,
    Device,
    Fstype,
    Mountpoint,
    Node,
    Service,
    GrpcMethod,
    System,
    Operation,
    Table,
    Queue,
    Path,
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const ROUTES: [&str; 8] = [
    "/",
    "/api/v1/users",
    "/api/v1/users/{id}",
    "/api/v1/orders",
    "/api/v1/orders/{id}",
    "/api/v1/orders/{id}/items",
    "/api/v1/search",
    "/healthz",
];
const STATUSES: [&str; 8] = ["200", "201", "204", "301", "400", "404", "500", "503"];
const DEPLOYMENTS: [&str; 8] = [
    "checkout", "cart", "payments", "search", "catalog", "shipping", "auth", "gateway",
];
const NAMESPACES: [&str; 6] = [
    "default",
    "payments",
    "shop",
    "kube-system",
    "monitoring",
    "ingress-nginx",
];
const CONTAINERS: [&str; 5] = ["app", "sidecar", "istio-proxy", "init-db", "log-shipper"];
/// Half of these need escapes in the exposition.
const ERRORS: [&str; 6] = [
    "timeout",
    "connection reset by peer",
    "upstream said \"busy\"",
    "dial tcp 10.0.3.7:5432: i/o timeout",
    "TLS handshake failed:\nbad certificate",
    "spool C:\\data\\queue not found",
];
const CODES: [&str; 4] = ["ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND"];
const DEVICES: [&str; 6] = [
    "/dev/nvme0n1p1",
    "/dev/nvme1n1",
    "/dev/sda1",
    "tmpfs",
    "overlay",
    "shm",
];
const FSTYPES: [&str; 4] = ["ext4", "xfs", "tmpfs", "overlay"];
const MOUNTPOINTS: [&str; 6] = [
    "/",
    "/var/lib/kubelet",
    "/run",
    "/var/lib/containerd",
    "/data",
    "/tmp",
];
const GRPC_METHODS: [&str; 6] = [
    "GetCart",
    "AddItem",
    "Charge",
    "Refund",
    "ListProducts",
    "Search",
];
const SYSTEMS: [&str; 3] = ["postgresql", "redis", "mysql"];
const OPERATIONS: [&str; 6] = ["SELECT", "INSERT", "UPDATE", "DELETE", "GET", "SET"];
const TABLES: [&str; 8] = [
    "users",
    "orders",
    "order_items",
    "sessions",
    "products",
    "payments",
    "audit_log",
    "carts",
];
const QUEUES: [&str; 4] = ["emails", "webhooks", "reports", "thumbnails"];
/// Windows paths and a UNC share: backslashes to escape.
const PATHS: [&str; 4] = [
    "C:\\ProgramData\\agent\\spool",
    "D:\\queues\\in",
    "/var/spool/agent",
    "\\\\fileserver\\share\\drop",
];
const PODS: usize = 64;
const PEERS: usize = 32;
const NODES: usize = 16;

impl Label {
    fn name(self) -> &'static str {
        match self {
            Label::Method => "method",
            Label::Route => "route",
            Label::Status => "status_code",
            Label::Pod => "pod",
            Label::Namespace => "namespace",
            Label::Container => "container",
            Label::Error => "error",
            Label::Code => "code",
            Label::Peer => "peer",
            Label::Device => "device",
            Label::Fstype => "fstype",
            Label::Mountpoint => "mountpoint",
            Label::Node => "node",
            Label::Service => "service",
            Label::GrpcMethod => "grpc_method",
            Label::System => "db_system",
            Label::Operation => "operation",
            Label::Table => "table",
            Label::Queue => "queue",
            Label::Path => "path",
        }
    }

    /// How many values the label takes.
    fn values(self) -> usize {
        match self {
            Label::Method => METHODS.len(),
            Label::Route => ROUTES.len(),
            Label::Status => STATUSES.len(),
            Label::Pod => PODS,
            Label::Namespace => NAMESPACES.len(),
            Label::Container => CONTAINERS.len(),
            Label::Error => ERRORS.len(),
            Label::Code => CODES.len(),
            Label::Peer => PEERS,
            Label::Device => DEVICES.len(),
            Label::Fstype => FSTYPES.len(),
            Label::Mountpoint => MOUNTPOINTS.len(),
            Label::Node => NODES,
            Label::Service => DEPLOYMENTS.len(),
            Label::GrpcMethod => GRPC_METHODS.len(),
            Label::System => SYSTEMS.len(),
            Label::Operation => OPERATIONS.len(),
            Label::Table => TABLES.len(),
            Label::Queue => QUEUES.len(),
            Label::Path => PATHS.len(),
        }
    }

    /// Writes value `i` (below `values()`), escaped for a label value.
    fn write_value(self, i: usize, out: &mut String) {
        let plain = |s: &str, out: &mut String| escape_into(s, out, true);
        match self {
            Label::Method => plain(METHODS[i], out),
            Label::Route => plain(ROUTES[i], out),
            Label::Status => plain(STATUSES[i], out),
            Label::Pod => {
                let deployment = DEPLOYMENTS[i % DEPLOYMENTS.len()];
                let h = mix(i as u64 ^ 0x9e37);
                let _ = write!(
                    out,
                    "{deployment}-{:08x}{:x}-{}",
                    h as u32,
                    (h >> 32) & 0xf,
                    suffix(h >> 36)
                );
            }
            Label::Namespace => plain(NAMESPACES[i], out),
            Label::Container => plain(CONTAINERS[i], out),
            Label::Error => plain(ERRORS[i], out),
            Label::Code => plain(CODES[i], out),
            Label::Peer => {
                let _ = write!(out, "10.0.{}.{}:{}", i / 7, 10 + i % 7 * 31, 5432 + i % 3);
            }
            Label::Device => plain(DEVICES[i], out),
            Label::Fstype => plain(FSTYPES[i], out),
            Label::Mountpoint => plain(MOUNTPOINTS[i], out),
            Label::Node => {
                let _ = write!(
                    out,
                    "ip-10-0-{}-{}.eu-west-1.compute.internal",
                    i / 4 * 16 + 1,
                    i % 4 * 60 + 7
                );
            }
            Label::Service => plain(DEPLOYMENTS[i], out),
            Label::GrpcMethod => plain(GRPC_METHODS[i], out),
            Label::System => plain(SYSTEMS[i], out),
            Label::Operation => plain(OPERATIONS[i], out),
            Label::Table => plain(TABLES[i], out),
            Label::Queue => plain(QUEUES[i], out),
            Label::Path => plain(PATHS[i], out),
        }
    }
}

/// Five lower-case letters and digits, as a pod name ends.
fn suffix(mut h: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// One family of the repeating pattern.
struct Template {
    kind: Kind,
    /// The family's name after the subsystem prefix (counters without `_total`).
    stem: &'static str,
    unit: Option<&'static str>,
    help: &'static str,
    labels: &'static [Label],
    series: usize,
}

const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
];
/// OpenMetrics writes bucket bounds as floats.
const OM_BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0",
];
const QUANTILES: [&str; 3] = ["0.5", "0.9", "0.99"];

/// The repeating pattern: 1,744 samples and 624 data points per round.
const PATTERN: [Template; 8] = [
    Template {
        kind: Kind::Counter,
        stem: "http_server_requests",
        unit: None,
        help: "Total number of HTTP requests handled.",
        labels: &[Label::Method, Label::Route, Label::Status, Label::Pod],
        series: 192,
    },
    Template {
        kind: Kind::Gauge,
        stem: "process_open_connections",
        unit: None,
        help: "Connections currently open.",
        labels: &[Label::Namespace, Label::Pod, Label::Container],
        series: 96,
    },
    Template {
        kind: Kind::Histogram,
        stem: "http_server_request_duration_seconds",
        unit: Some("seconds"),
        help: "Duration of HTTP server requests.",
        labels: &[Label::Method, Label::Route, Label::Pod],
        series: 48,
    },
    Template {
        kind: Kind::Counter,
        stem: "client_errors",
        unit: None,
        help:
            "Errors seen by outgoing clients, by \"error\" text\nand code (see C:\\docs\\errors).",
        labels: &[
            Label::Namespace,
            Label::Pod,
            Label::Peer,
            Label::Code,
            Label::Error,
        ],
        series: 80,
    },
    Template {
        kind: Kind::Gauge,
        stem: "filesystem_avail_bytes",
        unit: Some("bytes"),
        help: "Filesystem space available to non-root users in bytes.",
        labels: &[
            Label::Device,
            Label::Fstype,
            Label::Mountpoint,
            Label::Node,
            Label::Namespace,
            Label::Pod,
        ],
        series: 72,
    },
    Template {
        kind: Kind::Summary,
        stem: "rpc_client_latency_seconds",
        unit: Some("seconds"),
        help: "Latency of outgoing RPCs.",
        labels: &[Label::Service, Label::GrpcMethod, Label::Pod],
        series: 40,
    },
    Template {
        kind: Kind::Histogram,
        stem: "db_client_operation_duration_seconds",
        unit: Some("seconds"),
        help: "Duration of database client operations.",
        labels: &[Label::System, Label::Operation, Label::Table, Label::Pod],
        series: 32,
    },
    Template {
        kind: Kind::Untyped,
        stem: "legacy_queue_depth",
        unit: None,
        help: "Items waiting in the spool directory.",
        labels: &[Label::Queue, Label::Node, Label::Path],
        series: 64,
    },
];

/// What fills the last samples when the next family would not fit.
const FILLER: Template = Template {
    kind: Kind::Gauge,
    stem: "worker_queue_length",
    unit: None,
    help: "Jobs waiting per worker.",
    labels: &[Label::Namespace, Label::Pod, Label::Container],
    series: 0,
};

const SUBSYSTEMS: [&str; 12] = [
    "checkout",
    "cart",
    "payments",
    "search",
    "inventory",
    "shipping",
    "auth",
    "catalog",
    "billing",
    "gateway",
    "ledger",
    "notify",
];

/// SplitMix64: deterministic values without a generator's state.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Escapes a label value (`quotes`) or a help text: backslash, new line, and in label
/// values (and OpenMetrics help) the double quote.
fn escape_into(s: &str, out: &mut String, quotes: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

struct Writer {
    out: String,
    format: Format,
    samples: usize,
    points: usize,
    families: usize,
}

impl Writer {
    /// `name{labels} value`; `extra` is the `le` or `quantile` label.
    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        extra: Option<(&str, &str)>,
        value: &dyn std::fmt::Display,
    ) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        if !labels.is_empty() || extra.is_some() {
            self.out.push('{');
            self.out.push_str(labels);
            if let Some((k, v)) = extra {
                if !labels.is_empty() {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self.samples += 1;
    }

    fn family(&mut self, prefix: &str, t: &Template, series: usize, seed: u64) {
        let name = format!("{prefix}_{stem}", stem = t.stem);
        let om = self.format == Format::OpenMetrics;
        // The text format names a counter's family with `_total`; OpenMetrics without.
        let family = if t.kind == Kind::Counter && !om {
            format!("{name}_total")
        } else {
            name.clone()
        };
        let kind = match t.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
            Kind::Untyped if om => "unknown",
            Kind::Untyped => "untyped",
        };
        let mut help = String::new();
        escape_into(t.help, &mut help, om);
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
        if let (true, Some(unit)) = (om, t.unit) {
            let _ = writeln!(self.out, "# UNIT {family} {unit}");
        }
        self.families += 1;
        let mut labels = String::new();
        for s in 0..series {
            labels.clear();
            // Mixed radix over the labels' values, the last label turning fastest: every
            // series of a family has its own label set.
            let mut rest = s;
            let mut indexes = [0usize; 8];
            for (j, label) in t.labels.iter().enumerate().rev() {
                indexes[j] = rest % label.values();
                rest /= label.values();
            }
            for (j, label) in t.labels.iter().enumerate() {
                if j > 0 {
                    labels.push(',');
                }
                labels.push_str(label.name());
                labels.push_str("=\"");
                label.write_value(indexes[j], &mut labels);
                labels.push('"');
            }
            let r = mix(seed ^ ((s as u64) << 20));
            match t.kind {
                Kind::Counter => {
                    self.sample(&name, "_total", &labels, None, &(r % 5_000_000));
                }
                Kind::Gauge | Kind::Untyped => {
                    let value = if t.unit == Some("bytes") {
                        (r % 500_000_000_000) as f64
                    } else {
                        (r % 100_000) as f64 / 100.0
                    };
                    self.sample(&name, "", &labels, None, &value);
                }
                Kind::Histogram => {
                    // Cumulative counts from random weights: never decreasing.
                    let count = 1_000 + r % 1_000_000;
                    let weights: Vec<u64> = (0..=BUCKETS.len() as u64)
                        .map(|k| 1 + mix(r ^ k) % 100)
                        .collect();
                    let total: u64 = weights.iter().sum();
                    let bounds = if om { &OM_BUCKETS } else { &BUCKETS };
                    let mut acc = 0;
                    for (k, le) in bounds.iter().enumerate() {
                        acc += weights[k];
                        let cumulative = count * acc / total;
                        self.sample(&name, "_bucket", &labels, Some(("le", le)), &cumulative);
                    }
                    self.sample(&name, "_bucket", &labels, Some(("le", "+Inf")), &count);
                    let sum = count as f64 * (1 + r % 400) as f64 / 1000.0;
                    self.sample(&name, "_sum", &labels, None, &sum);
                    self.sample(&name, "_count", &labels, None, &count);
                }
                Kind::Summary => {
                    let count = 1_000 + r % 1_000_000;
                    let mut q = (1 + r % 50) as f64 / 1000.0;
                    for quantile in QUANTILES {
                        self.sample(&name, "", &labels, Some(("quantile", quantile)), &q);
                        q *= 2.5;
                    }
                    let sum = count as f64 * (1 + r % 200) as f64 / 1000.0;
                    self.sample(&name, "_sum", &labels, None, &sum);
                    self.sample(&name, "_count", &labels, None, &count);
                }
            }
            self.points += 1;
        }
    }
}

/// An exposition of exactly `samples` sample lines (the pattern repeated, under a new
/// subsystem prefix each round; a gauge family takes what is left at the end).
pub fn exposition(samples: usize, format: Format) -> Exposition {
    // About 120 bytes per sample line.
    let mut w = Writer {
        out: String::with_capacity(samples * 128 + 4096),
        format,
        samples: 0,
        points: 0,
        families: 0,
    };
    let mut n = 0u64;
    'rounds: for round in 0.. {
        let prefix = match round / SUBSYSTEMS.len() {
            0 => SUBSYSTEMS[round % SUBSYSTEMS.len()].to_string(),
            k => format!("{}{}", SUBSYSTEMS[round % SUBSYSTEMS.len()], k + 1),
        };
        for t in &PATTERN {
            let left = samples - w.samples;
            if left == 0 {
                break 'rounds;
            }
            n += 1;
            let size = t.series * t.kind.samples_per_series();
            if size <= left {
                w.family(&prefix, t, t.series, n);
            } else {
                w.family(&prefix, &FILLER, left, n);
                break 'rounds;
            }
        }
    }
    if format == Format::OpenMetrics {
        w.out.push_str("# EOF\n");
    }
    Exposition {
        body: w.out.into_bytes(),
        samples: w.samples,
        points: w.points,
        families: w.families,
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct TargetArgs {
    /// Sample lines in the exposition.
    #[arg(long, default_value_t = 100_000)]
    pub series: usize,
    /// Address to serve `/metrics` on.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Answer in the text format even when the request asks for OpenMetrics (what
    /// client_golang does unless OpenMetrics is enabled); by default a request whose
    /// `Accept` names `application/openmetrics-text` gets OpenMetrics.
    #[arg(long)]
    pub text_only: bool,
    /// gzip the body (compressed once, at level 6) when the request accepts gzip.
    #[arg(long)]
    pub gzip: bool,
}

/// The bodies the target serves, built once.
struct Bodies {
    text: Bytes,
    text_gzip: Option<Bytes>,
    openmetrics: Bytes,
    openmetrics_gzip: Option<Bytes>,
    text_only: bool,
    served: AtomicU64,
}

/// A body handed out in chunks, so that the time its last chunk is taken is close to the
/// time the client has read the rest; it then prints one JSON line about the scrape.
/// (An empty body, the answer to anything but `GET /metrics`, is done from the start.)
struct TimedBody {
    data: Bytes,
    offset: usize,
    started: Instant,
    start_unix_ns: u64,
    number: u64,
    format: Format,
    gzip: bool,
    done: bool,
}

const CHUNK: usize = 64 << 10;

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let end = (self.offset + CHUNK).min(self.data.len());
        let chunk = self.data.slice(self.offset..end);
        self.offset = end;
        // hyper takes no frame after the announced length: the last chunk is the end.
        if end == self.data.len() {
            self.done = true;
            println!(
                "{}",
                serde_json::json!({
                    "scrape": self.number,
                    "start_unix_ns": self.start_unix_ns,
                    "serve_ms": self.started.elapsed().as_secs_f64() * 1e3,
                    "format": self.format.name(),
                    "gzip": self.gzip,
                    "bytes": self.data.len(),
                })
            );
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.data.len() - self.offset) as u64)
    }
}

fn answer(req: &Request<Incoming>, bodies: &Bodies) -> Response<TimedBody> {
    let started = Instant::now();
    let start_unix_ns = unix_ns();
    let empty = |status: StatusCode| {
        let mut r = Response::new(TimedBody {
            data: Bytes::new(),
            offset: 0,
            started,
            start_unix_ns,
            number: 0,
            format: Format::Text,
            gzip: false,
            done: true,
        });
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return empty(StatusCode::NOT_FOUND);
    }
    if req.method() != http::Method::GET {
        return empty(StatusCode::METHOD_NOT_ALLOWED);
    }
    let header_text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let format = if !bodies.text_only
        && header_text(header::ACCEPT).contains("application/openmetrics-text")
    {
        Format::OpenMetrics
    } else {
        Format::Text
    };
    let wants_gzip = header_text(header::ACCEPT_ENCODING).contains("gzip");
    let (data, gzip) = match (format, wants_gzip) {
        (Format::Text, true) if bodies.text_gzip.is_some() => (bodies.text_gzip.clone(), true),
        (Format::OpenMetrics, true) if bodies.openmetrics_gzip.is_some() => {
            (bodies.openmetrics_gzip.clone(), true)
        }
        (Format::Text, _) => (Some(bodies.text.clone()), false),
        (Format::OpenMetrics, _) => (Some(bodies.openmetrics.clone()), false),
    };
    let number = bodies.served.fetch_add(1, Ordering::Relaxed) + 1;
    let mut r = Response::new(TimedBody {
        data: data.unwrap_or_default(),
        offset: 0,
        started,
        start_unix_ns,
        number,
        format,
        gzip,
        done: false,
    });
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if gzip {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// Serves the exposition until SIGTERM or Ctrl-C. Prints `ready ...` with the sizes once
/// listening, then one JSON line per scrape served.
pub async fn serve(args: TargetArgs) -> anyhow::Result<()> {
    let built = Instant::now();
    let text = exposition(args.series, Format::Text);
    let om = exposition(args.series, Format::OpenMetrics);
    let gz = |body: &[u8]| -> anyhow::Result<Option<Bytes>> {
        Ok(if args.gzip {
            Some(Bytes::from(compress(Compression::Gzip, 6, body, 0)?))
        } else {
            None
        })
    };
    let bodies = Arc::new(Bodies {
        text_gzip: gz(&text.body)?,
        openmetrics_gzip: gz(&om.body)?,
        text: Bytes::from(text.body),
        openmetrics: Bytes::from(om.body),
        text_only: args.text_only,
        served: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!(
        "{}",
        serde_json::json!({
            "ready": listener.local_addr()?.to_string(),
            "samples": text.samples,
            "points": text.points,
            "families": text.families,
            "text_bytes": bodies.text.len(),
            "text_gzip_bytes": bodies.text_gzip.as_ref().map(Bytes::len),
            "openmetrics_bytes": bodies.openmetrics.len(),
            "openmetrics_gzip_bytes": bodies.openmetrics_gzip.as_ref().map(Bytes::len),
            "text_only": args.text_only,
            "build_ms": built.elapsed().as_secs_f64() * 1e3,
        })
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let bodies = bodies.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let r = answer(&req, &bodies);
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_samples_asked_for() {
        for n in [1, 13, 1744, 10_000, 100_000] {
            for format in [Format::Text, Format::OpenMetrics] {
                let e = exposition(n, format);
                let text = String::from_utf8(e.body.clone()).unwrap_or_default();
                let lines = text
                    .lines()
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .count();
                assert_eq!(e.samples, n, "{format:?}");
                assert_eq!(lines, n, "{format:?}");
            }
        }
        let e = exposition(100_000, Format::Text);
        assert_eq!(e.points, 36_160);
        assert_eq!(e.families, 459);
        assert_eq!(exposition(1744, Format::Text).points, 624);
    }

    #[test]
    fn label_sets_are_unique_within_a_family() {
        for t in PATTERN.iter().chain([&FILLER]) {
            let combinations: usize = t.labels.iter().map(|l| l.values()).product();
            // The filler takes fewer series than the largest family of the pattern.
            let series = if t.series == 0 { 624 } else { t.series };
            assert!(combinations >= series, "{}", t.stem);
            assert!(t.labels.len() >= 3 && t.labels.len() <= 6, "{}", t.stem);
        }
    }

    #[test]
    fn escapes_and_formats() {
        let text = String::from_utf8(exposition(1744, Format::Text).body).unwrap_or_default();
        assert!(text.contains("# TYPE checkout_http_server_requests_total counter\n"));
        assert!(text.contains(r#"error="upstream said \"busy\"""#));
        assert!(text.contains(r#"error="TLS handshake failed:\nbad certificate""#));
        assert!(text.contains(r#"path="\\\\fileserver\\share\\drop""#));
        assert!(text.contains("le=\"+Inf\"} "));
        assert!(!text.contains("# EOF"));
        let om = String::from_utf8(exposition(1744, Format::OpenMetrics).body).unwrap_or_default();
        assert!(om.contains("# TYPE checkout_http_server_requests counter\n"));
        assert!(om.contains("# UNIT checkout_http_server_request_duration_seconds seconds\n"));
        assert!(om.contains("# TYPE checkout_legacy_queue_depth unknown\n"));
        assert!(om.contains("le=\"1.0\"}"));
        assert!(om.ends_with("# EOF\n"));
    }
}
