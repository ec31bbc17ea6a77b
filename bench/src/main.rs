//! `ferrotel-bench`: a deterministic OTLP/gRPC load generator and a counting sink, used by
//! `bench/run` to measure ferrotel (and its peers) with the same traffic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use tonic::codec::CompressionEncoding;

#[derive(Parser)]
#[command(
    name = "ferrotel-bench",
    about = "OTLP/gRPC load generator and counting sink"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accept OTLP/gRPC traces and logs, count them, and write the totals to a file.
    Sink {
        #[arg(long, default_value = "127.0.0.1:4319")]
        listen: SocketAddr,
        /// Rewritten every 100 ms as `<items> <requests>`.
        #[arg(long)]
        count_file: PathBuf,
    },
    /// Send OTLP/gRPC requests and print a JSON summary.
    Load(LoadArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SignalKind {
    Traces,
    Logs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Parser, Clone)]
struct LoadArgs {
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    #[arg(long, value_enum, default_value_t = SignalKind::Traces)]
    signal: SignalKind,
    /// Requests to send in all (0: until --duration ends).
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Stop after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    #[arg(long, default_value_t = 512)]
    items_per_request: usize,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Requests per second across all connections (0: as fast as answers come).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Sink { listen, count_file } => runtime.block_on(sink(listen, count_file)),
        Command::Load(args) => runtime.block_on(load(args)),
    }
}

// ---------- payloads ----------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[(self.next() % list.len() as u64) as usize]
    }
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn resource(rng: &mut Rng, pod: u64) -> Resource {
    let service = rng.pick(&[
        "checkout", "cart", "payments", "orders", "catalog", "shipping",
    ]);
    Resource {
        attributes: vec![
            kv("service.name", s(service)),
            kv("service.version", s("1.42.0")),
            kv("k8s.namespace.name", s("shop-prod")),
            kv("k8s.pod.name", s(format!("{service}-7d9f8c6b5-{pod:05x}"))),
            kv(
                "k8s.node.name",
                s(format!("ip-10-0-{}-{}.ec2.internal", pod % 7, pod % 251)),
            ),
            kv("k8s.deployment.name", s(service)),
            kv(
                "container.id",
                s(format!("{:016x}{:016x}", rng.next(), rng.next())),
            ),
            kv("host.name", s(format!("node-{}", pod % 16))),
            kv("telemetry.sdk.language", s("python")),
            kv("telemetry.sdk.version", s("1.45.2")),
        ],
        dropped_attributes_count: 0,
        entity_refs: vec![],
    }
}

fn traces_request(rng: &mut Rng, spans: usize) -> ExportTraceServiceRequest {
    let routes = [
        "/api/cart",
        "/api/checkout",
        "/api/orders/{id}",
        "/healthz",
        "/api/catalog/search",
    ];
    let methods = ["GET", "POST", "PUT"];
    let names = [
        "HTTP GET",
        "HTTP POST",
        "SELECT orders",
        "redis GET",
        "publish order.created",
        "grpc.Payments/Charge",
    ];
    let now = 1_700_000_000_000_000_000u64;
    let spans = (0..spans)
        .map(|i| {
            let start = now + rng.next() % 1_000_000_000;
            let trace_id = [rng.next().to_be_bytes(), rng.next().to_be_bytes()].concat();
            Span {
                trace_id,
                span_id: rng.next().to_be_bytes().to_vec(),
                parent_span_id: if i % 4 == 0 {
                    vec![]
                } else {
                    rng.next().to_be_bytes().to_vec()
                },
                name: rng.pick(&names).to_string(),
                kind: (1 + rng.next() % 5) as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + rng.next() % 50_000_000,
                attributes: vec![
                    kv("http.request.method", s(rng.pick(&methods))),
                    kv("http.route", s(rng.pick(&routes))),
                    kv(
                        "http.response.status_code",
                        any_value::Value::IntValue([200, 201, 404, 500][(rng.next() % 4) as usize]),
                    ),
                    kv("server.address", s("shop.example.com")),
                    kv("server.port", any_value::Value::IntValue(443)),
                    kv("url.scheme", s("https")),
                    kv(
                        "user_agent.original",
                        s("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
                    ),
                    kv(
                        "client.address",
                        s(format!("10.1.{}.{}", rng.next() % 255, rng.next() % 255)),
                    ),
                    kv("network.protocol.version", s("1.1")),
                    kv("app.request.id", s(format!("{:016x}", rng.next()))),
                ],
                events: vec![span::Event {
                    time_unix_nano: start + 1000,
                    name: "cache.miss".to_string(),
                    attributes: vec![kv("cache.key", s(format!("k{}", rng.next() % 1000)))],
                    dropped_attributes_count: 0,
                }],
                status: Some(Status {
                    message: String::new(),
                    code: (rng.next() % 2) as i32,
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(rng, rng.0 % 1000)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.flask".to_string(),
                    version: "0.48b0".to_string(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn logs_request(rng: &mut Rng, records: usize) -> ExportLogsServiceRequest {
    let messages = [
        "order accepted by aggregator, forwarding to restaurant",
        "payment authorised for order, capturing funds",
        "cache miss for catalog entry, loading from database",
        "request completed successfully in handler",
        "retrying upstream call after transient failure",
    ];
    let now = 1_700_000_000_000_000_000u64;
    let log_records = (0..records)
        .map(|_| LogRecord {
            time_unix_nano: now + rng.next() % 1_000_000_000,
            observed_time_unix_nano: now + 1_000_000_000,
            severity_number: [9, 13, 17][(rng.next() % 3) as usize],
            severity_text: "INFO".to_string(),
            body: Some(AnyValue {
                value: Some(s(format!("{} id={:x}", rng.pick(&messages), rng.next()))),
            }),
            attributes: vec![
                kv("code.function", s("handle_request")),
                kv(
                    "code.lineno",
                    any_value::Value::IntValue((rng.next() % 900) as i64),
                ),
                kv("order.id", s(format!("{:012x}", rng.next()))),
                kv(
                    "aggregator",
                    s(rng.pick(&["swiggy", "zomato", "ubereats", "deliveroo"])),
                ),
                kv("thread.name", s("worker-3")),
            ],
            trace_id: [rng.next().to_be_bytes(), rng.next().to_be_bytes()].concat(),
            span_id: rng.next().to_be_bytes().to_vec(),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(rng, rng.0 % 1000)),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "app.logger".to_string(),
                    ..Default::default()
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

// ---------- load ----------

enum Pool {
    Traces(Vec<ExportTraceServiceRequest>),
    Logs(Vec<ExportLogsServiceRequest>),
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let mut rng = Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let pool = Arc::new(match args.signal {
        SignalKind::Traces => Pool::Traces(
            (0..8)
                .map(|_| traces_request(&mut rng, args.items_per_request))
                .collect(),
        ),
        SignalKind::Logs => Pool::Logs(
            (0..8)
                .map(|_| logs_request(&mut rng, args.items_per_request))
                .collect(),
        ),
    });
    let bytes_per_request = match pool.as_ref() {
        Pool::Traces(p) => prost::Message::encoded_len(&p[0]),
        Pool::Logs(p) => prost::Message::encoded_len(&p[0]),
    };
    let channel = tonic::transport::Endpoint::from_shared(args.endpoint.clone())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connect to {}", args.endpoint))?;
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let started = Instant::now();
    let deadline = (args.duration > 0.0).then(|| started + Duration::from_secs_f64(args.duration));
    let per_task_interval =
        (args.rate > 0.0).then(|| Duration::from_secs_f64(args.concurrency as f64 / args.rate));
    let mut tasks = Vec::new();
    for task in 0..args.concurrency {
        let channel = channel.clone();
        let pool = pool.clone();
        let (next, ok, failed, latencies) =
            (next.clone(), ok.clone(), failed.clone(), latencies.clone());
        let args = args.clone();
        tasks.push(tokio::spawn(async move {
            let encoding = match args.compression {
                Compression::None => None,
                Compression::Gzip => Some(CompressionEncoding::Gzip),
                Compression::Zstd => Some(CompressionEncoding::Zstd),
            };
            let mut traces = TraceServiceClient::new(channel.clone());
            let mut logs = LogsServiceClient::new(channel);
            if let Some(e) = encoding {
                traces = traces.send_compressed(e);
                logs = logs.send_compressed(e);
            }
            let mut tick = per_task_interval.map(|i| {
                let mut t = tokio::time::interval_at(
                    tokio::time::Instant::now() + i.mul_f64(task as f64 / args.concurrency as f64),
                    i,
                );
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut local = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if args.requests > 0 && n >= args.requests {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                let t0 = Instant::now();
                let result = match pool.as_ref() {
                    Pool::Traces(p) => traces
                        .export(p[(n % p.len() as u64) as usize].clone())
                        .await
                        .map(|_| ()),
                    Pool::Logs(p) => logs
                        .export(p[(n % p.len() as u64) as usize].clone())
                        .await
                        .map(|_| ()),
                };
                local.push(t0.elapsed().as_secs_f64() * 1000.0);
                match result {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
            if let Ok(mut all) = latencies.lock() {
                all.extend(local);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let ok = ok.load(Ordering::Relaxed);
    let items = ok * args.items_per_request as u64;
    println!(
        "{{\"ok_requests\":{ok},\"failed_requests\":{},\"items\":{items},\"bytes_per_request\":{bytes_per_request},\"elapsed_s\":{elapsed:.3},\"items_per_s\":{:.0},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        failed.load(Ordering::Relaxed),
        items as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}

// ---------- sink ----------

#[derive(Clone, Default)]
struct Counter {
    items: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.items.fetch_add(n, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let n: usize = request
            .get_ref()
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum();
        self.items.fetch_add(n, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

async fn sink(listen: SocketAddr, count_file: PathBuf) -> anyhow::Result<()> {
    let counter = Counter::default();
    let writer = counter.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let tmp = count_file.with_extension("tmp");
        loop {
            tick.tick().await;
            let text = format!(
                "{} {}\n",
                writer.items.load(Ordering::Relaxed),
                writer.requests.load(Ordering::Relaxed)
            );
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &count_file);
            }
        }
    });
    let max = 64 * 1024 * 1024;
    println!("ready {listen}");
    tonic::transport::Server::builder()
        .add_service(
            TraceServiceServer::new(counter.clone())
                .max_decoding_message_size(max)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd),
        )
        .add_service(
            LogsServiceServer::new(counter)
                .max_decoding_message_size(max)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd),
        )
        .serve(listen)
        .await?;
    Ok(())
}
